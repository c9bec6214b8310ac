//! Floods and RPC abuse at process level (reliability scenarios 12 and
//! 13), bounded in count and time, on one member of four while valid load
//! runs through it:
//!
//! - a thousand each of oversized, duplicate, badly signed, wrong-nonce
//!   and non-member txs: each refused with its own JSON-RPC error, none
//!   relayed (no other member's node refuses a pushed tx), the valid load
//!   all committed, `node_health` answering throughout, blocks no more
//!   than 10 s apart;
//! - the mempool filled (two members stopped, so nothing commits): one
//!   sender's share refused, then the whole pool, each with "mempool
//!   full"; everything admitted commits once the members are back;
//! - too many connections, a body over the limit, a batch over the limit,
//!   and a subscriber that never reads: refused or dropped;
//! - the node's resident memory before and after: flat.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_consensus::{ContextId, Hash32, MemberId, SignedTx, Tx};
use conclave_node::keys::NodeKeys;
use conclave_node::rpc::{codes, ConclaveApiClient};
use conclave_tests::{
    conclave_bin, http_raw, signed, wait_committed, NetOptions, TestNet, TestNode,
};
use jsonrpsee::core::ClientError;
use jsonrpsee::http_client::HttpClient;

use crate::{load, COMMIT_TIMEOUT};

/// Bad txs of each kind.
const EACH: u64 = 1_000;
/// Valid txs sent through the flooded node meanwhile.
const VALID: u64 = 300;
const MAX_TXS: usize = 256;
const MAX_PER_SENDER: usize = 128;
const MAX_CONNECTIONS: u32 = 64;

fn refusal(e: ClientError) -> (i32, String) {
    match e {
        ClientError::Call(obj) => (obj.code(), obj.message().to_string()),
        other => (0, other.to_string()),
    }
}

/// The wait a full pool's refusal advises (`retry_after_ms` in its data).
fn advised_ms(e: &ClientError) -> Option<u64> {
    let ClientError::Call(obj) = e else {
        return None;
    };
    let data: serde_json::Value = serde_json::from_str(obj.data()?.get()).ok()?;
    data["retry_after_ms"].as_u64()
}

