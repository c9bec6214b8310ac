//! `conclave relay`: one relayer per (context, proxy), from flags or from a
//! `relay.toml` naming several, all against this home's node and serving
//! one metrics endpoint.
//!
//! ```toml
//! poll_ms = 500              # optional, as the flags
//! max_action_attempts = 5
//! metrics_listen = "127.0.0.1:9464"
//!
//! [[relay]]
//! context = "<context id>"
//! chain = "evm"
//! proxy = "0x…"
//! rpc = "http://127.0.0.1:8545"
//! key_file = "relayer.key"   # relative to this file
//! chain_id = 31337           # optional: refuse any other chain
//! max_fee_gwei = 50          # optional fee cap
//! confirmations = 1          # optional
//!
//! [[relay]]
//! context = "<context id>"
//! chain = "near"
//! proxy = "proxy.example.testnet"  # the proxy's account
//! rpc = "https://rpc.testnet.near.org"
//! key_file = "relayer.json"  # a NEAR key file of the paying account
//! network = "testnet"        # optional: refuse any other network
//! ```
//!
//! `chain_id`, `max_fee_gwei` and `confirmations` are Ethereum's,
//! `network` is NEAR's (NEAR transactions are waited for until final).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use conclave_bridge::evm::{read_key_file, EvmChain, EvmConfig};
use conclave_bridge::near;
use conclave_bridge::relay::{EvmRelay, NearRelay, RelayOptions};
use conclave_consensus::ContextId;
use serde::Deserialize;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::rpc::ConclaveApiClient;

use super::anchor::{parse_address, Chain, NodeSource};

/// Relays one process runs at most.
const MAX_RELAYS: usize = 64;
/// A checkpoint subscription's member token lasts this long; the
/// subscription then ends and is made again with a fresh token.
const RELAY_SUBSCRIPTION_TTL: Duration = Duration::from_secs(3600);

/// `conclave relay`.
#[derive(Args, Debug)]
pub struct RelayArgs {
    /// A relay.toml naming several contexts and proxies (instead of the
    /// per-relay flags below).
    #[arg(long, conflicts_with_all = ["context", "proxy", "rpc", "key_file"])]
    pub config: Option<PathBuf>,
    #[arg(long, required_unless_present = "config")]
    pub context: Option<String>,
    #[arg(long, value_enum, default_value = "evm")]
    pub chain: Chain,
    /// The proxy's address (Ethereum) or account (NEAR).
    #[arg(long, required_unless_present = "config")]
    pub proxy: Option<String>,
    /// JSON-RPC URL of the chain's node.
    #[arg(long, required_unless_present = "config")]
    pub rpc: Option<String>,
    /// File holding the sending account's key: a private key in hex
    /// (Ethereum), or a NEAR key file.
    #[arg(long, required_unless_present = "config")]
    pub key_file: Option<PathBuf>,
    /// NEAR: the network to expect (`mainnet`, `testnet`, ...).
    #[arg(long)]
    pub network: Option<String>,
    /// The chain id to expect; anything else is refused before sending.
    #[arg(long)]
    pub chain_id: Option<u64>,
    /// Highest fee per gas to pay, in gwei.
    #[arg(long)]
    pub max_fee_gwei: Option<u64>,
    /// Blocks on top of a transaction before it counts as done.
    #[arg(long, default_value_t = 1)]
    pub confirmations: u64,
    /// Milliseconds between passes.
    #[arg(long)]
    pub poll_ms: Option<u64>,
    /// Passes that retry a failing action before it is reported and left.
    #[arg(long)]
    pub max_action_attempts: Option<u32>,
    /// Where to serve the relayers' Prometheus metrics (`/metrics`).
    #[arg(long)]
    pub metrics_listen: Option<std::net::SocketAddr>,
}

/// A relay.toml.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayFile {
    pub poll_ms: Option<u64>,
    pub max_action_attempts: Option<u32>,
    pub metrics_listen: Option<std::net::SocketAddr>,
    pub relay: Vec<RelayEntry>,
}

/// One context and proxy to relay to.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayEntry {
    pub context: String,
    pub chain: Chain,
    pub proxy: String,
    pub rpc: String,
    pub key_file: PathBuf,
    pub chain_id: Option<u64>,
    pub max_fee_gwei: Option<u64>,
    #[serde(default = "one")]
    pub confirmations: u64,
    /// NEAR: the network to expect.
    pub network: Option<String>,
}

