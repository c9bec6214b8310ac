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
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};
use tokio::net::TcpListener;
use tracing::{debug, warn};

pub struct Metrics {
    pub registry: Registry,
    pub consensus_height: IntGaugeVec,
    pub consensus_rounds: IntGaugeVec,
    pub block_interval_seconds: Histogram,
    /// Executing a block's txs: `build` (the proposer) or `validate` (the
    /// other members re-executing a proposal).
    pub block_execution_seconds: HistogramVec,
    pub txs_total: IntCounterVec,
    pub mempool_size: IntGaugeVec,
    pub wasm_fuel_used_total: IntCounter,
    pub rpc_requests_total: IntCounterVec,
    pub consensus_validators: IntGaugeVec,
    pub p2p_peers: prometheus::IntGauge,
    pub sync_blocks_total: IntCounter,
    pub consensus_missed_blocks: IntCounterVec,
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
        let consensus_rounds = IntGaugeVec::new(
            Opts::new(
                "conclave_consensus_rounds",
                "Round of the height in progress",
            ),
            &["context"],
        )?;
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
        let consensus_validators = IntGaugeVec::new(
            Opts::new(
                "conclave_consensus_validators",
                "Members validating a context",
            ),
            &["context"],
        )?;
        let p2p_peers = prometheus::IntGauge::new("conclave_p2p_peers", "Connected peers")?;
        registry.register(Box::new(consensus_validators.clone()))?;
        registry.register(Box::new(p2p_peers.clone()))?;
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
        registry.register(Box::new(checkpoint_height.clone()))?;
        registry.register(Box::new(checkpoint_signers.clone()))?;
        registry.register(Box::new(actions_pending.clone()))?;
        registry.register(Box::new(consensus_height.clone()))?;
        registry.register(Box::new(consensus_rounds.clone()))?;
        registry.register(Box::new(block_interval_seconds.clone()))?;
        registry.register(Box::new(block_execution_seconds.clone()))?;
        registry.register(Box::new(txs_total.clone()))?;
        registry.register(Box::new(mempool_size.clone()))?;
        registry.register(Box::new(wasm_fuel_used_total.clone()))?;
        registry.register(Box::new(rpc_requests_total.clone()))?;
        registry.register(Box::new(consensus_missed_blocks.clone()))?;
        // Process metrics: CPU, resident memory, open fds, start time.
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            registry,
            consensus_height,
            consensus_rounds,
            block_interval_seconds,
            block_execution_seconds,
            txs_total,
            mempool_size,
            wasm_fuel_used_total,
            rpc_requests_total,
            consensus_validators,
            p2p_peers,
            sync_blocks_total,
            consensus_missed_blocks,
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

/// Serves `GET /metrics` on `addr` until the task is dropped.
pub async fn serve(metrics: Arc<Metrics>, listener: TcpListener) {
    serve_with(move || metrics.render(), listener).await
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
