//! One app call, the unit of work every validator repeats for every tx:
//! a kv `set` (one state read, one write) and a `get` view, on the real
//! `kv` app. `cargo bench -p conclave-runtime --bench call`.

use std::collections::BTreeMap;

use conclave_runtime::{Call, Limits, Runtime, StateError, StateView};
use criterion::{criterion_group, criterion_main, Criterion};

struct MemState(BTreeMap<Vec<u8>, Vec<u8>>);

impl StateView for MemState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.0.get(key).cloned())
    }
}

fn call<'a>(method: &'a str, args: &'a [u8], read_only: bool) -> Call<'a> {
    Call {
        method,
        args,
        caller: [7; 32],
        context_id: [9; 32],
        block_height: 42,
        block_time_ms: 1_700_000_000_123,
        members: &[[7; 32], [8; 32], [9; 32], [10; 32]],
        read_only,
    }
}

fn calls(c: &mut Criterion) {
    let runtime = Runtime::new(Limits::default()).expect("default limits");
    let app = runtime.load(conclave_apps::KV).expect("the kv app loads");
    let state = MemState(BTreeMap::new());
    let set = br#"{"key":"bench","value":"0123456789abcdef"}"#;
    let outcome = runtime
        .call(&app, call("set", set, false), &state)
        .expect("set runs");
    assert!(outcome.is_ok(), "{outcome:?}");
    let mut state = state;
    state.0.extend(
        outcome
            .writes
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v))),
    );

    c.bench_function("kv set", |b| {
        b.iter(|| runtime.call(&app, call("set", set, false), &state).unwrap())
    });
    let get = br#"{"key":"bench"}"#;
    c.bench_function("kv get (view)", |b| {
        b.iter(|| runtime.call(&app, call("get", get, true), &state).unwrap())
    });
}

criterion_group!(benches, calls);
criterion_main!(benches);