/// The sum of `name`'s samples on `node` whose labels contain `label`.
fn metric(node: &TestNode, name: &str, label: &str) -> f64 {
    let (_, body) = http_raw(node.metrics, "GET", "/metrics", b"");
    body.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// `keys`' next nonce in `ctx`, as node `c` sees it.
async fn next_nonce(c: &HttpClient, ctx: ContextId, keys: &NodeKeys) -> u64 {
    c.context_nonce(ctx, keys.member_id()).await.unwrap()
}

/// Submits `count` valid txs from `keys` through `c` in nonce order,
/// waiting out "mempool full"; returns their hashes.
async fn valid_load(c: HttpClient, ctx: ContextId, keys: NodeKeys, count: u64) -> Vec<Hash32> {
    let first = next_nonce(&c, ctx, &keys).await;
    let mut hashes = Vec::new();
    for nonce in first..first + count {
        let tx = signed(
            &keys,
            ctx,
            nonce,
            "set",
            &format!(r#"{{"key":"v{nonce}","value":"ok"}}"#),
        );
        let deadline = Instant::now() + COMMIT_TIMEOUT;
        loop {
            match c.tx_submit(tx.clone()).await {
                Ok(ok) => break hashes.push(ok.tx_hash),
                Err(e) => {
                    let (code, msg) = refusal(e);
                    assert!(
                        code == codes::MEMPOOL_FULL && Instant::now() < deadline,
                        "a valid tx refused: {code} {msg}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    hashes
}

/// One kind of bad tx: how to make the `i`-th, and the refusal expected.
struct Bad {
    name: &'static str,
    make: Box<dyn Fn(u64) -> SignedTx + Send + Sync>,
    code: i32,
    says: &'static str,
}

/// Sends `EACH` of `bad` through `c`; returns the refusals that were not
/// the one expected (and txs accepted).
async fn flood(c: HttpClient, bad: Arc<Bad>) -> Vec<String> {
    let mut wrong = Vec::new();
    for i in 0..EACH {
        match c.tx_submit((bad.make)(i)).await {
            Ok(ok) => wrong.push(format!("{}: accepted as {}", bad.name, ok.tx_hash)),
            Err(e) => {
                let (code, msg) = refusal(e);
                if code != bad.code || !msg.contains(bad.says) {
                    wrong.push(format!("{}: {code} {msg}", bad.name));
                }
            }
        }
    }
    wrong
}

/// Opens a WebSocket to `node`, subscribes to blocks with its member
/// token, and never reads again.
fn deaf_subscriber(node: &TestNode) -> TcpStream {
    let mut s = TcpStream::connect(node.rpc).unwrap();
    let token = node.mint_token(
        &node.keys().member_id(),
        conclave_node::node::now_ms() + 3_600_000,
    );
    let upgrade = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Authorization: Bearer {token}\r\n\r\n",
        node.rpc
    );
    s.write_all(upgrade.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // As many subscriptions as one connection may hold, each a masked
    // text frame (a client's frames are masked): every block is sent that
    // many times, so the socket's buffers fill in a few thousand txs.
    for id in 0..16 {
        let payload =
            format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"subscribe_blocks","params":{{}}}}"#);
        let mask = [0x12u8, 0x34, 0x56, 0x78];
        let mut frame = vec![0x81, 0x80 | payload.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(payload.bytes().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        s.write_all(&frame).unwrap();
    }
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_and_rpc_abuse_are_refused_and_change_nothing() {
    let net = TestNet::start_configured(4, NetOptions::default(), |c| {
        c.mempool.max_txs = MAX_TXS;
        c.mempool.max_txs_per_sender = MAX_PER_SENDER;
        c.rpc.max_connections = MAX_CONNECTIONS;
        c.rpc.max_buffered_messages = 16;
    })
    .await;
    let ctx = net.context;
    load(&net, 8).await;
    let target = &net.nodes[0];
    let c = target.client();
    let rss_before = target.rss_bytes();
    let pushed_refused = |net: &TestNet| -> Vec<f64> {
        net.nodes[1..]
            .iter()
            .map(|n| metric(n, "conclave_txs_pushed_total", "outcome=\"refused\""))
            .collect()
    };
    let refused_before = pushed_refused(&net);

    // Health, asked every 20 ms throughout.
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let (c, stop) = (target.client(), stop.clone());
        tokio::spawn(async move {
            let (mut times, mut failures) = (Vec::new(), 0);
            while !stop.load(Ordering::SeqCst) {
                let t = Instant::now();
                match tokio::time::timeout(Duration::from_secs(10), c.node_health()).await {
                    Ok(Ok(h)) if h.ok => times.push(t.elapsed()),
                    _ => failures += 1,
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (times, failures)
        })
    };

    // 1. Bad txs, with valid load through the same node.
    let member = net.nodes[1].keys();
    let committed = crate::commit_set(&net.nodes[1], ctx, "dup", "1").await;
    let committed_tx = {
        let nonce = next_nonce(&c, ctx, &member).await - 1;
        signed(&member, ctx, nonce, "set", r#"{"key":"dup","value":"1"}"#)
    };
    assert_eq!(committed_tx.hash(), committed.tx_hash);
    let base = next_nonce(&c, ctx, &member).await;
    let stranger = ed25519_dalek::SigningKey::from_bytes(&[0x77; 32]);
    let stranger_id = MemberId(stranger.verifying_key().to_bytes());
    let m = |f: Box<dyn Fn(u64) -> SignedTx + Send + Sync>| f;
    let kinds = [
        Bad {
            name: "oversized",
            make: m(Box::new({
                let k = net.nodes[1].keys();
                move |i| signed(&k, ctx, base + i, "set", &"x".repeat(70 * 1024))
            })),
            code: codes::TX_REJECTED,
            says: "exceeds the limit",
        },
        Bad {
            name: "duplicate",
            make: m(Box::new(move |_| committed_tx.clone())),
            code: codes::TX_REJECTED,
            says: "is not above the sender's last nonce",
        },
        Bad {
            name: "badly signed",
            make: m(Box::new({
                let k = net.nodes[1].keys();
                move |i| {
                    let mut tx = signed(&k, ctx, base + i, "set", r#"{"key":"b","value":"x"}"#);
                    tx.signature[7] ^= 0x40;
                    tx
                }
            })),
            code: codes::TX_REJECTED,
            says: "bad signature",
        },
        Bad {
            name: "wrong nonce",
            make: m(Box::new({
                let k = net.nodes[1].keys();
                move |i| {
                    signed(
                        &k,
                        ctx,
                        base + 50_000 + i,
                        "set",
                        r#"{"key":"n","value":"x"}"#,
                    )
                }
            })),
            code: codes::TX_REJECTED,
            says: "ahead of the sender's last nonce",
        },
        Bad {
            name: "non-member",
            make: m(Box::new(move |i| {
                Tx {
                    context_id: ctx,
                    sender: stranger_id,
                    nonce: i + 1,
                    method: "set".into(),
                    args: br#"{"key":"s","value":"x"}"#.to_vec(),
                }
                .sign(&stranger)
            })),
            code: codes::TX_REJECTED,
            says: "not a member",
        },
    ];
    let flood_from = c.context_info(ctx).await.unwrap().height;
    let valid = tokio::spawn(valid_load(target.client(), ctx, net.nodes[2].keys(), VALID));
    let floods: Vec<_> = kinds
        .into_iter()
        .map(|bad| tokio::spawn(flood(target.client(), Arc::new(bad))))
        .collect();
    let mut wrong = Vec::new();
    for f in floods {
        wrong.extend(f.await.unwrap());
    }
    assert!(
        wrong.is_empty(),
        "{} bad txs not refused as expected, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    let hashes = valid.await.unwrap();
    for h in &hashes {
        let s = wait_committed(&c, *h, COMMIT_TIMEOUT).await;
        assert_eq!(s.status, "committed", "{s:?}");
    }
    // Blocks kept coming while the valid load waited: the gaps between
    // consecutive blocks' times during the floods stay bounded (a stall
    // would show as a gap of many seconds).
    let flood_to = c.context_info(ctx).await.unwrap().height;
    let mut times = Vec::new();
    for h in flood_from..=flood_to {
        times.push(c.block_get(ctx, Some(h)).await.unwrap().header.time_ms);
    }
    let mut gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
    gaps.sort();
    assert!(!gaps.is_empty(), "no block committed during the floods");
    let (p50, max) = (gaps[gaps.len() / 2], gaps[gaps.len() - 1]);
    println!(
        "block interval during the floods: {} blocks, p50 {p50} ms, max {max} ms",
        gaps.len()
    );
    assert!(
        max <= 10_000,
        "a {max} ms gap between blocks during the floods"
    );
    // Nothing refused was passed on: no other member's node refused a tx
    // pushed to it.
    assert_eq!(pushed_refused(&net), refused_before, "bad txs were relayed");

    // 2. The mempool filled: two members stopped, nothing commits. One
    //    sender may hold only its share; then the pool is full for all.
    net.nodes[2].pause();
    net.nodes[3].pause();
    let mut admitted = Vec::new();
    for (who, keys) in [(0, net.nodes[0].keys()), (1, net.nodes[1].keys())] {
        let first = next_nonce(&c, ctx, &keys).await;
        for nonce in first..first + MAX_PER_SENDER as u64 {
            let tx = signed(&keys, ctx, nonce, "set", r#"{"key":"f","value":"x"}"#);
            admitted.push(c.tx_submit(tx).await.unwrap().tx_hash);
        }
        let over = signed(&keys, ctx, first + MAX_PER_SENDER as u64, "set", "{}");
        let refused = c.tx_submit(over.clone()).await.unwrap_err();
        let advised = advised_ms(&refused);
        let (code, msg) = refusal(refused);
        assert_eq!(code, codes::MEMPOOL_FULL, "member {who}: {msg}");
        assert!(msg.contains("the most one sender may hold"), "{msg}");
        // It says when to come back: within the node's bounds (5 ms to
        // 1 s), here longer as the stall lasts.
        assert!(matches!(advised, Some(5..=1_000)), "{advised:?}");
        // Refused before its signature is checked: a full pool answers a
        // badly signed tx the same, for the price of a lookup.
        let mut forged = over;
        forged.signature[0] ^= 1;
        let (code, msg) = refusal(c.tx_submit(forged).await.unwrap_err());
        assert_eq!(code, codes::MEMPOOL_FULL, "member {who}: {msg}");
    }
    let third = net.nodes[3].keys();
    let tx = signed(&third, ctx, next_nonce(&c, ctx, &third).await, "set", "{}");
    let refused = c.tx_submit(tx.clone()).await.unwrap_err();
    let advised = advised_ms(&refused);
    let (code, msg) = refusal(refused);
    assert_eq!(code, codes::MEMPOOL_FULL, "{msg}");
    assert!(
        msg.contains(&format!("mempool is full ({MAX_TXS} txs)")),
        "{msg}"
    );
    assert!(matches!(advised, Some(5..=1_000)), "{advised:?}");
    // A member's `tx submit --wait` that the full pool refuses comes back
    // when the refusal advises, and gets in once blocks have made room.
    let rejected = metric(&net.nodes[0], "conclave_txs_total", "rejected");
    let cli = {
        let (home, url) = (net.nodes[3].home().to_path_buf(), net.nodes[0].url());
        let args = [
            "tx",
            "submit",
            "--context",
            &ctx.to_hex(),
            "--method",
            "set",
        ]
        .map(str::to_owned);
        std::thread::spawn(move || {
            std::process::Command::new(conclave_bin())
                .arg("--home")
                .arg(home)
                .args(["--node", &url])
                .args(args)
                .args(["--args", r#"{"key":"cli","value":"waited"}"#])
                .args(["--wait", "--timeout-secs", "300"])
                .output()
                .expect("run conclave")
        })
    };
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    while metric(&net.nodes[0], "conclave_txs_total", "rejected") <= rejected {
        assert!(Instant::now() < deadline, "the CLI's tx was never refused");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    net.nodes[2].resume();
    net.nodes[3].resume();
    for h in &admitted {
        let s = wait_committed(&c, *h, COMMIT_TIMEOUT).await;
        assert_eq!(s.status, "committed", "{s:?}");
    }
    let out = tokio::task::spawn_blocking(move || cli.join().unwrap())
        .await
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("the pool is full; trying again in"),
        "{stderr}"
    );
    assert!(stdout.contains("status  committed"), "{stdout}");

    // 3. RPC abuse. Connections over the limit are refused while those
    //    within it are served.
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS + 40 {
        if let Ok(s) = TcpStream::connect(target.rpc) {
            held.push(s);
        }
    }
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"node_health"}"#;
    let request = format!(
        "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        target.rpc,
        body.len()
    );
    let mut served = 0;
    for s in &mut held {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let _ = s.write_all(request.as_bytes());
        let mut buf = [0u8; 512];
        if let Ok(n) = s.read(&mut buf) {
            if String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200") {
                served += 1;
            }
        }
    }
    assert!(
        served > 0 && served <= MAX_CONNECTIONS as usize,
        "{served} of {} connections served (limit {MAX_CONNECTIONS})",
        held.len()
    );
    drop(held);
    // A body and a batch over their limits.
    // No answer read (status 0) is retried: the server may still be
    // counting the connections just closed as open and turn this one away,
    // or close it before the client has written its body (a reset can
    // discard the 413 already sent).
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    let status = loop {
        let (status, _) = http_raw(target.rpc, "POST", "/", &vec![b' '; 2 * 1024 * 1024]);
        if status != 0 || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status, 413, "an oversized body was not refused");
    let batch: Vec<String> = (0..33)
        .map(|i| format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"node_health"}}"#))
        .collect();
    let (status, body) = http_raw(
        target.rpc,
        "POST",
        "/",
        format!("[{}]", batch.join(",")).as_bytes(),
    );
    assert!(
        body.contains("too large") || body.contains("Batch"),
        "a batch over the limit was served: {status} {body}"
    );
    // A subscriber that never reads is dropped once its queue fills.
    let deaf = deaf_subscriber(target);
    let deadline = Instant::now() + COMMIT_TIMEOUT * 2;
    while metric(
        target,
        "conclave_rpc_subscribers_dropped_total",
        "subscribe_blocks",
    ) < 1.0
    {
        assert!(
            Instant::now() < deadline,
            "a subscriber that never reads was not dropped"
        );
        load(&net, 100).await;
    }
    drop(deaf);

    stop.store(true, Ordering::SeqCst);
    let (mut times, failures) = prober.await.unwrap();
    times.sort();
    let (p50, p99, max) = (
        times[times.len() / 2],
        times[times.len() * 99 / 100],
        times[times.len() - 1],
    );
    println!(
        "node_health during the floods: {} answers, p50 {p50:?}, p99 {p99:?}, max {max:?}; \
         {failures} failed",
        times.len()
    );
    assert_eq!(failures, 0, "node_health failed {failures} times");
    let rss_after = target.rss_bytes();
    println!(
        "resident memory: {} MiB before, {} MiB after",
        rss_before >> 20,
        rss_after >> 20
    );
    assert!(
        rss_after < rss_before + (128 << 20),
        "memory grew from {} MiB to {} MiB",
        rss_before >> 20,
        rss_after >> 20
    );
}
