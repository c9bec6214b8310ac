//! A sender's txs commit in nonce order even when they arrive out of order:
//! a tx after a gap waits in the pool until the gap fills; one too far ahead
//! is refused.

use std::time::Duration;

use conclave_node::rpc::{codes, ConclaveApiClient};
use conclave_tests::{signed, wait_committed};
use jsonrpsee::core::ClientError;

use crate::{node_with_context, COMMIT_TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_order_nonces_wait_for_the_gap() {
    let (node, ctx) = node_with_context("kv").await;
    let keys = node.keys();
    let c = node.client();

    let third = c
        .tx_submit(signed(&keys, ctx, 3, "set", r#"{"key":"k","value":"3"}"#))
        .await
        .unwrap()
        .tx_hash;
    let second = c
        .tx_submit(signed(&keys, ctx, 2, "set", r#"{"key":"k","value":"2"}"#))
        .await
        .unwrap()
        .tx_hash;
    // Nothing can commit before nonce 1 arrives.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(c.tx_status(third).await.unwrap().status, "pending");
    assert_eq!(c.context_info(ctx).await.unwrap().height, 0);
    assert_eq!(c.context_nonce(ctx, keys.member_id()).await.unwrap(), 4);

    let first = c
        .tx_submit(signed(&keys, ctx, 1, "set", r#"{"key":"k","value":"1"}"#))
        .await
        .unwrap()
        .tx_hash;
    let s3 = wait_committed(&c, third, COMMIT_TIMEOUT).await;
    let s2 = c.tx_status(second).await.unwrap();
    let s1 = c.tx_status(first).await.unwrap();
    assert_eq!(
        (s1.status.as_str(), s2.status.as_str(), s3.status.as_str()),
        ("committed", "committed", "committed")
    );
    assert!((s1.height, s1.index) < (s2.height, s2.index));
    assert!((s2.height, s2.index) < (s3.height, s3.index));
    let v = c.state_get(ctx, "k".into(), None).await.unwrap();
    assert_eq!(v.value.as_deref(), Some("3"), "applied in nonce order");

    let far = signed(&keys, ctx, 3 + 10_001, "set", "{}");
    match c.tx_submit(far).await.unwrap_err() {
        ClientError::Call(e) => {
            assert_eq!(e.code(), codes::TX_REJECTED);
            assert!(e.message().contains("ahead"), "{}", e.message());
        }
        other => panic!("unexpected {other}"),
    }
}
