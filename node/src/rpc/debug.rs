//! JSON-RPC: fault injection for the fault tests and the soak, refused
//! unless the node's config says `[debug] fault_injection = true`, and
//! only for the admin token (`policy.rs`).

use std::sync::Arc;

use conclave_consensus::MemberId;
use jsonrpsee::core::{async_trait, RpcResult};
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;

use super::{codes, err};
use crate::link_faults::LinkFault;
use crate::node::Node;

#[rpc(server, client)]
pub trait DebugApi {
    /// Cuts this node off from exactly `members` (an empty list heals).
    #[method(name = "debug_set_blocked_peers", param_kind = map)]
    async fn debug_set_blocked_peers(&self, members: Vec<MemberId>) -> RpcResult<()>;

    /// Messages from each named member are dropped with a probability or
    /// delivered late (an empty list heals every link).
    #[method(name = "debug_set_link_faults", param_kind = map)]
    async fn debug_set_link_faults(&self, faults: Vec<LinkFault>) -> RpcResult<()>;
}

pub struct DebugRpc {
    node: Arc<Node>,
}

impl DebugRpc {
    pub fn new(node: Arc<Node>) -> Self {
        Self { node }
    }

    /// Counts the call; refuses it unless fault injection is enabled.
    fn enabled(&self, method: &str) -> Result<(), ErrorObjectOwned> {
        self.node.metrics.count_rpc(method);
        if self.node.config.debug.fault_injection {
            Ok(())
        } else {
            Err(err(
                codes::DISABLED,
                "fault injection is disabled ([debug] fault_injection)",
            ))
        }
    }
}

#[async_trait]
impl DebugApiServer for DebugRpc {
    async fn debug_set_blocked_peers(&self, members: Vec<MemberId>) -> RpcResult<()> {
        self.enabled("debug_set_blocked_peers")?;
        tracing::warn!(
            blocked = members.len(),
            "fault injection: blocked peers set"
        );
        self.node
            .network
            .set_blocked(members)
            .await
            .map_err(|e| err(codes::INTERNAL, e.to_string()))
    }

    async fn debug_set_link_faults(&self, faults: Vec<LinkFault>) -> RpcResult<()> {
        self.enabled("debug_set_link_faults")?;
        if let Some(f) = faults.iter().find(|f| f.drop_permille > 1000) {
            return Err(err(
                codes::BAD_REQUEST,
                format!("drop_permille {} is over 1000", f.drop_permille),
            ));
        }
        tracing::warn!(links = faults.len(), "fault injection: link faults set");
        self.node.link_faults.set(faults);
        Ok(())
    }
}
