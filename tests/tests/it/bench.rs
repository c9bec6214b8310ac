//! `conclave bench` end to end on one in-process validator: every tx it
//! submits is committed, and the report says which build measured it.

use std::process::Command;

use conclave_tests::conclave_bin;

#[test]
fn bench_commits_every_tx_and_names_its_build() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(conclave_bin())
        .current_dir(dir.path())
        .args([
            "bench",
            "--txs",
            "60",
            "--clients",
            "3",
            "--max-secs",
            "120",
        ])
        .output()
        .expect("run conclave bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    assert_eq!(report["txs_submitted"], 60, "{report}");
    assert_eq!(report["txs_committed"], 60, "{report}");
    // Tests run the dev build.
    assert_eq!(report["build"], "dev", "{report}");
    assert!(report["latency_ms_p50"].as_f64().unwrap() > 0.0, "{report}");
}
