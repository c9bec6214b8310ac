//! Two independent runtimes (as on two validators) produce identical
//! outcomes, fuel included.

use conclave_runtime::Outcome;
use serde_json::json;

use crate::common::{call, load_wat, module, run, runtime, MemState};

fn kv_history(rt: &conclave_runtime::Runtime) -> (Vec<Outcome>, MemState) {
    let app = rt.load(conclave_apps::KV).expect("kv loads");
    let mut state = MemState::default();
    let mut outcomes = Vec::new();
    let txs = [
        ("set", json!({"key": "x", "value": "1"})),
        ("set", json!({"key": "y", "value": "2"})),
        ("get", json!({"key": "x"})),
        ("list", json!({"prefix": ""})),
        ("delete", json!({"key": "x"})),
        ("set", json!({"key": ""})),
    ];
    for (method, args) in txs {
        let args = args.to_string();
        let outcome = rt
            .call(&app, call(method, args.as_bytes()), &state)
            .expect("no host failure");
        state.apply(&outcome);
        outcomes.push(outcome);
    }
    (outcomes, state)
}

#[test]
fn two_runtimes_agree_on_outputs_writes_and_fuel() {
    let (a, state_a) = kv_history(&runtime());
    let (b, state_b) = kv_history(&runtime());
    assert_eq!(a, b);
    assert_eq!(state_a, state_b);
    assert!(a.iter().all(|outcome| outcome.fuel_used > 0));
    assert!(a[..5].iter().all(Outcome::is_ok));
    assert!(!a[5].is_ok());
}

#[test]
fn repeating_a_call_costs_the_same_fuel() {
    let rt = runtime();
    let app = rt.load(conclave_apps::FAULTS).expect("faults loads");
    let state = MemState::default();
    let first = rt.call(&app, call("ok", b""), &state).expect("ok");
    let second = rt.call(&app, call("ok", b""), &state).expect("ok");
    assert_eq!(first, second);
}

#[test]
fn nan_results_are_canonical() {
    // 0/0 and sqrt(-1) produce NaNs whose payload differs by CPU without
    // canonicalisation; with it, every validator sees 0x7fc00000.
    let rt = runtime();
    let app = load_wat(
        &rt,
        &module(
            r#"(func (export "nan")
                 (f32.store (i32.const 0) (f32.div (f32.const 0) (f32.const 0)))
                 (f32.store (i32.const 4) (f32.sqrt (f32.const -1)))
                 (f64.store (i32.const 8) (f64.div (f64.const 0) (f64.const 0)))
                 (call $output_write (i32.const 0) (i32.const 16)))"#,
        ),
    );
    let out = run(&rt, &app, "nan").result.expect("call succeeds");
    assert_eq!(&out[0..4], &0x7fc0_0000u32.to_le_bytes());
    assert_eq!(&out[4..8], &0x7fc0_0000u32.to_le_bytes());
    assert_eq!(&out[8..16], &0x7ff8_0000_0000_0000u64.to_le_bytes());
}
