//! Prometheus metrics of the node, in base units, named after CometBFT's,
//! and the HTTP endpoint that serves them (`GET /metrics`).

use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use prometheus::{
    GaugeVec, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};
use tokio::net::TcpListener;
use tracing::{debug, warn};

pub struct Metrics {
    pub registry: Registry,
    pub consensus_height: IntGaugeVec,
    pub consensus_rounds: IntGaugeVec,
    /// How long a member waits for a round's proposal: the configured
    /// propose timeout, stretched while its proposers' proposals arrive
    /// late (`context/pace.rs`).
    pub consensus_propose_wait_seconds: GaugeVec,
    /// Heights in progress over all of the node's contexts.
    pub heights_running: prometheus::IntGauge,
    pub heights_held: prometheus::IntGauge,
    /// Heights held since start (each hold counted once).
    pub heights_held_total: prometheus::IntCounter,
    /// How short of the CPU it may use the node is lately (`crate::cpu`),
    /// 0 to 1.
    pub cpu_shortage: prometheus::Gauge,
    /// `conclave_cpu_cores`: what the CPU shortage is measured against.
    pub cpu_cores: prometheus::Gauge,
    /// 1 while a context does not sign: its own precommits were found in
    /// commits its sign guard did not record (`context::sign_check`).
    pub consensus_signing_refused: IntGaugeVec,
    /// 1 while a context cannot write its own files (a full disk, an I/O
    /// error): it signs, commits and admits nothing (`context/storage.rs`).
    pub storage_fault: IntGaugeVec,
    pub block_interval_seconds: Histogram,
    /// Executing a block's txs: `build` (the proposer) or `validate` (the
    /// other members re-executing a proposal).
    pub block_execution_seconds: HistogramVec,
    pub txs_total: IntCounterVec,
    /// Txs other members' nodes pushed to this one, by outcome: admitted,
    /// known (pending or committed already), full (no room), refused
    /// (invalid: a node relays only what it admitted, so this stays 0
    /// among honest members).
    pub txs_pushed_total: IntCounterVec,
    pub mempool_size: IntGaugeVec,
    pub wasm_fuel_used_total: IntCounter,
    pub rpc_requests_total: IntCounterVec,
    /// RPC connections closed at once: `[rpc] max_connections` were open.
    pub rpc_connections_refused_total: IntCounter,
    /// Subscribers dropped for not reading fast enough, by method.
    pub rpc_subscribers_dropped_total: IntCounterVec,
    pub consensus_validators: IntGaugeVec,
    pub sync_blocks_total: IntCounter,
    pub consensus_missed_blocks: IntCounterVec,
    /// Times a struggling height fell back on the safety net: asking a
    /// member for decided blocks (`sync`) or redialling a member whose
    /// gossip went silent (`reconnect`); and times an idle context heard
    /// from the node's tip watch that a member was ahead (`idle`). Zero in
    /// a healthy network.
    pub consensus_fallbacks_total: IntCounterVec,
    /// Members' compact proposals by how their blocks came together:
    /// `complete` (every tx here when it arrived) or `asked` (the proposer
    /// was asked for the missing ones).
    pub compact_proposals_total: IntCounterVec,
    /// Equivocations proven against a member (evidence stored).
    pub consensus_equivocations_total: IntCounterVec,
    pub checkpoint_height: IntGaugeVec,
    pub checkpoint_signers: IntGaugeVec,
    pub actions_pending: IntGaugeVec,
    /// Context payloads that did not open: `reason` is `malformed`,
    /// `unknown_key` (a key epoch this node does not hold) or `tag`.
    pub sealed_rejected_total: IntCounterVec,
}

