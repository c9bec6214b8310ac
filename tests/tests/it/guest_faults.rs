//! A guest that loops forever, allocates without bound or traps fails its
//! own tx; the node keeps committing.

use conclave_node::rpc::ConclaveApiClient;
use conclave_tests::{signed, wait_committed};

use crate::{node_with_context, COMMIT_TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_guests_fail_their_tx_and_the_chain_goes_on() {
    let (node, ctx) = node_with_context("faults").await;
    let keys = node.keys();
    let c = node.client();
    let cases = [("spin", "fuel"), ("hog", "memory"), ("trap", "trap")];
    let mut nonce = 0;
    for (method, expect) in cases {
        nonce += 1;
        let h = c
            .tx_submit(signed(&keys, ctx, nonce, method, ""))
            .await
            .unwrap()
            .tx_hash;
        let s = wait_committed(&c, h, COMMIT_TIMEOUT).await;
        assert_eq!(s.status, "failed", "{method}: {s:?}");
        let err = s.error.unwrap_or_default().to_lowercase();
        assert!(
            err.contains(expect),
            "{method}: error {err:?} should mention {expect:?}"
        );

        // A good tx right after commits at a later height.
        nonce += 1;
        let ok = c
            .tx_submit(signed(&keys, ctx, nonce, "ok", ""))
            .await
            .unwrap()
            .tx_hash;
        let s2 = wait_committed(&c, ok, COMMIT_TIMEOUT).await;
        assert_eq!(s2.status, "committed", "{s2:?}");
        assert!(s2.height > s.height);
    }
    // Failed txs wrote nothing: the counter counts only the `ok` calls.
    let v = c.state_get(ctx, "n".into(), None).await.unwrap();
    assert_eq!(v.value.as_deref(), Some("3"), "{v:?}");
}
