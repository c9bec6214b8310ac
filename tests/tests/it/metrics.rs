//! The Prometheus endpoint exposes the node's metrics with live values.

use conclave_node::rpc::ConclaveApiClient;
use conclave_tests::{http_raw, signed, wait_committed};

use crate::{node_with_context, COMMIT_TIMEOUT};

fn value_of(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_reflect_commits() {
    let (node, ctx) = node_with_context("kv").await;
    let keys = node.keys();
    let c = node.client();
    for nonce in 1..=3 {
        let h = c
            .tx_submit(signed(
                &keys,
                ctx,
                nonce,
                "set",
                r#"{"key":"a","value":"1"}"#,
            ))
            .await
            .unwrap()
            .tx_hash;
        wait_committed(&c, h, COMMIT_TIMEOUT).await;
    }
    let (status, text) = http_raw(node.metrics, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    let label = format!("{{context=\"{ctx}\"}}");
    let height = value_of(&text, &format!("conclave_consensus_height{label}")).unwrap();
    assert!(height >= 1.0, "{text}");
    let committed = value_of(
        &text,
        &format!("conclave_txs_total{{context=\"{ctx}\",status=\"committed\"}}"),
    );
    assert_eq!(committed, Some(3.0));
    assert_eq!(
        value_of(&text, &format!("conclave_mempool_size{label}")),
        Some(0.0)
    );
    assert!(value_of(&text, "conclave_wasm_fuel_used_total").unwrap() > 0.0);
    assert!(value_of(&text, "conclave_rpc_requests_total{method=\"tx_submit\"}").unwrap() >= 3.0);
    assert!(text.contains("conclave_block_interval_seconds_bucket"));
    assert!(value_of(&text, "process_resident_memory_bytes").unwrap() > 0.0);
    let (status, _) = http_raw(node.metrics, "GET", "/nope", b"");
    assert_eq!(status, 404);
}