fn one() -> u64 {
    1
}

impl RelayFile {
    /// Reads and checks a relay.toml; key files are relative to it.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let mut file: Self = toml::from_str(&text)
            .with_context(|| format!("{} is not a relay file", path.display()))?;
        if file.relay.is_empty() {
            bail!("{} names no [[relay]]", path.display());
        }
        if file.relay.len() > MAX_RELAYS {
            bail!("{} names more than {MAX_RELAYS} relays", path.display());
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        for r in &mut file.relay {
            if r.key_file.is_relative() {
                r.key_file = dir.join(&r.key_file);
            }
        }
        Ok(file)
    }
}

impl RelayArgs {
    /// The relays and options these arguments name.
    fn plan(
        &self,
    ) -> anyhow::Result<(Vec<RelayEntry>, RelayOptions, Option<std::net::SocketAddr>)> {
        let (entries, poll, attempts, metrics) = match &self.config {
            Some(path) => {
                let f = RelayFile::load(path)?;
                (f.relay, f.poll_ms, f.max_action_attempts, f.metrics_listen)
            }
            None => {
                let missing = || {
                    anyhow::anyhow!(
                        "give --config FILE, or --context, --proxy, --rpc and --key-file"
                    )
                };
                let entry = RelayEntry {
                    context: self.context.clone().ok_or_else(missing)?,
                    chain: self.chain,
                    proxy: self.proxy.clone().ok_or_else(missing)?,
                    rpc: self.rpc.clone().ok_or_else(missing)?,
                    key_file: self.key_file.clone().ok_or_else(missing)?,
                    chain_id: self.chain_id,
                    max_fee_gwei: self.max_fee_gwei,
                    confirmations: self.confirmations,
                    network: self.network.clone(),
                };
                (vec![entry], None, None, None)
            }
        };
        let defaults = RelayOptions::default();
        let opts = RelayOptions {
            poll: self
                .poll_ms
                .or(poll)
                .map_or(defaults.poll, |ms| Duration::from_millis(ms.max(10))),
            max_action_attempts: self
                .max_action_attempts
                .or(attempts)
                .unwrap_or(defaults.max_action_attempts)
                .max(1),
            ..defaults
        };
        Ok((entries, opts, self.metrics_listen.or(metrics)))
    }
}

/// `conclave relay`: checks every relay (node, chain, funds, proxy) before
/// any starts, then runs them all until interrupted.
pub async fn run(node_url: &str, home: &Path, args: &RelayArgs) -> anyhow::Result<()> {
    let (entries, opts, metrics_listen) = args.plan()?;
    let metrics = conclave_bridge::metrics::Metrics::new();
    // Every relay is checked (node, chain, funds, proxy) before any runs.
    let mut relays: Vec<Relayer> = Vec::with_capacity(entries.len());
    for e in &entries {
        e.check()?;
        let context = super::connect::parse_context(&e.context)?;
        let source = NodeSource::connect(node_url, home, context).await?;
        let relayer = match e.chain {
            Chain::Evm => Relayer::Evm(Box::new(
                evm_relay(e, source, context, &metrics, &opts).await?,
            )),
            Chain::Near => Relayer::Near(Box::new(
                near_relay(e, source, context, &metrics, &opts).await?,
            )),
        };
        let wake = Arc::new(Notify::new());
        tokio::spawn(follow_checkpoints(
            node_url.to_string(),
            home.to_path_buf(),
            context,
            wake.clone(),
        ));
        relays.push(relayer.woken_by(wake));
    }
    if let Some(addr) = metrics_listen {
        let listener = crate::metrics::bind(addr)
            .await
            .with_context(|| format!("binding the relay metrics on {addr}"))?;
        let bound = listener.local_addr()?;
        let m = metrics.clone();
        tokio::spawn(crate::metrics::serve_with(move || m.render(), listener));
        eprintln!("relay metrics on http://{bound}/metrics");
    }
    let runs = relays.iter_mut().map(|r| r.run());
    futures::future::join_all(runs).await;
    Ok(())
}

/// One relay of a `conclave relay` process, on its chain.
enum Relayer {
    Evm(Box<EvmRelay<NodeSource>>),
    Near(Box<NearRelay<NodeSource>>),
}

impl Relayer {
    fn woken_by(self, wake: Arc<Notify>) -> Self {
        match self {
            Relayer::Evm(r) => Relayer::Evm(Box::new(r.woken_by(wake))),
            Relayer::Near(r) => Relayer::Near(Box::new(r.woken_by(wake))),
        }
    }

