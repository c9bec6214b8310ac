//! RPC authorisation (RELIABILITY scenarios 13 and 14), on two nodes and
//! three contexts held by node 0: A (members 0 and 1, from `conclave
//! testnet`), B (member 0 only) and W (members 0 and 1, running a `whoami`
//! app that outputs its caller). Without credentials every read and every
//! operator method is refused with -32030, over HTTP, in batches and over
//! WebSocket; expired, forged, malformed and other nodes' tokens are refused
//! with clear messages; member 1, logged in at node 0, reads A and W there
//! but gets -32031 on B (reads and subscription), sees neither B's blocks
//! nor its txs, and is W's caller in views. Health stays public, and the
//! `conclave` CLI works for the node's own operator.

use std::process::Command;
use std::time::Duration;

use conclave_consensus::{ContextId, Hash32};
use conclave_node::context::BlockEvent;
use conclave_node::node::now_ms;
use conclave_node::rpc::auth::{sign_login, ADMIN_HEADER};
use conclave_node::rpc::policy::{Access, POLICY};
use conclave_node::rpc::{codes, CheckpointApiClient, ConclaveApiClient, DebugApiClient};
use conclave_tests::{bearer, conclave_bin, http_raw_with, signed, wait_committed, TestNet};
use jsonrpsee::core::client::{ClientT, SubscriptionClientT};
use jsonrpsee::core::params::ObjectParams;
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::{HeaderMap, HeaderValue, HttpClient};

use crate::COMMIT_TIMEOUT;

/// An app whose only method, `whoami`, outputs the 32-byte caller.
const WHOAMI: &str = r#"(module
  (import "env" "caller" (func $caller (param i32)))
  (import "env" "output_write" (func $output_write (param i32 i32)))
  (memory (export "memory") 1)
  (func (export "whoami")
    (call $caller (i32.const 0))
    (call $output_write (i32.const 0) (i32.const 32))))"#;

fn code(e: &ClientError) -> (i32, String) {
    match e {
        ClientError::Call(obj) => (obj.code(), obj.message().to_string()),
        other => (0, other.to_string()),
    }
}

fn ctx_params(ctx: ContextId) -> ObjectParams {
    let mut p = ObjectParams::new();
    p.insert("context", ctx).unwrap();
    p
}

/// Calls `method` with `{"context": ctx}` and returns its error code and
/// message (panics if it succeeds).
async fn refusal(c: &HttpClient, method: &str, ctx: ContextId) -> (i32, String) {
    match c
        .request::<serde_json::Value, _>(method, ctx_params(ctx))
        .await
    {
        Ok(v) => panic!("{method} succeeded: {v}"),
        Err(e) => code(&e),
    }
}

/// Every method the policy does not make public (prefix entries by their
/// prefix), plus the read methods by name, so a method dropped from the
/// table is still tried.
fn guarded_methods() -> Vec<String> {
    let mut names: Vec<String> = POLICY
        .iter()
        .filter(|(_, a)| *a != Access::Public)
        .map(|(n, _)| n.trim_end_matches('*').to_string())
        .collect();
    for read in [
        "context_info",
        "context_nonce",
        "context_list",
        "tx_status",
        "state_get",
        "app_view",
        "block_get",
        "checkpoint_latest",
        "checkpoint_get",
        "checkpoint_list",
        "action_list",
        "action_proof",
        "context_create",
        "debug_set_blocked_peers",
    ] {
        if !names.iter().any(|n| n == read) {
            names.push(read.into());
        }
    }
    names
}

/// Member `keys` logs in at `node` over RPC and gets a client with its
/// member token only.
async fn login_client(
    node: &conclave_tests::TestNode,
    keys: &conclave_node::keys::NodeKeys,
) -> (HttpClient, String) {
    let c = node.client_unauthenticated();
    let node_id = c.node_status().await.unwrap().member_id;
    let expires = now_ms() + 600_000;
    let sig = sign_login(&keys.member, &node_id, expires);
    let token = c
        .auth_login(keys.member_id(), expires, sig)
        .await
        .expect("login")
        .token;
    (node.client_with(bearer(&token)), token)
}

