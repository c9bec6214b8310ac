//! Instances come from a fixed pool: more concurrent calls than slots wait
//! for a slot, and each still gets its own result (never a host error).

use std::sync::{Arc, Barrier};

use conclave_runtime::Failure;

use crate::common::{load_wat, module, run, runtime};

#[test]
fn more_concurrent_calls_than_pool_slots_all_complete() {
    let rt = runtime();
    // Each call spins until its fuel runs out: long enough (milliseconds)
    // that all of them overlap.
    let app = load_wat(&rt, &module(r#"(func (export "spin") (loop (br 0)))"#));
    // The pool holds 64 instances.
    let callers = 160;
    let start = Arc::new(Barrier::new(callers));
    let threads: Vec<_> = (0..callers)
        .map(|_| {
            let (rt, app, start) = (rt.clone(), app.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                run(&rt, &app, "spin")
            })
        })
        .collect();
    for t in threads {
        let outcome = t.join().expect("the call returns");
        assert_eq!(outcome.result, Err(Failure::OutOfFuel));
    }
}
