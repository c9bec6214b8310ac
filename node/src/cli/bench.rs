//! `conclave bench`: starts a network (one in-process validator, or N
//! validator processes written by `conclave testnet`), drives signed `kv`
//! txs through JSON-RPC from concurrent clients spread over the validators,
//! and reports finalized throughput, submit-to-commit latency, and each
//! validator's CPU time and peak memory, as JSON.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use conclave_consensus::{ContextId, Hash32};
use jsonrpsee::core::client::SubscriptionClientT;
use jsonrpsee::rpc_params;
use jsonrpsee::ws_client::WsClientBuilder;
use tokio::sync::mpsc;

use super::bench_load::{assign_clients, rpc_connections, TxSequence};
use super::bench_report::{
    idle_cpu_percent, pct, scrape, usage, MachineShares, Medians, NodeUsage, Report, Scraped,
};
use super::bench_validators::{pin, pin_sets, spawn_validators, Target};
use crate::config::Config;
use crate::context::BlockEvent;
use crate::rpc::ConclaveApiClient;

/// A client's first wait after a failed submission, doubled at each
/// failure of the same tx up to [`RETRY_MAX`]. A full pool's refusal says
/// how long to wait instead ([`crate::rpc::advised_wait`]): a load that
/// keeps the pools full does not also keep the validators busy refusing
/// it.
const RETRY_FIRST: Duration = Duration::from_millis(5);
const RETRY_MAX: Duration = Duration::from_millis(80);

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Validators (separate processes when more than one).
    #[arg(long, default_value_t = 1)]
    pub validators: usize,
    /// Transactions to submit.
    #[arg(long, default_value_t = 20_000)]
    pub txs: u64,
    /// Concurrent submitting clients (requests in flight), spread over the
    /// validators; each validator's clients sign with its member key.
    #[arg(long, default_value_t = 32)]
    pub clients: u64,
    /// Stop after this long even if not all txs committed.
    #[arg(long, default_value_t = 120)]
    pub max_secs: u64,
    /// Contexts to spread the load over (all validators are members of
    /// each); clients are assigned to contexts round-robin.
    #[arg(long, default_value_t = 1)]
    pub contexts: usize,
    /// Keys each member's `kv` txs to a context cycle through (`k0` ..).
    /// A `set` of a key new to the context also writes the app's key index
    /// (a page of up to 16 KiB): with few txs per context most are new
    /// keys, so comparing context counts needs as few keys as the smallest
    /// run's txs per context make old.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub keys: u64,
    /// Offered load in tx/s over all clients (open loop); 0 submits as fast
    /// as the clients can (closed loop).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Submit for this many seconds instead of a fixed `--txs` count.
    #[arg(long)]
    pub duration: Option<u64>,
    /// Measure anchoring instead: this many DAO payouts among 4
    /// validators, relayed to a local anvil (commit to checkpoint on chain,
    /// vote to payout).
    #[arg(long)]
    pub anchor_payouts: Option<usize>,
    /// Before the load, measure each validator's CPU for this many seconds
    /// with every context idle (what `--contexts 1000` costs at rest).
    #[arg(long, default_value_t = 0)]
    pub idle_secs: u64,
    /// Measure catch-up instead: 4 validators, the last one stopped while
    /// the others decide this many blocks, then started again; reports how
    /// long it takes to reach their tip.
    #[arg(long, conflicts_with = "anchor_payouts")]
    pub catch_up_blocks: Option<u64>,
    /// Repeat the whole run (a fresh network each time) and report every
    /// run and the median of each figure.
    #[arg(long, default_value_t = 1)]
    pub runs: usize,
    /// Pin the load generator (this process) to the last CPU and the
    /// validators to the others (with `taskset`), so the load does not
    /// take the validators' cores. Needs at least 2 CPUs.
    #[arg(long)]
    pub pin: bool,
    /// Checkpoint interval of the benched contexts (heights between two
    /// checkpoints); default: the genesis default.
    #[arg(
        long,
        value_parser = clap::value_parser!(u64).range(1..=crate::checkpoint::MAX_INTERVAL),
        conflicts_with_all = ["anchor_payouts", "catch_up_blocks"]
    )]
    pub checkpoint_interval: Option<u64>,
    /// Worker threads of each validator process (`[node] worker_threads`;
    /// 0: one per CPU each). Default: this machine's CPUs divided among
    /// the validators, as each would have its own machine's.
    #[arg(
        long,
        value_parser = clap::value_parser!(u64).range(0..=crate::config::MAX_WORKER_THREADS as u64),
        conflicts_with_all = ["anchor_payouts", "catch_up_blocks"]
    )]
    pub validator_threads: Option<u64>,
    /// Each validator's pool holds at most this many txs of a context
    /// (`[mempool] max_txs`; default: the node's default). A closed loop
    /// keeps the pools full, so a smaller pool makes the clients meet
    /// refusals sooner (`submits_refused`).
    #[arg(
        long,
        value_parser = clap::value_parser!(u64).range(1..=MAX_POOL_TXS),
        conflicts_with_all = ["anchor_payouts", "catch_up_blocks"]
    )]
    pub pool_txs: Option<u64>,
}

