//! JSON-RPC 2.0 over HTTP and WebSocket (one port), with jsonrpsee.
//! Request and response sizes, batch length, connections and subscriptions
//! per connection are bounded by `[rpc]` in the config.

mod api;
pub mod checkpoints;
pub mod membership;
pub mod types;

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::server::{BatchRequestConfig, Server, ServerConfig};
use jsonrpsee::types::ErrorObjectOwned;

pub use api::{ConclaveApiClient, ConclaveApiServer};
pub use checkpoints::{CheckpointApiClient, CheckpointApiServer};
pub use membership::{MembershipApiClient, MembershipApiServer};

use crate::node::Node;

/// Error codes beyond JSON-RPC's own.
pub mod codes {
    pub const INTERNAL: i32 = -32000;
    pub const UNKNOWN_CONTEXT: i32 = -32001;
    pub const NOT_FOUND: i32 = -32004;
    pub const TX_REJECTED: i32 = -32010;
    pub const MEMPOOL_FULL: i32 = -32011;
    pub const DISABLED: i32 = -32020;
    /// A member named at context creation could not be reached or
    /// answered with invalid keys; nothing was created.
    pub const MEMBER_UNREACHABLE: i32 = -32021;
    pub const BAD_REQUEST: i32 = -32602;
}

pub(crate) fn err(code: i32, msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, msg.into(), None::<()>)
}

impl From<crate::Error> for ErrorObjectOwned {
    fn from(e: crate::Error) -> Self {
        match e {
            crate::Error::UnknownContext(id) => {
                err(codes::UNKNOWN_CONTEXT, format!("unknown context {id}"))
            }
            other => err(codes::INTERNAL, other.to_string()),
        }
    }
}

/// Binds and starts the RPC server; it runs until the process exits.
pub async fn start(node: Arc<Node>) -> std::io::Result<SocketAddr> {
    let c = &node.config.rpc;
    let cfg = ServerConfig::builder()
        .max_request_body_size(c.max_request_bytes)
        .max_response_body_size(c.max_response_bytes)
        .max_connections(c.max_connections)
        .max_subscriptions_per_connection(c.max_subscriptions_per_connection)
        .set_batch_request_config(BatchRequestConfig::Limit(c.max_batch_len))
        .build();
    let server = Server::builder().set_config(cfg).build(c.listen).await?;
    let addr = server.local_addr()?;
    let mut methods = api::RpcImpl::new(node.clone()).into_rpc();
    methods
        .merge(checkpoints::CheckpointRpc::new(node.clone()).into_rpc())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    methods
        .merge(membership::MembershipRpc::new(node).into_rpc())
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let handle = server.start(methods);
    tokio::spawn(handle.stopped());
    Ok(addr)
}
