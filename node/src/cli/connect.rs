//! The CLI's JSON-RPC connection to a node and the credentials it
//! presents: a member token for the home's member key (`auth_login`), and
//! the admin token when the node is the home's own; and what several
//! commands share (waiting for a tx, checking a state proof).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use conclave_consensus::{ContextId, Hash32, MemberId};
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient, HttpClientBuilder};

use crate::keys::{NodeKeys, RpcSecrets};
use crate::rpc::auth::{self, ADMIN_HEADER, AUTHORIZATION_HEADER};
use crate::rpc::types::{LoginToken, StateValue, TxStatusView};
use crate::rpc::ConclaveApiClient;
use crate::store::{app_key, verify_proof, Proof};

/// How long the member tokens of one CLI command last.
pub const COMMAND_TOKEN_TTL: Duration = Duration::from_secs(3600);

/// A client without credentials: public methods only.
pub fn connect(url: &str) -> anyhow::Result<HttpClient> {
    connect_with(url, HeaderMap::new())
}

/// A client sending `headers` with every request.
pub fn connect_with(url: &str, headers: HeaderMap) -> anyhow::Result<HttpClient> {
    HttpClientBuilder::default()
        .request_timeout(Duration::from_secs(30))
        .set_headers(headers)
        .build(url)
        .with_context(|| format!("bad RPC url {url}"))
}

/// A client with the credentials of `home` at the node at `url` (see
/// [`credentials`]).
pub async fn connect_as(url: &str, home: &Path) -> anyhow::Result<HttpClient> {
    connect_with(url, credentials(url, home, COMMAND_TOKEN_TTL).await?)
}

/// Logs `keys`' member in at the node behind `c` for `ttl`; returns the
/// token and the node's member id.
pub async fn login(
    c: &HttpClient,
    keys: &NodeKeys,
    ttl: Duration,
) -> anyhow::Result<(LoginToken, MemberId)> {
    let node = c
        .node_status()
        .await
        .context("node_status (is the node running?)")?
        .member_id;
    let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
    let expires_ms = crate::node::now_ms().saturating_add(ttl_ms);
    let signature = auth::sign_login(&keys.member, &node, expires_ms);
    let token = c
        .auth_login(keys.member_id(), expires_ms, signature)
        .await
        .context("auth_login")?;
    Ok((token, node))
}

/// The headers the CLI sends to the node at `url` for `home`: a member token
/// for the home's member key (good for `ttl`), and the home's admin token
/// if the node is the home's own (same member id). None without member
/// keys in the home: then only public methods work.
pub async fn credentials(url: &str, home: &Path, ttl: Duration) -> anyhow::Result<HeaderMap> {
    let mut headers = HeaderMap::new();
    if !home.join("keys").join("member.key").exists() {
        return Ok(headers);
    }
    let keys = NodeKeys::load(home)?;
    let bare = connect(url)?;
    let (token, node) = login(&bare, &keys, ttl)
        .await
        .with_context(|| format!("logging in at {url}"))?;
    headers.insert(
        AUTHORIZATION_HEADER,
        HeaderValue::try_from(format!("Bearer {}", token.token))?,
    );
    if node == keys.member_id() {
        let admin = RpcSecrets::load(home)?.admin_token_hex();
        let mut value = HeaderValue::try_from(admin)?;
        value.set_sensitive(true);
        headers.insert(ADMIN_HEADER, value);
    }
    Ok(headers)
}

pub fn parse_context(s: &str) -> anyhow::Result<ContextId> {
    s.parse()
        .map_err(|e: String| anyhow::anyhow!("--context: {e}"))
}

/// Polls `tx_status` until the tx commits (or fails) or `timeout` passes.
pub async fn wait_for(
    c: &HttpClient,
    hash: Hash32,
    timeout: Duration,
) -> anyhow::Result<TxStatusView> {
    let deadline = Instant::now() + timeout;
    loop {
        let s = c.tx_status(hash).await?;
        if s.status == "committed" || s.status == "failed" {
            return Ok(s);
        }
        if Instant::now() > deadline {
            bail!("tx {hash} still {} after {timeout:?}", s.status);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Checks a `state_get` answer's proof against its state root.
pub fn check_state_proof(v: &StateValue) -> anyhow::Result<()> {
    let proof_bytes = hex::decode(&v.proof).context("proof is not hex")?;
    let proof: Proof = borsh::from_slice(&proof_bytes).context("proof does not decode")?;
    let value = v
        .value_hex
        .as_deref()
        .map(hex::decode)
        .transpose()
        .context("value_hex is not hex")?;
    verify_proof(
        &proof,
        v.state_root,
        &app_key(v.key.as_bytes()),
        value.as_deref(),
    )
    .map_err(|e| anyhow::anyhow!("proof does not verify: {e}"))
}
