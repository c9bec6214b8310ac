//! `subscribe_blocks` over WebSocket.

use std::time::Duration;

use conclave_node::context::BlockEvent;
use conclave_node::rpc::ConclaveApiClient;
use conclave_tests::signed;
use jsonrpsee::core::client::SubscriptionClientT;

use crate::node_with_context;

/// `subscribe_blocks` filtered by context delivers that context's blocks,
/// and an unknown context is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_blocks_streams_commits() {
    let (node, ctx) = node_with_context("kv").await;
    let keys = node.keys();
    let ws = node.ws_client().await;
    let mut params = jsonrpsee::core::params::ObjectParams::new();
    params.insert("context", ctx).unwrap();
    let mut sub = ws
        .subscribe::<BlockEvent, _>("subscribe_blocks", params, "unsubscribe_blocks")
        .await
        .unwrap();
    let h = node
        .client()
        .tx_submit(signed(&keys, ctx, 1, "set", r#"{"key":"a","value":"1"}"#))
        .await
        .unwrap()
        .tx_hash;
    let ev = tokio::time::timeout(Duration::from_secs(30), sub.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (ev.context_id, ev.height.0, ev.txs.clone()),
        (ctx, 1, vec![h])
    );

    let mut bad = jsonrpsee::core::params::ObjectParams::new();
    bad.insert("context", conclave_consensus::ContextId([5; 32]))
        .unwrap();
    let refused = ws
        .subscribe::<BlockEvent, _>("subscribe_blocks", bad, "unsubscribe_blocks")
        .await;
    assert!(refused.is_err(), "unknown context must be refused");
}
