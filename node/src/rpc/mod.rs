//! JSON-RPC 2.0 over HTTP and WebSocket (one port), with jsonrpsee.
//! Request and response sizes, batch length, connections and subscriptions
//! per connection are bounded by `[rpc]` in the config. Who may call
//! which method is [`policy`]'s table, checked before any method runs;
//! callers prove who they are with the credentials of [`auth`].

mod api;
pub mod auth;
pub mod checkpoints;
pub mod debug;
pub mod evidence;
pub mod members;
pub mod policy;
mod subscribe;
mod tx_check;
pub mod types;

use std::net::SocketAddr;
use std::sync::Arc;

use jsonrpsee::server::middleware::rpc::RpcServiceBuilder;
use jsonrpsee::server::{BatchRequestConfig, Server, ServerConfig};
use jsonrpsee::types::ErrorObjectOwned;

pub use api::{ConclaveApiClient, ConclaveApiServer};
pub use checkpoints::{CheckpointApiClient, CheckpointApiServer};
pub use debug::{DebugApiClient, DebugApiServer};
pub use evidence::{EvidenceApiClient, EvidenceApiServer, EvidenceView};
pub use members::{MembersApiClient, MembersApiServer};

use crate::keys::RpcSecrets;
use crate::node::Node;

/// Error codes beyond JSON-RPC's own.
pub mod codes {
    pub const INTERNAL: i32 = -32000;
    pub const UNKNOWN_CONTEXT: i32 = -32001;
    pub const NOT_FOUND: i32 = -32004;
    pub const TX_REJECTED: i32 = -32010;
    pub const MEMPOOL_FULL: i32 = -32011;
    /// The node cannot write to its disk (full, failing): it takes no tx
    /// now; try again later or another member's node.
    pub const STORAGE_FAULT: i32 = -32012;
    pub const DISABLED: i32 = -32020;
    /// A member named at context creation could not be reached or
    /// answered with invalid keys; nothing was created.
    pub const MEMBER_UNREACHABLE: i32 = -32021;
    /// Credentials missing, malformed, forged or expired, or a login
    /// refused.
    pub const UNAUTHORIZED: i32 = -32030;
    /// A valid member token, of a member not in the context asked about.
    pub const FORBIDDEN: i32 = -32031;
    pub const BAD_REQUEST: i32 = -32602;
}

pub(crate) fn err(code: i32, msg: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(code, msg.into(), None::<()>)
}

/// If a `tx_submit` error is a full pool's refusal (`MEMPOOL_FULL`), the
/// wait it advises before trying again (`retry_after_ms` in its data; 50
/// ms from a node that gives none): for clients.
pub fn advised_wait(e: &jsonrpsee::core::client::Error) -> Option<std::time::Duration> {
    #[derive(serde::Deserialize)]
    struct Advice {
        retry_after_ms: u64,
    }
    let jsonrpsee::core::client::Error::Call(call) = e else {
        return None;
    };
    if call.code() != codes::MEMPOOL_FULL {
        return None;
    }
    let advised = call
        .data()
        .and_then(|data| serde_json::from_str::<Advice>(data.get()).ok())
        .map_or(50, |a| a.retry_after_ms);
    Some(std::time::Duration::from_millis(advised))
}

/// The JSON-RPC code of a node error, by its kind: the one mapping.
pub fn code_of(e: &crate::Error) -> i32 {
    use crate::Error;
    match e {
        Error::UnknownContext(_) => codes::UNKNOWN_CONTEXT,
        Error::Member { .. } => codes::MEMBER_UNREACHABLE,
        Error::TxRefused(_) => codes::TX_REJECTED,
        Error::Invalid(_) => codes::BAD_REQUEST,
        Error::Runtime(r) if r.is_module_refusal() => codes::BAD_REQUEST,
        _ => codes::INTERNAL,
    }
}

/// A node error as the JSON-RPC error answered.
pub(crate) fn error_object(e: crate::Error) -> ErrorObjectOwned {
    let msg = match &e {
        crate::Error::Runtime(r) if r.is_module_refusal() => format!("invalid app: {r}"),
        other => other.to_string(),
    };
    err(code_of(&e), msg)
}

impl From<crate::Error> for ErrorObjectOwned {
    fn from(e: crate::Error) -> Self {
        error_object(e)
    }
}

