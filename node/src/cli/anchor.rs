//! `conclave anchor deploy|status`, `conclave relay` and `conclave verify`:
//! the CLI side of anchoring. The chain clients and the relayer loop are in
//! `conclave-bridge`; the member's node is read over its authenticated
//! JSON-RPC ([`NodeSource`], `node_source.rs`); this file deploys, signs the
//! context tx that makes a freshly deployed proxy an anchor, and reports.

use std::path::{Path, PathBuf};
use std::time::Duration;

use alloy::primitives::Address;
use anyhow::{bail, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use conclave_bridge::evm::{read_key_file, EvmChain, EvmConfig, ProxyMembers};
use conclave_bridge::near;
use conclave_bridge::source::Members;
use conclave_checkpoint::Domain;
use conclave_consensus::{ContextId, Tx};
use jsonrpsee::http_client::HttpClient;
use serde::Deserialize;

use super::node_source::members_of;
pub use super::node_source::NodeSource;
use crate::anchors::{AnchorArgs, METHOD_ANCHOR};
use crate::keys::NodeKeys;
use crate::rpc::types::StateValue;
use crate::rpc::{ConclaveApiClient, MembersApiClient};
use crate::store::AnchorDomain;

/// The chains a proxy can live on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Chain {
    Evm,
    Near,
}

/// How to reach a chain and pay on it (`--chain-id`, `--max-fee-gwei` and
/// `--confirmations` are Ethereum's).
#[derive(Args, Debug, Clone)]
pub struct EvmArgs {
    /// JSON-RPC URL of the chain's node.
    #[arg(long = "rpc")]
    pub rpc: String,
    /// File holding the sending account's key: a private key in hex
    /// (Ethereum), or a NEAR key file (`{"account_id", "public_key",
    /// "secret_key"}`).
    #[arg(long)]
    pub key_file: PathBuf,
    /// The chain id to expect; anything else is refused before sending.
    #[arg(long)]
    pub chain_id: Option<u64>,
    /// Highest fee per gas to pay, in gwei.
    #[arg(long)]
    pub max_fee_gwei: Option<u64>,
    /// Blocks on top of a transaction before it counts as done.
    #[arg(long, default_value_t = 1)]
    pub confirmations: u64,
}

impl EvmArgs {
    pub fn config(&self) -> anyhow::Result<EvmConfig> {
        let mut c = EvmConfig::new(self.rpc.clone(), read_key_file(&self.key_file)?);
        c.chain_id = self.chain_id;
        c.max_fee_per_gas = self.max_fee_gwei.map(|g| u128::from(g) * 1_000_000_000);
        c.confirmations = self.confirmations;
        Ok(c)
    }
}

#[derive(Subcommand, Debug)]
pub enum AnchorCommand {
    /// Deploy a proxy for a context with its current member set and make
    /// the context anchor to it (a context tx; every member signs its
    /// checkpoints for the proxy from two heights after it commits).
    Deploy {
        #[arg(long)]
        context: String,
        #[arg(long, value_enum)]
        chain: Chain,
        #[command(flatten)]
        evm: EvmArgs,
        /// Also send this much (in wei) from the deploying account to the
        /// new proxy: the treasury its actions pay from (Ethereum; a NEAR
        /// proxy's treasury is its own account's balance).
        #[arg(long)]
        fund_wei: Option<u128>,
        /// NEAR: the account the proxy is deployed to; the key file must
        /// hold a full-access key of it.
        #[arg(long)]
        account: Option<String>,
        /// NEAR: the network to expect (`mainnet`, `testnet`, ...); anything
        /// else is refused before sending.
        #[arg(long)]
        network: Option<String>,
    },
    /// Per chain: the anchored height, the lag, each action's state.
    Status {
        #[arg(long)]
        context: String,
        #[arg(long, value_enum)]
        chain: Chain,
        /// The proxy's address (Ethereum) or account (NEAR).
        #[arg(long)]
        proxy: String,
        /// JSON-RPC URL of the chain's node.
        #[arg(long = "rpc")]
        rpc: String,
        /// NEAR: the network to expect.
        #[arg(long)]
        network: Option<String>,
    },
}

