//! Instances come from a fixed pool: more concurrent calls than slots wait
//! for a slot, and each still gets its own result (never a host error); a
//! reused slot is as fresh as a new one.

use std::sync::{Arc, Barrier};

use conclave_runtime::Failure;

use crate::common::{load_wat, module, run, runtime, trap_message};

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

#[test]
fn a_reused_slot_starts_from_the_modules_initial_memory() {
    // Slots keep their pages mapped between calls and reset what a call
    // dirtied, up to 4 MiB; the rest is given back. Whatever one call
    // leaves (writes inside and outside the data segment, below and above
    // the kept size, and growth), the next one sees the module's memory.
    let rt = runtime();
    let app = load_wat(
        &rt,
        &module(
            r#"
            (data (i32.const 70000) "seed")
            (func (export "dirty")
              (i32.store (i32.const 100) (i32.const 0x11111111))
              (i32.store (i32.const 70000) (i32.const 0x22222222))
              (drop (memory.grow (i32.const 80)))
              (i32.store (i32.const 4259840) (i32.const 0x33333333))
              (i32.store (i32.const 5177340) (i32.const 0x44444444)))
            (func (export "look")
              (i32.store (i32.const 0) (memory.size))
              (i32.store (i32.const 4) (i32.load (i32.const 100)))
              (i32.store (i32.const 8) (i32.load (i32.const 70000)))
              (call $output_write (i32.const 0) (i32.const 12)))
            (func (export "past") (drop (i32.load (i32.const 4259840))))
            "#,
        ),
    );
    let mut pristine = 2u32.to_le_bytes().to_vec();
    pristine.extend_from_slice(&[0; 4]);
    pristine.extend_from_slice(b"seed");
    assert_eq!(run(&rt, &app, "look").result, Ok(pristine.clone()));
    for _ in 0..3 {
        assert!(run(&rt, &app, "dirty").result.is_ok());
        assert_eq!(run(&rt, &app, "look").result, Ok(pristine.clone()));
        // The grown pages are gone again: reading them is out of bounds.
        let msg = trap_message(&run(&rt, &app, "past"), "past");
        assert!(msg.contains("out of bounds"), "{msg}");
    }
}
