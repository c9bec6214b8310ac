//! `conclave bench --catch-up-blocks N`: how fast a validator that was
//! down catches up. Starts four validator processes of a `kv` context,
//! stops the last one, has the other three (a quorum) decide N blocks of
//! a few `set` txs each, then starts the stopped one again and times it
//! from its start until its context reaches the others' tip: the time to
//! answer `node_health`, then the time to fetch, check and re-execute
//! every block it missed. Prints JSON.

use std::time::{Duration, Instant};

use conclave_consensus::{ContextId, MemberId, Tx};
use jsonrpsee::core::client::SubscriptionClientT;
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use serde::Serialize;

use super::bench_report::{median, usage};
use super::bench_validators::{spawn_validators, start_validator, wait_healthy, Target};
use crate::context::BlockEvent;
use crate::rpc::ConclaveApiClient;

/// Txs in flight while the history is made: each block carries the few
/// that arrived while the previous height was decided.
const IN_FLIGHT: u64 = 4;
/// No block for this long while making the history: the run failed.
const BLOCK_WAIT: Duration = Duration::from_secs(30);
/// How often the restarted validator's height is read.
const POLL: Duration = Duration::from_millis(10);

#[derive(Serialize)]
struct CatchUpReport {
    build: &'static str,
    /// Blocks the restarted validator missed (its tip was the context's
    /// first height: it stopped right after the context was made).
    blocks_behind: u64,
    /// Txs in those blocks.
    txs: u64,
    /// How long the three validators took to decide them.
    history_secs: f64,
    /// From starting the process until it answered `node_health`.
    start_secs: f64,
    /// From answering `node_health` until its context reached the tip.
    catch_up_secs: f64,
    /// `blocks_behind / catch_up_secs`.
    blocks_per_sec: f64,
    /// CPU seconds of the restarted validator, start-up included.
    cpu_secs: f64,
    peak_rss_bytes: u64,
}

/// Runs the catch-up benchmark `runs` times (a fresh network each time)
/// and prints each run's report, with the medians when there are several.
pub async fn run(blocks: u64, runs: usize) -> anyhow::Result<()> {
    anyhow::ensure!(blocks >= 1, "--catch-up-blocks must be at least 1");
    anyhow::ensure!(runs >= 1, "--runs must be at least 1");
    let mut reports = Vec::new();
    for run in 0..runs {
        let report = run_once(blocks).await?;
        if runs > 1 {
            eprintln!(
                "run {}/{runs}: {} blocks in {:.2} s",
                run + 1,
                report.blocks_behind,
                report.catch_up_secs
            );
        }
        reports.push(report);
    }
    let out = if let [only] = reports.as_slice() {
        serde_json::to_string_pretty(only)?
    } else {
        let m = |f: fn(&CatchUpReport) -> f64| median(reports.iter().map(f).collect());
        serde_json::to_string_pretty(&serde_json::json!({
            "median": {
                "start_secs": m(|r| r.start_secs),
                "catch_up_secs": m(|r| r.catch_up_secs),
                "blocks_per_sec": m(|r| r.blocks_per_sec),
                "cpu_secs": m(|r| r.cpu_secs),
            },
            "runs": reports,
        }))?
    };
    println!("{out}");
    Ok(())
}