/// `conclave verify`: a light client's check of a member's proof.
#[derive(Args, Debug)]
pub struct VerifyArgs {
    /// JSON-RPC URL of the chain's node.
    #[arg(long = "rpc")]
    pub rpc: String,
    /// The proxy's address.
    #[arg(long)]
    pub proxy: String,
    /// A `state_get` answer (JSON) a member handed over.
    #[arg(long)]
    pub proof: PathBuf,
}

pub(super) fn parse_address(s: &str) -> anyhow::Result<Address> {
    s.parse::<Address>()
        .map_err(|e| anyhow::anyhow!("--proxy {s}: not an EVM address ({e})"))
}

/// What `anchor deploy` deploys for: the context's newest member set.
struct Deployment {
    keys: Members,
    members_hash: [u8; 32],
}

/// The set that will be in force: the newest one the node knows, with the
/// hash the proxy will hold and the anchor tx names (members in id order,
/// the default quorum, as the node's checkpoints use).
async fn deployment(node: &HttpClient, context: ContextId) -> anyhow::Result<Deployment> {
    let view = node
        .context_members(context, None)
        .await
        .context("reading the context's members")?;
    let set = view.sets.last().context("the node reports no member set")?;
    let keys = members_of(set).map_err(|e| anyhow::anyhow!(e))?;
    let members_hash = keys.hash()?;
    Ok(Deployment { keys, members_hash })
}

/// `conclave anchor deploy`: deploys on `chain` and anchors the context to
/// the new proxy; returns its address (Ethereum) or account (NEAR).
pub async fn deploy(
    node: &HttpClient,
    home: &Path,
    context: ContextId,
    chain: Chain,
    args: &EvmArgs,
    fund_wei: Option<u128>,
    near: &NearTarget,
) -> anyhow::Result<String> {
    match chain {
        Chain::Evm => {
            if near.account.is_some() || near.network.is_some() {
                bail!("--account and --network are for --chain near");
            }
            Ok(deploy_evm(node, home, context, args, fund_wei)
                .await?
                .to_string())
        }
        Chain::Near => {
            if fund_wei.is_some() || args.chain_id.is_some() || args.max_fee_gwei.is_some() {
                bail!(
                    "--fund-wei, --chain-id and --max-fee-gwei are for --chain evm \
                     (a NEAR proxy's treasury is its own account; --network names the chain)"
                );
            }
            deploy_near(node, home, context, args, near).await
        }
    }
}

/// NEAR's part of `anchor deploy`'s arguments.
#[derive(Clone, Debug, Default)]
pub struct NearTarget {
    pub account: Option<String>,
    pub network: Option<String>,
}

/// Deploys a `ConclaveProxy` on an EVM chain and anchors the context to it.
pub async fn deploy_evm(
    node: &HttpClient,
    home: &Path,
    context: ContextId,
    evm: &EvmArgs,
    fund_wei: Option<u128>,
) -> anyhow::Result<Address> {
    let d = deployment(node, context).await?;
    let members = ProxyMembers::of(&d.keys);
    let chain = EvmChain::connect(evm.config()?).await?;
    eprintln!(
        "deploying a proxy for {context} on chain {} from {} ({} members, epoch {})",
        chain.chain_id(),
        chain.account(),
        members.pks.len(),
        d.keys.epoch
    );
    let address = chain.deploy_proxy(context.0, &members).await?;
    eprintln!("proxy deployed at {address}; anchoring the context to it");
    if let Some(wei) = fund_wei.filter(|w| *w > 0) {
        let tx = chain.send_value(address, wei).await?;
        eprintln!("funded the proxy with {wei} wei ({tx})");
    }
    let domain = Domain::evm(chain.chain_id(), address.into_array());
    anchor_to(node, home, context, &domain, &d, &address.to_string()).await?;
    Ok(address)
}

