//! Hostile guests written in WAT: each failure mode maps to its `Failure`,
//! and a failed call leaves no writes, events or actions.

use conclave_runtime::{Failure, Limits, Runtime};

use crate::common::{call, load_wat, module, run, runtime, trap_message, MemState};

#[test]
fn an_infinite_loop_runs_out_of_fuel() {
    let rt = runtime();
    let app = load_wat(&rt, &module(r#"(func (export "spin") (loop (br 0)))"#));
    let outcome = run(&rt, &app, "spin");
    assert_eq!(outcome.result, Err(Failure::OutOfFuel));
    assert_eq!(outcome.fuel_used, rt.limits().fuel_per_call);
}

#[test]
fn growing_memory_past_the_limit_is_a_memory_limit_failure() {
    let rt = runtime();
    let app = load_wat(
        &rt,
        &module(r#"(func (export "grow") (loop (drop (memory.grow (i32.const 16))) (br 0)))"#),
    );
    assert_eq!(run(&rt, &app, "grow").result, Err(Failure::MemoryLimit));
}

#[test]
fn growing_past_the_modules_own_maximum_returns_minus_one() {
    let rt = runtime();
    let app = load_wat(
        &rt,
        r#"(module
          (import "env" "output_write" (func $output_write (param i32 i32)))
          (memory (export "memory") 1 2)
          (func (export "grow")
            (i32.store (i32.const 0) (memory.grow (i32.const 5)))
            (call $output_write (i32.const 0) (i32.const 4))))"#,
    );
    let outcome = run(&rt, &app, "grow");
    assert_eq!(outcome.result, Ok((-1i32).to_le_bytes().to_vec()));
}

#[test]
fn unreachable_is_a_trap() {
    let rt = runtime();
    let app = load_wat(&rt, &module(r#"(func (export "boom") unreachable)"#));
    let msg = trap_message(&run(&rt, &app, "boom"), "boom");
    assert!(msg.contains("unreachable"), "{msg}");
}

#[test]
fn unbounded_recursion_exhausts_the_stack_deterministically() {
    let wat = module(r#"(func $deep (export "deep") (call $deep))"#);
    let (a, b) = (runtime(), runtime());
    let first = run(&a, &load_wat(&a, &wat), "deep");
    let second = run(&b, &load_wat(&b, &wat), "deep");
    let msg = trap_message(&first, "deep");
    assert!(msg.contains("stack"), "{msg}");
    assert_eq!(first, second);
}

#[test]
fn abort_carries_the_guest_message() {
    let rt = runtime();
    let app = load_wat(
        &rt,
        &module(
            r#"(data (i32.const 0) "nope, bad args")
               (func (export "fail") (call $abort (i32.const 0) (i32.const 14)))"#,
        ),
    );
    assert_eq!(
        run(&rt, &app, "fail").result,
        Err(Failure::Abort("nope, bad args".into()))
    );
}

#[test]
fn calling_a_missing_or_non_method_export_is_unknown_method() {
    let rt = runtime();
    let app = load_wat(
        &rt,
        &module(
            r#"(func (export "ok"))
               (func (export "takes_args") (param i32))
               (func (export "returns") (result i32) (i32.const 1))"#,
        ),
    );
    assert_eq!(app.methods(), ["ok"]);
    for method in ["nope", "takes_args", "returns", "memory"] {
        assert_eq!(
            run(&rt, &app, method).result,
            Err(Failure::UnknownMethod(method.into())),
            "{method}"
        );
    }
    assert_eq!(run(&rt, &app, "ok").result, Ok(Vec::new()));
}

#[test]
fn an_out_of_bounds_pointer_is_a_trap_with_a_clear_message() {
    let rt = runtime();
    let app = load_wat(
        &rt,
        &module(r#"(func (export "oob") (call $output_write (i32.const -16) (i32.const 16)))"#),
    );
    let msg = trap_message(&run(&rt, &app, "oob"), "oob");
    assert!(msg.contains("out of bounds"), "{msg}");
    assert!(msg.contains("output_write"), "{msg}");
}

#[test]
fn a_guest_access_past_its_memory_is_a_trap() {
    // Bounds are checked by the compiled code, not by guard pages and
    // signals: every access at or past the end traps the same way,
    // including one that straddles the end.
    let rt = runtime();
    let app = load_wat(
        &rt,
        &module(
            r#"
            (func (export "load") (drop (i32.load (i32.mul (memory.size) (i32.const 65536)))))
            (func (export "straddle") (drop (i64.load (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4)))))
            (func (export "store") (i32.store (i32.const -4) (i32.const 1)))
            (func (export "last") (drop (i32.load (i32.sub (i32.mul (memory.size) (i32.const 65536)) (i32.const 4)))))
            "#,
        ),
    );
    for method in ["load", "straddle", "store"] {
        let msg = trap_message(&run(&rt, &app, method), method);
        assert!(msg.contains("out of bounds"), "{method}: {msg}");
    }
    assert_eq!(run(&rt, &app, "last").result, Ok(Vec::new()));
}

#[test]
fn an_oversized_input_is_refused_before_running() {
    let rt = runtime();
    let app = load_wat(&rt, &module(r#"(func (export "ok"))"#));
    let args = vec![0u8; rt.limits().max_input_bytes + 1];
    let outcome = rt
        .call(&app, call("ok", &args), &MemState::default())
        .expect("no host failure");
    assert!(
        matches!(&outcome.result, Err(Failure::LimitExceeded(msg)) if msg.contains("input")),
        "{:?}",
        outcome.result
    );
    assert_eq!(outcome.fuel_used, 0);
}

#[test]
fn oversized_output_key_value_event_and_too_many_events_exceed_limits() {
    let rt = runtime();
    let app = load_wat(
        &rt,
        &module(
            r#"(func (export "big_output") (call $output_write (i32.const 0) (i32.const 65537)))
               (func (export "big_key") (call $storage_write (i32.const 0) (i32.const 1025) (i32.const 0) (i32.const 1)))
               (func (export "big_value") (call $storage_write (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 65537)))
               (func (export "big_event") (call $emit_event (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 16384)))
               (func (export "many_events")
                 (loop (call $emit_event (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 0)) (br 0)))
               (func (export "many_actions")
                 (loop (call $onchain_action (i32.const 0) (i32.const 1)) (br 0)))"#,
        ),
    );
    let cases = [
        ("big_output", "output"),
        ("big_key", "storage key"),
        ("big_value", "storage value"),
        ("big_event", "event"),
        ("many_events", "events"),
        ("many_actions", "actions"),
    ];
    for (method, what) in cases {
        match run(&rt, &app, method).result {
            Err(Failure::LimitExceeded(msg)) => assert!(msg.contains(what), "{method}: {msg}"),
            other => panic!("{method}: expected a limit failure, got {other:?}"),
        }
    }
}

#[test]
fn writes_events_and_actions_of_a_failed_call_are_discarded() {
    let rt = runtime();
    let app = load_wat(
        &rt,
        &module(
            r#"(data (i32.const 0) "key")
               (func (export "write_then_trap")
                 (call $storage_write (i32.const 0) (i32.const 3) (i32.const 0) (i32.const 3))
                 (call $emit_event (i32.const 0) (i32.const 3) (i32.const 0) (i32.const 0))
                 (call $onchain_action (i32.const 0) (i32.const 3))
                 (call $output_write (i32.const 0) (i32.const 3))
                 unreachable)"#,
        ),
    );
    let outcome = run(&rt, &app, "write_then_trap");
    assert!(matches!(outcome.result, Err(Failure::Trap(_))));
    assert!(outcome.writes.is_empty());
    assert!(outcome.events.is_empty());
    assert!(outcome.actions.is_empty());
}

#[test]
fn read_only_calls_cannot_write_remove_or_request_actions() {
    let rt = runtime();
    let app = load_wat(
        &rt,
        &module(
            r#"(func (export "write") (call $storage_write (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1)))
               (func (export "remove") (call $storage_remove (i32.const 0) (i32.const 1)))
               (func (export "act") (call $onchain_action (i32.const 0) (i32.const 1)))"#,
        ),
    );
    for method in ["write", "remove", "act"] {
        let view = crate::common::view(method, b"");
        let outcome = rt
            .call(&app, view, &MemState::default())
            .expect("no host failure");
        assert_eq!(outcome.result, Err(Failure::ReadOnlyViolation), "{method}");
        let outcome = run(&rt, &app, method);
        assert!(
            outcome.is_ok(),
            "{method} outside a view: {:?}",
            outcome.result
        );
    }
}

#[test]
fn host_calls_charge_fuel_per_byte_moved() {
    let rt = runtime();
    let app = load_wat(
        &rt,
        &module(
            r#"(func (export "w100") (call $storage_write (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 100)))
               (func (export "w1000") (call $storage_write (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1000)))"#,
        ),
    );
    let small = run(&rt, &app, "w100");
    let large = run(&rt, &app, "w1000");
    assert!(small.is_ok() && large.is_ok());
    assert_eq!(
        large.fuel_used - small.fuel_used,
        900 * conclave_runtime::costs::STORAGE_WRITE_PER_BYTE
    );
}

#[test]
fn a_host_call_that_cannot_be_paid_runs_out_of_fuel() {
    let limits = Limits {
        fuel_per_call: 1_500,
        ..Limits::default()
    };
    let rt = Runtime::new(limits).expect("valid limits");
    // One write costs more than 2,000 fuel, so the host refuses it.
    let app = load_wat(
        &rt,
        &module(
            r#"(func (export "w") (call $storage_write (i32.const 0) (i32.const 1) (i32.const 0) (i32.const 1)))"#,
        ),
    );
    let outcome = run(&rt, &app, "w");
    assert_eq!(outcome.result, Err(Failure::OutOfFuel));
    assert_eq!(outcome.fuel_used, 1_500);
    assert!(outcome.writes.is_empty());
}

#[test]
fn bulk_memory_operations_pay_per_byte() {
    let rt = runtime();
    let app = load_wat(
        &rt,
        &module(
            r#"(func (export "fill_small") (memory.fill (i32.const 0) (i32.const 1) (i32.const 16)))
               (func (export "fill_large") (memory.fill (i32.const 0) (i32.const 1) (i32.const 65536)))"#,
        ),
    );
    let small = run(&rt, &app, "fill_small");
    let large = run(&rt, &app, "fill_large");
    assert!(small.is_ok() && large.is_ok());
    assert!(
        large.fuel_used >= small.fuel_used + 65_536 - 16,
        "memory.fill of 64 KiB cost {} vs {} for 16 bytes",
        large.fuel_used,
        small.fuel_used
    );
}

#[test]
fn instantiation_and_growth_failures_are_guest_failures() {
    let rt = runtime();
    // An active data segment past the end of memory traps at instantiation.
    let app = load_wat(
        &rt,
        &module(r#"(data (i32.const 200000) "x") (func (export "ok"))"#),
    );
    assert!(matches!(run(&rt, &app, "ok").result, Err(Failure::Trap(_))));
    // A start function runs (and pays fuel) before every call.
    let app = load_wat(
        &rt,
        &module(r#"(func $start (loop (br 0))) (start $start) (func (export "ok"))"#),
    );
    assert_eq!(run(&rt, &app, "ok").result, Err(Failure::OutOfFuel));
    // Growth is paid per requested page or element, then bounded: past 4 GiB
    // it is a plain -1, past the table limit a limit failure.
    let app = load_wat(
        &rt,
        &module(
            r#"(table 1 funcref)
               (func (export "past_4gib")
                 (i32.store (i32.const 0) (memory.grow (i32.const 70000)))
                 (call $output_write (i32.const 0) (i32.const 4)))
               (func (export "unaffordable") (drop (memory.grow (i32.const 0x7fffffff))))
               (func (export "big_table") (drop (table.grow (ref.null func) (i32.const 100000))))"#,
        ),
    );
    assert_eq!(
        run(&rt, &app, "past_4gib").result,
        Ok((-1i32).to_le_bytes().to_vec())
    );
    assert_eq!(
        run(&rt, &app, "unaffordable").result,
        Err(Failure::OutOfFuel)
    );
    match run(&rt, &app, "big_table").result {
        Err(Failure::LimitExceeded(msg)) => assert!(msg.contains("table"), "{msg}"),
        other => panic!("expected a table limit failure, got {other:?}"),
    }
}