async fn run_once(blocks: u64) -> anyhow::Result<CatchUpReport> {
    let dir = tempfile::tempdir()?;
    let (mut procs, targets, context) =
        spawn_validators(dir.path(), 4, "kv", None, None, short_timeouts).await?;
    let lagging = &targets[3];
    let start_height = connect_as(lagging)
        .await?
        .context_info(context)
        .await?
        .height;
    let mut down = procs.0.pop().expect("four validators");
    let killed = down.kill();
    down.wait()?;
    killed?;

    let made = Instant::now();
    let (tip, txs) = make_history(&targets[0], context, blocks).await?;
    let history_secs = made.elapsed().as_secs_f64();

    let started = Instant::now();
    let child = start_validator(&lagging.home, "node3.log")?;
    let pid = child.id().to_string();
    procs.0.push(child);
    wait_healthy(&lagging.rpc, Duration::from_millis(5)).await?;
    let start_secs = started.elapsed().as_secs_f64();
    let healthy = Instant::now();
    // Time enough for several blocks a second at worst.
    let deadline = healthy + Duration::from_secs(60 + blocks / 4);
    let client = connect_as(lagging).await?;
    loop {
        // An error while it still opens its contexts: not there yet.
        if client
            .context_info(context)
            .await
            .is_ok_and(|info| info.height >= tip)
        {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the restarted validator did not reach height {tip} in time"
        );
        tokio::time::sleep(POLL).await;
    }
    let catch_up_secs = healthy.elapsed().as_secs_f64();
    let used = usage(&pid);
    let behind = tip - start_height;
    let report = CatchUpReport {
        build: if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        },
        blocks_behind: behind,
        txs,
        history_secs,
        start_secs,
        catch_up_secs,
        blocks_per_sec: behind as f64 / catch_up_secs.max(1e-9),
        cpu_secs: used.cpu_secs,
        peak_rss_bytes: used.peak_rss_bytes,
    };
    Ok(report)
}

/// Every fourth height has the stopped validator as its first proposer,
/// and waits out a propose and a precommit timeout before its next round:
/// with the defaults (1 s and 0.5 s) the history would take most of the
/// run. Timeouts this short only cost rounds on a loaded machine, never
/// safety; the catch-up itself is driven by requests, not timeouts.
fn short_timeouts(config: &mut crate::config::Config) {
    let c = &mut config.consensus;
    c.timeout_propose_ms = 40;
    c.timeout_prevote_ms = 20;
    c.timeout_precommit_ms = 20;
    c.timeout_delta_ms = 20;
}

/// A client of the validator of `target`, as its member.
async fn connect_as(target: &Target) -> anyhow::Result<jsonrpsee::http_client::HttpClient> {
    super::connect::connect_as(&format!("http://{}", target.rpc), &target.home).await
}

/// Has the validator of `target` commit txs, a few in flight, until the
/// context's height is at least `blocks`; waits for every tx sent and
/// returns the tip and the txs committed.
async fn make_history(
    target: &Target,
    context: ContextId,
    blocks: u64,
) -> anyhow::Result<(u64, u64)> {
    let url = format!("http://{}", target.rpc);
    // A subscription ends with its token: good for the slowest history.
    let ttl = BLOCK_WAIT.saturating_mul(2) + Duration::from_secs(blocks);
    let ttl = ttl.min(Duration::from_millis(crate::rpc::auth::MAX_TOKEN_TTL_MS));
    let headers = super::connect::credentials(&url, &target.home, ttl).await?;
    let ws = WsClientBuilder::default()
        .set_headers(headers)
        .build(format!("ws://{}", target.rpc))
        .await?;
    let mut events = ws
        .subscribe::<BlockEvent, _>("subscribe_blocks", rpc_params![], "unsubscribe_blocks")
        .await?;
    let http = super::connect::connect(&url)?;
    let member = MemberId(target.key.verifying_key().to_bytes());
    // The context is new: this member has sent nothing yet.
    let mut nonce = 1;
    let (mut in_flight, mut committed, mut tip) = (0u64, 0u64, 0u64);
    loop {
        while tip < blocks && in_flight < IN_FLIGHT {
            let tx = Tx {
                context_id: context,
                sender: member,
                nonce,
                method: "set".into(),
                args: format!(r#"{{"key":"k{}","value":"v{nonce}"}}"#, nonce % 1000).into_bytes(),
            }
            .sign(&target.key);
            http.tx_submit(tx).await?;
            nonce += 1;
            in_flight += 1;
        }
        if in_flight == 0 {
            return Ok((tip, committed));
        }
        let event = match tokio::time::timeout(BLOCK_WAIT, events.next()).await {
            Ok(Some(Ok(event))) => event,
            Ok(Some(Err(e))) => anyhow::bail!("subscription: {e}"),
            Ok(None) => anyhow::bail!("subscription closed"),
            Err(_) => anyhow::bail!("no block for {BLOCK_WAIT:?} at height {tip}"),
        };
        if event.context_id != context {
            continue;
        }
        tip = tip.max(event.height.0);
        let n = event.txs.len() as u64;
        in_flight = in_flight.saturating_sub(n);
        committed += n;
    }
}