/// The largest `--pool-txs`.
const MAX_POOL_TXS: u64 = 10_000_000;

enum Seen {
    /// A tx's hash, when its `tx_submit` was sent, and how long its
    /// answer took.
    Sent(Hash32, Instant, Duration),
    Committed(Hash32, Instant),
}

/// The consensus benchmark (`--anchor-payouts` runs `bench_anchor`
/// instead: `cli::run` dispatches).
pub async fn run(args: &BenchArgs) -> anyhow::Result<()> {
    anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
    anyhow::ensure!(
        args.validator_threads.is_none() || args.validators > 1,
        "--validator-threads needs validators in processes of their own (--validators 2 or more); one validator runs on this process's runtime"
    );
    let pins = if args.pin {
        let (validators, load) = pin_sets()?;
        anyhow::ensure!(
            args.validators > 1,
            "--pin needs validators in processes of their own (--validators 2 or more)"
        );
        pin(std::process::id(), &load)?;
        Some(validators)
    } else {
        None
    };
    let mut reports = Vec::new();
    for run in 0..args.runs {
        let report = run_once(args, pins.as_deref()).await?;
        if args.runs > 1 {
            eprintln!(
                "run {}/{}: {:.0} tx/s finalized, p50 {:.0} ms, p99 {:.0} ms",
                run + 1,
                args.runs,
                report.finalized_tx_per_sec,
                report.latency_ms_p50,
                report.latency_ms_p99
            );
        }
        reports.push(report);
    }
    let out = if let [only] = reports.as_slice() {
        serde_json::to_string_pretty(only)?
    } else {
        serde_json::to_string_pretty(&serde_json::json!({
            "median": Medians::of(&reports),
            "runs": reports,
        }))?
    };
    println!("{out}");
    Ok(())
}

async fn run_once(args: &BenchArgs, pins: Option<&str>) -> anyhow::Result<Report> {
    // `CONCLAVE_BENCH_KEEP_HOMES=1`: the validators' homes (their stores,
    // RocksDB's LOG, WALs) stay after the run, for a post-mortem.
    let keep = std::env::var_os("CONCLAVE_BENCH_KEEP_HOMES").is_some_and(|v| v != "0");
    let dir = tempfile::Builder::new().disable_cleanup(keep).tempdir()?;
    if keep {
        eprintln!("validators' homes kept in {}", dir.path().display());
    }
    if args.validators <= 1 {
        let home = dir.path();
        let listen = super::Listen {
            rpc: Some("127.0.0.1:0".parse()?),
            metrics: Some("127.0.0.1:0".parse()?),
            p2p: Some("/ip4/127.0.0.1/tcp/0".into()),
        };
        super::init_home(home, listen)?;
        let mut config = Config::load(home)?;
        tune_validator(&mut config, args, 1);
        let (node, bound) = crate::launch::launch(home, config).await?;
        let kv = conclave_apps::by_name("kv").ok_or_else(|| anyhow::anyhow!("kv app missing"))?;
        let mut contexts = Vec::new();
        for _ in 0..args.contexts.max(1) {
            contexts.push(
                node.create_context_with(kv, Vec::new(), Vec::new(), args.checkpoint_interval)?
                    .id,
            );
        }
        let targets = vec![Target {
            rpc: bound.rpc.to_string(),
            key: node.keys.member.clone(),
            home: home.to_path_buf(),
        }];
        return drive(
            args,
            contexts,
            targets,
            vec![std::process::id().to_string()],
        )
        .await;
    }
    let (procs, targets, context) = spawn_validators(
        dir.path(),
        args.validators,
        "kv",
        args.checkpoint_interval,
        args.validator_threads.map(|w| w as usize),
        |config| tune_validator(config, args, args.validators),
    )
    .await?;
    if let Some(cpus) = pins {
        for p in &procs.0 {
            pin(p.id(), cpus)?;
        }
    }
    // More contexts among all validators, created over the network.
    let mut contexts = vec![context];
    // Creating contexts is an operator method: the first validator's own
    // credentials.
    let first =
        super::connect::connect_as(&format!("http://{}", targets[0].rpc), &targets[0].home).await?;
    let members: Vec<_> = targets
        .iter()
        .map(|t| conclave_consensus::MemberId(t.key.verifying_key().to_bytes()))
        .collect();
    while contexts.len() < args.contexts {
        let deadline = Instant::now() + Duration::from_secs(30);
        let created = loop {
            match first
                .context_create(
                    Some("kv".into()),
                    None,
                    Some(members.clone()),
                    None,
                    args.checkpoint_interval,
                )
                .await
            {
                Ok(c) if c.offers.iter().all(|o| o.accepted) => break c,
                // Peers still connecting at start.
                _ if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(500)).await
                }
                Ok(c) => anyhow::bail!("context not joined by all: {:?}", c.offers),
                Err(e) => anyhow::bail!("context_create: {e}"),
            }
        };
        contexts.push(created.context_id);
    }
    let pids = procs.0.iter().map(|c| c.id().to_string()).collect();
    drive(args, contexts, targets, pids).await
}

