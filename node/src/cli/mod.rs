//! The `conclave` command: node administration (`init`, `start`, `keys`,
//! `devnet`, `bench`) and a JSON-RPC client for everything else.

mod anchor;
mod bench;
mod bench_anchor;
mod bench_catchup;
mod bench_load;
mod bench_report;
mod bench_validators;
mod checkpoints;
mod client;
mod connect;
mod devnet;
mod evidence;
mod node_source;
mod relay;
mod repair;
pub mod testnet;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::Config;
use crate::keys::NodeKeys;

#[derive(Parser, Debug)]
#[command(
    name = "conclave",
    version,
    about = "Private, blockchain-anchored sequencers"
)]
pub struct Cli {
    /// Node home directory (config, keys, data).
    #[arg(long, global = true, env = "CONCLAVE_HOME")]
    pub home: Option<PathBuf>,
    /// The node's JSON-RPC endpoint (default: the home's `[rpc] listen`).
    /// (`--rpc` in `anchor`, `relay` and `verify` is the chain's.)
    #[arg(long = "node", global = true, env = "CONCLAVE_NODE")]
    pub node: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create the home directory: config.toml and member keys.
    Init {
        /// RPC listen address to write into the config.
        #[arg(long)]
        rpc_listen: Option<std::net::SocketAddr>,
        /// Metrics listen address to write into the config.
        #[arg(long)]
        metrics_listen: Option<std::net::SocketAddr>,
        /// libp2p listen multiaddr to write into the config.
        #[arg(long)]
        p2p_listen: Option<String>,
    },
    /// Run the node until interrupted.
    Start {
        /// Peers to keep connected to, besides the config's
        /// `[p2p] persistent_peers`: multiaddrs with `/p2p/<peer id>`
        /// (repeatable, or comma-separated in CONCLAVE_PEERS).
        #[arg(long = "peer", env = "CONCLAVE_PEERS", value_delimiter = ',')]
        peers: Vec<String>,
        /// Sign even if recent commits hold this node's precommits that its
        /// sign guard did not record (another process signed with this key).
        /// Only after making sure no other process holds the key.
        #[arg(long)]
        skip_double_sign_check: bool,
    },
    /// Show this node's keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Node status over RPC.
    Status,
    /// Exits 0 if the node answers `node_health` with ok, 1 otherwise
    /// (container health checks).
    Health,
    /// RPC credentials.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Contexts: create, list, inspect.
    Context {
        #[command(subcommand)]
        command: ContextCommand,
    },
    /// Transactions: submit, status.
    Tx {
        #[command(subcommand)]
        command: TxCommand,
    },
    /// Read an app storage key, with its Merkle proof checked.
    Query(QueryArgs),
    /// Call an app method read-only.
    View {
        #[arg(long)]
        context: String,
        #[arg(long)]
        method: String,
        #[arg(long, default_value = "")]
        args: String,
    },
    /// Show a committed block.
    Block {
        #[arg(long)]
        context: String,
        #[arg(long)]
        height: Option<u64>,
    },
    /// Checkpoints of a context: list, show (with their verification).
    Checkpoint {
        #[command(subcommand)]
        command: CheckpointCommand,
    },
    /// Check the node's files and repair what is damaged (the node must be
    /// stopped): the database, the WALs, the sign guards. Backs up what it
    /// changes under home/repair-backups/; exits 1 if a context cannot be
    /// made whole here.
    Repair {
        /// Move the database and the WALs aside (into the backup), keeping
        /// the sign guards: the node starts empty and fetches its contexts
        /// again from the other members.
        #[arg(long)]
        reset: bool,
    },
    /// Evidence of equivocation this node kept for a context.
    Evidence {
        #[command(subcommand)]
        command: EvidenceCommand,
    },
    /// On-chain actions of a context, with their checkpoints and proofs.
    Actions {
        #[command(subcommand)]
        command: ActionsCommand,
    },
    /// Proxy contracts of a context: deploy one, show what it holds.
    Anchor {
        #[command(subcommand)]
        command: anchor::AnchorCommand,
    },
    /// Carry a context's checkpoints and actions to its proxy until
    /// interrupted.
    Relay(relay::RelayArgs),
    /// Check a value and its proof (a member's `state_get` answer) against
    /// the state root anchored on a proxy; needs no node and no membership.
    Verify(anchor::VerifyArgs),
    /// Start a local network with a `kv` context on embedded defaults.
    Devnet(devnet::DevnetArgs),
    /// Measure finalized tx/s and submit-to-commit latency; prints JSON.
    Bench(bench::BenchArgs),
    /// Write one home per validator (keys, config with peers, a shared
    /// `kv` context genesis) for a network on one or several machines.
    Testnet(testnet::TestnetArgs),
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Member id (ed25519 public key) and BLS public key with its PoP.
    Show,
}

