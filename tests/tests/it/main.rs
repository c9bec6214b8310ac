//! Process-level tests of a single-member context: real `conclave` nodes on
//! loopback, driven over JSON-RPC.

mod anchor;
mod at_rest;
mod bad_input;
mod bench;
mod byzantine;
mod chat;
mod checkpoints;
mod clock_skew;
mod contexts;
mod crash_kill9;
mod determinism;
mod disk_full;
mod faults;
mod flood;
mod fsync_failure;
mod guest_faults;
mod home_lock;
mod membership;
mod metrics;
mod n4;
mod nonce_order;
mod privacy;
mod proofs;
mod repair;
mod rpc_auth;
mod soak;
mod subscriptions;
mod views;
mod worker_threads;

use std::time::{Duration, Instant};

use conclave_consensus::ContextId;
use conclave_node::rpc::types::TxStatusView;
use conclave_node::rpc::ConclaveApiClient;
use conclave_tests::{signed, wait_committed, TestNet, TestNode};

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

/// Asserts all running nodes hold identical blocks and roots up to the
/// lowest tip among them, and returns that tip.
pub async fn assert_agreement(net: &TestNet) -> u64 {
    let mut tips = Vec::new();
    for node in net.nodes.iter().filter(|n| n.is_running()) {
        tips.push(
            node.client()
                .context_info(net.context)
                .await
                .unwrap()
                .height,
        );
    }
    let tip = *tips.iter().min().unwrap();
    for h in 1..=tip {
        let mut seen = None;
        for node in net.nodes.iter().filter(|n| n.is_running()) {
            let b = node.client().block_get(net.context, Some(h)).await.unwrap();
            let got = (b.hash, b.header.state_root);
            assert_eq!(*seen.get_or_insert(got), got, "fork at height {h}");
        }
    }
    tip
}

/// A node's tip in the net's context.
pub async fn tip(node: &TestNode, net: &TestNet) -> u64 {
    node.client()
        .context_info(net.context)
        .await
        .unwrap()
        .height
}

/// The tip every running node reached, with the same blocks: `load`
/// returns once each tx committed on the node it went to, and a node may
/// still be committing the last height.
pub async fn agreed_tip(net: &TestNet) -> u64 {
    converge(net).await;
    assert_agreement(net).await
}

/// Waits until every running node is at the highest tip among them.
pub async fn converge(net: &TestNet) -> u64 {
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    loop {
        let mut tips = Vec::new();
        for node in net.nodes.iter().filter(|n| n.is_running()) {
            tips.push(tip(node, net).await);
        }
        let max = *tips.iter().max().unwrap();
        if tips.iter().all(|t| *t == max) {
            return max;
        }
        assert!(Instant::now() < deadline, "tips did not converge: {tips:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Submits `count` txs round-robin over the running nodes, each signed by
/// the receiving node's member, and waits until all are committed.
pub async fn load(net: &TestNet, count: usize) {
    let running: Vec<&TestNode> = net.nodes.iter().filter(|n| n.is_running()).collect();
    load_on(&running, net.context, count).await
}

/// Submits `method(args)` through `node`, signed by its member with its
/// next nonce; returns the node's client and the tx hash.
pub async fn submit_call(
    node: &TestNode,
    ctx: ContextId,
    method: &str,
    args: &str,
) -> (
    jsonrpsee::http_client::HttpClient,
    conclave_consensus::Hash32,
) {
    let keys = node.keys();
    let c = node.client();
    let nonce = c.context_nonce(ctx, keys.member_id()).await.unwrap();
    let h = c
        .tx_submit(signed(&keys, ctx, nonce, method, args))
        .await
        .unwrap()
        .tx_hash;
    (c, h)
}

/// [`submit_call`], then waits until the tx commits or fails; returns its
/// status.
pub async fn call_and_wait(
    node: &TestNode,
    ctx: ContextId,
    method: &str,
    args: &str,
) -> TxStatusView {
    let (c, h) = submit_call(node, ctx, method, args).await;
    wait_committed(&c, h, COMMIT_TIMEOUT).await
}

/// Submits a kv `set` through `node` ([`submit_call`]).
pub async fn submit_set(
    node: &TestNode,
    ctx: ContextId,
    key: &str,
    value: &str,
) -> (
    jsonrpsee::http_client::HttpClient,
    conclave_consensus::Hash32,
) {
    let args = format!(r#"{{"key":"{key}","value":"{value}"}}"#);
    submit_call(node, ctx, "set", &args).await
}

/// [`submit_set`], then waits until the tx is committed; returns its
/// status.
pub async fn commit_set(node: &TestNode, ctx: ContextId, key: &str, value: &str) -> TxStatusView {
    let (c, h) = submit_set(node, ctx, key, value).await;
    let s = wait_committed(&c, h, COMMIT_TIMEOUT).await;
    assert_eq!(s.status, "committed", "{s:?}");
    s
}

/// Submits `count` kv txs round-robin over `nodes`, each signed by the
/// receiving node's member, and waits until all are committed.
pub async fn load_on(nodes: &[&TestNode], ctx: ContextId, count: usize) {
    let mut last = Vec::new();
    for i in 0..count {
        let node = nodes[i % nodes.len()];
        last.push(submit_set(node, ctx, &format!("k{i}"), &i.to_string()).await);
    }
    for (c, h) in last {
        let s = wait_committed(&c, h, COMMIT_TIMEOUT).await;
        assert_eq!(s.status, "committed", "{s:?}");
    }
}
