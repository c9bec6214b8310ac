//! `faults`: a test app whose methods misbehave on purpose, so tests can show
//! that a faulty transaction fails while the node keeps committing.
//!
//! - `spin`: loops forever (runs out of fuel).
//! - `hog`: allocates and touches memory without bound (hits the memory limit).
//! - `trap`: panics (the panic message is logged, then the guest traps).
//! - `abort`: aborts through the host API with the message `faults: abort`.
//! - `write_then_trap`: writes key `n` = `garbage`, emits an event, then
//!   panics (its writes and events must be discarded).
//! - `ok`: increments the counter under key `n` (decimal ASCII, absent = 0)
//!   and returns the new value as decimal ASCII (also a JSON number).

use conclave_sdk::{abort, emit_event, output, storage};
use std::hint::black_box;

const COUNTER_KEY: &[u8] = b"n";

fn spin() {
    let mut i: u64 = 0;
    loop {
        i = black_box(i.wrapping_add(1));
    }
}

fn hog() {
    const CHUNK: usize = 1 << 20;
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    loop {
        // Reserve without zeroing (zeroing a megabyte costs a megabyte of
        // fuel), then touch one byte per 4 KiB so the memory is really used.
        let mut chunk: Vec<u8> = Vec::with_capacity(CHUNK);
        for byte in chunk.spare_capacity_mut().iter_mut().step_by(4096) {
            byte.write(1);
        }
        chunks.push(black_box(chunk));
    }
}

fn trap() {
    panic!("faults: deliberate trap");
}

fn abort_method() {
    abort("faults: abort");
}

fn write_then_trap() {
    storage::set(COUNTER_KEY, b"garbage");
    emit_event("garbage", b"");
    panic!("faults: trap after writing");
}

fn ok() {
    let current = match storage::get(COUNTER_KEY) {
        None => 0,
        Some(bytes) => match std::str::from_utf8(&bytes)
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
        {
            Some(n) => n,
            None => abort("counter `n` is not a decimal number"),
        },
    };
    let next = current.wrapping_add(1).to_string();
    storage::set(COUNTER_KEY, next.as_bytes());
    output(next.as_bytes());
}

conclave_sdk::methods!(spin, hog, trap, abort = abort_method, write_then_trap, ok);
