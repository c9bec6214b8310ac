//! JSON-RPC methods for a context's lifecycle after creation: invite,
//! remove, leave, join, and the member list. Invite, remove, leave and join
//! are operator methods (they sign with the node's member key or install
//! a context); `context_members` is a member read.

use std::sync::Arc;

use conclave_consensus::{ContextId, Hash32, Height, MemberId};
use jsonrpsee::core::{async_trait, RpcResult};
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Serialize};

use super::{codes, err};
use crate::members::MemberSet;
use crate::node::Node;

/// A membership tx was submitted.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MembershipTx {
    pub tx_hash: Hash32,
    /// The change applies two heights after the tx commits.
    pub activation_offset: u64,
}

/// The context this node joined.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Joined {
    pub context_id: ContextId,
    pub via: MemberId,
    /// The height this node has (it catches up from its peers).
    pub height: u64,
}

/// A context's member sets: the one in force and any that start later.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MembersView {
    pub context_id: ContextId,
    pub height: u64,
    pub sets: Vec<MemberSetView>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberSetView {
    /// First height this set validates.
    pub from: u64,
    pub epoch: u64,
    pub key_epoch: u64,
    pub members_hash: Hash32,
    pub members: Vec<MemberView>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MemberView {
    pub id: MemberId,
    #[serde(with = "conclave_consensus::types::serde_hex::bytes")]
    pub bls_public_key: Vec<u8>,
    /// Proof of possession of the BLS key (compressed, 96 bytes): what a
    /// proxy contract checks when the key is registered on chain.
    #[serde(with = "conclave_consensus::types::serde_hex::bytes")]
    pub bls_pop: Vec<u8>,
    /// The height from which it validates.
    pub since: u64,
}

impl From<&MemberSet> for MemberSetView {
    fn from(s: &MemberSet) -> Self {
        Self {
            from: s.from.0,
            epoch: s.epoch,
            key_epoch: s.key_epoch,
            members_hash: s.hash(),
            members: s
                .members
                .iter()
                .map(|m| MemberView {
                    id: m.info.id,
                    bls_public_key: m.info.bls_public_key.clone(),
                    bls_pop: m.info.bls_pop.clone(),
                    since: m.since.0,
                })
                .collect(),
        }
    }
}

#[rpc(server, client)]
pub trait MembersApi {
    /// Proposes `member` (a member id whose node is reachable) as a member
    /// of `context`; it validates from two heights after the tx commits.
    #[method(name = "context_invite", param_kind = map)]
    async fn context_invite(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
        member: MemberId,
    ) -> RpcResult<MembershipTx>;

    /// Proposes removing `member`, with a new context key for the rest.
    #[method(name = "context_remove", param_kind = map)]
    async fn context_remove(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
        member: MemberId,
    ) -> RpcResult<MembershipTx>;

    /// This node's member leaves `context`.
    #[method(name = "context_leave", param_kind = map)]
    async fn context_leave(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
    ) -> RpcResult<MembershipTx>;

    /// Joins `context`, to which this node's member was invited, through
    /// `via`: a member id of a connected node, or its multiaddr with
    /// `/p2p/<peer id>`.
    #[method(name = "context_join", param_kind = map)]
    async fn context_join(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
        via: String,
    ) -> RpcResult<Joined>;

    /// The member sets of `context`, with keys and activation heights: the
    /// set in force after its newest committed height and any later ones,
    /// or, with `height`, those as of that committed height (the set that
    /// validates `height + 1` first).
    #[method(name = "context_members", param_kind = map)]
    async fn context_members(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
        height: Option<u64>,
    ) -> RpcResult<MembersView>;
}

pub struct MembersRpc {
    node: Arc<Node>,
}

impl MembersRpc {
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    fn count(&self, method: &str) {
        self.node.metrics.count_rpc(method);
    }
}

fn submitted(tx_hash: Hash32) -> MembershipTx {
    MembershipTx {
        tx_hash,
        activation_offset: crate::members::ACTIVATION_OFFSET,
    }
}

#[async_trait]
impl MembersApiServer for MembersRpc {
    async fn context_invite(&self, ctx: ContextId, member: MemberId) -> RpcResult<MembershipTx> {
        self.count("context_invite");
        crate::onboarding::invite(&self.node, ctx, member)
            .await
            .map(submitted)
            .map_err(super::error_object)
    }

    async fn context_remove(&self, ctx: ContextId, member: MemberId) -> RpcResult<MembershipTx> {
        self.count("context_remove");
        crate::onboarding::remove(&self.node, ctx, member)
            .await
            .map(submitted)
            .map_err(super::error_object)
    }

    async fn context_leave(&self, ctx: ContextId) -> RpcResult<MembershipTx> {
        self.count("context_leave");
        crate::onboarding::leave(&self.node, ctx)
            .await
            .map(submitted)
            .map_err(super::error_object)
    }

    async fn context_join(&self, ctx: ContextId, via: String) -> RpcResult<Joined> {
        self.count("context_join");
        let via = crate::onboarding::resolve_peer(&self.node, &via)
            .await
            .map_err(super::error_object)?;
        let record = crate::onboarding::join(&self.node, ctx, via)
            .await
            .map_err(super::error_object)?;
        Ok(Joined {
            context_id: record.id,
            via,
            height: record.height.0,
        })
    }

    async fn context_members(&self, ctx: ContextId, height: Option<u64>) -> RpcResult<MembersView> {
        self.count("context_members");
        let (record, membership) = self
            .node
            .membership_at(&ctx, height.map(Height))
            .map_err(super::error_object)?
            .ok_or_else(|| err(codes::UNKNOWN_CONTEXT, format!("unknown context {ctx}")))?;
        Ok(MembersView {
            context_id: ctx,
            height: height.unwrap_or(record.height.0),
            sets: membership.sets.iter().map(MemberSetView::from).collect(),
        })
    }
}