    /// Runs until Ctrl-C.
    async fn run(&mut self) {
        let stop = async {
            let _ = tokio::signal::ctrl_c().await;
        };
        match self {
            Relayer::Evm(r) => r.run(stop).await,
            Relayer::Near(r) => r.run(stop).await,
        }
    }
}

impl RelayEntry {
    /// Refuses options of the other chain.
    fn check(&self) -> anyhow::Result<()> {
        match self.chain {
            Chain::Evm if self.network.is_some() => {
                bail!("relay of {}: network is for chain near (chain_id names an EVM chain)", self.context)
            }
            Chain::Near if self.chain_id.is_some() || self.max_fee_gwei.is_some() => bail!(
                "relay of {}: chain_id and max_fee_gwei are for chain evm (network names a NEAR chain)",
                self.context
            ),
            _ => Ok(()),
        }
    }
}

/// An Ethereum relay, checked: chain id, funds, the proxy's context.
async fn evm_relay(
    e: &RelayEntry,
    source: NodeSource,
    context: ContextId,
    metrics: &conclave_bridge::metrics::Metrics,
    opts: &RelayOptions,
) -> anyhow::Result<EvmRelay<NodeSource>> {
    let mut config = EvmConfig::new(e.rpc.clone(), read_key_file(&e.key_file)?);
    config.chain_id = e.chain_id;
    config.max_fee_per_gas = e.max_fee_gwei.map(|g| u128::from(g) * 1_000_000_000);
    config.confirmations = e.confirmations;
    let chain = EvmChain::connect(config).await?;
    chain.ensure_funded().await?;
    let proxy = chain.proxy(parse_address(&e.proxy)?, context.0).await?;
    // Reading the node once up front: an unreachable node fails here.
    conclave_bridge::source::Source::tip(&source).await?;
    eprintln!(
        "relaying {context} to {} on chain {} as {}",
        proxy.address(),
        chain.chain_id(),
        chain.account()
    );
    Ok(
        EvmRelay::new(source, proxy, context.0, metrics.clone(), opts.clone())?
            .on_checkpoint_posted(|| crate::failpoint::hit("relay_after_checkpoint")),
    )
}

/// A NEAR relay, checked: network, the paying account and its key, funds,
/// the proxy's context.
async fn near_relay(
    e: &RelayEntry,
    source: NodeSource,
    context: ContextId,
    metrics: &conclave_bridge::metrics::Metrics,
    opts: &RelayOptions,
) -> anyhow::Result<NearRelay<NodeSource>> {
    let key = near::read_key_file(&e.key_file)?;
    let client = near::NearClient::connect(&e.rpc, e.network.as_deref()).await?;
    let sender = Arc::new(near::NearAccount::open(client.clone(), key).await?);
    sender.ensure_balance(1).await?;
    let proxy = near::NearProxy::open(
        client.clone(),
        near::parse_account(&e.proxy)?,
        context.0,
        Some(sender.clone()),
    )
    .await?;
    conclave_bridge::source::Source::tip(&source).await?;
    eprintln!(
        "relaying {context} to {} on NEAR {} as {}",
        proxy.account_id(),
        client.network(),
        sender.id()
    );
    Ok(
        NearRelay::new(source, proxy, context.0, metrics.clone(), opts.clone())?
            .on_checkpoint_posted(|| crate::failpoint::hit("relay_after_checkpoint")),
    )
}

/// Follows the node's checkpoints of `context` over a WebSocket
/// subscription (`subscribe_checkpoints`, with this home's member token)
/// and wakes the relayer at each. If the node has no WebSocket endpoint or
/// the subscription ends (the token expired, the node restarted), the
/// relayer goes on polling and this tries again with backoff.
pub(super) async fn follow_checkpoints(
    url: String,
    home: PathBuf,
    context: ContextId,
    wake: Arc<Notify>,
) {
    let ws_url = match url.split_once("://") {
        Some(("https", rest)) => format!("wss://{rest}"),
        Some((_, rest)) => format!("ws://{rest}"),
        None => format!("ws://{url}"),
    };
    let mut failures = 0u32;
    loop {
        match subscribe(&url, &ws_url, &home, context).await {
            Ok((_client, mut sub)) => {
                failures = 0;
                info!(context = %context, url = %ws_url, "following the node's checkpoints");
                // Whatever completed while not subscribed.
                wake.notify_one();
                while let Some(event) = sub.next().await {
                    match event {
                        Ok(_) => wake.notify_one(),
                        Err(e) => {
                            warn!(context = %context, error = %e, "bad checkpoint event");
                            break;
                        }
                    }
                }
                warn!(context = %context, "the checkpoint subscription ended; polling until it is back");
            }
            Err(e) => {
                warn!(context = %context, url = %ws_url, error = %e,
                    "cannot subscribe to the node's checkpoints; polling until it can")
            }
        }
        failures = failures.saturating_add(1);
        tokio::time::sleep(conclave_bridge::relay::backoff(
            Duration::from_secs(1),
            Duration::from_secs(30),
            failures,
        ))
        .await;
    }
}