/// Deploys the NEAR proxy's wasm to `--account` (signed with the key
/// file's key), initialises it with the context's member set, and anchors
/// the context to it.
pub async fn deploy_near(
    node: &HttpClient,
    home: &Path,
    context: ContextId,
    args: &EvmArgs,
    target: &NearTarget,
) -> anyhow::Result<String> {
    let account = target
        .account
        .as_deref()
        .context("--chain near needs --account: the account to deploy the proxy to")?;
    let account = near::parse_account(account)?;
    let key = near::read_key_file(&args.key_file)?;
    if key.account_id != account {
        bail!(
            "key file {} is for NEAR account {}, not {account}",
            args.key_file.display(),
            key.account_id
        );
    }
    let d = deployment(node, context).await?;
    let client = near::NearClient::connect(&args.rpc, target.network.as_deref()).await?;
    let sender = std::sync::Arc::new(near::NearAccount::open(client.clone(), key).await?);
    eprintln!(
        "deploying the NEAR proxy for {context} to {account} on {} ({} members, epoch {})",
        client.network(),
        d.keys.keys.len(),
        d.keys.epoch
    );
    let proxy = sender
        .deploy_proxy(near::PROXY_WASM, context.0, &d.keys.keys, d.keys.epoch)
        .await?;
    let domain = proxy.domain()?;
    // Apps name NEAR domains in hex (the dao app's `domain`).
    eprintln!(
        "proxy deployed at {account} (domain {}); anchoring the context to it",
        hex::encode(domain.encode())
    );
    anchor_to(node, home, context, &domain, &d, account.as_str()).await?;
    Ok(account.to_string())
}

/// Makes the context anchor to the proxy of `domain`: the context tx
/// `conclave.anchor`, signed with the home's member key; waits for it to
/// commit.
async fn anchor_to(
    node: &HttpClient,
    home: &Path,
    context: ContextId,
    domain: &Domain,
    d: &Deployment,
    proxy: &str,
) -> anyhow::Result<()> {
    let args = AnchorArgs {
        domain: AnchorDomain(domain.encode()),
        epoch: d.keys.epoch,
        members_hash: d.members_hash,
    };
    let keys = NodeKeys::load(home)?;
    let nonce = node.context_nonce(context, keys.member_id()).await?;
    let tx = Tx {
        context_id: context,
        sender: keys.member_id(),
        nonce,
        method: METHOD_ANCHOR.into(),
        args: borsh::to_vec(&args)?,
    }
    .sign(&keys.member);
    let hash = node.tx_submit(tx).await?.tx_hash;
    let status = super::connect::wait_for(node, hash, Duration::from_secs(60)).await?;
    if status.status != "committed" {
        bail!(
            "the proxy at {proxy} is deployed but the anchor tx {hash} {}: {}",
            status.status,
            status.error.unwrap_or_default()
        );
    }
    let active_from = status
        .output
        .as_deref()
        .and_then(|o| serde_json::from_str::<serde_json::Value>(o).ok())
        .and_then(|v| v["active_from"].as_u64())
        .unwrap_or_default();
    eprintln!("anchored: checkpoints from height {active_from} are signed for the proxy");
    Ok(())
}

/// `conclave anchor status`.
pub async fn status(
    source: NodeSource,
    chain: Chain,
    proxy: &str,
    rpc: &str,
    network: Option<&str>,
) -> anyhow::Result<()> {
    let s = match chain {
        Chain::Evm => {
            // Reading needs no funds; any key will do for the client.
            let mut cfg = EvmConfig::new(rpc, READ_ONLY_KEY);
            cfg.confirmations = 1;
            let chain = EvmChain::connect(cfg).await?;
            let proxy = chain.proxy(parse_address(proxy)?, source.context.0).await?;
            conclave_bridge::status::status(&proxy, &source).await?
        }
        Chain::Near => {
            // Views only: no key.
            let client = near::NearClient::connect(rpc, network).await?;
            let proxy =
                near::NearProxy::open(client, near::parse_account(proxy)?, source.context.0, None)
                    .await?;
            conclave_bridge::status::status(&proxy, &source).await?
        }
    };
    println!("{}", serde_json::to_string_pretty(&s)?);
    Ok(())
}

/// A well-formed key that never signs anything: views need an account.
const READ_ONLY_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000001";

