//! Bad input gets a clear error and changes nothing.

use conclave_consensus::{ContextId, Hash32};
use conclave_node::rpc::{codes, ConclaveApiClient};
use conclave_tests::{http_raw, http_raw_with, signed, wait_committed};
use jsonrpsee::core::ClientError;

use crate::{node_with_context, COMMIT_TIMEOUT};

fn code_and_message(e: ClientError) -> (i32, String) {
    match e {
        ClientError::Call(obj) => (obj.code(), obj.message().to_string()),
        other => (0, other.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_and_changes_nothing() {
    let (node, ctx) = node_with_context("kv").await;
    let keys = node.keys();
    let c = node.client();

    // One good tx so there is state to protect.
    let good = signed(&keys, ctx, 1, "set", r#"{"key":"a","value":"1"}"#);
    let h = c.tx_submit(good.clone()).await.unwrap().tx_hash;
    wait_committed(&c, h, COMMIT_TIMEOUT).await;
    let before = c.context_info(ctx).await.unwrap();

    // Bad signature.
    let mut forged = signed(&keys, ctx, 2, "set", r#"{"key":"a","value":"evil"}"#);
    forged.signature[0] ^= 1;
    let (code, msg) = code_and_message(c.tx_submit(forged).await.unwrap_err());
    assert_eq!(code, codes::TX_REJECTED);
    assert!(msg.contains("bad signature"), "{msg}");

    // Replayed tx and replayed nonce.
    let (code, msg) = code_and_message(c.tx_submit(good).await.unwrap_err());
    assert_eq!(code, codes::TX_REJECTED);
    assert!(msg.contains("nonce"), "{msg}");
    let replay = signed(&keys, ctx, 1, "set", r#"{"key":"a","value":"2"}"#);
    let (code, msg) = code_and_message(c.tx_submit(replay).await.unwrap_err());
    assert_eq!(code, codes::TX_REJECTED, "{msg}");

    // Oversized payload: over the tx limit, and over the request limit.
    let big = "x".repeat(100 * 1024);
    let oversized = signed(
        &keys,
        ctx,
        2,
        "set",
        &format!(r#"{{"key":"b","value":"{big}"}}"#),
    );
    let (code, msg) = code_and_message(c.tx_submit(oversized).await.unwrap_err());
    assert_eq!(code, codes::TX_REJECTED);
    assert!(msg.contains("exceeds the limit"), "{msg}");
    let huge = "y".repeat(2 * 1024 * 1024);
    let body = format!(r#"{{"jsonrpc":"2.0","id":1,"method":"node_health","params":["{huge}"]}}"#);
    let (status, _) = http_raw(node.rpc, "POST", "/", body.as_bytes());
    assert_eq!(status, 413, "request over the body limit is refused");

    // Unknown context.
    let stranger = signed(&keys, ContextId([0xab; 32]), 1, "set", "{}");
    let (code, msg) = code_and_message(c.tx_submit(stranger).await.unwrap_err());
    assert_eq!(code, codes::UNKNOWN_CONTEXT, "{msg}");
    let (code, _) = code_and_message(c.context_info(ContextId([0xab; 32])).await.unwrap_err());
    assert_eq!(code, codes::UNKNOWN_CONTEXT);

    // Malformed JSON-RPC, bad params and an unknown method.
    let (status, body) = http_raw(node.rpc, "POST", "/", b"{not json");
    assert_eq!(status, 200);
    assert!(body.contains("-32700"), "parse error: {body}");
    let token = node.mint_token(&keys.member_id(), conclave_node::node::now_ms() + 60_000);
    let (_, body) = http_raw_with(
        node.rpc,
        "POST",
        "/",
        &[("Authorization", &format!("Bearer {token}"))],
        br#"{"jsonrpc":"2.0","id":1,"method":"tx_status","params":{"hash":"nothex"}}"#,
    );
    assert!(body.contains("-32602"), "invalid params: {body}");
    let (_, body) = http_raw(
        node.rpc,
        "POST",
        "/",
        br#"{"jsonrpc":"2.0","id":1,"method":"no_such_method","params":[]}"#,
    );
    assert!(body.contains("-32601"), "method not found: {body}");
    let status = c.tx_status(Hash32([7; 32])).await.unwrap();
    assert_eq!(status.status, "unknown");

    // Nothing changed, and the node is still healthy.
    assert!(c.node_health().await.unwrap().ok);
    let after = c.context_info(ctx).await.unwrap();
    assert_eq!(
        (after.height, after.state_root),
        (before.height, before.state_root)
    );
    assert_eq!(after.pending_txs, Some(0));
    let v = c.state_get(ctx, "a".into(), None).await.unwrap();
    assert_eq!(v.value.as_deref(), Some("1"));
    assert_eq!(c.context_nonce(ctx, keys.member_id()).await.unwrap(), 2);
}
