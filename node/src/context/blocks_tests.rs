//! Building a block: the proposer's execution budget.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc as std_mpsc;

use tokio::sync::mpsc;

use super::*;
use crate::context::admission::tests::setup;
use crate::context::fault::FaultStatus;

/// A proposer whose block waits for a core longer than its build budget
/// still fills the block: the budget bounds executing it (what members
/// pay again), not the wait. Counted from the start of the build, the
/// budget was gone before the first tx ran, and a busy node proposed
/// near-empty blocks while its pool grew.
#[test]
fn the_build_budget_counts_execution_not_the_wait_for_a_core() {
    let s = setup();
    let runtime = Runtime::new(Default::default()).unwrap();
    let app = runtime.load(conclave_apps::KV).unwrap();
    let record = s.store.context(&s.context).unwrap().unwrap();
    let metrics = Arc::new(Metrics::new().unwrap());
    let (wake, _woken) = mpsc::channel(16);
    let intake = Intake::new(s.admission(), metrics.clone(), wake, FaultStatus::default());
    for nonce in 1..=20 {
        futures::executor::block_on(intake.submit(s.tx(nonce).verified().unwrap())).unwrap();
    }
    let ex = Execution {
        runtime: &runtime,
        app: &app,
        store: &s.store,
        record: &record,
        members: &s.members,
        max_tx_bytes: 64 * 1024,
        certified: false,
    };
    let cfg = BlockConfig {
        max_build_ms: 200,
        ..BlockConfig::default()
    };
    let hold = Duration::from_millis(cfg.max_build_ms * 3);

    // Every place in the node's block gate taken by another context's
    // block, for three times the budget.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cores + 2)
        .enable_all()
        .build()
        .unwrap();
    let inside = Arc::new(AtomicUsize::new(0));
    let (release, released) = std_mpsc::channel::<()>();
    let released = Arc::new(std::sync::Mutex::new(released));
    let holders: Vec<_> = (0..cores)
        .map(|_| {
            let (inside, released) = (inside.clone(), released.clone());
            workers.spawn(async move {
                crate::gate::execute_block(1_000, || {
                    inside.fetch_add(1, Ordering::SeqCst);
                    let _ = released.lock().unwrap().recv();
                })
            })
        })
        .collect();
    let waited = Instant::now();
    while inside.load(Ordering::SeqCst) < cores {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the holders never got in"
        );
        std::thread::yield_now();
    }
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(hold);
        for _ in 0..cores {
            let _ = release.send(());
        }
    });

    let mut blocks = Blocks::new(metrics);
    let me = s.members[0];
    let built = workers.block_on(async {
        let started = Instant::now();
        let hash = blocks
            .build(&ex, &intake, &cfg, Height(1), me, Hash32::default(), 1)
            .unwrap();
        (hash, started.elapsed())
    });
    releaser.join().unwrap();
    for holder in holders {
        workers.block_on(holder).unwrap();
    }
    let (hash, took) = built;
    assert!(
        took >= hold / 2,
        "the build did not wait for the gate ({took:?})"
    );
    let block = blocks.block(&hash).unwrap();
    assert_eq!(block.txs.len(), 20, "every waiting tx is in the block");
}
