//! `app_view` runs an app method read-only on the latest state.

use conclave_node::rpc::ConclaveApiClient;
use conclave_tests::{signed, wait_committed};

use crate::{node_with_context, COMMIT_TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_read_state_and_cannot_write() {
    let (node, ctx) = node_with_context("kv").await;
    let keys = node.keys();
    let c = node.client();
    let h = c
        .tx_submit(signed(&keys, ctx, 1, "set", r#"{"key":"a","value":"1"}"#))
        .await
        .unwrap()
        .tx_hash;
    wait_committed(&c, h, COMMIT_TIMEOUT).await;

    let get = serde_json::json!(r#"{"key":"a"}"#);
    let v = c
        .app_view(ctx, "get".into(), Some(get.clone()))
        .await
        .unwrap();
    assert_eq!(v.error, None);
    assert_eq!(v.output.as_deref(), Some(r#"{"key":"a","value":"1"}"#));
    // Again, from the node's app cache: same answer.
    let again = c.app_view(ctx, "get".into(), Some(get)).await.unwrap();
    assert_eq!(again.output, v.output);

    let set = serde_json::json!(r#"{"key":"a","value":"2"}"#);
    let w = c.app_view(ctx, "set".into(), Some(set)).await.unwrap();
    assert!(w.error.unwrap_or_default().contains("read-only"));
    let after = c.state_get(ctx, "a".into(), None).await.unwrap();
    assert_eq!(after.value.as_deref(), Some("1"), "a view changes nothing");

    let unknown = c.app_view(ctx, "nope".into(), None).await.unwrap();
    assert!(unknown.error.unwrap_or_default().contains("unknown method"));
}
