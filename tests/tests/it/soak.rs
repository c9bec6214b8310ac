//! A short randomised soak (`conclave_tests::soak`): four validator
//! processes, load on three contexts, random perturbations, invariants
//! after each and at the end. `CONCLAVE_SOAK_SEED` replays a schedule
//! (each run prints its seed); `CONCLAVE_SOAK_SECS` sets how long
//! perturbations go on (180 s by default). Longer runs: `conclave-soak`.

use std::time::Duration;

use conclave_tests::soak::{run, SoakOptions};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_soak_keeps_every_invariant() {
    let seed = env_u64("CONCLAVE_SOAK_SEED").unwrap_or_else(conclave_node::node::now_ms);
    let secs = env_u64("CONCLAVE_SOAK_SECS").unwrap_or(180);
    println!("soak seed {seed} (CONCLAVE_SOAK_SEED={seed} replays its schedule)");
    let report = run(SoakOptions {
        seed,
        duration: Duration::from_secs(secs),
        rate: 10,
    })
    .await
    .unwrap_or_else(|broken| panic!("seed {seed}: {broken}"));
    println!("{report}");
    assert!(report.acknowledged > 0, "no load went through");
    assert!(!report.perturbations.is_empty());
}
