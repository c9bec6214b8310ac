//! `conclave bench`: starts a node in a temporary home, drives signed `kv`
//! txs through JSON-RPC and reports finalized throughput and
//! submit-to-commit latency as JSON.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Args;
use conclave_consensus::Tx;
use jsonrpsee::core::client::SubscriptionClientT;
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use serde::Serialize;

use crate::config::Config;
use crate::context::BlockEvent;
use crate::node::Node;
use crate::rpc::ConclaveApiClient;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Transactions to submit.
    #[arg(long, default_value_t = 5000)]
    pub txs: u64,
    /// Stop after this long even if not all txs committed.
    #[arg(long, default_value_t = 120)]
    pub max_secs: u64,
}

#[derive(Serialize)]
struct Report {
    validators: usize,
    txs_submitted: u64,
    txs_committed: u64,
    blocks: u64,
    duration_secs: f64,
    submit_tx_per_sec: f64,
    finalized_tx_per_sec: f64,
    latency_ms_p50: f64,
    latency_ms_p95: f64,
    latency_ms_p99: f64,
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let home = dir.path();
    super::init_home(
        home,
        Some("127.0.0.1:0".parse()?),
        Some("127.0.0.1:0".parse()?),
    )?;
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

    let member = node.keys.member_id();
    let key = node.keys.member.clone();
    let mut sent: HashMap<conclave_consensus::Hash32, Instant> = HashMap::new();
    let mut latencies = Vec::new();
    let mut committed = 0u64;
    let mut block_count = 0u64;
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.max_secs);

    // One submitter task; the block subscription is read concurrently.
    let (tx_hashes, mut hashes_rx) = tokio::sync::mpsc::unbounded_channel();
    let submit_http = http.clone();
    let total = args.txs;
    let submitter = tokio::spawn(async move {
        for nonce in 1..=total {
            let tx = Tx {
                context_id: ctx.id,
                sender: member,
                nonce,
                method: "set".into(),
                args: format!(r#"{{"key":"k{}","value":"v{nonce}"}}"#, nonce % 1000).into_bytes(),
            }
            .sign(&key);
            let t0 = Instant::now();
            match submit_http.tx_submit(tx).await {
                Ok(r) => {
                    let _ = tx_hashes.send((r.tx_hash, t0));
                }
                Err(e) => {
                    // Mempool full: back off and let blocks drain it.
                    tracing::debug!(error = %e, "submit refused");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            if Instant::now() > deadline {
                break;
            }
        }
        Instant::now()
    });

    let mut submitted = 0u64;
    let mut submit_done: Option<Instant> = None;
    let mut submitter = Some(submitter);
    while Instant::now() < deadline {
        while let Ok((h, t)) = hashes_rx.try_recv() {
            sent.insert(h, t);
            submitted += 1;
        }
        if let Some(handle) = submitter.as_ref() {
            if handle.is_finished() {
                submit_done = submitter.take().map(|_| Instant::now());
            }
        }
        if submit_done.is_some() && committed >= submitted && sent.is_empty() {
            break;
        }
        let ev = match tokio::time::timeout(Duration::from_millis(200), blocks.next()).await {
            Ok(Some(Ok(ev))) => ev,
            Ok(Some(Err(e))) => anyhow::bail!("subscription: {e}"),
            Ok(None) => anyhow::bail!("subscription closed"),
            Err(_) => continue,
        };
        let now = Instant::now();
        block_count += 1;
        while let Ok((h, t)) = hashes_rx.try_recv() {
            sent.insert(h, t);
            submitted += 1;
        }
        for h in ev.txs {
            committed += 1;
            if let Some(t0) = sent.remove(&h) {
                latencies.push(now.duration_since(t0).as_secs_f64() * 1000.0);
            }
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let submit_secs = submit_done
        .map(|t| t.duration_since(start).as_secs_f64())
        .unwrap_or(elapsed);
    latencies.sort_by(|a, b| a.total_cmp(b));
    let report = Report {
        validators: 1,
        txs_submitted: submitted,
        txs_committed: committed,
        blocks: block_count,
        duration_secs: elapsed,
        submit_tx_per_sec: submitted as f64 / submit_secs.max(1e-9),
        finalized_tx_per_sec: committed as f64 / elapsed.max(1e-9),
        latency_ms_p50: pct(&latencies, 0.50),
        latency_ms_p95: pct(&latencies, 0.95),
        latency_ms_p99: pct(&latencies, 0.99),
    };
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
