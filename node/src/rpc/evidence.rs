//! JSON-RPC: the evidence of equivocation a node kept for a context
//! (`store/evidence.rs`), each checked on the way out against the members
//! of its height. A member reading it need not trust this node: the two
//! signed messages are there to check again (`conclave_consensus::Evidence`).

use std::sync::Arc;

use conclave_consensus::{ContextId, Evidence, EvidenceKind, Height, MemberId};
use jsonrpsee::core::{async_trait, RpcResult};
use jsonrpsee::proc_macros::rpc;
use serde::{Deserialize, Serialize};

use super::checkpoints::{DEFAULT_LIMIT, MAX_LIMIT};
use super::{codes, err, error_object};
use crate::node::Node;

/// One piece of evidence, as `evidence_list` shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct EvidenceView {
    pub offender: MemberId,
    pub height: u64,
    pub round: u32,
    pub kind: EvidenceKind,
    /// The two signed messages (`conclave_consensus::codec`), hex.
    pub first: String,
    pub second: String,
    /// Whether both signatures check against the members of its height.
    pub verified: bool,
}

impl EvidenceView {
    /// The evidence itself, to check again.
    pub fn evidence(&self) -> Result<Evidence, String> {
        let hex = |s: &str| hex::decode(s).map_err(|e| format!("not hex: {e}"));
        Ok(Evidence {
            offender: self.offender,
            height: Height(self.height),
            round: self.round,
            kind: self.kind,
            first: hex(&self.first)?,
            second: hex(&self.second)?,
        })
    }
}

#[rpc(server, client)]
pub trait EvidenceApi {
    /// Evidence of equivocation this node kept for a context, lowest height
    /// first, at most `limit` (default 50, at most 500).
    #[method(name = "evidence_list", param_kind = map)]
    async fn evidence_list(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
        limit: Option<usize>,
    ) -> RpcResult<Vec<EvidenceView>>;
}

pub struct EvidenceRpc {
    node: Arc<Node>,
}

impl EvidenceRpc {
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }
}

#[async_trait]
impl EvidenceApiServer for EvidenceRpc {
    async fn evidence_list(
        &self,
        ctx: ContextId,
        limit: Option<usize>,
    ) -> RpcResult<Vec<EvidenceView>> {
        self.node.metrics.count_rpc("evidence_list");
        let n = match limit {
            Some(0) => return Err(err(codes::BAD_REQUEST, "limit must be at least 1")),
            Some(n) if n > MAX_LIMIT => {
                return Err(err(
                    codes::BAD_REQUEST,
                    format!("limit is at most {MAX_LIMIT}"),
                ))
            }
            Some(n) => n,
            None => DEFAULT_LIMIT,
        };
        let (_, sets) = self
            .node
            .member_sets(&ctx)
            .map_err(error_object)?
            .ok_or_else(|| err(codes::UNKNOWN_CONTEXT, format!("unknown context {ctx}")))?;
        let kept = self
            .node
            .store
            .evidence(&ctx, n)
            .map_err(|e| error_object(e.into()))?;
        Ok(kept
            .into_iter()
            .map(|e| EvidenceView {
                verified: e.verify(&ctx, &sets.at(e.height).ids()).is_ok(),
                offender: e.offender,
                height: e.height.0,
                round: e.round,
                kind: e.kind,
                first: hex::encode(&e.first),
                second: hex::encode(&e.second),
            })
            .collect())
    }
}
