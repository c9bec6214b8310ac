//! Shared helpers: an in-memory state, call builders, WAT compilation.

use std::collections::BTreeMap;

use conclave_runtime::{App, Call, Failure, Limits, Outcome, Runtime, StateError, StateView};

/// Committed state kept in memory, as a node's block overlay would be.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct MemState(pub BTreeMap<Vec<u8>, Vec<u8>>);

impl StateView for MemState {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Ok(self.0.get(key).cloned())
    }
}

impl MemState {
    /// Applies a successful call's writes.
    pub fn apply(&mut self, outcome: &Outcome) {
        for (key, value) in &outcome.writes {
            match value {
                Some(value) => self.0.insert(key.clone(), value.clone()),
                None => self.0.remove(key),
            };
        }
    }
}

/// A state whose every read fails.
pub struct BrokenState;

impl StateView for BrokenState {
    fn get(&self, _key: &[u8]) -> Result<Option<Vec<u8>>, StateError> {
        Err(StateError::new("disk unavailable"))
    }
}

pub fn runtime() -> Runtime {
    Runtime::new(Limits::default()).expect("default limits are valid")
}

pub fn call<'a>(method: &'a str, args: &'a [u8]) -> Call<'a> {
    Call {
        method,
        args,
        caller: [7; 32],
        context_id: [9; 32],
        block_height: 42,
        block_time_ms: 1_700_000_000_123,
        members: &[[7; 32], [8; 32]],
        read_only: false,
    }
}

pub fn view<'a>(method: &'a str, args: &'a [u8]) -> Call<'a> {
    Call {
        read_only: true,
        ..call(method, args)
    }
}

pub fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).expect("test WAT is valid")
}

pub fn load_wat(runtime: &Runtime, wat: &str) -> App {
    runtime.load(&wasm(wat)).expect("test module loads")
}

/// Runs a call on empty state and returns the outcome.
pub fn run(runtime: &Runtime, app: &App, method: &str) -> Outcome {
    runtime
        .call(app, call(method, b""), &MemState::default())
        .expect("no host failure")
}

/// The message of a call that trapped; fails the test (naming `what`) if
/// the call did anything else.
pub fn trap_message(outcome: &Outcome, what: &str) -> String {
    match &outcome.result {
        Err(Failure::Trap(msg)) => msg.clone(),
        other => panic!("{what}: expected a trap, got {other:?}"),
    }
}

/// All host imports a WAT test module may use, for pasting into `(module ..)`.
pub const IMPORTS: &str = r#"
  (import "env" "input_len" (func $input_len (result i32)))
  (import "env" "input_read" (func $input_read (param i32)))
  (import "env" "output_write" (func $output_write (param i32 i32)))
  (import "env" "storage_read" (func $storage_read (param i32 i32 i32 i32) (result i64)))
  (import "env" "storage_write" (func $storage_write (param i32 i32 i32 i32)))
  (import "env" "storage_remove" (func $storage_remove (param i32 i32)))
  (import "env" "caller" (func $caller (param i32)))
  (import "env" "context_id" (func $context_id (param i32)))
  (import "env" "block_height" (func $block_height (result i64)))
  (import "env" "block_time_ms" (func $block_time_ms (result i64)))
  (import "env" "members_count" (func $members_count (result i32)))
  (import "env" "members_read" (func $members_read (param i32)))
  (import "env" "emit_event" (func $emit_event (param i32 i32 i32 i32)))
  (import "env" "onchain_action" (func $onchain_action (param i32 i32)))
  (import "env" "log" (func $log (param i32 i32)))
  (import "env" "abort" (func $abort (param i32 i32)))
"#;

/// A module with all imports, two pages (128 KiB) of memory, and `body` (functions,
/// data segments).
pub fn module(body: &str) -> String {
    format!("(module {IMPORTS} (memory (export \"memory\") 2) {body})")
}
