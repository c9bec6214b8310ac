//! `conclave bench`: starts a node in a temporary home, drives signed `kv`
//! txs through JSON-RPC from concurrent clients, and reports finalized
//! throughput and submit-to-commit latency as JSON.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use conclave_consensus::{Hash32, Tx};
use jsonrpsee::core::client::SubscriptionClientT;
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::config::Config;
use crate::context::BlockEvent;
use crate::node::Node;
use crate::rpc::ConclaveApiClient;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Transactions to submit.
    #[arg(long, default_value_t = 20_000)]
    pub txs: u64,
    /// Concurrent submitting clients (requests in flight).
    #[arg(long, default_value_t = 32)]
    pub clients: u64,
    /// Stop after this long even if not all txs committed.
    #[arg(long, default_value_t = 120)]
    pub max_secs: u64,
}

#[derive(Serialize)]
struct Report {
    validators: usize,
    clients: u64,
    txs_submitted: u64,
    txs_committed: u64,
    blocks: u64,
    duration_secs: f64,
    offered_tx_per_sec: f64,
    finalized_tx_per_sec: f64,
    blocks_per_sec: f64,
    latency_ms_p50: f64,
    latency_ms_p95: f64,
    latency_ms_p99: f64,
    peak_rss_bytes: u64,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// Peak resident set of this process (the node runs in it), from procfs.
fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

enum Seen {
    Sent(Hash32, Instant),
    Committed(Hash32, Instant),
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let home = dir.path();
    let listen = super::Listen {
        rpc: Some("127.0.0.1:0".parse()?),
        metrics: Some("127.0.0.1:0".parse()?),
        p2p: Some("/ip4/127.0.0.1/tcp/0".into()),
    };
    super::init_home(home, listen)?;
    let node = Node::open(home, Config::load(home)?)?;
    let bound = node.serve().await?;
    let kv = conclave_apps::by_name("kv").ok_or_else(|| anyhow::anyhow!("kv app missing"))?;
    let ctx = node.create_context(kv, Vec::new())?;

    let http = super::client::connect(&format!("http://{}", bound.rpc))?;
    let ws = WsClientBuilder::default()
        .build(format!("ws://{}", bound.rpc))
        .await?;
    let mut blocks = ws
        .subscribe::<BlockEvent, _>("subscribe_blocks", rpc_params![], "unsubscribe_blocks")
        .await?;

    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.max_secs);
    let next_nonce = Arc::new(AtomicU64::new(1));
    let mut clients = Vec::new();
    for _ in 0..args.clients.max(1) {
        let (http, key, next_nonce, seen_tx) = (
            http.clone(),
            node.keys.member.clone(),
            next_nonce.clone(),
            seen_tx.clone(),
        );
        let (member, total) = (node.keys.member_id(), args.txs);
        clients.push(tokio::spawn(async move {
            let mut sent = 0u64;
            loop {
                let nonce = next_nonce.fetch_add(1, Ordering::Relaxed);
                if nonce > total || Instant::now() > deadline {
                    return sent;
                }
                let tx = Tx {
                    context_id: ctx.id,
                    sender: member,
                    nonce,
                    method: "set".into(),
                    args: format!(r#"{{"key":"k{}","value":"v{nonce}"}}"#, nonce % 1000)
                        .into_bytes(),
                }
                .sign(&key);
                let t0 = Instant::now();
                loop {
                    match http.tx_submit(tx.clone()).await {
                        Ok(r) => {
                            let _ = seen_tx.send(Seen::Sent(r.tx_hash, t0));
                            sent += 1;
                            break;
                        }
                        // Mempool full: back off and let blocks drain it.
                        Err(_) if Instant::now() < deadline => {
                            tokio::time::sleep(Duration::from_millis(5)).await
                        }
                        Err(_) => return sent,
                    }
                }
            }
        }));
    }
    let collector = tokio::spawn(async move {
        let mut sent: HashMap<Hash32, Instant> = HashMap::new();
        let mut committed: HashMap<Hash32, Instant> = HashMap::new();
        let mut latencies = Vec::new();
        while let Some(seen) = seen_rx.recv().await {
            match seen {
                Seen::Sent(h, t0) => match committed.remove(&h) {
                    Some(t1) => latencies.push(t1.duration_since(t0).as_secs_f64() * 1e3),
                    None => {
                        sent.insert(h, t0);
                    }
                },
                Seen::Committed(h, t1) => match sent.remove(&h) {
                    Some(t0) => latencies.push(t1.duration_since(t0).as_secs_f64() * 1e3),
                    None => {
                        committed.insert(h, t1);
                    }
                },
            }
        }
        latencies
    });

    let mut committed = 0u64;
    let mut block_count = 0u64;
    let mut last_commit = start;
    let mut submitted: Option<u64> = None;
    while Instant::now() < deadline {
        if submitted.is_none() && clients.iter().all(|c| c.is_finished()) {
            let mut n = 0;
            for c in clients.drain(..) {
                n += c.await.unwrap_or(0);
            }
            submitted = Some(n);
        }
        if submitted.is_some_and(|n| committed >= n) {
            break;
        }
        let ev = match tokio::time::timeout(Duration::from_millis(200), blocks.next()).await {
            Ok(Some(Ok(ev))) => ev,
            Ok(Some(Err(e))) => anyhow::bail!("subscription: {e}"),
            Ok(None) => anyhow::bail!("subscription closed"),
            Err(_) => continue,
        };
        let now = Instant::now();
        last_commit = now;
        block_count += 1;
        committed += ev.txs.len() as u64;
        for h in ev.txs {
            let _ = seen_tx.send(Seen::Committed(h, now));
        }
    }
    let mut submitted_total = submitted.unwrap_or(0);
    for c in clients {
        submitted_total += c.await.unwrap_or(0);
    }
    drop(seen_tx);
    let mut latencies = collector.await?;
    let elapsed = last_commit.duration_since(start).as_secs_f64().max(1e-9);
    latencies.sort_by(|a, b| a.total_cmp(b));
    let report = Report {
        validators: 1,
        clients: args.clients,
        txs_submitted: submitted_total,
        txs_committed: committed,
        blocks: block_count,
        duration_secs: elapsed,
        offered_tx_per_sec: submitted_total as f64 / elapsed,
        finalized_tx_per_sec: committed as f64 / elapsed,
        blocks_per_sec: block_count as f64 / elapsed,
        latency_ms_p50: pct(&latencies, 0.50),
        latency_ms_p95: pct(&latencies, 0.95),
        latency_ms_p99: pct(&latencies, 0.99),
        peak_rss_bytes: peak_rss_bytes(),
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
