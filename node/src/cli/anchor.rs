//! `conclave anchor deploy|status`, `conclave relay` and `conclave verify`:
//! the CLI side of anchoring. The chain clients and the relayer loop are in
//! `conclave-bridge`; this file reads the member's node over its
//! authenticated JSON-RPC ([`NodeSource`]) and signs the context tx that
//! makes a freshly deployed proxy an anchor.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use alloy::primitives::Address;
use anyhow::{bail, Context as _};
use clap::{Args, Subcommand, ValueEnum};
use conclave_bridge::evm::{read_key_file, EvmChain, EvmConfig, ProxyMembers};
use conclave_bridge::near;
use conclave_bridge::source::{Members, ProvenAction, SignedCheckpoint, Source};
use conclave_checkpoint::{actions::request, Action, CheckpointPayload, Domain, MerkleProof};
use conclave_consensus::{ContextId, Tx};
use jsonrpsee::http_client::HttpClient;
use serde::Deserialize;

use crate::anchors::{AnchorArgs, METHOD_ANCHOR};
use crate::keys::NodeKeys;
use crate::rpc::membership::MemberSetView;
use crate::rpc::types::StateValue;
use crate::rpc::{CheckpointApiClient, ConclaveApiClient, MembershipApiClient};
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

/// A member's node as the relayer's [`Source`]. A long-running relayer
/// logs in again before its member token expires.
pub struct NodeSource {
    client: RwLock<HttpClient>,
    context: ContextId,
    /// Where to log in again, and when the token runs out.
    login: Option<Login>,
}

struct Login {
    url: String,
    home: PathBuf,
    expires: Mutex<Instant>,
}

/// Items one RPC page holds.
const PAGE: usize = 500;
/// Pages one read scans at most.
const MAX_PAGES: usize = 64;
/// A relayer's member token lasts this long; it logs in again at half of it.
const RELAY_TOKEN_TTL: Duration = Duration::from_secs(3600);

impl NodeSource {
    /// Over a client that is already logged in (one-shot commands).
    pub fn new(client: HttpClient, context: ContextId) -> Self {
        Self {
            client: RwLock::new(client),
            context,
            login: None,
        }
    }

    /// Logs in with `home`'s member key at the node at `url`, and again
    /// whenever the token nears its expiry.
    pub async fn connect(url: &str, home: &Path, context: ContextId) -> anyhow::Result<Self> {
        let client = super::client::connect_with(
            url,
            super::client::credentials(url, home, RELAY_TOKEN_TTL).await?,
        )?;
        Ok(Self {
            client: RwLock::new(client),
            context,
            login: Some(Login {
                url: url.to_owned(),
                home: home.to_owned(),
                expires: Mutex::new(Instant::now() + RELAY_TOKEN_TTL),
            }),
        })
    }

    /// The client, with a fresh token if the old one is past half its life.
    async fn client(&self) -> conclave_bridge::Result<HttpClient> {
        if let Some(l) = &self.login {
            let stale = l
                .expires
                .lock()
                .map(|e| e.saturating_duration_since(Instant::now()) < RELAY_TOKEN_TTL / 2)
                .unwrap_or(true);
            if stale {
                let headers = super::client::credentials(&l.url, &l.home, RELAY_TOKEN_TTL)
                    .await
                    .map_err(node_err)?;
                let fresh = super::client::connect_with(&l.url, headers).map_err(node_err)?;
                if let Ok(mut c) = self.client.write() {
                    *c = fresh;
                }
                if let Ok(mut e) = l.expires.lock() {
                    *e = Instant::now() + RELAY_TOKEN_TTL;
                }
            }
        }
        self.client
            .read()
            .map(|c| c.clone())
            .map_err(|_| node_err("client lock poisoned"))
    }
}

/// A member set as the node shows it, as a proxy installs it.
fn members_of(set: &MemberSetView) -> Result<Members, String> {
    let mut keys = Vec::with_capacity(set.members.len());
    for m in &set.members {
        let public_key = conclave_checkpoint::PublicKey::from_compressed(&m.bls_public_key)
            .map_err(|e| format!("member {}: BLS key: {e}", m.id))?;
        let pop = conclave_checkpoint::ProofOfPossession::from_compressed(&m.bls_pop)
            .map_err(|e| format!("member {}: BLS PoP: {e}", m.id))?;
        keys.push(conclave_checkpoint::Registration { public_key, pop });
    }
    Ok(Members {
        epoch: set.epoch,
        keys,
    })
}

fn node_err(e: impl std::fmt::Display) -> conclave_bridge::Error {
    conclave_bridge::Error::Node(e.to_string())
}