impl Metrics {
    pub fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let consensus_height = IntGaugeVec::new(
            Opts::new(
                "conclave_consensus_height",
                "Last committed height of a context",
            ),
            &["context"],
        )?;
        let heights_running = prometheus::IntGauge::new(
            "conclave_heights_running",
            "Heights in progress over all of the node's contexts",
        )?;
        registry.register(Box::new(heights_running.clone()))?;
        let heights_held = prometheus::IntGauge::new(
            "conclave_heights_held",
            "Contexts holding their next height for a fuller block (or its proposal)",
        )?;
        registry.register(Box::new(heights_held.clone()))?;
        let heights_held_total = prometheus::IntCounter::new(
            "conclave_heights_held_total",
            "Heights held for a fuller block (or their proposal), each counted once",
        )?;
        registry.register(Box::new(heights_held_total.clone()))?;
        let cpu_shortage = prometheus::Gauge::new(
            "conclave_cpu_shortage",
            "How short of the CPU it may use (conclave_cpu_cores) the node is lately, 0 to 1: how far a busy node holds its contexts' heights for fuller blocks (0: it has CPU to spare and starts them at once); measured while the node is busy (2 or more heights running or held), its last value kept while it is not",
        )?;
        registry.register(Box::new(cpu_shortage.clone()))?;
        let cpu_cores = prometheus::Gauge::new(
            "conclave_cpu_cores",
            "Cores' worth of CPU the node may use, as its pacing sees them: the CPUs it may run on (its affinity), or fewer where a CPU quota on its cgroup or one above it caps them; read at the start and with each measure of the shortage",
        )?;
        registry.register(Box::new(cpu_cores.clone()))?;
        let consensus_rounds = IntGaugeVec::new(
            Opts::new(
                "conclave_consensus_rounds",
                "Round of the height in progress",
            ),
            &["context"],
        )?;
        let consensus_signing_refused = IntGaugeVec::new(
            Opts::new(
                "conclave_consensus_signing_refused",
                "1 while a context does not sign: another process signed with this node's key",
            ),
            &["context"],
        )?;
        registry.register(Box::new(consensus_signing_refused.clone()))?;
        let storage_fault = IntGaugeVec::new(
            Opts::new(
                "conclave_storage_fault",
                "1 while a context cannot write to disk (full or failing) and waits, committing nothing",
            ),
            &["context"],
        )?;
        registry.register(Box::new(storage_fault.clone()))?;
        let block_interval_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "conclave_block_interval_seconds",
                "Time between consecutive commits of a context",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
        )?;
        let block_execution_seconds = HistogramVec::new(
            HistogramOpts::new(
                "conclave_block_execution_seconds",
                "Time to execute a block's txs, by stage: build (proposer) or validate (members)",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["stage"],
        )?;
        let txs_total = IntCounterVec::new(
            Opts::new(
                "conclave_txs_total",
                "Transactions by outcome: accepted/rejected at submit, committed/failed at commit",
            ),
            &["context", "status"],
        )?;
        let mempool_size = IntGaugeVec::new(
            Opts::new("conclave_mempool_size", "Pending transactions of a context"),
            &["context"],
        )?;
        let wasm_fuel_used_total = IntCounter::new(
            "conclave_wasm_fuel_used_total",
            "Fuel consumed by committed transactions",
        )?;
        let consensus_missed_blocks = IntCounterVec::new(
            Opts::new(
                "conclave_consensus_missed_blocks",
                "Committed blocks whose commit certificate lacks the validator's precommit",
            ),
            &["context", "validator"],
        )?;
        let rpc_requests_total = IntCounterVec::new(
            Opts::new("conclave_rpc_requests_total", "JSON-RPC requests by method"),
            &["method"],
        )?;
        let rpc_connections_refused_total = IntCounter::new(
            "conclave_rpc_connections_refused_total",
            "RPC connections closed at once because [rpc] max_connections were open",
        )?;
        registry.register(Box::new(rpc_connections_refused_total.clone()))?;
        let rpc_subscribers_dropped_total = IntCounterVec::new(
            Opts::new(
                "conclave_rpc_subscribers_dropped_total",
                "Subscribers dropped for falling behind (not reading), by method",
            ),
            &["method"],
        )?;
        registry.register(Box::new(rpc_subscribers_dropped_total.clone()))?;
        let consensus_validators = IntGaugeVec::new(
            Opts::new(
                "conclave_consensus_validators",
                "Members validating a context",
            ),
            &["context"],
        )?;
        registry.register(Box::new(consensus_validators.clone()))?;
        let sync_blocks_total = IntCounter::new(
            "conclave_sync_blocks_total",
            "Decided blocks applied through catch-up",
        )?;
        registry.register(Box::new(sync_blocks_total.clone()))?;
        let checkpoint_height = IntGaugeVec::new(
            Opts::new(
                "conclave_checkpoint_height",
                "Height of a context's latest completed checkpoint",
            ),
            &["context"],
        )?;
        let checkpoint_signers = IntGaugeVec::new(
            Opts::new(
                "conclave_checkpoint_signers",
                "Signers of a context's latest completed checkpoint",
            ),
            &["context"],
        )?;
        let actions_pending = IntGaugeVec::new(
            Opts::new(
                "conclave_actions_pending",
                "Committed on-chain actions whose checkpoint has no quorum yet",
            ),
            &["context"],
        )?;
        let sealed_rejected_total = IntCounterVec::new(
            Opts::new(
                "conclave_sealed_rejected_total",
                "Sealed context payloads that did not open, by reason",
            ),
            &["context", "reason"],
        )?;
        registry.register(Box::new(sealed_rejected_total.clone()))?;
        if let Some(disk_sync_seconds) = crate::fsx::disk_sync_seconds() {
            registry.register(Box::new(disk_sync_seconds.clone()))?;
        }
        registry.register(Box::new(checkpoint_height.clone()))?;
        registry.register(Box::new(checkpoint_signers.clone()))?;
        registry.register(Box::new(actions_pending.clone()))?;
        registry.register(Box::new(consensus_height.clone()))?;
        registry.register(Box::new(consensus_rounds.clone()))?;
        let consensus_propose_wait_seconds = GaugeVec::new(
            Opts::new(
                "conclave_consensus_propose_wait_seconds",
                "How long a round's proposal is waited for: the propose timeout, stretched while proposals arrive late",
            ),
            &["context"],
        )?;
        registry.register(Box::new(consensus_propose_wait_seconds.clone()))?;
        registry.register(Box::new(block_interval_seconds.clone()))?;
        registry.register(Box::new(block_execution_seconds.clone()))?;
        registry.register(Box::new(txs_total.clone()))?;
        let txs_pushed_total = IntCounterVec::new(
            Opts::new(
                "conclave_txs_pushed_total",
                "Txs pushed by other members' nodes, by outcome: admitted, known, full, refused (invalid)",
            ),
            &["context", "outcome"],
        )?;
        registry.register(Box::new(txs_pushed_total.clone()))?;
        registry.register(Box::new(mempool_size.clone()))?;
        registry.register(Box::new(wasm_fuel_used_total.clone()))?;
        registry.register(Box::new(rpc_requests_total.clone()))?;
        registry.register(Box::new(consensus_missed_blocks.clone()))?;
        let consensus_fallbacks_total = IntCounterVec::new(
            Opts::new(
                "conclave_consensus_fallbacks_total",
                "The safety net: a struggling height asked for decided blocks (sync) or redialled a silent member (reconnect); an idle context found a member ahead (idle)",
            ),
            &["context", "kind"],
        )?;
        registry.register(Box::new(consensus_fallbacks_total.clone()))?;
        let compact_proposals_total = IntCounterVec::new(
            Opts::new(
                "conclave_compact_proposals_total",
                "Members' compact proposals by how their blocks came together: complete (every tx here), asked (the proposer was asked for the missing)",
            ),
            &["context", "outcome"],
        )?;
        registry.register(Box::new(compact_proposals_total.clone()))?;
        let consensus_equivocations_total = IntCounterVec::new(
            Opts::new(
                "conclave_consensus_equivocations_total",
                "Conflicting messages a member signed at one position, proven by evidence this node stored",
            ),
            &["context", "validator"],
        )?;
        registry.register(Box::new(consensus_equivocations_total.clone()))?;
        // Process metrics: CPU, resident memory, open fds, start time.
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            registry,
            consensus_height,
            consensus_rounds,
            consensus_propose_wait_seconds,
            heights_running,
            heights_held,
            heights_held_total,
            cpu_shortage,
            cpu_cores,
            consensus_signing_refused,
            storage_fault,
            block_interval_seconds,
            block_execution_seconds,
            txs_total,
            txs_pushed_total,
            mempool_size,
            wasm_fuel_used_total,
            rpc_requests_total,
            rpc_connections_refused_total,
            rpc_subscribers_dropped_total,
            consensus_validators,
            sync_blocks_total,
            consensus_missed_blocks,
            consensus_fallbacks_total,
            compact_proposals_total,
            consensus_equivocations_total,
            checkpoint_height,
            checkpoint_signers,
            actions_pending,
            sealed_rejected_total,
        })
    }

    /// Counts one call of RPC method `method`.
    pub fn count_rpc(&self, method: &str) {
        self.rpc_requests_total.with_label_values(&[method]).inc();
    }

    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# encoding error: {e}\n"))
    }
}

