//! Conclave's deterministic wasm runtime: runs a context's app, one method
//! call at a time, identically on every validator.
//!
//! - [`Runtime`] (`runtime.rs`) holds the wasmtime engine, the linked host
//!   API and a cache of compiled apps; [`Runtime::load`] validates and
//!   compiles a module into an [`App`] (`app.rs`), [`Runtime::call`] runs one
//!   [`Call`] over a [`StateView`] and returns an [`Outcome`] (the types in
//!   `types.rs`, the execution in `call.rs`).
//! - [`Limits`] (`config.rs`) bound every call (fuel, memory, sizes, counts);
//!   the engine configuration there removes the sources of nondeterminism
//!   (fuel metering, NaN canonicalisation, no threads or relaxed SIMD, a
//!   fixed stack bound).
//! - The host API a guest imports from module `env` is in `api.rs`, the
//!   per-call host state and memory access helpers in `host.rs`, its fuel
//!   prices in [`costs`].
//! - `driver.rs` runs a call on a wasmtime fiber and serves its state reads
//!   from the borrowed [`StateView`].
//!
//! Writes are buffered in the call; the caller applies [`Outcome::writes`]
//! only if it wants them. A failing guest (trap, out of fuel, memory limit,
//! abort, limit exceeded, read-only violation, unknown method) yields an
//! `Outcome` whose `result` is a [`Failure`] and whose writes, events and
//! actions are empty; [`Error`] is reserved for host failures.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod api;
mod app;
mod call;
mod config;
pub mod costs;
mod driver;
mod error;
mod host;
mod runtime;
mod trap;
mod types;

pub use api::MODULE as HOST_MODULE;
pub use app::{app_hash, App, AppHash, CACHE_CAPACITY};
pub use config::{Limits, MAX_TABLE_ELEMENTS, MAX_WASM_STACK};
pub use error::{Error, Result, StateError};
pub use runtime::Runtime;
pub use types::{Call, Event, Failure, Outcome, StateView};
