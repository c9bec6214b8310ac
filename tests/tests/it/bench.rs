//! `conclave bench` end to end on one in-process validator: every tx it
//! submits is committed, and the report says which build measured it.

use std::process::Command;

use conclave_tests::conclave_bin;

/// Runs `conclave bench` with `args` in a scratch directory and returns
/// its JSON report, failing the test if it does not succeed.
fn bench(args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(conclave_bin())
        .current_dir(dir.path())
        .arg("bench")
        .args(args)
        .output()
        .expect("run conclave bench");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("a JSON report")
}

/// [`bench`] of `txs` txs (at most 120 s) with `args`, checking that it
/// submitted and committed every one.
fn bench_all(txs: u64, args: &[&str]) -> serde_json::Value {
    let txs_arg = txs.to_string();
    let mut all = vec!["--txs", &txs_arg, "--max-secs", "120"];
    all.extend_from_slice(args);
    let report = bench(&all);
    assert_eq!(report["txs_submitted"], txs, "{report}");
    assert_eq!(report["txs_committed"], txs, "{report}");
    report
}

#[test]
fn bench_commits_every_tx_and_names_its_build() {
    let report = bench_all(60, &["--clients", "3", "--checkpoint-interval", "3"]);
    // Tests run the dev build.
    assert_eq!(report["build"], "dev", "{report}");
    assert!(report["latency_ms_p50"].as_f64().unwrap() > 0.0, "{report}");
    // 60 txs never fill a pool of the default size.
    assert_eq!(report["submits_refused"], 0, "{report}");
    // The node's threads handed over work while the load ran.
    assert!(
        report["nodes"][0]["context_switches"].as_u64().unwrap() > 0,
        "{report}"
    );
    // Every block is counted in the round it was decided in.
    let by_round: u64 = report["heights_by_round"]
        .as_array()
        .expect("heights_by_round")
        .iter()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(by_round, report["blocks"].as_u64().unwrap(), "{report}");
    // One in-process validator has no one to fall back on or push to.
    assert!(report["fallbacks"].is_null(), "{report}");
    assert!(report["pushes_failed"].is_null(), "{report}");
    assert!(report["txs_per_push"].is_null(), "{report}");
    // Its CPU is the bench's own: no separate figure for the load.
    assert!(report["load_cpu_secs"].is_null(), "{report}");
    // The machine's time over the load, in shares that add up to 100, some
    // of it spent running code (the node's and the load's).
    let machine = &report["machine"];
    let share = |name: &str| machine[name].as_f64().expect(name);
    let names = [
        "user_percent",
        "system_percent",
        "iowait_percent",
        "idle_percent",
        "steal_percent",
    ];
    let sum: f64 = names.iter().map(|n| share(n)).sum();
    assert!((sum - 100.0).abs() < 1e-6, "{report}");
    assert!(
        share("user_percent") + share("system_percent") > 0.0,
        "{report}"
    );
}

#[test]
fn several_runs_report_each_and_their_medians() {
    let report = bench(&[
        "--txs",
        "20",
        "--clients",
        "2",
        "--runs",
        "2",
        "--max-secs",
        "120",
    ]);
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{report}");
    for run in runs {
        assert_eq!(run["txs_committed"], 20, "{report}");
    }
    let tps: Vec<f64> = runs
        .iter()
        .map(|r| r["finalized_tx_per_sec"].as_f64().unwrap())
        .collect();
    let median = report["median"]["finalized_tx_per_sec"].as_f64().unwrap();
    assert!((median - (tps[0] + tps[1]) / 2.0).abs() < 1e-6, "{report}");
}

/// A pool smaller than the clients' txs in flight refuses some: the
/// report counts the refusals, and the clients' retries still commit
/// every tx.
#[test]
fn refused_submissions_are_counted_and_retried_until_committed() {
    let report = bench_all(80, &["--clients", "8", "--keys", "8", "--pool-txs", "1"]);
    assert!(report["submits_refused"].as_u64().unwrap() > 0, "{report}");
}

/// Settings out of range, or that the chosen bench would not use, are
/// refused before anything starts, naming the option.
#[test]
fn out_of_range_or_unused_settings_are_refused() {
    let cases: [&[&str]; 8] = [
        &["--checkpoint-interval", "0"],
        &["--pool-txs", "0"],
        &["--checkpoint-interval", "1000001"],
        &["--validator-threads", "1025"],
        // One validator runs in the bench's own process.
        &["--validator-threads", "1"],
        // The catch-up and anchoring benches set up their own validators.
        &["--checkpoint-interval", "5", "--catch-up-blocks", "10"],
        &["--validator-threads", "1", "--anchor-payouts", "1"],
        &["--pool-txs", "5", "--catch-up-blocks", "10"],
    ];
    for args in cases {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(conclave_bin())
            .current_dir(dir.path())
            .args(["bench", "--txs", "1"])
            .args(args)
            .output()
            .expect("run conclave bench");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} accepted");
        assert!(stderr.contains(args[0]), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?} ran: {stderr}");
    }
}