/// Serves `GET /metrics` on `addr` until the task is dropped: the node's
/// registry and the network layer's counters.
pub async fn serve(
    metrics: Arc<Metrics>,
    network: conclave_network::NetworkHandle,
    listener: TcpListener,
) {
    serve_with(
        move || metrics.render() + &render_network(&network.metrics()),
        listener,
    )
    .await
}

/// The network layer's counters (plain atomics in `conclave-network`) in
/// Prometheus' text format, under the names its `MetricsSnapshot` gives,
/// and its count of connected peers (kept by the network actor itself, so
/// it is exact when a `set_blocked` returns).
pub fn render_network(m: &conclave_network::MetricsSnapshot) -> String {
    let counters: [(&str, &str, u64); 14] = [
        (
            "conclave_p2p_messages_accepted_total",
            "Consensus messages from members accepted and delivered (gossip or direct, once each)",
            m.messages_accepted,
        ),
        (
            "conclave_p2p_messages_rejected_total",
            "Consensus messages from non-members, oversized or malformed, rejected and penalised",
            m.messages_rejected,
        ),
        (
            "conclave_p2p_messages_ignored_total",
            "Gossip on a topic no longer joined",
            m.messages_ignored,
        ),
        (
            "conclave_p2p_events_dropped_total",
            "Network events dropped because the node was behind",
            m.events_dropped,
        ),
        (
            "conclave_p2p_requests_received_total",
            "Requests from members handed to the node",
            m.requests_received,
        ),
        (
            "conclave_p2p_requests_refused_total",
            "Requests and pushes refused (not a member, unknown context, busy)",
            m.requests_refused,
        ),
        (
            "conclave_p2p_requests_malformed_total",
            "Inbound requests and pushes oversized or malformed",
            m.requests_malformed,
        ),
        (
            "conclave_p2p_publish_no_peers_total",
            "Gossip publishes that found no peer",
            m.publish_no_peers,
        ),
        (
            "conclave_p2p_pushes_sent_total",
            "Pushes (txs straight to a member) sent, one per recipient",
            m.pushes_sent,
        ),
        (
            "conclave_p2p_pushes_received_total",
            "Pushes from members delivered to the node",
            m.pushes_received,
        ),
        (
            "conclave_p2p_pushes_failed_total",
            "Pushes and direct messages lost (queue full, stream failed) or refused",
            m.pushes_failed,
        ),
        (
            "conclave_p2p_penalties_total",
            "Members penalised for payloads that do not open or decode",
            m.penalties,
        ),
        (
            "conclave_p2p_reconnects_total",
            "Connections to members closed and redialled because a context no longer heard them",
            m.reconnects,
        ),
        (
            "conclave_p2p_reconnects_skipped_total",
            "Such reconnections not made: the member's consensus traffic still came over its connection",
            m.reconnects_skipped,
        ),
    ];
    let mut out = format!(
        "# HELP conclave_p2p_peers Connected peers\n# TYPE conclave_p2p_peers gauge\nconclave_p2p_peers {}\n",
        m.peers
    );
    for (name, help, value) in counters {
        out.push_str(&format!(
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}\n"
        ));
    }
    out
}