/// Binds and starts the RPC server; it runs until the process exits.
/// Creates the admin token and the member-token key if the home lacks them.
pub async fn start(node: Arc<Node>) -> crate::Result<SocketAddr> {
    let secrets = RpcSecrets::load_or_create(&node.home)?;
    let verifier = Arc::new(auth::Verifier::new(node.keys.member_id(), &secrets));
    let c = &node.config.rpc;
    let cfg = ServerConfig::builder()
        .max_request_body_size(c.max_request_bytes)
        .max_response_body_size(c.max_response_bytes)
        .max_connections(c.max_connections)
        .max_subscriptions_per_connection(c.max_subscriptions_per_connection)
        .set_batch_request_config(BatchRequestConfig::Limit(c.max_batch_len))
        .set_message_buffer_capacity(c.max_buffered_messages)
        .build();
    let mut methods = api::RpcImpl::new(node.clone(), verifier.clone()).into_rpc();
    methods
        .merge(checkpoints::CheckpointRpc::new(node.clone()).into_rpc())
        .map_err(|e| crate::Error::Setup(e.to_string()))?;
    methods
        .merge(members::MembersRpc::new(node.clone()).into_rpc())
        .map_err(|e| crate::Error::Setup(e.to_string()))?;
    methods
        .merge(evidence::EvidenceRpc::new(node.clone()).into_rpc())
        .map_err(|e| crate::Error::Setup(e.to_string()))?;
    methods
        .merge(debug::DebugRpc::new(node.clone()).into_rpc())
        .map_err(|e| crate::Error::Setup(e.to_string()))?;
    let unclassified = policy::unclassified(methods.method_names());
    if !unclassified.is_empty() {
        return Err(crate::Error::Setup(format!(
            "RPC methods without an access policy (add them to rpc::policy::POLICY): {}",
            unclassified.join(", ")
        )));
    }
    let builder = Server::builder()
        .set_config(cfg)
        .set_http_middleware(policy::credentials_layer(verifier))
        .set_rpc_middleware(
            RpcServiceBuilder::new().layer(policy::AuthorizeLayer::new(node.clone())),
        )
        .to_service_builder();
    let listener = tokio::net::TcpListener::bind(c.listen).await?;
    let addr = listener.local_addr()?;
    // jsonrpsee bounds requests in flight and WebSocket connections, not
    // idle HTTP connections: this accept loop bounds every connection.
    let slots = Arc::new(tokio::sync::Semaphore::new(c.max_connections as usize));
    let metrics = node.metrics.clone();
    tokio::spawn(async move {
        // Never stopped: the server runs until the process exits.
        let (stop, _handle) = jsonrpsee::server::stop_channel();
        loop {
            let socket = match listener.accept().await {
                Ok((socket, _)) => without_nagle(socket),
                Err(e) => {
                    // Out of descriptors, say: wait rather than spin.
                    tracing::warn!(error = %e, "RPC accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                metrics.rpc_connections_refused_total.inc();
                drop(socket);
                continue;
            };
            let service = builder.clone().build(methods.clone(), stop.clone());
            let stopped = stop.clone().shutdown();
            tokio::spawn(async move {
                let _ =
                    jsonrpsee::server::serve_with_graceful_shutdown(socket, service, stopped).await;
                drop(slot);
            });
        }
    });
    Ok(addr)
}

/// An accepted connection with Nagle's algorithm off (jsonrpsee's own
/// accept loop does this; this one must too). With it on, a subscription's
/// next notification waited for the client's acknowledgement of the last
/// one, which the client delays by up to 40 ms: block events reached
/// subscribers tens of milliseconds after the commit (p90 21 ms, p99 38
/// at 1,000 tx/s, docs/PERFORMANCE.md).
fn without_nagle(socket: tokio::net::TcpStream) -> tokio::net::TcpStream {
    if let Err(e) = socket.set_nodelay(true) {
        tracing::debug!(error = %e, "cannot turn Nagle's algorithm off on an RPC connection");
    }
    socket
}

#[cfg(test)]
mod tests {
    use conclave_consensus::{ContextId, MemberId};

    use super::{code_of, codes, error_object, without_nagle};
    use crate::Error;

    #[test]
    fn each_kind_of_node_error_has_its_code_whatever_its_message() {
        let cases = [
            (
                Error::UnknownContext(ContextId([1; 32])),
                codes::UNKNOWN_CONTEXT,
            ),
            (
                Error::member(MemberId([2; 32]), "refused"),
                codes::MEMBER_UNREACHABLE,
            ),
            (Error::TxRefused("nonce".into()), codes::TX_REJECTED),
            (
                Error::Invalid("member x is a member already".into()),
                codes::BAD_REQUEST,
            ),
            (
                Error::Runtime(conclave_runtime::Error::NotWasm),
                codes::BAD_REQUEST,
            ),
            (
                Error::Runtime(conclave_runtime::Error::Internal("x".into())),
                codes::INTERNAL,
            ),
            // A message that looks like another kind changes nothing.
            (Error::Setup("member 00 refused".into()), codes::INTERNAL),
        ];
        for (e, code) in cases {
            assert_eq!(code_of(&e), code, "{e}");
        }
        let obj = error_object(Error::Runtime(conclave_runtime::Error::NotWasm));
        assert!(
            obj.message().starts_with("invalid app: "),
            "{}",
            obj.message()
        );
    }

    #[tokio::test]
    async fn accepted_connections_send_without_waiting_for_acks() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (_client, accepted) = tokio::join!(tokio::net::TcpStream::connect(addr), async {
            listener.accept().await.unwrap().0
        });
        assert!(
            !accepted.nodelay().unwrap(),
            "Nagle's algorithm is on by default"
        );
        assert!(without_nagle(accepted).nodelay().unwrap());
    }
}
