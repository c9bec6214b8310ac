//! One method call: its inputs ([`Call`], [`StateView`]), its result
//! ([`Outcome`], [`Failure`]) and its execution.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use wasmtime::{Engine, Store, Trap};

use crate::app::App;
use crate::config::Limits;
use crate::driver::{drive, StateChannel};
use crate::error::{Error, Result, StateError};
use crate::host::{HostState, HostTrap};

/// Longest method name quoted back in [`Failure::UnknownMethod`].
const MAX_QUOTED_METHOD: usize = 128;

/// A request to run one method of an app.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// Name of the exported method.
    pub method: &'a str,
    /// Argument bytes, read by the guest with `input_read`.
    pub args: &'a [u8],
    /// The transaction's sender.
    pub caller: [u8; 32],
    /// The context the app instance belongs to.
    pub context_id: [u8; 32],
    /// Height of the block being executed.
    pub block_height: u64,
    /// Agreed time of that block, in ms since the Unix epoch.
    pub block_time_ms: u64,
    /// The members who validate that block (the context's member set at
    /// its height), sorted by id: what `members_read` gives the guest.
    pub members: &'a [[u8; 32]],
    /// A view call: any state change or on-chain action fails the call.
    pub read_only: bool,
}

/// The state a call reads: the node's committed state under its block's
/// pending writes. Must answer identically on every validator.
pub trait StateView {
    /// The value under `key`, if any. An error aborts the call with
    /// [`Error::State`] (it says nothing about the guest).
    fn get(&self, key: &[u8]) -> std::result::Result<Option<Vec<u8>>, StateError>;
}

/// An application event emitted by a successful call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Event name (UTF-8).
    pub name: String,
    /// Opaque payload.
    pub data: Vec<u8>,
}

/// Why a call failed. Deterministic: every validator reaches the same one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum Failure {
    /// The call used all its fuel.
    #[error("out of fuel")]
    OutOfFuel,
    /// The guest tried to grow its memory past the limit.
    #[error("memory limit exceeded")]
    MemoryLimit,
    /// The guest trapped (panic, `unreachable`, bad memory access, stack
    /// exhaustion, or a host API misuse such as an out-of-bounds pointer).
    #[error("trap: {0}")]
    Trap(String),
    /// The guest called `abort` with this message.
    #[error("aborted: {0}")]
    Abort(String),
    /// The app has no method of that name.
    #[error("unknown method `{0}`")]
    UnknownMethod(String),
    /// A size or count limit was exceeded.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// A read-only call tried to change state or request an action.
    #[error("read-only call attempted a state change")]
    ReadOnlyViolation,
}

/// What a call did. On failure, `writes`, `events` and `actions` are empty;
/// `logs` are kept for diagnosis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The output bytes, or why the call failed.
    pub result: std::result::Result<Vec<u8>, Failure>,
    /// Fuel consumed, identical on every validator.
    pub fuel_used: u64,
    /// State changes to apply (`None` = remove), sorted by key.
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Events in emission order.
    pub events: Vec<Event>,
    /// On-chain action requests in order.
    pub actions: Vec<Vec<u8>>,
    /// Guest log lines (bounded by [`Limits::max_log_bytes`]).
    pub logs: Vec<String>,
}

impl Outcome {
    fn failed(failure: Failure, fuel_used: u64, logs: Vec<String>) -> Self {
        Self {
            result: Err(failure),
            fuel_used,
            writes: BTreeMap::new(),
            events: Vec::new(),
            actions: Vec::new(),
            logs,
        }
    }

