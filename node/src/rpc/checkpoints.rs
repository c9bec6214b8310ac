//! JSON-RPC methods for checkpoints and the actions outbox. Everything is
//! read from the store; each checkpoint is verified on the way out
//! (`crate::checkpoint::view`).

use std::sync::Arc;

use conclave_consensus::{ContextId, Height};
use jsonrpsee::core::{async_trait, RpcResult};
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;

use super::{codes, err};
use crate::checkpoint::view::{
    action_proof, action_view, checkpoint_view, ActionProofView, ActionView, CheckpointView,
};
use crate::checkpoint::{params, Params};
use crate::node::Node;

/// Items a list returns when the caller gives no limit.
pub const DEFAULT_LIMIT: usize = 50;
/// Items a list returns at most.
pub const MAX_LIMIT: usize = 500;

#[rpc(server, client)]
pub trait CheckpointApi {
    /// The highest completed checkpoint of a context (null if none yet).
    #[method(name = "checkpoint_latest", param_kind = map)]
    async fn checkpoint_latest(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
    ) -> RpcResult<Option<CheckpointView>>;

    /// The checkpoint at `height`.
    #[method(name = "checkpoint_get", param_kind = map)]
    async fn checkpoint_get(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
        height: u64,
    ) -> RpcResult<CheckpointView>;

    /// Completed checkpoints from height `from` (default 1) upwards, at
    /// most `limit` (default 50, at most 500).
    #[method(name = "checkpoint_list", param_kind = map)]
    async fn checkpoint_list(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
        from: Option<u64>,
        limit: Option<usize>,
    ) -> RpcResult<Vec<CheckpointView>>;

    /// Committed actions from height `from` (default 1) upwards, in outbox
    /// order, at most `limit`.
    #[method(name = "action_list", param_kind = map)]
    async fn action_list(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
        from: Option<u64>,
        limit: Option<usize>,
    ) -> RpcResult<Vec<ActionView>>;

    /// An action (by its 32-byte id, hex) with its Merkle inclusion proof
    /// against its height's actions root and the checkpoint committing it.
    #[method(name = "action_proof", param_kind = map)]
    async fn action_proof(
        &self,
        #[argument(rename = "context")] ctx: ContextId,
        id: String,
    ) -> RpcResult<ActionProofView>;
}

pub struct CheckpointRpc {
    node: Arc<Node>,
}

impl CheckpointRpc {
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    fn count(&self, method: &str) {
        self.node.metrics.count_rpc(method);
    }

    /// The context's checkpoint parameters; unknown context → -32001.
    fn params(&self, ctx: &ContextId) -> RpcResult<Params> {
        let record = self.record(ctx)?;
        params(record.id, &record.genesis).map_err(internal)
    }

    fn record(&self, ctx: &ContextId) -> RpcResult<crate::store::ContextRecord> {
        self.node
            .store
            .context(ctx)
            .map_err(internal)?
            .ok_or_else(|| err(codes::UNKNOWN_CONTEXT, format!("unknown context {ctx}")))
    }

    /// The checkpoint parameters of height `h`: its member set (which
    /// membership changes may have made differ from the genesis').
    fn params_at(&self, ctx: &ContextId, h: Height) -> RpcResult<Params> {
        let record = self.record(ctx)?;
        let state = self.node.store.state(*ctx);
        let parent = Height(h.0.saturating_sub(1).min(record.height.0));
        let overlay = crate::store::Overlay::new(&state, parent);
        let membership = crate::members::read(&overlay, &record.genesis).map_err(internal)?;
        let anchors = crate::anchors::read(&overlay).map_err(internal)?;
        crate::checkpoint::params_at(record.id, &record.genesis, &membership, &anchors, h)
            .map_err(internal)?
            .ok_or_else(|| internal(format!("no member set known for height {}", h.0)))
    }
}

fn internal(e: impl std::fmt::Display) -> ErrorObjectOwned {
    err(codes::INTERNAL, e.to_string())
}

