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

/// Two members of a `chat` context: each one's `notes` view, through its
/// own node with its own member token, shows its notes and not the
/// other's, while both see every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_show_only_to_their_author() {
    let net = conclave_tests::TestNet::start_with(
        2,
        conclave_tests::NetOptions {
            app: "chat".into(),
            ..Default::default()
        },
    )
    .await;
    let ctx = net.context;
    let mut last = Vec::new();
    for (i, node) in net.nodes.iter().enumerate() {
        let (keys, c) = (node.keys(), node.client());
        for (nonce, method, text) in [
            (1, "note", format!("secret of {i}")),
            (2, "post", format!("hi from {i}")),
        ] {
            let args = serde_json::json!({ "text": text }).to_string();
            let h = c
                .tx_submit(signed(&keys, ctx, nonce, method, &args))
                .await
                .unwrap()
                .tx_hash;
            last.push((c.clone(), h));
        }
    }
    for (c, h) in last {
        assert_eq!(
            wait_committed(&c, h, COMMIT_TIMEOUT).await.status,
            "committed"
        );
    }
    for (i, node) in net.nodes.iter().enumerate() {
        let c = node.client();
        // Both members' txs are committed on this node before it answers.
        let deadline = std::time::Instant::now() + COMMIT_TIMEOUT;
        let messages = loop {
            let view = c
                .app_view(ctx, "messages".into(), Some(serde_json::json!("{}")))
                .await
                .unwrap();
            let page: serde_json::Value = serde_json::from_str(&view.output.unwrap()).unwrap();
            if page["total"] == 2 || std::time::Instant::now() > deadline {
                break page;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        };
        assert_eq!(messages["total"], 2, "every member sees every message");
        let view = c
            .app_view(ctx, "notes".into(), Some(serde_json::json!("{}")))
            .await
            .unwrap();
        assert_eq!(view.error, None);
        let out = view.output.unwrap();
        assert!(out.contains(&format!("secret of {i}")), "{out}");
        assert!(!out.contains(&format!("secret of {}", 1 - i)), "{out}");
    }
}