async fn set(node: &conclave_tests::TestNode, ctx: ContextId, key: &str) -> Hash32 {
    crate::commit_set(node, ctx, key, "1").await.tx_hash
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_reads_need_membership_and_operator_methods_the_admin_token() {
    let net = TestNet::start(2).await;
    let (n0, n1) = (&net.nodes[0], &net.nodes[1]);
    let (k0, k1) = (n0.keys(), n1.keys());
    let a = net.context;
    let admin = n0.client();
    let b = admin
        .context_create(Some("kv".into()), None, None, None, None)
        .await
        .unwrap()
        .context_id;
    let w = admin
        .context_create(
            None,
            Some(hex::encode(wat::parse_str(WHOAMI).unwrap())),
            Some(vec![k1.member_id()]),
            None,
            None,
        )
        .await
        .unwrap();
    assert!(w.offers.iter().all(|o| o.accepted), "{:?}", w.offers);
    let w = w.context_id;
    let ha = set(n0, a, "a").await;
    let hb = set(n0, b, "b").await;
    let unknown = ContextId([0xab; 32]);

    // Without credentials: health, status and login are public ...
    let anon = n0.client_unauthenticated();
    assert!(anon.node_health().await.unwrap().ok);
    assert_eq!(anon.node_status().await.unwrap().member_id, k0.member_id());
    // ... and every other method is refused, whatever the context.
    for method in guarded_methods() {
        for ctx in [a, b, unknown] {
            let (c, msg) = refusal(&anon, &method, ctx).await;
            assert_eq!(c, codes::UNAUTHORIZED, "{method}: {msg}");
            assert!(
                msg.contains("authentication required") || msg.contains("admin token"),
                "{method}: {msg}"
            );
        }
    }
    // The typed clients say the same.
    let e = anon.tx_status(ha).await.unwrap_err();
    assert_eq!(code(&e).0, codes::UNAUTHORIZED);
    let e = anon.context_list().await.unwrap_err();
    assert_eq!(code(&e).0, codes::UNAUTHORIZED);
    let e = anon.checkpoint_list(a, None, None).await.unwrap_err();
    assert_eq!(code(&e).0, codes::UNAUTHORIZED);
    // Txs authenticate themselves: a signed tx needs no credentials.
    let nonce = admin.context_nonce(a, k0.member_id()).await.unwrap();
    let h = anon
        .tx_submit(signed(
            &k0,
            a,
            nonce,
            "set",
            r#"{"key":"anon","value":"1"}"#,
        ))
        .await
        .expect("tx_submit is public")
        .tx_hash;
    wait_committed(&admin, h, COMMIT_TIMEOUT).await;

    // A batch is checked call by call.
    let batch = format!(
        r#"[{{"jsonrpc":"2.0","id":1,"method":"node_health"}},{{"jsonrpc":"2.0","id":2,"method":"context_info","params":{{"context":"{a}"}}}}]"#
    );
    let (_, body) = http_raw_with(n0.rpc, "POST", "/", &[], batch.as_bytes());
    let replies: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    let by_id = |id: u64| replies.iter().find(|r| r["id"] == id).unwrap().clone();
    assert_eq!(by_id(1)["result"]["ok"], true, "{body}");
    assert_eq!(by_id(2)["error"]["code"], codes::UNAUTHORIZED, "{body}");

    // Over WebSocket, with and without a context.
    let ws_anon = n0.ws_client_with(HeaderMap::new()).await.unwrap();
    for params in [ctx_params(a), ObjectParams::new()] {
        let e = ws_anon
            .subscribe::<BlockEvent, _>("subscribe_blocks", params, "unsubscribe_blocks")
            .await
            .expect_err("subscription refused");
        assert_eq!(code(&e).0, codes::UNAUTHORIZED, "{e}");
    }

    // Operator methods need the admin token: a member token is not enough,
    // nor a wrong admin token; nothing is created.
    let before = admin.context_list().await.unwrap().len();
    let (member0, _) = login_client(n0, &k0).await;
    let mut wrong_admin = n0.credentials();
    wrong_admin.insert(ADMIN_HEADER, HeaderValue::from_static("00"));
    for c in [&anon, &member0, &n0.client_with(wrong_admin)] {
        let e = c
            .context_create(Some("kv".into()), None, None, None, None)
            .await
            .unwrap_err();
        assert_eq!(code(&e).0, codes::UNAUTHORIZED, "{e}");
        assert!(code(&e).1.contains("admin token"), "{e}");
        let e = c.debug_set_blocked_peers(vec![]).await.unwrap_err();
        assert_eq!(code(&e).0, codes::UNAUTHORIZED, "{e}");
    }
    assert_eq!(admin.context_list().await.unwrap().len(), before);
    // The admin token alone lists every context but reads none.
    let mut admin_only = HeaderMap::new();
    admin_only.insert(
        ADMIN_HEADER,
        HeaderValue::try_from(n0.admin_token()).unwrap(),
    );
    let admin_only = n0.client_with(admin_only);
    let all: Vec<_> = admin_only
        .context_list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.context_id)
        .collect();
    assert!([a, b, w].iter().all(|c| all.contains(c)), "{all:?}");
    let e = admin_only.context_info(a).await.unwrap_err();
    assert_eq!(code(&e).0, codes::UNAUTHORIZED);

    // Expired, forged, malformed and another node's tokens.
    let expired = n0.mint_token(&k0.member_id(), now_ms() - 1);
    let e = n0
        .client_with(bearer(&expired))
        .context_info(a)
        .await
        .unwrap_err();
    assert_eq!(code(&e).0, codes::UNAUTHORIZED);
    assert!(code(&e).1.contains("expired"), "{e}");
    let good = n0.mint_token(&k1.member_id(), now_ms() + 600_000);
    // Member 1's token, rewritten to claim member 0.
    let forged = good.replace(&k1.member_id().to_hex(), &k0.member_id().to_hex());
    let other_node = n1.mint_token(&k0.member_id(), now_ms() + 600_000);
    for bad in [forged, other_node] {
        let e = n0
            .client_with(bearer(&bad))
            .state_get(a, "a".into(), None)
            .await
            .unwrap_err();
        assert_eq!(code(&e).0, codes::UNAUTHORIZED);
        assert!(code(&e).1.contains("does not verify"), "{e}");
    }
    let e = n0
        .client_with(bearer("garbage"))
        .block_get(a, None)
        .await
        .unwrap_err();
    assert_eq!(code(&e).0, codes::UNAUTHORIZED);
    assert!(code(&e).1.contains("malformed"), "{e}");
    let ws_expired = n0.ws_client_with(bearer(&expired)).await.unwrap();
    let e = ws_expired
        .subscribe::<BlockEvent, _>("subscribe_blocks", ctx_params(a), "unsubscribe_blocks")
        .await
        .expect_err("subscription refused");
    assert!(code(&e).1.contains("expired"), "{e}");

    // Logins: signed for another node, or too far ahead, are refused.
    let expires = now_ms() + 600_000;
    let for_n1 = sign_login(&k1.member, &k1.member_id(), expires);
    let e = anon
        .auth_login(k1.member_id(), expires, for_n1)
        .await
        .unwrap_err();
    assert_eq!(code(&e).0, codes::UNAUTHORIZED);
    assert!(code(&e).1.contains("does not verify"), "{e}");
    let far = now_ms() + 25 * 3600 * 1000;
    let sig = sign_login(&k1.member, &k0.member_id(), far);
    let e = anon.auth_login(k1.member_id(), far, sig).await.unwrap_err();
    assert!(code(&e).1.contains("24 h"), "{e}");

    // Member 1 logged in at node 0: reads A and W, not B.
    let (m1, m1_token) = login_client(n0, &k1).await;
    assert_eq!(m1.context_info(a).await.unwrap().context_id, a);
    assert_eq!(
        m1.state_get(a, "a".into(), None)
            .await
            .unwrap()
            .value
            .as_deref(),
        Some("1")
    );
    assert!(m1.block_get(a, None).await.unwrap().header.height.0 >= 1);
    assert_eq!(m1.context_nonce(a, k1.member_id()).await.unwrap(), 1);
    m1.checkpoint_latest(a).await.unwrap();
    m1.checkpoint_list(a, None, None).await.unwrap();
    m1.action_list(a, None, None).await.unwrap();
    let e = m1.checkpoint_get(a, 1).await.unwrap_err();
    assert_eq!(code(&e).0, codes::NOT_FOUND, "{e}");
    for method in POLICY
        .iter()
        .filter(|(_, acc)| matches!(acc, Access::Context { .. }))
        .map(|(n, _)| *n)
    {
        for ctx in [b, unknown] {
            let (c, msg) = refusal(&m1, method, ctx).await;
            assert_eq!(c, codes::FORBIDDEN, "{method} on {ctx}: {msg}");
            assert!(msg.contains("is not a member of context"), "{msg}");
        }
    }
    let e = m1.context_info(b).await.unwrap_err();
    assert_eq!(code(&e).0, codes::FORBIDDEN);
    let mine: Vec<_> = m1
        .context_list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.context_id)
        .collect();
    assert!(mine.contains(&a) && mine.contains(&w), "{mine:?}");
    assert!(!mine.contains(&b), "B is not member 1's: {mine:?}");
    // B's tx reads as unknown to member 1, as a hash never seen would.
    assert_eq!(m1.tx_status(ha).await.unwrap().status, "committed");
    let hidden = m1.tx_status(hb).await.unwrap();
    assert_eq!(
        (hidden.status.as_str(), hidden.context_id),
        ("unknown", None)
    );
    assert_eq!(admin.tx_status(hb).await.unwrap().status, "committed");

    // Views run with the authenticated member as the caller.
    let who = |c: HttpClient| async move {
        c.app_view(w, "whoami".into(), None)
            .await
            .unwrap()
            .output_hex
            .unwrap()
    };
    assert_eq!(who(m1.clone()).await, k1.member_id().to_hex());
    assert_eq!(who(admin.clone()).await, k0.member_id().to_hex());

    // Subscriptions: B is refused to member 1, and without a context it
    // sees its own contexts' blocks only.
    let ws1 = n0.ws_client_with(bearer(&m1_token)).await.unwrap();
    let e = ws1
        .subscribe::<BlockEvent, _>("subscribe_blocks", ctx_params(b), "unsubscribe_blocks")
        .await
        .expect_err("subscription to B refused");
    assert_eq!(code(&e).0, codes::FORBIDDEN, "{e}");
    let mut all1 = ws1
        .subscribe::<BlockEvent, _>(
            "subscribe_blocks",
            ObjectParams::new(),
            "unsubscribe_blocks",
        )
        .await
        .unwrap();
    // B's block commits first; A's after it. Events reach a subscriber in
    // commit order, so B's would arrive before A's.
    set(n0, b, "b2").await;
    let ha2 = set(n0, a, "a2").await;
    loop {
        let ev = tokio::time::timeout(Duration::from_secs(60), all1.next())
            .await
            .expect("A's block arrives")
            .unwrap()
            .unwrap();
        assert_ne!(ev.context_id, b, "member 1 saw a block of B");
        if ev.txs.contains(&ha2) {
            break;
        }
    }

    // The CLI, for the node's own operator: logs in by itself.
    let cli = |args: &[&str]| {
        let out = Command::new(conclave_bin())
            .arg("--home")
            .arg(n0.home())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = cli(&["context", "list"]);
    assert!(listed.contains(&b.to_hex()) && listed.contains(&a.to_hex()));
    let out = cli(&["query", "--context", &a.to_hex(), "--key", "a2"]);
    assert!(out.contains("proof       verified"), "{out}");
    let token = cli(&["auth", "token", "--expires-in", "600"]);
    let body = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"context_info","params":{{"context":"{a}"}}}}"#
    );
    let auth = format!("Bearer {}", token.trim());
    let (status, reply) = http_raw_with(
        n0.rpc,
        "POST",
        "/",
        &[("Authorization", &auth)],
        body.as_bytes(),
    );
    assert_eq!(status, 200);
    assert!(reply.contains(&format!(r#""context_id":"{a}""#)), "{reply}");
}
