//! 1,000 txs through RPC with `kill -9` mid-stream, then restart: every tx
//! the node reported committed (through `subscribe_blocks`) is still there
//! at the same height, every height's block hash and state root is
//! unchanged, and heights continue after the crash.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_consensus::Hash32;
use conclave_node::context::BlockEvent;
use conclave_node::rpc::{ConclaveApiClient, DebugApiClient};
use conclave_tests::{signed, wait_committed};
use jsonrpsee::core::client::SubscriptionClientT;
use jsonrpsee::rpc_params;

use crate::{node_with_context, COMMIT_TIMEOUT};

const TOTAL: u64 = 1000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_stream_loses_nothing_committed() {
    let (mut node, ctx) = node_with_context("kv").await;
    let keys = node.keys();
    let ws = node.ws_client().await;
    let mut sub = ws
        .subscribe::<BlockEvent, _>("subscribe_blocks", rpc_params![], "unsubscribe_blocks")
        .await
        .unwrap();

    // A client streams txs until the node dies under it.
    let acked = Arc::new(AtomicU64::new(0));
    let streamer = {
        let (c, keys, acked) = (node.client(), node.keys(), acked.clone());
        tokio::spawn(async move {
            for nonce in 1..=TOTAL {
                let args = format!(r#"{{"key":"k{nonce}","value":"v{nonce}"}}"#);
                if c.tx_submit(signed(&keys, ctx, nonce, "set", &args))
                    .await
                    .is_err()
                {
                    return;
                }
                acked.store(nonce, Ordering::SeqCst);
            }
        })
    };

    // Record what the node reports committed, and kill it mid-stream.
    let mut reported: BTreeMap<Hash32, u64> = BTreeMap::new();
    let mut roots: BTreeMap<u64, (Hash32, Hash32)> = BTreeMap::new();
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    while reported.len() < 300 {
        assert!(Instant::now() < deadline, "too slow to commit 300 txs");
        let ev = tokio::time::timeout(Duration::from_secs(10), sub.next())
            .await
            .expect("a block within 10 s")
            .expect("subscription open")
            .expect("block event");
        roots.insert(ev.height.0, (ev.hash, ev.state_root));
        for h in ev.txs {
            reported.insert(h, ev.height.0);
        }
    }
    node.kill9();
    let _ = streamer.await;
    let acked_before_kill = acked.load(Ordering::SeqCst);
    assert!(
        acked_before_kill < TOTAL,
        "the kill must land mid-stream ({acked_before_kill} acked)"
    );

    node.start().await;
    let c = node.client();
    for (hash, height) in &reported {
        let s = c.tx_status(*hash).await.unwrap();
        assert_eq!(s.status, "committed", "tx {hash} lost");
        assert_eq!(s.height, Some(*height), "tx {hash} moved");
    }
    let tip = *roots.keys().last().unwrap();
    assert!(c.context_info(ctx).await.unwrap().height >= tip);
    for (h, (hash, root)) in &roots {
        let b = c.block_get(ctx, Some(*h)).await.unwrap();
        assert_eq!(
            (b.hash, b.header.state_root),
            (*hash, *root),
            "height {h} changed"
        );
    }

    // The stream resumes from the node's next nonce and commits on top.
    let next = c.context_nonce(ctx, keys.member_id()).await.unwrap();
    let mut last = None;
    for nonce in next..=TOTAL.max(next) {
        let args = format!(r#"{{"key":"k{nonce}","value":"v{nonce}"}}"#);
        last = Some(
            c.tx_submit(signed(&keys, ctx, nonce, "set", &args))
                .await
                .unwrap()
                .tx_hash,
        );
    }
    let s = wait_committed(&c, last.unwrap(), COMMIT_TIMEOUT).await;
    assert_eq!(s.status, "committed");
    assert!(s.height.unwrap() > tip, "heights continue after the crash");
    let v = c.state_get(ctx, "k1".into(), None).await.unwrap();
    assert_eq!(v.value.as_deref(), Some("v1"));
}

/// A member that acknowledged txs it could not pass on (cut off from the
/// others) and was then killed still has them when it restarts: they
/// commit, and nothing it acknowledged is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn txs_acknowledged_before_a_kill_commit_after_the_restart() {
    use conclave_consensus::MemberId;
    use conclave_tests::{NetOptions, TestNet};

    let mut net = TestNet::start_configured(4, NetOptions::default(), |c| {
        c.debug.fault_injection = true;
    })
    .await;
    let ctx = net.context;
    crate::load(&net, 4).await;
    let others: Vec<MemberId> = net.nodes[..3]
        .iter()
        .map(|n| n.keys().member_id())
        .collect();
    let c3 = net.nodes[3].client();
    c3.debug_set_blocked_peers(others).await.unwrap();
    // The cut is in force when the call returns: node 3 holds no
    // connection (a push sent on one still open would reach the others).
    let (_, text) = conclave_tests::http_raw(net.nodes[3].metrics, "GET", "/metrics", b"");
    let peers = text
        .lines()
        .find_map(|l| l.strip_prefix("conclave_p2p_peers "))
        .and_then(|v| v.trim().parse::<f64>().ok());
    assert_eq!(peers, Some(0.0), "node 3 still connected");

    let keys = net.nodes[3].keys();
    let first = c3.context_nonce(ctx, keys.member_id()).await.unwrap();
    let mut acked = Vec::new();
    for nonce in first..first + 20 {
        let args = format!(r#"{{"key":"cut{nonce}","value":"{nonce}"}}"#);
        let ok = c3
            .tx_submit(signed(&keys, ctx, nonce, "set", &args))
            .await
            .unwrap();
        acked.push(ok.tx_hash);
    }
    // Nobody else has them.
    let c0 = net.nodes[0].client();
    for h in &acked {
        assert_eq!(c0.tx_status(*h).await.unwrap().status, "unknown");
    }

    net.nodes[3].kill9();
    net.nodes[3].start().await;
    assert!(net.nodes[3]
        .log()
        .contains("acknowledged txs back in the pool"));
    for h in &acked {
        let s = wait_committed(&c0, *h, COMMIT_TIMEOUT).await;
        assert_eq!(s.status, "committed", "{s:?}");
    }
    crate::assert_agreement(&net).await;
}