fn limit(l: Option<usize>) -> RpcResult<usize> {
    match l {
        None => Ok(DEFAULT_LIMIT),
        Some(0) => Err(err(codes::BAD_REQUEST, "limit must be at least 1")),
        Some(n) if n > MAX_LIMIT => Err(err(
            codes::BAD_REQUEST,
            format!("limit {n} is above the maximum of {MAX_LIMIT}"),
        )),
        Some(n) => Ok(n),
    }
}

fn parse_id(id: &str) -> RpcResult<[u8; 32]> {
    let bytes = hex::decode(id.strip_prefix("0x").unwrap_or(id))
        .map_err(|_| err(codes::BAD_REQUEST, "id is not hex"))?;
    bytes
        .try_into()
        .map_err(|_| err(codes::BAD_REQUEST, "an action id is 32 bytes"))
}

#[async_trait]
impl CheckpointApiServer for CheckpointRpc {
    async fn checkpoint_latest(&self, ctx: ContextId) -> RpcResult<Option<CheckpointView>> {
        self.count("checkpoint_latest");
        self.params(&ctx)?;
        let rec = self.node.store.latest_checkpoint(&ctx).map_err(internal)?;
        rec.map(|r| Ok(checkpoint_view(&self.params_at(&ctx, r.height)?, &r)))
            .transpose()
    }

    async fn checkpoint_get(&self, ctx: ContextId, height: u64) -> RpcResult<CheckpointView> {
        self.count("checkpoint_get");
        let p = self.params_at(&ctx, Height(height))?;
        let rec = self
            .node
            .store
            .checkpoint(&ctx, Height(height))
            .map_err(internal)?
            .ok_or_else(|| {
                err(
                    codes::NOT_FOUND,
                    format!("no checkpoint at height {height}"),
                )
            })?;
        Ok(checkpoint_view(&p, &rec))
    }

    async fn checkpoint_list(
        &self,
        ctx: ContextId,
        from: Option<u64>,
        limit_: Option<usize>,
    ) -> RpcResult<Vec<CheckpointView>> {
        self.count("checkpoint_list");
        self.params(&ctx)?;
        let n = limit(limit_)?;
        let recs = self
            .node
            .store
            .checkpoints_from(&ctx, Height(from.unwrap_or(1)), n)
            .map_err(internal)?;
        recs.iter()
            .map(|r| Ok(checkpoint_view(&self.params_at(&ctx, r.height)?, r)))
            .collect()
    }

    async fn action_list(
        &self,
        ctx: ContextId,
        from: Option<u64>,
        limit_: Option<usize>,
    ) -> RpcResult<Vec<ActionView>> {
        self.count("action_list");
        self.params(&ctx)?;
        let n = limit(limit_)?;
        let store = &self.node.store;
        let items = store
            .actions_from(&ctx, Height(from.unwrap_or(1)), n)
            .map_err(internal)?;
        let mut out = Vec::with_capacity(items.len());
        for (pos, rec) in items {
            let done = store
                .checkpoint(&ctx, pos.height)
                .map_err(internal)?
                .map(|c| c.height.0);
            out.push(action_view(&pos, &rec, done).map_err(internal)?);
        }
        Ok(out)
    }

    async fn action_proof(&self, ctx: ContextId, id: String) -> RpcResult<ActionProofView> {
        self.count("action_proof");
        self.params(&ctx)?;
        let id = parse_id(&id)?;
        let pos = self
            .node
            .store
            .action_position(&id)
            .map_err(internal)?
            .filter(|pos| pos.context == ctx)
            .ok_or_else(|| {
                err(
                    codes::NOT_FOUND,
                    format!("no action {} in context {ctx}", hex::encode(id)),
                )
            })?;
        let p = self.params_at(&ctx, pos.height)?;
        action_proof(&self.node.store, &p, &pos)
            .map_err(internal)?
            .map_err(internal)
    }
}
