//! `conclave devnet`: one command from a fresh clone to a running network
//! with a `kv` context, on embedded defaults.

use clap::Args;

use super::Cli;
use crate::config::Config;
use crate::node::Node;

#[derive(Args, Debug)]
pub struct DevnetArgs {
    /// Bundled app of the context to create when the node has none.
    #[arg(long, default_value = "kv")]
    pub app: String,
}

pub async fn run(cli: &Cli, args: &DevnetArgs) -> anyhow::Result<()> {
    let home = cli.home();
    super::init_home(&home, super::Listen::default())?;
    let config = Config::load(&home)?;
    let node = Node::open(&home, config)?;
    let bound = node.serve().await?;
    let existing = node.store.contexts()?;
    let context = match existing.first() {
        Some(r) => r.clone(),
        None => {
            let wasm = conclave_apps::by_name(&args.app)
                .ok_or_else(|| anyhow::anyhow!("unknown bundled app {:?}", args.app))?;
            node.create_context(wasm, Vec::new())?
        }
    };
    let bin = std::env::args().next().unwrap_or_else(|| "conclave".into());
    let home_flag = format!("--home {}", home.display());
    println!();
    println!("Conclave devnet is running (Ctrl-C stops it)");
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