/// Raises a validator's `[rpc] max_connections` to what its share of the
/// clients over `validators` needs ([`rpc_connections`]), and sets its pool
/// size when `--pool-txs` asks for one.
fn tune_validator(config: &mut Config, args: &BenchArgs, validators: usize) {
    let needed = rpc_connections(args.clients, validators);
    config.rpc.max_connections = config.rpc.max_connections.max(needed);
    if let Some(txs) = args.pool_txs {
        config.mempool.max_txs = txs as usize;
    }
}

async fn drive(
    args: &BenchArgs,
    contexts: Vec<ContextId>,
    targets: Vec<Target>,
    pids: Vec<String>,
) -> anyhow::Result<Report> {
    let idle_cpu_percent = match args.idle_secs {
        0 => None,
        secs => Some(idle_cpu_percent(&pids, secs).await),
    };
    // Blocks of the first validator's contexts, as its member (good until
    // the bench ends).
    let ttl = Duration::from_secs(args.max_secs.saturating_add(300))
        .min(Duration::from_millis(crate::rpc::auth::MAX_TOKEN_TTL_MS));
    let headers =
        super::connect::credentials(&format!("http://{}", targets[0].rpc), &targets[0].home, ttl)
            .await?;
    let ws = WsClientBuilder::default()
        .set_headers(headers)
        .build(format!("ws://{}", targets[0].rpc))
        .await?;
    let mut blocks = ws
        .subscribe::<BlockEvent, _>("subscribe_blocks", rpc_params![], "unsubscribe_blocks")
        .await?;
    let (seen_tx, mut seen_rx) = mpsc::unbounded_channel();
    let assigned = assign_clients(args.clients, targets.len(), contexts.len());
    let sequences = TxSequence::all(args, &targets, &contexts, &assigned);
    // CPU and switches are counted from here: a validator's start-up (and, in process,
    // the earlier runs) is not part of the load.
    let before: Vec<NodeUsage> = pids.iter().map(|p| usage(p)).collect();
    let own_pid = std::process::id().to_string();
    // A validator in this process would count as load.
    let load_before = (!pids.contains(&own_pid)).then(|| usage(&own_pid));
    let machine_before = crate::cpu::machine_ticks();
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.max_secs);
    // With --duration, submitting stops then (commits are awaited until
    // --max-secs); otherwise after --txs.
    let submit_until = args.duration.map_or(deadline, |d| {
        start + Duration::from_secs(d).min(deadline - start)
    });
    let total = if args.duration.is_some() {
        u64::MAX
    } else {
        args.txs
    };
    let rate = args.rate;
    let sent_total = Arc::new(AtomicU64::new(0));
    // Answers that refused a tx for a full pool, each followed by a retry
    // while the run lasts (as is any other error).
    let refused = Arc::new(AtomicU64::new(0));
    let mut clients = Vec::new();
    let https = targets
        .iter()
        .map(|t| super::connect::connect(&format!("http://{}", t.rpc)))
        .collect::<Result<Vec<_>, _>>()?;
    for &(target, context) in &assigned {
        let (http, sequence, seen_tx, sent_total, refused) = (
            https[target].clone(),
            sequences[target][context].clone(),
            seen_tx.clone(),
            sent_total.clone(),
            refused.clone(),
        );
        clients.push(tokio::spawn(async move {
            let mut sent = 0u64;
            loop {
                let index = sent_total.fetch_add(1, Ordering::Relaxed);
                if index >= total || Instant::now() > submit_until {
                    return sent;
                }
                if rate > 0 {
                    // Open loop: tx `index` is due at start + index / rate.
                    let due = start + Duration::from_secs_f64(index as f64 / rate as f64);
                    if due > submit_until {
                        return sent;
                    }
                    tokio::time::sleep_until(due.into()).await;
                }
                let tx = sequence.next();
                let t0 = Instant::now();
                let mut wait = RETRY_FIRST;
                loop {
                    match http.tx_submit(tx.clone()).await {
                        Ok(r) => {
                            let _ = seen_tx.send(Seen::Sent(r.tx_hash, t0, t0.elapsed()));
                            sent += 1;
                            break;
                        }
                        Err(e) if Instant::now() < deadline => {
                            let pause = match crate::rpc::advised_wait(&e) {
                                // No room: back when the node says a block
                                // will have made some, spread over a quarter
                                // more so that the refused do not all come
                                // back at once.
                                Some(advised) => {
                                    refused.fetch_add(1, Ordering::Relaxed);
                                    advised.mul_f64(1.0 + rand::random::<f64>() / 4.0)
                                }
                                None => {
                                    let pause = wait;
                                    wait = (wait * 2).min(RETRY_MAX);
                                    pause
                                }
                            };
                            tokio::time::sleep(pause).await;
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
        let mut answers = Vec::new();
        while let Some(seen) = seen_rx.recv().await {
            match seen {
                Seen::Sent(h, t0, answered) => {
                    answers.push(answered.as_secs_f64() * 1e3);
                    match committed.remove(&h) {
                        Some(t1) => latencies.push(t1.duration_since(t0).as_secs_f64() * 1e3),
                        None => {
                            sent.insert(h, t0);
                        }
                    }
                }
                Seen::Committed(h, t1) => match sent.remove(&h) {
                    Some(t0) => latencies.push(t1.duration_since(t0).as_secs_f64() * 1e3),
                    None => {
                        committed.insert(h, t1);
                    }
                },
            }
        }
        (latencies, answers)
    });

    let mut committed = 0u64;
    let mut block_count = 0u64;
    let mut heights_by_round: Vec<u64> = Vec::new();
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
        let round = ev.round as usize;
        if heights_by_round.len() <= round {
            heights_by_round.resize(round + 1, 0);
        }
        heights_by_round[round] += 1;
        committed += ev.txs.len() as u64;
        for h in ev.txs {
            let _ = seen_tx.send(Seen::Committed(h, now));
        }
    }
    let load_cpu_secs = load_before.map(|b| usage(&own_pid).since(&b).cpu_secs);
    let machine = machine_before
        .zip(crate::cpu::machine_ticks())
        .and_then(|(before, now)| MachineShares::between(&before, &now));
    // One in-process validator has no one to fall back on or push to.
    let scraped = if pids.len() > 1 || pids[0] != own_pid {
        let mut total = Scraped::default();
        for t in &targets {
            total.add(scrape(Config::load(&t.home)?.metrics.listen).await?);
        }
        Some(total)
    } else {
        None
    };
    let mut submitted_total = submitted.unwrap_or(0);
    for c in clients {
        submitted_total += c.await.unwrap_or(0);
    }
    drop(seen_tx);
    let (mut latencies, mut answers) = collector.await?;
    let elapsed = last_commit.duration_since(start).as_secs_f64().max(1e-9);
    latencies.sort_by(|a, b| a.total_cmp(b));
    answers.sort_by(|a, b| a.total_cmp(b));
    let report = Report {
        build: if cfg!(debug_assertions) {
            "dev"
        } else {
            "release"
        },
        validators: targets.len(),
        contexts: contexts.len(),
        clients: args.clients,
        keys: args.keys,
        rate: args.rate,
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
        submit_ms_p50: pct(&answers, 0.50),
        submit_ms_p99: pct(&answers, 0.99),
        submits_refused: refused.load(Ordering::Relaxed),
        heights_by_round,
        fallbacks: scraped.as_ref().map(|s| s.fallbacks),
        pushes_failed: scraped.as_ref().map(|s| s.pushes_failed),
        txs_per_push: scraped.as_ref().and_then(Scraped::txs_per_push),
        idle_cpu_percent,
        load_cpu_secs,
        machine,
        nodes: pids
            .iter()
            .zip(&before)
            .map(|(p, before)| usage(p).since(before))
            .collect(),
    };
    Ok(report)
}
