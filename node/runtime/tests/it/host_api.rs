//! The host API seen from a well-behaved guest: call context, the write
//! overlay, partial reads, events, actions and logs.

use std::collections::BTreeMap;

use conclave_runtime::{Error, Event, Failure, Limits, Runtime};

use crate::common::{call, load_wat, module, run, runtime, trap_message, BrokenState, MemState};

#[test]
fn the_guest_sees_the_call_context() {
    let rt = runtime();
    let app = load_wat(
        &rt,
        &module(
            r#"(func (export "ctx")
                 (call $caller (i32.const 0))
                 (call $context_id (i32.const 32))
                 (i64.store (i32.const 64) (call $block_height))
                 (i64.store (i32.const 72) (call $block_time_ms))
                 (i32.store (i32.const 80) (call $input_len))
                 (call $input_read (i32.const 84))
                 (i32.store (i32.add (i32.const 84) (call $input_len)) (call $members_count))
                 (call $members_read (i32.add (i32.const 88) (call $input_len)))
                 (call $output_write (i32.const 0)
                   (i32.add (i32.add (i32.const 88) (call $input_len))
                            (i32.mul (call $members_count) (i32.const 32)))))"#,
        ),
    );
    let outcome = rt
        .call(&app, call("ctx", b"args!"), &MemState::default())
        .expect("no host failure");
    let out = outcome.result.expect("call succeeds");
    let mut expected = Vec::new();
    expected.extend_from_slice(&[7; 32]);
    expected.extend_from_slice(&[9; 32]);
    expected.extend_from_slice(&42u64.to_le_bytes());
    expected.extend_from_slice(&1_700_000_000_123u64.to_le_bytes());
    expected.extend_from_slice(&5u32.to_le_bytes());
    expected.extend_from_slice(b"args!");
    // The block's validators, in order.
    expected.extend_from_slice(&2u32.to_le_bytes());
    expected.extend_from_slice(&[7; 32]);
    expected.extend_from_slice(&[8; 32]);
    assert_eq!(out, expected);
}

const OVERLAY: &str = r#"
  (data (i32.const 0) "k")
  (data (i32.const 16) "new")
  ;; reads k into 32.. and outputs it, or "-" if absent
  (func $read_out
    (local $len i64)
    (local.set $len (call $storage_read (i32.const 0) (i32.const 1) (i32.const 32) (i32.const 16)))
    (if (i64.lt_s (local.get $len) (i64.const 0))
      (then (i32.store8 (i32.const 32) (i32.const 45)) (local.set $len (i64.const 1))))
    (call $output_write (i32.const 32) (i32.wrap_i64 (local.get $len))))
  (func (export "read") (call $read_out))
  (func (export "write_read")
    (call $storage_write (i32.const 0) (i32.const 1) (i32.const 16) (i32.const 3))
    (call $read_out))
  (func (export "remove_read")
    (call $storage_remove (i32.const 0) (i32.const 1))
    (call $read_out))
  ;; reads k with a 1-byte buffer: outputs the untouched buffer and the length
  (func (export "short_read")
    (i64.store (i32.const 40)
      (call $storage_read (i32.const 0) (i32.const 1) (i32.const 32) (i32.const 1)))
    (call $output_write (i32.const 32) (i32.const 16)))
"#;

fn state_with_old_value() -> MemState {
    MemState(BTreeMap::from([(b"k".to_vec(), b"old".to_vec())]))
}

#[test]
fn reads_see_the_calls_own_writes_before_the_state() {
    let rt = runtime();
    let app = load_wat(&rt, &module(OVERLAY));
    let state = state_with_old_value();
    let go = |method| {
        rt.call(&app, call(method, b""), &state)
            .expect("no host failure")
    };

    assert_eq!(go("read").result, Ok(b"old".to_vec()));
    let outcome = go("write_read");
    assert_eq!(outcome.result, Ok(b"new".to_vec()));
    assert_eq!(
        outcome.writes,
        BTreeMap::from([(b"k".to_vec(), Some(b"new".to_vec()))])
    );
    let outcome = go("remove_read");
    assert_eq!(outcome.result, Ok(b"-".to_vec()));
    assert_eq!(outcome.writes, BTreeMap::from([(b"k".to_vec(), None)]));
    // The state itself is never written by the runtime.
    assert_eq!(state, state_with_old_value());
}