/// `conclave verify`: checks a member's `state_get` answer against the
/// state root anchored on the proxy; prints the verdict and why.
pub async fn verify(args: &VerifyArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.proof)
        .with_context(|| format!("reading {}", args.proof.display()))?;
    let v: StateValue = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a state_get answer", args.proof.display()))?;
    let cfg = EvmConfig::new(args.rpc.clone(), READ_ONLY_KEY);
    let chain = EvmChain::connect(cfg).await?;
    let proxy = chain
        .proxy(parse_address(&args.proxy)?, v.context_id.0)
        .await?;
    match verdict(&proxy, &v).await? {
        Ok(why) => {
            println!("yes: {why}");
            Ok(())
        }
        Err(why) => bail!("no: {why}"),
    }
}

/// Whether `v` holds on the proxy: `Ok(why)` or `Err(why not)`.
pub async fn verdict(
    proxy: &conclave_bridge::evm::Proxy,
    v: &StateValue,
) -> anyhow::Result<Result<String, String>> {
    let value = match (&v.value, &v.value_hex) {
        (Some(s), _) => format!("{:?}", s),
        (None, Some(h)) => format!("0x{h}"),
        (None, None) => "absent".into(),
    };
    if let Err(e) = super::connect::check_state_proof(v) {
        return Ok(Err(format!(
            "the proof of key {:?} does not match state root {}: {e}",
            v.key, v.state_root
        )));
    }
    let latest = proxy.view().await?.latest;
    if v.height > latest {
        return Ok(Err(format!(
            "height {} is not anchored yet: the proxy's latest checkpoint is height {latest}",
            v.height
        )));
    }
    let (anchored, _) = proxy.roots_at(v.height).await?;
    if anchored == [0; 32] {
        return Ok(Err(format!(
            "the proxy holds no checkpoint at height {} (latest: {latest}); ask for a proof at an anchored height",
            v.height
        )));
    }
    if anchored != v.state_root.0 {
        return Ok(Err(format!(
            "state root {} at height {} is not the anchored root 0x{}",
            v.state_root,
            v.height,
            hex::encode(anchored)
        )));
    }
    Ok(Ok(format!(
        "key {:?} = {value} at height {}, under the state root the proxy anchored",
        v.key, v.height
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(key_file: PathBuf) -> EvmArgs {
        EvmArgs {
            rpc: "http://127.0.0.1:1".into(),
            key_file,
            chain_id: None,
            max_fee_gwei: None,
            confirmations: 1,
        }
    }

    /// The flags of one chain are refused with the other, and a NEAR
    /// deploy's account and key file are checked, before the node or the
    /// chain is asked anything (the node's URL answers nothing).
    #[tokio::test]
    async fn near_deploy_flags_are_checked_before_anything_is_asked() {
        let node = jsonrpsee::http_client::HttpClientBuilder::default()
            .build("http://127.0.0.1:1")
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path();
        let ctx = ContextId([1; 32]);
        let near = NearTarget {
            account: Some("proxy.testnet".into()),
            network: None,
        };
        let err = deploy(&node, home, ctx, Chain::Evm, &args("k".into()), None, &near)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("for --chain near"), "{err}");
        let mut evm_only = args("k".into());
        evm_only.chain_id = Some(1);
        let err = deploy(&node, home, ctx, Chain::Near, &evm_only, None, &near)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("for --chain evm"), "{err}");
        let err = deploy(
            &node,
            home,
            ctx,
            Chain::Near,
            &args("k".into()),
            None,
            &NearTarget::default(),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("needs --account"), "{err}");
        // A key file of another account.
        let key = dir.path().join("other.json");
        std::fs::write(
            &key,
            r#"{"account_id":"other.testnet","public_key":"ed25519:6DSjZ8mvsRZDvFqFxo8tCKePG96omXW7eVYVSySmDk8e","secret_key":"ed25519:3D4YudUahN1nawWogh8pAKSj92sUNMdbZGjn7kERKzYoTy8tnFQuwoGUC51DowKqorvkr2pytJSnwuSbsNVfqygr"}"#,
        )
        .unwrap();
        let err = deploy(&node, home, ctx, Chain::Near, &args(key), None, &near)
            .await
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("is for NEAR account other.testnet"),
            "{err:#}"
        );
    }
}
