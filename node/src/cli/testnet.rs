//! `conclave testnet`: one home per validator, as `cometbft testnet` does:
//! keys, a config whose persistent peers are the other validators, and the
//! genesis of a `kv` context whose members are all of them.

use std::path::{Path, PathBuf};

use clap::Args;
use conclave_consensus::Hash32;
use rand::RngCore;

use crate::config::Config;
use crate::store::{Genesis, MemberInfo};

#[derive(Args, Debug, Clone)]
pub struct TestnetArgs {
    /// Number of validators.
    #[arg(long, default_value_t = 4)]
    pub validators: usize,
    /// Directory for the homes (`node0`, `node1`, ...).
    #[arg(long)]
    pub out: PathBuf,
    /// Host the nodes reach each other at.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// One IP per validator, comma-separated (node i listens and is
    /// reached at the i-th), instead of `--host` for all: each container
    /// of a compose network on its own address.
    #[arg(long, value_delimiter = ',')]
    pub hosts: Vec<String>,
    /// First port: node i uses base+10i (p2p), +1 (RPC), +2 (metrics).
    #[arg(long, default_value_t = 26656)]
    pub base_port: u16,
    /// Bundled app of the shared context.
    #[arg(long, default_value = "kv")]
    pub app: String,
    /// A proxy the context anchors to: `evm:<chain id>:<0x address>` or
    /// `near:<network>:<account>` (repeatable).
    #[arg(long = "anchor")]
    pub anchors: Vec<String>,
    /// Checkpoint interval of the context, in blocks.
    #[arg(long, default_value_t = crate::store::DEFAULT_CHECKPOINT_INTERVAL)]
    pub checkpoint_interval: u64,
    /// `[node] worker_threads` of every home (0: one per CPU). Validators
    /// that will share one machine run best with its CPUs divided among
    /// them (docs/operations.md).
    #[arg(
        long,
        default_value_t = 0,
        value_parser = clap::value_parser!(u64).range(0..=crate::config::MAX_WORKER_THREADS as u64)
    )]
    pub worker_threads: u64,
}

/// What `testnet` wrote.
pub struct Testnet {
    pub homes: Vec<PathBuf>,
    pub context: conclave_consensus::ContextId,
    pub rpc: Vec<String>,
}

pub fn run(args: &TestnetArgs) -> anyhow::Result<()> {
    let t = write(args)?;
    println!("context  {}", t.context);
    for (home, rpc) in t.homes.iter().zip(&t.rpc) {
        println!("node     {}  rpc {rpc}", home.display());
    }
    Ok(())
}

fn port(args: &TestnetArgs, i: usize, offset: u16) -> anyhow::Result<u16> {
    u16::try_from(i * 10)
        .ok()
        .and_then(|d| args.base_port.checked_add(d))
        .and_then(|p| p.checked_add(offset))
        .ok_or_else(|| anyhow::anyhow!("ports above 65535: lower --base-port"))
}

/// Writes the homes and returns where they are.
pub fn write(args: &TestnetArgs) -> anyhow::Result<Testnet> {
    if args.validators == 0 {
        anyhow::bail!("--validators must be at least 1");
    }
    let wasm = conclave_apps::by_name(&args.app)
        .ok_or_else(|| anyhow::anyhow!("unknown bundled app {:?}", args.app))?;
    let anchors = args
        .anchors
        .iter()
        .map(|a| crate::checkpoint::parse_anchor(a).map_err(|e| anyhow::anyhow!("--anchor: {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut homes = Vec::new();
    let mut members = Vec::new();
    let mut peers = Vec::new();
    let mut rpc = Vec::new();
    if !args.hosts.is_empty() && args.hosts.len() != args.validators {
        anyhow::bail!(
            "--hosts names {} hosts for {} validators",
            args.hosts.len(),
            args.validators
        );
    }
    for i in 0..args.validators {
        let host = args.hosts.get(i).unwrap_or(&args.host);
        host.parse::<std::net::IpAddr>()
            .map_err(|_| anyhow::anyhow!("host {host:?} is not an IP address"))?;
        let home = args.out.join(format!("node{i}"));
        if home.join("keys").exists() {
            anyhow::bail!("{} already has keys; choose an empty --out", home.display());
        }
        let listen = super::Listen {
            rpc: Some(format!("{host}:{}", port(args, i, 1)?).parse()?),
            metrics: Some(format!("{host}:{}", port(args, i, 2)?).parse()?),
            p2p: Some(format!("/ip4/{host}/tcp/{}", port(args, i, 0)?)),
        };
        rpc.push(format!("http://{host}:{}", port(args, i, 1)?));
        let keys = super::init_home(&home, listen)?;
        let peer = conclave_network::peer_id_of(&keys.member_id())?;
        peers.push(format!("/ip4/{host}/tcp/{}/p2p/{peer}", port(args, i, 0)?));
        members.push(MemberInfo {
            id: keys.member_id(),
            bls_public_key: keys.bls_public_key().to_vec(),
            bls_pop: keys.bls_pop().to_vec(),
        });
        homes.push(home);
    }
    members.sort_by_key(|m| m.id);
    let mut salt = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let genesis = Genesis {
        app_hash: Hash32(conclave_runtime::app_hash(wasm)),
        members,
        created_at_ms: crate::node::now_ms(),
        salt: Hash32(salt),
        anchors,
        checkpoint_interval: args.checkpoint_interval,
    };
    let context = genesis.context_id();
    crate::checkpoint::params(context, &genesis)
        .map_err(|e| anyhow::anyhow!("checkpoint parameters: {e}"))?;
    // The context key of epoch 0, sealed to each member: the file holds
    // nothing a non-member could read traffic with.
    let key = crate::seal::ContextKey::generate(0);
    let sealed_keys = genesis
        .members
        .iter()
        .map(|m| {
            crate::seal::seal_key_to(&m.id, &context, &key)
                .map(|k| (m.id, crate::node::SealedKeyHex(k)))
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("sealing the context key: {e}"))?;
    let json = serde_json::to_string_pretty(&crate::node::GenesisFile {
        genesis,
        sealed_keys,
    })?;
    for (i, home) in homes.iter().enumerate() {
        let mut config = Config::load(home)?;
        config.node.worker_threads = args.worker_threads as usize;
        config.p2p.persistent_peers = peers
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| p.clone())
            .collect();
        config.save(home)?;
        write_genesis(home, &context.to_hex(), &json)?;
    }
    Ok(Testnet {
        homes,
        context,
        rpc,
    })
}

fn write_genesis(home: &Path, name: &str, json: &str) -> anyhow::Result<()> {
    let dir = Config::genesis_dir(home);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("{name}.json")), json)?;
    Ok(())
}
