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
use conclave_consensus::{ContextId, Hash32, Height, MemberId};
use conclave_network::NODE_SCOPE;
use serde::{Deserialize, Serialize};
use tracing::{info, warn};

use crate::members::check_member_keys;
use crate::node::Node;
use crate::store::{AnchorDomain, ContextRecord, Genesis, MemberInfo};
use crate::{Error, Result};

/// A node-scope request.
#[derive(Debug, BorshSerialize, BorshDeserialize)]
pub enum NodeRequest {
    /// Who are you: the answering node's [`MemberInfo`].
    Identity,
    /// A context naming both nodes as members was created; its key of
    /// epoch 0 comes sealed to the addressee.
    Offer {
        genesis: Genesis,
        sealed_key: Vec<u8>,
    },
    /// The app of a context the requester is a member of, sealed under its
    /// key of `key_epoch`.
    App { context: ContextId, key_epoch: u64 },
    /// The requester was invited into `context`: its genesis and the
    /// context key sealed to the requester.
    Join { context: ContextId },
    /// The requester's tips of contexts it holds idle: the answer names
    /// those the answering node is ahead on and the requester may read
    /// (`crate::tip_watch`; at most [`crate::context::watch::MAX_ASKED`]).
    Tips(Vec<(ContextId, Height)>),
}

/// The answer to a [`NodeRequest`].
#[derive(Debug, BorshSerialize, BorshDeserialize)]
pub enum NodeResponse {
    Identity(MemberInfo),
    /// The offered context is installed (or was already).
    Accepted,
    /// The app, sealed (`crate::seal::Purpose::App`).
    App(Vec<u8>),
    Join {
        genesis: Genesis,
        key_epoch: u64,
        sealed_key: Vec<u8>,
    },
    Refused(String),
    /// The answering node's tips of the asked contexts it is ahead on.
    Tips(Vec<(ContextId, Height)>),
}

/// What became of the offer to one member.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct OfferOutcome {
    pub member: MemberId,
    pub accepted: bool,
    pub error: Option<String>,
}

async fn ask(node: &Node, peer: MemberId, req: &NodeRequest) -> Result<NodeResponse> {
    ask_over(&node.network, peer, req).await
}

/// Sends `req` to `peer`'s node over `net` and decodes its answer (for a
/// caller that must not hold the node meanwhile, `crate::tip_watch`).
pub(crate) async fn ask_over(
    net: &conclave_network::NetworkHandle,
    peer: MemberId,
    req: &NodeRequest,
) -> Result<NodeResponse> {
    let data = Error::encode(req)?;
    let bytes = net
        .request(peer, NODE_SCOPE, data)
        .await
        .map_err(|e| Error::member(peer, e))?;
    borsh::from_slice(&bytes).map_err(|e| Error::member(peer, format!("bad answer: {e}")))
}

