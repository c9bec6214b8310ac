//! The bundled `chat` app in a real context: posts are txs, `messages` a
//! view.

use conclave_node::rpc::ConclaveApiClient;
use conclave_tests::{signed, wait_committed};

use crate::{node_with_context, COMMIT_TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_posts_and_pages_messages() {
    let (node, ctx) = node_with_context("chat").await;
    let keys = node.keys();
    let c = node.client();
    let mut last = None;
    for (nonce, text) in [(1, "hello"), (2, "world"), (3, "")] {
        let args = serde_json::json!({ "text": text }).to_string();
        last = Some(
            c.tx_submit(signed(&keys, ctx, nonce, "post", &args))
                .await
                .unwrap()
                .tx_hash,
        );
    }
    let failed = wait_committed(&c, last.unwrap(), COMMIT_TIMEOUT).await;
    assert_eq!(failed.status, "failed", "an empty message is refused");

    let view = c
        .app_view(ctx, "messages".into(), Some(serde_json::json!("{}")))
        .await
        .unwrap();
    assert_eq!(view.error, None);
    let page: serde_json::Value = serde_json::from_str(&view.output.unwrap()).unwrap();
    assert_eq!(page["total"], 2);
    assert_eq!(page["messages"][0]["text"], "hello");
    assert_eq!(page["messages"][1]["text"], "world");
    assert_eq!(
        page["messages"][0]["author"],
        keys.member_id().to_string(),
        "the author is the signing member"
    );
}