#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Log in with this home's member key and print a member token for the
    /// node, for `Authorization: Bearer <token>` (e.g. with curl).
    Token {
        /// Seconds the token is good for (at most a day).
        #[arg(long, default_value_t = 3600)]
        expires_in: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum ContextCommand {
    /// Create a context running a bundled app (`--app kv`) or a wasm file.
    Create {
        #[arg(long, conflicts_with = "app_file")]
        app: Option<String>,
        #[arg(long)]
        app_file: Option<PathBuf>,
        /// A proxy the context anchors to: `evm:<chain id>:<0x address>` or
        /// `near:<network>:<account>` (repeatable).
        #[arg(long = "anchor")]
        anchors: Vec<String>,
        /// Checkpoint interval in blocks (default: the node's config).
        #[arg(long)]
        checkpoint_interval: Option<u64>,
        /// The other members' ids (`conclave keys show` on each node); their
        /// nodes must be reachable (static peers). This node is a member.
        #[arg(long, num_args = 1..)]
        members: Vec<String>,
    },
    List,
    Info {
        #[arg(long)]
        context: String,
    },
    /// Propose a new member (a context tx; it validates from two heights
    /// after the tx commits). Its node must be reachable.
    Invite {
        #[arg(long)]
        context: String,
        /// The new member's id (`conclave keys show` on its node).
        #[arg(long)]
        member: String,
    },
    /// Join a context this node's member was invited into, through a
    /// member's node: its member id or multiaddr with `/p2p/<peer id>`.
    Join {
        #[arg(long)]
        context: String,
        #[arg(long)]
        via: String,
    },
    /// Propose removing a member; the others get a new context key.
    Remove {
        #[arg(long)]
        context: String,
        #[arg(long)]
        member: String,
    },
    /// This node's member leaves the context.
    Leave {
        #[arg(long)]
        context: String,
    },
    /// The member sets with keys and activation heights (JSON).
    Members {
        #[arg(long)]
        context: String,
        /// As of this committed height (default: the newest).
        #[arg(long)]
        height: Option<u64>,
    },
}

#[derive(Subcommand, Debug)]
pub enum EvidenceCommand {
    /// One line per equivocation: who, where, what, and whether both
    /// signatures check (checked again here against the node's answer).
    List {
        #[arg(long)]
        context: String,
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Subcommand, Debug)]
pub enum CheckpointCommand {
    /// One line per completed checkpoint.
    List {
        #[arg(long)]
        context: String,
        /// First height.
        #[arg(long)]
        from: Option<u64>,
        #[arg(long)]
        limit: Option<usize>,
    },
    /// A checkpoint's payload per domain, signers, aggregate signature and
    /// whether it verifies against the member set (JSON).
    Show {
        #[arg(long)]
        context: String,
        #[arg(long)]
        height: u64,
    },
}

#[derive(Subcommand, Debug)]
pub enum ActionsCommand {
    /// Each action with the checkpoint that commits it and its Merkle
    /// inclusion proof (checked here against the checkpoint's actions root).
    List {
        #[arg(long)]
        context: String,
        /// First height.
        #[arg(long)]
        from: Option<u64>,
        #[arg(long)]
        limit: Option<usize>,
    },
}

#[derive(Subcommand, Debug)]
pub enum TxCommand {
    /// Sign a tx with this node's member key and submit it.
    Submit(SubmitArgs),
    Status {
        #[arg(long)]
        hash: String,
    },
}

#[derive(Args, Debug)]
pub struct SubmitArgs {
    #[arg(long)]
    pub context: String,
    #[arg(long)]
    pub method: String,
    /// Arguments as passed to the app (the kv app takes JSON).
    #[arg(long, default_value = "")]
    pub args: String,
    /// Nonce to use (default: the next one, asked from the node).
    #[arg(long)]
    pub nonce: Option<u64>,
    /// Wait until the tx commits and print its result; a full pool's
    /// refusal is then tried again when the node advises, within
    /// `--timeout-secs`.
    #[arg(long)]
    pub wait: bool,
    #[arg(long, default_value_t = 30)]
    pub timeout_secs: u64,
}

#[derive(Args, Debug)]
pub struct QueryArgs {
    #[arg(long)]
    pub context: String,
    #[arg(long)]
    pub key: String,
    #[arg(long)]
    pub height: Option<u64>,
}

pub fn default_home() -> PathBuf {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."))
        .join(".conclave")
}

impl Cli {
    pub fn home(&self) -> PathBuf {
        self.home.clone().unwrap_or_else(default_home)
    }

    pub fn rpc_url(&self) -> String {
        if let Some(url) = &self.node {
            return url.clone();
        }
        let listen = Config::load(&self.home())
            .map(|c| c.rpc.listen)
            .unwrap_or_else(|_| Config::default().rpc.listen);
        format!("http://{listen}")
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(matches!(
        cli.command,
        Command::Start { .. } | Command::Devnet(_) | Command::Relay(_)
    ));
    let rt = match runtime(&cli) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The async runtime: for `start`, with the home's `[node]
/// worker_threads` (a config that does not load is reported by `start`
/// itself); one worker per CPU otherwise.
fn runtime(cli: &Cli) -> anyhow::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if matches!(cli.command, Command::Start { .. }) {
        if let Ok(config) = Config::load(&cli.home()) {
            if let Some(n) = config.node.workers()? {
                builder.worker_threads(n);
            }
        }
    }
    Ok(builder.build()?)
}

fn init_tracing(verbose: bool) {
    // Malachite logs each vote, round and timeout at info: ~16 lines a
    // height, which at 50 heights a second costs a validator about a
    // percent of a core to format and write. The node logs each commit
    // itself and each step at debug; `RUST_LOG` still turns them back on.
    let default = if verbose {
        "info,arc_malachitebft=warn"
    } else {
        "warn"
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

/// Listen addresses `conclave init` may set.
#[derive(Default)]
pub struct Listen {
    pub rpc: Option<std::net::SocketAddr>,
    pub metrics: Option<std::net::SocketAddr>,
    pub p2p: Option<String>,
}

/// `conclave init`: writes config and keys unless present.
pub fn init_home(home: &std::path::Path, listen: Listen) -> anyhow::Result<NodeKeys> {
    std::fs::create_dir_all(home)?;
    let mut config = Config::load(home)?;
    let changed = listen.rpc.is_some() || listen.metrics.is_some() || listen.p2p.is_some();
    if let Some(a) = listen.rpc {
        config.rpc.listen = a;
    }
    if let Some(a) = listen.metrics {
        config.metrics.listen = a;
    }
    if let Some(a) = listen.p2p {
        a.parse::<conclave_network::Multiaddr>()
            .map_err(|e| anyhow::anyhow!("--p2p-listen {a:?}: {e}"))?;
        config.p2p.listen = a;
    }
    if !Config::path(home).exists() || changed {
        config.save(home)?;
    }
    Ok(NodeKeys::generate(home)?)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let home = cli.home();
    match &cli.command {
        Command::Init {
            rpc_listen,
            metrics_listen,
            p2p_listen,
        } => {
            let listen = Listen {
                rpc: *rpc_listen,
                metrics: *metrics_listen,
                p2p: p2p_listen.clone(),
            };
            let keys = init_home(&home, listen)?;
            println!("home      {}", home.display());
            println!("member_id {}", keys.member_id());
            // The path only: the token itself is never printed or logged.
            println!(
                "admin     {} (X-Conclave-Admin)",
                crate::keys::RpcSecrets::admin_token_path(&home).display()
            );
            Ok(())
        }
        Command::Start {
            peers,
            skip_double_sign_check,
        } => {
            let mut config = Config::load(&home)?;
            if *skip_double_sign_check {
                config.consensus.double_sign_check_height = 0;
            }
            for p in peers.iter().map(|p| p.trim()).filter(|p| !p.is_empty()) {
                if !config.p2p.persistent_peers.iter().any(|q| q == p) {
                    config.p2p.persistent_peers.push(p.to_string());
                }
            }
            let (_node, _bound) = crate::launch::launch(&home, config).await?;
            tokio::signal::ctrl_c().await?;
            tracing::info!("shutting down");
            Ok(())
        }
        Command::Repair { reset } => {
            let options = crate::repair::RepairOptions { reset: *reset };
            let report = crate::repair::repair(&home, options)?;
            repair::print(&report, &home);
            if !report.is_clean() {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Keys {
            command: KeysCommand::Show,
        } => {
            let keys = NodeKeys::load(&home)?;
            println!("member_id      {}", keys.member_id());
            println!("bls_public_key {}", hex::encode(keys.bls_public_key()));
            println!("bls_pop        {}", hex::encode(keys.bls_pop()));
            // What the other members put in their persistent peers:
            // /ip4/<this machine>/tcp/<p2p port>/p2p/<peer id>.
            println!(
                "peer_id        {}",
                conclave_network::peer_id_of(&keys.member_id())?
            );
            Ok(())
        }
        Command::Devnet(args) => devnet::run(&cli, args).await,
        Command::Bench(args) => match (args.anchor_payouts, args.catch_up_blocks) {
            (Some(n), _) => bench_anchor::run(n).await,
            (None, Some(n)) => bench_catchup::run(n, args.runs).await,
            (None, None) => bench::run(args).await,
        },
        Command::Testnet(args) => testnet::run(args),
        Command::Verify(args) => anchor::verify(args).await,
        Command::Relay(args) => relay::run(&cli.rpc_url(), &home, args).await,
        _ => client::run(&cli).await,
    }
}