/// Fetches and checks `peer`'s identity: it must be that member, with a
/// valid proof of possession of its BLS key.
pub async fn fetch_identity(node: &Node, peer: MemberId) -> Result<MemberInfo> {
    match ask(node, peer, &NodeRequest::Identity).await? {
        NodeResponse::Identity(info) if info.id == peer => {
            check_member_keys(&info)?;
            Ok(info)
        }
        NodeResponse::Identity(info) => {
            Err(Error::member(peer, format!("answered as {}", info.id)))
        }
        NodeResponse::Refused(why) => Err(Error::member(peer, format!("refused: {why}"))),
        other => Err(Error::member(peer, format!("unexpected {other:?}"))),
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
    .await??;
    let key = node
        .store
        .context_key(&record.id, 0)?
        .ok_or_else(|| Error::Missing(format!("the key of the new context {}", record.id)))?;
    let offers = others
        .iter()
        .map(|m| {
            Ok(NodeRequest::Offer {
                genesis: record.genesis.clone(),
                sealed_key: crate::seal::seal_key_to(m, &record.id, &key)
                    .map_err(|e| Error::member(*m, e))?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let answers = futures::future::join_all(
        others
            .iter()
            .zip(&offers)
            .map(|(m, offer)| ask(node, *m, offer)),
    )
    .await;
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
        NodeRequest::App { context, key_epoch } => {
            match app_for(&node, from, &context, key_epoch) {
                Ok(wasm) => NodeResponse::App(wasm),
                Err(e) => NodeResponse::Refused(e.to_string()),
            }
        }
        NodeRequest::Join { context } => match join_for(&node, from, &context) {
            Ok(answer) => answer,
            Err(e) => {
                warn!(member = %from, %context, error = %e, "refused a join");
                NodeResponse::Refused(e.to_string())
            }
        },
        NodeRequest::Tips(asked) if asked.len() > crate::context::watch::MAX_ASKED => {
            NodeResponse::Refused(format!(
                "{} contexts asked about, more than {}",
                asked.len(),
                crate::context::watch::MAX_ASKED
            ))
        }
        NodeRequest::Tips(asked) => NodeResponse::Tips(crate::context::watch::ahead(&asked, |c| {
            node.context(c).ok()?.standing().tip_for(&from)
        })),
        NodeRequest::Offer {
            genesis,
            sealed_key,
        } => match accept_offer(&node, from, genesis, sealed_key).await {
            Ok(()) => NodeResponse::Accepted,
            Err(e) => {
                warn!(member = %from, error = %e, "refused a genesis offer");
                NodeResponse::Refused(e.to_string())
            }
        },
    }
}

/// The app of `context`, sealed, for one of its members only.
fn app_for(node: &Node, from: MemberId, context: &ContextId, key_epoch: u64) -> Result<Vec<u8>> {
    let (record, membership) = node
        .member_sets(context)?
        .ok_or(Error::UnknownContext(*context))?;
    if !membership.readers(record.height).contains(&from) {
        return Err(Error::Invalid(format!(
            "{from} is not a member of {context}"
        )));
    }
    let key = node
        .store
        .context_key(context, key_epoch)?
        .ok_or_else(|| Error::Missing(format!("the key of epoch {key_epoch} of {context}")))?;
    let wasm = node
        .store
        .blob(&record.genesis.app_hash)?
        .ok_or_else(|| Error::Missing(format!("app {}", record.genesis.app_hash)))?;
    Ok(key.seal(context, crate::seal::Purpose::App, &wasm))
}

/// What an invited member's node needs to join: the genesis and the newest
/// context key sealed to it (written into the state by its invitation or a
/// later rotation).
fn join_for(node: &Node, from: MemberId, context: &ContextId) -> Result<NodeResponse> {
    let (record, membership) = node
        .member_sets(context)?
        .ok_or(Error::UnknownContext(*context))?;
    if !membership.readers(record.height).contains(&from) {
        return Err(Error::Invalid(format!(
            "{from} is not a member of {context} (no committed invitation)"
        )));
    }
    let state = node.store.state(*context);
    let overlay = crate::store::Overlay::new(&state, record.height);
    for key_epoch in membership.key_epochs_of(&from).into_iter().rev() {
        if let Some(sealed_key) = overlay.get(&crate::members::sealed_key_key(key_epoch, &from))? {
            return Ok(NodeResponse::Join {
                genesis: record.genesis,
                key_epoch,
                sealed_key,
            });
        }
    }
    Err(Error::Invalid(format!(
        "no context key was handed to {from} (a genesis member is offered the context at creation)"
    )))
}

/// Joins `context` through member `via`, after this node's member was
/// invited: fetches the genesis (refused unless it hashes to `context`),
/// opens the context key sealed to this node, fetches the app, installs the
/// context and starts following it; it validates from its activation
/// height on.
pub async fn join(node: &Arc<Node>, context: ContextId, via: MemberId) -> Result<ContextRecord> {
    if let Some(record) = node.store.context(&context)? {
        return Ok(record);
    }
    let (genesis, key_epoch, sealed_key) =
        match ask(node, via, &NodeRequest::Join { context }).await? {
            NodeResponse::Join {
                genesis,
                key_epoch,
                sealed_key,
            } => (genesis, key_epoch, sealed_key),
            NodeResponse::Refused(why) => {
                return Err(Error::member(via, format!("refused the join: {why}")))
            }
            other => return Err(Error::member(via, format!("unexpected {other:?}"))),
        };
    check_genesis(&context, &genesis)?;
    let key = node.open_key(&context, key_epoch, &sealed_key)?;
    node.store.put_context_key(&context, &key)?;
    let wasm = match node.store.blob(&genesis.app_hash)? {
        Some(wasm) => wasm,
        None => fetch_app(node, via, context, genesis.app_hash, &key).await?,
    };
    let installer = node.clone();
    let record =
        tokio::task::spawn_blocking(move || installer.install_context(&wasm, genesis, &key))
            .await??;
    info!(%context, via = %via, "joined a context");
    if let Ok(handle) = node.context(&context) {
        handle.peer_connected(via);
    }
    Ok(record)
}

/// A genesis fetched for `context` must be the one that hashes to it.
pub fn check_genesis(context: &ContextId, genesis: &Genesis) -> Result<()> {
    let got = genesis.context_id();
    if got != *context {
        return Err(Error::Invalid(format!(
            "the genesis offered hashes to {got}, not to the context {context}"
        )));
    }
    Ok(())
}

async fn accept_offer(
    node: &Arc<Node>,
    from: MemberId,
    genesis: Genesis,
    sealed_key: Vec<u8>,
) -> Result<()> {
    let id = genesis.context_id();
    if node.context(&id).is_ok() {
        return Ok(());
    }
    let me = node.member_info().id;
    let named = |m: &MemberId| genesis.members.iter().any(|i| i.id == *m);
    if !named(&me) {
        return Err(Error::Invalid(format!(
            "this node ({me}) is not a member of {id}"
        )));
    }
    if !named(&from) {
        return Err(Error::Invalid(format!(
            "the offerer {from} is not a member of {id}"
        )));
    }
    let key = node.open_key(&id, 0, &sealed_key)?;
    let wasm = match node.store.blob(&genesis.app_hash)? {
        Some(wasm) => wasm,
        None => fetch_app(node, from, id, genesis.app_hash, &key).await?,
    };
    let installer = node.clone();
    tokio::task::spawn_blocking(move || installer.install_context(&wasm, genesis, &key)).await??;
    info!(context = %id, offerer = %from, "joined a context offered by a member");
    Ok(())
}

async fn fetch_app(
    node: &Node,
    from: MemberId,
    context: ContextId,
    hash: Hash32,
    key: &crate::seal::ContextKey,
) -> Result<Vec<u8>> {
    // The creator starts its context (and its network topic) just before
    // offering it; an early request may find it not ready yet.
    let mut last = String::new();
    for attempt in 0..5u64 {
        let req = NodeRequest::App {
            context,
            key_epoch: key.epoch,
        };
        match ask(node, from, &req).await {
            Ok(NodeResponse::App(sealed)) => {
                let wasm = key
                    .open(&context, crate::seal::Purpose::App, &sealed)
                    .map_err(|e| Error::member(from, format!("app: {e}")))?;
                let got = Hash32(conclave_runtime::app_hash(&wasm));
                if got != hash {
                    return Err(Error::member(
                        from,
                        format!("its app hashes to {got}, not {hash}"),
                    ));
                }
                return Ok(wasm);
            }
            Ok(NodeResponse::Refused(why)) => last = why,
            Ok(other) => last = format!("unexpected {other:?}"),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200 * (attempt + 1))).await;
    }
    Err(Error::member(
        from,
        format!("cannot fetch app {hash}: {last}"),
    ))
}

/// Signs `method(args)` with this node's member key and submits it to the
/// context, as the node's member.
async fn submit_own(
    node: &Node,
    context: ContextId,
    method: &str,
    args: Vec<u8>,
) -> Result<Hash32> {
    let handle = node.context(&context)?;
    let me = node.keys.member_id();
    let nonce = handle
        .next_nonce(me)
        .await
        .map_err(|e| Error::TxRefused(e.to_string()))?;
    let tx = conclave_consensus::Tx {
        context_id: context,
        sender: me,
        nonce,
        method: method.into(),
        args,
    }
    .sign(&node.keys.member)
    .verified()
    .map_err(|e| Error::TxRefused(format!("own membership tx: {e}")))?;
    handle
        .submit(tx)
        .await
        .map_err(|e| Error::TxRefused(e.to_string()))
}

fn current(
    node: &Node,
    context: &ContextId,
) -> Result<(ContextRecord, crate::members::Membership)> {
    let (record, membership) = node
        .member_sets(context)?
        .ok_or(Error::UnknownContext(*context))?;
    let me = node.keys.member_id();
    if !membership.latest().contains(&me) {
        return Err(Error::Invalid(format!(
            "this node's member {me} is not a member of {context}"
        )));
    }
    Ok((record, membership))
}

/// Proposes `member` as a new member of `context` (a context tx; it takes
/// effect two heights after its commit). The member's node must be
/// reachable: its BLS key and proof of possession come from it, and the
/// current context key is sealed to its member key.
pub async fn invite(node: &Arc<Node>, context: ContextId, member: MemberId) -> Result<Hash32> {
    let (_, membership) = current(node, &context)?;
    let latest = membership.latest();
    if latest.contains(&member) {
        return Err(Error::Invalid(format!(
            "{member} is a member of {context} already"
        )));
    }
    let info = fetch_identity(node, member).await?;
    let key = node
        .store
        .context_key(&context, latest.key_epoch)?
        .ok_or_else(|| {
            Error::Invalid(format!(
                "this node lacks the key of epoch {}",
                latest.key_epoch
            ))
        })?;
    let sealed_key =
        crate::seal::seal_key_to(&member, &context, &key).map_err(|e| Error::member(member, e))?;
    let args = crate::members::InviteArgs {
        member: info,
        key_epoch: latest.key_epoch,
        sealed_key,
    };
    let args = Error::encode(&args)?;
    submit_own(node, context, crate::members::METHOD_INVITE, args).await
}

/// Proposes removing `member` from `context`, with a new context key sealed
/// to every remaining member: the removed member cannot read traffic of
/// the heights after the removal takes effect.
pub async fn remove(node: &Arc<Node>, context: ContextId, member: MemberId) -> Result<Hash32> {
    let (_, membership) = current(node, &context)?;
    if member == node.keys.member_id() {
        return leave(node, context).await;
    }
    let mut set = membership.latest().clone();
    if !set.contains(&member) {
        return Err(Error::Invalid(format!(
            "{member} is not a member of {context}"
        )));
    }
    set.members.retain(|m| m.info.id != member);
    let key = crate::seal::ContextKey::generate(set.key_epoch + 1);
    let rotation = crate::members::rotation_for(&context, &set, &key)?;
    let args = crate::members::RemoveArgs {
        member,
        rotation: Some(rotation),
    };
    let args = Error::encode(&args)?;
    submit_own(node, context, crate::members::METHOD_REMOVE, args).await
}

/// This node's member leaves `context`; the remaining member with the
/// lowest id then rotates the key.
pub async fn leave(node: &Arc<Node>, context: ContextId) -> Result<Hash32> {
    current(node, &context)?;
    let args = crate::members::RemoveArgs {
        member: node.keys.member_id(),
        rotation: None,
    };
    let args = Error::encode(&args)?;
    submit_own(node, context, crate::members::METHOD_REMOVE, args).await
}

/// Resolves `--via`: a member id, or a multiaddr ending in `/p2p/<peer id>`
/// that is dialled first.
pub async fn resolve_peer(node: &Node, via: &str) -> Result<MemberId> {
    if let Ok(member) = via.parse::<MemberId>() {
        return Ok(member);
    }
    let addr: conclave_network::Multiaddr = via.parse().map_err(|_| {
        Error::Invalid(format!(
            "--via {via:?} is neither a member id nor a multiaddr"
        ))
    })?;
    let peer = conclave_network::peer_in_addr(&addr)
        .ok_or_else(|| Error::Invalid(format!("--via {via:?} names no /p2p/<peer id>")))?;
    let member = conclave_network::member_of(&peer)
        .ok_or_else(|| Error::Invalid(format!("--via {via:?}: not a member's peer id")))?;
    node.network
        .dial(addr)
        .await
        .map_err(|e| Error::member(member, format!("cannot dial: {e}")))?;
    Ok(member)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_genesis_must_hash_to_the_context_joined() {
        let genesis = Genesis {
            app_hash: Hash32([1; 32]),
            members: Vec::new(),
            created_at_ms: 5,
            salt: Hash32([2; 32]),
            anchors: Vec::new(),
            checkpoint_interval: 10,
        };
        let id = genesis.context_id();
        check_genesis(&id, &genesis).unwrap();
        let mut forged = genesis.clone();
        forged.salt = Hash32([3; 32]);
        let err = check_genesis(&id, &forged).unwrap_err().to_string();
        assert!(err.contains("hashes to"), "{err}");
        assert!(check_genesis(&ContextId([9; 32]), &genesis).is_err());
    }
}
