//! 1,000 txs through RPC, `kill -9` mid-stream, restart: every tx the node
//! reported committed is still there at the same place, the block hashes and
//! state roots of every height before the crash are unchanged, and heights
//! continue after it.

use std::collections::BTreeMap;

use conclave_consensus::Hash32;
use conclave_node::rpc::ConclaveApiClient;
use conclave_tests::{signed, wait_committed};

use crate::{node_with_context, COMMIT_TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_mid_stream_loses_nothing_committed() {
    let (mut node, ctx) = node_with_context("kv").await;
    let keys = node.keys();
    let c = node.client();

    const TOTAL: u64 = 1000;
    const KILL_AFTER: u64 = 600;
    let mut submitted: Vec<(u64, Hash32)> = Vec::new();
    for nonce in 1..=KILL_AFTER {
        let args = format!(r#"{{"key":"k{nonce}","value":"v{nonce}"}}"#);
        let tx = signed(&keys, ctx, nonce, "set", &args);
        let r = c.tx_submit(tx).await.expect("submit");
        submitted.push((nonce, r.tx_hash));
    }
    // Wait for some to commit, then record what the node reported.
    wait_committed(&c, submitted[KILL_AFTER as usize / 2].1, COMMIT_TIMEOUT).await;
    let mut reported: BTreeMap<Hash32, (u64, u32)> = BTreeMap::new();
    for (_, h) in &submitted {
        let s = c.tx_status(*h).await.expect("status");
        if s.status == "committed" {
            reported.insert(*h, (s.height.unwrap(), s.index.unwrap()));
        }
    }
    let tip = c.context_info(ctx).await.unwrap().height;
    let mut before = BTreeMap::new();
    for h in 1..=tip {
        let b = c.block_get(ctx, Some(h)).await.unwrap();
        before.insert(h, (b.hash, b.header.state_root));
    }
    assert!(!reported.is_empty() && tip > 0);

    node.kill9();
    node.start().await;
    let c = node.client();

    for (hash, (height, index)) in &reported {
        let s = c.tx_status(*hash).await.unwrap();
        assert_eq!(s.status, "committed", "tx {hash} lost");
        assert_eq!((s.height.unwrap(), s.index.unwrap()), (*height, *index));
    }
    let info = c.context_info(ctx).await.unwrap();
    assert!(
        info.height >= tip,
        "tip went back from {tip} to {}",
        info.height
    );
    for (h, (hash, root)) in &before {
        let b = c.block_get(ctx, Some(*h)).await.unwrap();
        assert_eq!(
            (b.hash, b.header.state_root),
            (*hash, *root),
            "height {h} changed"
        );
    }

    // The rest of the stream commits on top, at later heights.
    let mut last = None;
    let next = c.context_nonce(ctx, keys.member_id()).await.unwrap();
    for nonce in next..next + (TOTAL - KILL_AFTER) {
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
    // And the state holds a value written before the crash.
    let (any_hash, _) = reported.iter().next().unwrap();
    let nonce = submitted.iter().find(|(_, h)| h == any_hash).unwrap().0;
    let v = c.state_get(ctx, format!("k{nonce}"), None).await.unwrap();
    assert_eq!(v.value.as_deref(), Some(format!("v{nonce}").as_str()));
}