#[test]
fn a_short_buffer_gets_the_length_but_no_bytes() {
    let rt = runtime();
    let app = load_wat(&rt, &module(OVERLAY));
    let outcome = rt
        .call(&app, call("short_read", b""), &state_with_old_value())
        .expect("no host failure");
    let out = outcome.result.expect("call succeeds");
    assert_eq!(&out[..8], &[0; 8], "nothing copied into the short buffer");
    assert_eq!(&out[8..16], &3i64.to_le_bytes());
}

#[test]
fn a_failing_state_view_is_a_host_error_not_a_guest_failure() {
    let rt = runtime();
    let app = load_wat(&rt, &module(OVERLAY));
    match rt.call(&app, call("read", b""), &BrokenState) {
        Err(Error::State(err)) => assert_eq!(err.to_string(), "disk unavailable"),
        other => panic!("expected a state error, got {other:?}"),
    }
}

#[test]
fn events_and_actions_of_a_successful_call_are_returned_in_order() {
    let rt = runtime();
    let app = load_wat(
        &rt,
        &module(
            r#"(data (i32.const 0) "firstsecondpayload")
               (func (export "emit")
                 (call $emit_event (i32.const 0) (i32.const 5) (i32.const 11) (i32.const 7))
                 (call $emit_event (i32.const 5) (i32.const 6) (i32.const 0) (i32.const 0))
                 (call $onchain_action (i32.const 11) (i32.const 7))
                 (call $onchain_action (i32.const 0) (i32.const 5)))"#,
        ),
    );
    let outcome = run(&rt, &app, "emit");
    assert!(outcome.is_ok());
    assert_eq!(
        outcome.events,
        [
            Event {
                name: "first".into(),
                data: b"payload".to_vec()
            },
            Event {
                name: "second".into(),
                data: Vec::new()
            },
        ]
    );
    assert_eq!(outcome.actions, [b"payload".to_vec(), b"first".to_vec()]);
}

#[test]
fn an_event_name_must_be_utf8() {
    let rt = runtime();
    let app = load_wat(
        &rt,
        &module(
            r#"(data (i32.const 0) "\ff\fe")
               (func (export "emit") (call $emit_event (i32.const 0) (i32.const 2) (i32.const 0) (i32.const 0)))"#,
        ),
    );
    let msg = trap_message(&run(&rt, &app, "emit"), "emit");
    assert!(msg.contains("UTF-8"), "{msg}");
}

#[test]
fn logs_are_kept_on_failure_and_cut_at_the_limit() {
    let limits = Limits {
        max_log_bytes: 8,
        ..Limits::default()
    };
    let rt = Runtime::new(limits).expect("valid limits");
    let app = load_wat(
        &rt,
        &module(
            r#"(data (i32.const 0) "hello world")
               (func (export "chatty")
                 (call $log (i32.const 0) (i32.const 5))
                 (call $log (i32.const 0) (i32.const 11))
                 (call $log (i32.const 0) (i32.const 11))
                 unreachable)"#,
        ),
    );
    let outcome = run(&rt, &app, "chatty");
    assert!(matches!(outcome.result, Err(Failure::Trap(_))));
    assert_eq!(outcome.logs, ["hello", "hel"]);
}

#[test]
fn a_read_pays_for_the_value_found_even_when_not_copied() {
    let rt = runtime();
    let app = load_wat(&rt, &module(OVERLAY));
    let small = MemState(BTreeMap::from([(b"k".to_vec(), vec![1; 10])]));
    let large = MemState(BTreeMap::from([(b"k".to_vec(), vec![1; 10_010])]));
    let fuel = |state: &MemState| {
        let outcome = rt
            .call(&app, call("short_read", b""), state)
            .expect("no host failure");
        assert!(outcome.is_ok());
        outcome.fuel_used
    };
    assert_eq!(
        fuel(&large) - fuel(&small),
        10_000 * conclave_runtime::costs::PER_BYTE
    );
}