/// Serves `GET /metrics` with the text `render` makes (also the relayer's
/// own registry) until the task is dropped.
pub async fn serve_with<F>(render: F, listener: TcpListener)
where
    F: Fn() -> String + Clone + Send + Sync + 'static,
{
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "metrics accept failed");
                continue;
            }
        };
        let render = render.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                let render = render.clone();
                async move {
                    let resp = if req.uri().path() == "/metrics" {
                        Response::builder()
                            .header("content-type", "text/plain; version=0.0.4")
                            .body(Full::new(Bytes::from(render())))
                    } else {
                        Response::builder()
                            .status(StatusCode::NOT_FOUND)
                            .body(Full::new(Bytes::from_static(b"see /metrics\n")))
                    };
                    resp
                }
            });
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                debug!(error = %e, "metrics connection ended");
            }
        });
    }
}

/// Binds the metrics endpoint.
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_counters_render_as_prometheus_counters() {
        let snapshot = conclave_network::MetricsSnapshot {
            pushes_sent: 7,
            pushes_failed: 2,
            peers: 3,
            ..Default::default()
        };
        let text = render_network(&snapshot);
        assert!(text.contains(
            "# TYPE conclave_p2p_pushes_sent_total counter\nconclave_p2p_pushes_sent_total 7\n"
        ));
        assert!(text.contains("\nconclave_p2p_pushes_failed_total 2\n"));
        assert!(text.contains("\nconclave_p2p_messages_accepted_total 0\n"));
        assert!(text.contains("# TYPE conclave_p2p_peers gauge\nconclave_p2p_peers 3\n"));
        // Every other sample line is `name value`, after its HELP and TYPE lines.
        for sample in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.starts_with("conclave_p2p_peers "))
        {
            let (name, value) = sample.split_once(' ').unwrap();
            assert!(name.starts_with("conclave_p2p_") && name.ends_with("_total"));
            value.parse::<u64>().unwrap();
        }
    }

    #[test]
    fn disk_syncs_show_in_every_node_registry_of_the_process() {
        // Two nodes in one process (the simulation, the tests) share the
        // histogram; each registry serves it.
        let (a, b) = (Metrics::new().unwrap(), Metrics::new().unwrap());
        crate::fsx::timed_sync("wal", || ());
        for metrics in [&a, &b] {
            let families = metrics.registry.gather();
            let syncs = families
                .iter()
                .find(|f| f.name() == "conclave_disk_sync_seconds")
                .expect("registered");
            let wal = syncs
                .get_metric()
                .iter()
                .find(|m| m.get_label().iter().any(|l| l.value() == "wal"))
                .expect("the wal's syncs");
            assert!(wal.get_histogram().get_sample_count() >= 1);
        }
    }
}
