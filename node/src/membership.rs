//! How a context created on one node reaches its other members' nodes.
//!
//! `context_create` with member ids runs [`create_shared`] on the creator:
//! it asks each member's node for its identity (BLS key and proof of
//! possession, over the node-scope request protocol), writes the genesis,
//! starts the context, then offers the genesis to every member. A member's
//! node accepts an offer when it is named in the genesis and so is the
//! offerer; it fetches the app by hash from the offerer if it lacks it (the
//! app is served to the context's members only), checks it against the
//! genesis, installs the context and starts validating.

use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use conclave_consensus::{ContextId, Hash32, MemberId};
use conclave_network::NODE_SCOPE;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::context::check_member_keys;
use crate::node::Node;
use crate::store::{AnchorDomain, ContextRecord, Genesis, MemberInfo};
use crate::{Error, Result};

/// A node-scope request.
#[derive(Debug, BorshSerialize, BorshDeserialize)]
pub enum NodeRequest {
    /// Who are you: the answering node's [`MemberInfo`].
    Identity,
    /// A context naming both nodes as members was created.
    Offer { genesis: Genesis },
    /// The app of a context the requester is a member of.
    App { context: ContextId },
}

/// The answer to a [`NodeRequest`].
#[derive(Debug, BorshSerialize, BorshDeserialize)]
pub enum NodeResponse {
    Identity(MemberInfo),
    /// The offered context is installed (or was already).
    Accepted,
    App(Vec<u8>),
    Refused(String),
}

/// What became of the offer to one member.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OfferOutcome {
    pub member: MemberId,
    pub accepted: bool,
    pub error: Option<String>,
}

async fn ask(node: &Node, peer: MemberId, req: &NodeRequest) -> Result<NodeResponse> {
    let data = borsh::to_vec(req).map_err(|e| Error::Other(e.to_string()))?;
    let bytes = node
        .network
        .request(peer, NODE_SCOPE, data)
        .await
        .map_err(|e| Error::Other(format!("member {peer}: {e}")))?;
    borsh::from_slice(&bytes).map_err(|e| Error::Other(format!("member {peer}: bad answer: {e}")))
}

/// Fetches and checks `peer`'s identity: it must be that member, with a
/// valid proof of possession of its BLS key.
pub async fn fetch_identity(node: &Node, peer: MemberId) -> Result<MemberInfo> {
    match ask(node, peer, &NodeRequest::Identity).await? {
        NodeResponse::Identity(info) if info.id == peer => {
            check_member_keys(&info)?;
            Ok(info)
        }
        NodeResponse::Identity(info) => Err(Error::Other(format!(
            "member {peer} answered as {}",
            info.id
        ))),
        NodeResponse::Refused(why) => Err(Error::Other(format!("member {peer} refused: {why}"))),
        other => Err(Error::Other(format!("member {peer}: unexpected {other:?}"))),
    }
}

/// Creates a context among this node's member and `members` (ids), then
/// offers it to each. Fails before creating anything if a member's node
/// cannot be reached or its keys are invalid.
pub async fn create_shared(
    node: &Arc<Node>,
    wasm: Vec<u8>,
    members: Vec<MemberId>,
    anchors: Vec<AnchorDomain>,
    checkpoint_interval: Option<u64>,
) -> Result<(ContextRecord, Vec<OfferOutcome>)> {
    let me = node.member_info().id;
    let mut others: Vec<MemberId> = members.into_iter().filter(|m| *m != me).collect();
    others.sort();
    others.dedup();
    let identities =
        futures::future::join_all(others.iter().map(|m| fetch_identity(node, *m))).await;
    let infos = identities.into_iter().collect::<Result<Vec<_>>>()?;
    let creator = node.clone();
    let record = tokio::task::spawn_blocking(move || {
        creator.create_context_with(&wasm, infos, anchors, checkpoint_interval)
    })
    .await
    .map_err(|e| Error::Other(e.to_string()))??;
    let offer = NodeRequest::Offer {
        genesis: record.genesis.clone(),
    };
    let answers = futures::future::join_all(others.iter().map(|m| ask(node, *m, &offer))).await;
    let outcomes = others
        .iter()
        .zip(answers)
        .map(|(member, answer)| {
            let error = match answer {
                Ok(NodeResponse::Accepted) => None,
                Ok(NodeResponse::Refused(why)) => Some(why),
                Ok(other) => Some(format!("unexpected {other:?}")),
                Err(e) => Some(e.to_string()),
            };
            if let Some(e) = &error {
                warn!(context = %record.id, member = %member, error = %e, "genesis offer not accepted");
            }
            OfferOutcome {
                member: *member,
                accepted: error.is_none(),
                error,
            }
        })
        .collect();
    Ok((record, outcomes))
}

