//! `conclave devnet`: one command from a fresh clone to a running network
//! with a `kv` context, on embedded defaults. With `--validators 1` the node
//! runs in this process; with more, `conclave testnet` homes are written
//! under the home (once) and each validator runs as its own process.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use clap::Args;

use super::Cli;
use crate::config::Config;
use crate::rpc::ConclaveApiClient;

#[derive(Args, Debug)]
pub struct DevnetArgs {
    /// Validators (separate processes when more than one).
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Bundled app of the context.
    #[arg(long, default_value = "kv")]
    pub app: String,
    /// First port for multi-validator devnets (see `conclave testnet`).
    #[arg(long, default_value_t = 26656)]
    pub base_port: u16,
    /// A proxy the context anchors to: `evm:<chain id>:<0x address>` or
    /// `near:<network>:<account>` (repeatable).
    #[arg(long = "anchor")]
    pub anchors: Vec<String>,
    /// Checkpoint interval of the context, in blocks.
    #[arg(long, default_value_t = crate::store::DEFAULT_CHECKPOINT_INTERVAL)]
    pub checkpoint_interval: u64,
}

pub async fn run(cli: &Cli, args: &DevnetArgs) -> anyhow::Result<()> {
    let home = cli.home();
    if args.validators <= 1 {
        return run_single(&home, args).await;
    }
    let dir = home.join(format!("devnet-{}", args.validators));
    let testnet_args = super::testnet::TestnetArgs {
        validators: args.validators,
        out: dir.clone(),
        host: "127.0.0.1".into(),
        hosts: Vec::new(),
        base_port: args.base_port,
        app: args.app.clone(),
        anchors: args.anchors.clone(),
        checkpoint_interval: args.checkpoint_interval,
        // All of them on this machine: each gets its share of the CPUs.
        worker_threads: crate::config::NodeConfig::share_of_this_machine(args.validators) as u64,
    };
    let homes: Vec<_> = (0..args.validators)
        .map(|i| dir.join(format!("node{i}")))
        .collect();
    if !homes[0].join("keys").exists() {
        super::testnet::write(&testnet_args)?;
    }
    let exe = std::env::current_exe()?;
    let mut children = Children(Vec::new());
    for home in &homes {
        let log = std::fs::File::create(home.join("node.log"))?;
        let child = Command::new(&exe)
            .arg("--home")
            .arg(home)
            .arg("start")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()?;
        children.0.push(child);
    }
    let mut rpcs = Vec::new();
    for home in &homes {
        let url = format!("http://{}", Config::load(home)?.rpc.listen);
        wait_healthy(&url, home, &mut children).await?;
        rpcs.push(url);
    }
    let contexts = super::connect::connect_as(&rpcs[0], &homes[0])
        .await?
        .context_list()
        .await?;
    let context = contexts
        .first()
        .map(|c| c.context_id.to_string())
        .unwrap_or_default();
    let bin = exe.display();
    println!();
    println!(
        "Conclave devnet: {} validators, one process each (Ctrl-C stops them)",
        homes.len()
    );
    for (home, rpc) in homes.iter().zip(&rpcs) {
        println!(
            "  {rpc}  home {}  log {}/node.log",
            home.display(),
            home.display()
        );
    }
    println!(
        "  context {context} (app {}, all validators are members)",
        args.app
    );
    println!();
    println!("Try, in another shell (any node; each signs with its own member key):");
    println!(
        "  {bin} --home {} tx submit --context {context} --method set --args '{{\"key\":\"a\",\"value\":\"1\"}}' --wait",
        homes[1].display()
    );
    println!(
        "  {bin} --home {} query --context {context} --key a",
        homes[3 % homes.len()].display()
    );
    println!();
    tokio::signal::ctrl_c().await?;
    Ok(())
}

/// Kills the validators when the devnet stops, however it stops.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn wait_healthy(url: &str, home: &Path, children: &mut Children) -> anyhow::Result<()> {
    let client = super::connect::connect(url)?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if client.node_health().await.is_ok() {
            return Ok(());
        }
        for c in &mut children.0 {
            if let Some(status) = c.try_wait()? {
                anyhow::bail!(
                    "a validator exited ({status}); see {}/node.log",
                    home.display()
                );
            }
        }
        if Instant::now() > deadline {
            anyhow::bail!(
                "{url} did not answer within 60 s; see {}/node.log",
                home.display()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run_single(home: &Path, args: &DevnetArgs) -> anyhow::Result<()> {
    super::init_home(home, super::Listen::default())?;
    let config = Config::load(home)?;
    let (node, bound) = crate::launch::launch(home, config).await?;
    let existing = node.store.contexts()?;
    let context = match existing.first() {
        Some(r) => r.clone(),
        None => {
            let wasm = conclave_apps::by_name(&args.app)
                .ok_or_else(|| anyhow::anyhow!("unknown bundled app {:?}", args.app))?;
            let anchors = args
                .anchors
                .iter()
                .map(|a| {
                    crate::checkpoint::parse_anchor(a).map_err(|e| anyhow::anyhow!("--anchor: {e}"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            node.create_context_with(wasm, Vec::new(), anchors, Some(args.checkpoint_interval))?
        }
    };
    let bin = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "conclave".into());
    let home_flag = format!("--home {}", home.display());
    println!();
    println!("Conclave devnet is running, one validator (Ctrl-C stops it)");
    println!("  home      {}", home.display());
    println!("  member    {}", node.keys.member_id());
    println!("  rpc       http://{}", bound.rpc);
    println!("  metrics   http://{}/metrics", bound.metrics);
    println!("  context   {} (app {})", context.id, args.app);
    println!();
    println!("Try, in another shell:");
    println!(
        "  {bin} {home_flag} tx submit --context {} --method set --args '{{\"key\":\"a\",\"value\":\"1\"}}' --wait",
        context.id
    );
    println!("  {bin} {home_flag} query --context {} --key a", context.id);
    println!();
    tokio::signal::ctrl_c().await?;
    tracing::info!("shutting down");
    Ok(())
}
