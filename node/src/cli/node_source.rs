//! A member's node as the relayer's [`Source`]: its completed checkpoints,
//! the actions of its outbox with their proofs, its tip and member sets,
//! read over its authenticated JSON-RPC with the home's member key (logged
//! in again before the token expires).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use conclave_bridge::source::{Members, ProvenAction, SignedCheckpoint, Source};
use conclave_checkpoint::{actions::request, Action, CheckpointPayload, Domain, MerkleProof};
use conclave_consensus::ContextId;
use jsonrpsee::http_client::HttpClient;

use crate::rpc::members::MemberSetView;
use crate::rpc::{CheckpointApiClient, ConclaveApiClient, MembersApiClient};

/// A member's node as the relayer's [`Source`]. A long-running relayer
/// logs in again before its member token expires.
pub struct NodeSource {
    client: RwLock<HttpClient>,
    pub(super) context: ContextId,
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
        let client = super::connect::connect_with(
            url,
            super::connect::credentials(url, home, RELAY_TOKEN_TTL).await?,
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
                let headers = super::connect::credentials(&l.url, &l.home, RELAY_TOKEN_TTL)
                    .await
                    .map_err(node_err)?;
                let fresh = super::connect::connect_with(&l.url, headers).map_err(node_err)?;
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
pub(super) fn members_of(set: &MemberSetView) -> Result<Members, String> {
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
