//! Process-level tests of a single-member context: real `conclave` nodes on
//! loopback, driven over JSON-RPC.

mod bad_input;
mod checkpoints;
mod crash_kill9;
mod determinism;
mod guest_faults;
mod metrics;
mod n4;
mod nonce_order;
mod proofs;
mod subscriptions;
mod views;

use std::time::Duration;

use conclave_consensus::ContextId;
use conclave_node::rpc::ConclaveApiClient;
use conclave_tests::TestNode;

pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(60);

/// A started node with one context running the bundled app `app`.
pub async fn node_with_context(app: &str) -> (TestNode, ContextId) {
    let mut node = TestNode::init();
    node.start().await;
    let created = node
        .client()
        .context_create(Some(app.into()), None, None, None, None)
        .await
        .expect("context_create");
    (node, created.context_id)
}