async fn subscribe(
    url: &str,
    ws_url: &str,
    home: &Path,
    context: ContextId,
) -> anyhow::Result<(
    jsonrpsee::ws_client::WsClient,
    jsonrpsee::core::client::Subscription<crate::context::CheckpointEvent>,
)> {
    let headers = super::connect::credentials(url, home, RELAY_SUBSCRIPTION_TTL).await?;
    let client = jsonrpsee::ws_client::WsClientBuilder::default()
        .set_headers(headers)
        .build(ws_url)
        .await?;
    let sub = client.subscribe_checkpoints(context).await?;
    Ok((client, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_files_parse_resolve_keys_and_refuse_mistakes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relay.toml");
        std::fs::write(
            &path,
            r#"
poll_ms = 200
metrics_listen = "127.0.0.1:9464"

[[relay]]
context = "aa"
chain = "evm"
proxy = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
rpc = "http://127.0.0.1:8545"
key_file = "relayer.key"

[[relay]]
context = "bb"
chain = "evm"
proxy = "0x5fbdb2315678afecb367f032d93f642f64180aa3"
rpc = "http://127.0.0.1:8546"
key_file = "/abs/other.key"
chain_id = 1
confirmations = 3

[[relay]]
context = "cc"
chain = "near"
proxy = "proxy.example.testnet"
rpc = "https://rpc.testnet.near.org"
key_file = "relayer.json"
network = "testnet"
"#,
        )
        .unwrap();
        let f = RelayFile::load(&path).unwrap();
        assert_eq!(f.relay.len(), 3);
        assert_eq!(f.relay[2].chain, Chain::Near);
        assert_eq!(f.relay[2].network.as_deref(), Some("testnet"));
        assert_eq!(f.relay[2].key_file, dir.path().join("relayer.json"));
        for r in &f.relay {
            r.check().unwrap();
        }
        // Options of the other chain are refused.
        let mut near_with_fee = f.relay[2].clone();
        near_with_fee.max_fee_gwei = Some(5);
        let err = near_with_fee.check().unwrap_err().to_string();
        assert!(err.contains("for chain evm"), "{err}");
        let mut evm_with_network = f.relay[0].clone();
        evm_with_network.network = Some("testnet".into());
        let err = evm_with_network.check().unwrap_err().to_string();
        assert!(err.contains("for chain near"), "{err}");
        assert_eq!(f.poll_ms, Some(200));
        assert_eq!(f.relay[0].key_file, dir.path().join("relayer.key"));
        assert_eq!(f.relay[0].confirmations, 1);
        assert_eq!(f.relay[1].key_file, PathBuf::from("/abs/other.key"));
        assert_eq!(
            (f.relay[1].chain_id, f.relay[1].confirmations),
            (Some(1), 3)
        );

        for (bad, why) in [
            ("relay = []", "names no"),
            ("[[relay]]\ncontext = \"aa\"", "not a relay file"),
            ("typo = 1\n[[relay]]\ncontext=\"a\"\nchain=\"evm\"\nproxy=\"p\"\nrpc=\"r\"\nkey_file=\"k\"", "not a relay file"),
            ("[[relay]]\ncontext=\"a\"\nchain=\"sol\"\nproxy=\"p\"\nrpc=\"r\"\nkey_file=\"k\"", "not a relay file"),
        ] {
            std::fs::write(&path, bad).unwrap();
            let err = format!("{:#}", RelayFile::load(&path).unwrap_err());
            assert!(err.contains(why), "{bad}: {err}");
        }
        assert!(RelayFile::load(&dir.path().join("missing.toml")).is_err());
    }
}