    /// Whether the call succeeded.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}

/// Runs `call` against `app` in a fresh instance (a pooled slot, reset to
/// the module's initial state).
pub(crate) fn execute(
    engine: &Engine,
    limits: &Limits,
    app: &App,
    call: Call<'_>,
    state: &dyn StateView,
) -> Result<Outcome> {
    if !Engine::same(engine, app.instance_pre().module().engine()) {
        return Err(Error::Internal(
            "the app was loaded by another runtime".into(),
        ));
    }
    if call.args.len() > limits.max_input_bytes {
        let failure = Failure::LimitExceeded(format!(
            "input is {} bytes, the limit is {}",
            call.args.len(),
            limits.max_input_bytes
        ));
        return Ok(Outcome::failed(failure, 0, Vec::new()));
    }
    if !app.has_method(call.method) {
        let quoted: String = call.method.chars().take(MAX_QUOTED_METHOD).collect();
        return Ok(Outcome::failed(
            Failure::UnknownMethod(quoted),
            0,
            Vec::new(),
        ));
    }

    let channel = Arc::new(StateChannel::default());
    let mut store = Store::new(engine, HostState::new(*limits, &call, channel.clone()));
    store.limiter(|host| &mut host.limiter);
    store
        .set_fuel(limits.fuel_per_call)
        .map_err(|err| Error::Internal(format!("cannot set fuel: {err}")))?;

    let result = drive(run(&mut store, app, call.method), &channel, state)?;

    let fuel_left = store
        .get_fuel()
        .map_err(|err| Error::Internal(format!("cannot read fuel: {err}")))?;
    let fuel_used = limits.fuel_per_call.saturating_sub(fuel_left);
    let host = store.into_data();
    let outcome = match result {
        Ok(()) => Outcome {
            result: Ok(host.output.unwrap_or_default()),
            fuel_used,
            writes: host.writes,
            events: host.events,
            actions: host.actions,
            logs: host.logs,
        },
        Err(err) => Outcome::failed(classify(&err)?, fuel_used, host.logs),
    };
    tracing::debug!(
        app = %hex::encode(app.hash()),
        method = call.method,
        fuel_used,
        ok = outcome.is_ok(),
        "call finished"
    );
    Ok(outcome)
}

/// Instantiates the app and runs `method` (all inside the driven future, so
/// host calls during instantiation can read state too).
async fn run(store: &mut Store<HostState>, app: &App, method: &str) -> wasmtime::Result<()> {
    let instance = app.instance_pre().instantiate_async(&mut *store).await?;
    let memory = instance
        .get_memory(&mut *store, "memory")
        .ok_or_else(|| HostTrap::Invalid("module has no exported `memory`".into()))?;
    store.data_mut().memory = Some(memory);
    let func = instance.get_typed_func::<(), ()>(&mut *store, method)?;
    func.call_async(&mut *store, ()).await
}

/// Maps a call's error to a [`Failure`] by its type: our own [`HostTrap`]s
/// (raised by host functions and the limiter) first, then wasmtime's
/// [`Trap`] codes. Messages come from fixed strings, so every validator
/// produces the same one. Anything else did not come from the guest (e.g. the
/// host could not allocate an instance) and is a host [`Error`], so that a
/// resource failure on one node never becomes a result the others disagree
/// with.
fn classify(err: &wasmtime::Error) -> Result<Failure> {
    let host_trap = err.downcast_ref::<HostTrap>().or_else(|| {
        err.chain()
            .find_map(|cause| cause.downcast_ref::<HostTrap>())
    });
    if let Some(trap) = host_trap {
        return trap.failure();
    }
    match err.downcast_ref::<Trap>() {
        Some(Trap::OutOfFuel) => Ok(Failure::OutOfFuel),
        Some(trap) => Ok(Failure::Trap(trap.to_string())),
        None => Err(Error::Internal(format!("call failed in the host: {err}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_display_clearly() {
        assert_eq!(Failure::OutOfFuel.to_string(), "out of fuel");
        assert_eq!(
            Failure::UnknownMethod("x".into()).to_string(),
            "unknown method `x`"
        );
        assert_eq!(Failure::Abort("no".into()).to_string(), "aborted: no");
    }

    #[test]
    fn failures_serialize_with_a_kind_tag() {
        let json = serde_json::to_string(&Failure::Abort("bad".into())).expect("serializes");
        assert_eq!(json, r#"{"kind":"abort","message":"bad"}"#);
        let json = serde_json::to_string(&Failure::OutOfFuel).expect("serializes");
        assert_eq!(json, r#"{"kind":"out_of_fuel"}"#);
    }

    #[test]
    fn host_traps_classify_by_type_even_with_context() {
        let err = wasmtime::Error::new(HostTrap::MemoryLimit {
            desired: 2,
            limit: 1,
        })
        .context("while growing memory");
        assert_eq!(classify(&err).ok(), Some(Failure::MemoryLimit));
        let err = wasmtime::Error::new(Trap::OutOfFuel);
        assert_eq!(classify(&err).ok(), Some(Failure::OutOfFuel));
        let err = wasmtime::Error::new(Trap::UnreachableCodeReached);
        assert!(matches!(classify(&err), Ok(Failure::Trap(_))));
    }

    #[test]
    fn errors_not_caused_by_the_guest_are_host_errors() {
        let err = wasmtime::Error::new(HostTrap::State);
        assert!(matches!(classify(&err), Err(Error::Internal(_))));
        let err = wasmtime::Error::msg("failed to allocate an instance");
        assert!(matches!(classify(&err), Err(Error::Internal(_))));
    }
}