fn malformed(e: impl std::fmt::Display) -> conclave_bridge::Error {
    conclave_bridge::Error::Malformed(e.to_string())
}

fn hex32(s: &str) -> Result<[u8; 32], conclave_bridge::Error> {
    hex::decode(s)
        .map_err(malformed)?
        .try_into()
        .map_err(|_| malformed(format!("{s} is not 32 bytes")))
}

impl Source for NodeSource {
    async fn checkpoints(
        &self,
        domain: &Domain,
        after: u64,
        limit: usize,
    ) -> conclave_bridge::Result<Vec<SignedCheckpoint>> {
        let want = hex::encode(domain.encode());
        let mut out = Vec::new();
        let mut from = after + 1;
        for _ in 0..MAX_PAGES {
            let page = self
                .client()
                .await?
                .checkpoint_list(self.context, Some(from), Some(PAGE))
                .await
                .map_err(node_err)?;
            let Some(last) = page.last() else { break };
            from = last.height + 1;
            for cp in &page {
                let Some(d) = cp.domains.iter().find(|d| d.domain.encoded == want) else {
                    continue;
                };
                if !d.verifies {
                    return Err(malformed(format!(
                        "the node's checkpoint at height {} does not verify: {}",
                        cp.height,
                        d.error.clone().unwrap_or_default()
                    )));
                }
                let payload =
                    CheckpointPayload::decode(&hex::decode(&d.payload).map_err(malformed)?)
                        .map_err(malformed)?;
                let sig = conclave_checkpoint::Signature::from_compressed(
                    &hex::decode(&d.signature).map_err(malformed)?,
                )
                .map_err(malformed)?;
                out.push(SignedCheckpoint {
                    payload,
                    signers: hex32(&d.signers_bitmap)?,
                    signature: sig,
                });
            }
            if out.len() >= limit || page.len() < PAGE {
                break;
            }
        }
        out.truncate(limit);
        Ok(out)
    }

    async fn actions(
        &self,
        domain: &Domain,
        after: u64,
        limit: usize,
    ) -> conclave_bridge::Result<Vec<ProvenAction>> {
        let want = hex::encode(domain.encode());
        let mut out: Vec<ProvenAction> = Vec::new();
        let mut from = after + 1;
        'pages: for _ in 0..MAX_PAGES {
            let page = self
                .client()
                .await?
                .action_list(self.context, Some(from), Some(PAGE))
                .await
                .map_err(node_err)?;
            let Some(last) = page.last() else { break };
            // A page may end inside a height: read that height again next
            // time, so heights are whole.
            let full = page.len() == PAGE;
            let cut = if full { last.height } else { u64::MAX };
            from = if full { last.height } else { last.height + 1 };
            for a in &page {
                if a.height >= cut {
                    break;
                }
                if out.len() >= limit && out.last().is_some_and(|l| l.height != a.height) {
                    break 'pages;
                }
                if a.domain.encoded != want {
                    continue;
                }
                let p = self
                    .client()
                    .await?
                    .action_proof(self.context, a.id.clone())
                    .await
                    .map_err(node_err)?;
                let (d, kind) = request::decode(&hex::decode(&a.request).map_err(malformed)?)
                    .map_err(malformed)?;
                let siblings = p
                    .proof
                    .iter()
                    .map(|s| hex32(s))
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(ProvenAction {
                    action: Action {
                        id: hex32(&a.id)?,
                        domain: d,
                        kind,
                    },
                    height: a.height,
                    proof: MerkleProof {
                        index: p.proof_index,
                        siblings,
                    },
                });
            }
            if !full {
                break;
            }
        }
        Ok(out)
    }

    async fn members_at(&self, height: u64) -> conclave_bridge::Result<Members> {
        // As of the height before, the node knows the set of `height`.
        let view = self
            .client()
            .await?
            .context_members(self.context, Some(height.saturating_sub(1)))
            .await
            .map_err(node_err)?;
        let set = view
            .sets
            .iter()
            .rev()
            .find(|s| s.from <= height)
            .ok_or_else(|| {
                malformed(format!("the node knows no member set for height {height}"))
            })?;
        members_of(set).map_err(malformed)
    }

    async fn tip(&self) -> conclave_bridge::Result<u64> {
        Ok(self
            .client()
            .await?
            .context_info(self.context)
            .await
            .map_err(node_err)?
            .height)
    }
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
    let status = super::client::wait_for(node, hash, Duration::from_secs(60)).await?;
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
    if let Err(e) = super::client::check_state_proof(v) {
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
