//! Executing one method call ([`crate::Call`] to [`crate::Outcome`]) in a
//! fresh instance of its app.

use std::sync::Arc;

use wasmtime::{Engine, Store, Trap};

use crate::app::App;
use crate::config::Limits;
use crate::driver::{drive, StateChannel};
use crate::error::{Error, Result};
use crate::host::HostState;
use crate::trap::HostTrap;
use crate::types::{Call, Failure, Outcome, StateView};

/// Longest method name quoted back in [`Failure::UnknownMethod`].
const MAX_QUOTED_METHOD: usize = 128;

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