/// Answers a node-scope request from member `from`.
pub async fn serve(node: Arc<Node>, from: MemberId, data: Vec<u8>) -> NodeResponse {
    let req: NodeRequest = match borsh::from_slice(&data) {
        Ok(r) => r,
        Err(e) => return NodeResponse::Refused(format!("malformed request: {e}")),
    };
    match req {
        NodeRequest::Identity => NodeResponse::Identity(node.member_info()),
        NodeRequest::App { context } => match app_for(&node, from, &context) {
            Ok(wasm) => NodeResponse::App(wasm),
            Err(e) => NodeResponse::Refused(e.to_string()),
        },
        NodeRequest::Offer { genesis } => match accept_offer(&node, from, genesis).await {
            Ok(()) => NodeResponse::Accepted,
            Err(e) => {
                warn!(member = %from, error = %e, "refused a genesis offer");
                NodeResponse::Refused(e.to_string())
            }
        },
    }
}

/// The app of `context`, for one of its members only.
fn app_for(node: &Node, from: MemberId, context: &ContextId) -> Result<Vec<u8>> {
    let record = node
        .store
        .context(context)?
        .ok_or(Error::UnknownContext(*context))?;
    if !record.genesis.members.iter().any(|m| m.id == from) {
        return Err(Error::Other(format!("{from} is not a member of {context}")));
    }
    node.store
        .blob(&record.genesis.app_hash)?
        .ok_or_else(|| Error::Other(format!("app {} missing", record.genesis.app_hash)))
}

async fn accept_offer(node: &Arc<Node>, from: MemberId, genesis: Genesis) -> Result<()> {
    let id = genesis.context_id();
    if node.context(&id).is_ok() {
        return Ok(());
    }
    let me = node.member_info().id;
    let named = |m: &MemberId| genesis.members.iter().any(|i| i.id == *m);
    if !named(&me) {
        return Err(Error::Other(format!(
            "this node ({me}) is not a member of {id}"
        )));
    }
    if !named(&from) {
        return Err(Error::Other(format!(
            "the offerer {from} is not a member of {id}"
        )));
    }
    let wasm = match node.store.blob(&genesis.app_hash)? {
        Some(wasm) => wasm,
        None => fetch_app(node, from, id, genesis.app_hash).await?,
    };
    let installer = node.clone();
    tokio::task::spawn_blocking(move || installer.install_context(&wasm, genesis))
        .await
        .map_err(|e| Error::Other(e.to_string()))??;
    info!(context = %id, offerer = %from, "joined a context offered by a member");
    Ok(())
}

async fn fetch_app(
    node: &Node,
    from: MemberId,
    context: ContextId,
    hash: Hash32,
) -> Result<Vec<u8>> {
    // The creator starts its context (and its network topic) just before
    // offering it; an early request may find it not ready yet.
    let mut last = String::new();
    for attempt in 0..5u64 {
        match ask(node, from, &NodeRequest::App { context }).await {
            Ok(NodeResponse::App(wasm)) => {
                let got = Hash32(conclave_runtime::app_hash(&wasm));
                if got != hash {
                    return Err(Error::Other(format!(
                        "app from {from} hashes to {got}, not {hash}"
                    )));
                }
                return Ok(wasm);
            }
            Ok(NodeResponse::Refused(why)) => last = why,
            Ok(other) => last = format!("unexpected {other:?}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200 * (attempt + 1))).await;
    }
    Err(Error::Other(format!(
        "cannot fetch app {hash} from {from}: {last}"
    )))
}
