//! The real `faults` app: each fault fails its call, and the next good call
//! still works on the same runtime and state.

use conclave_runtime::Failure;

use crate::common::{call, runtime, MemState};

#[test]
fn each_fault_fails_only_its_own_call() {
    let rt = runtime();
    let app = rt.load(conclave_apps::FAULTS).expect("faults loads");
    let mut state = MemState::default();
    let ok = |state: &mut MemState| {
        let outcome = rt
            .call(&app, call("ok", b""), state)
            .expect("no host failure");
        state.apply(&outcome);
        outcome.result
    };
    assert_eq!(ok(&mut state), Ok(b"1".to_vec()));

    let fault = |method: &str, state: &MemState| {
        rt.call(&app, call(method, b""), state)
            .expect("no host failure")
    };

    let spin = fault("spin", &state);
    assert_eq!(spin.result, Err(Failure::OutOfFuel));
    assert_eq!(spin.fuel_used, rt.limits().fuel_per_call);

    assert_eq!(fault("hog", &state).result, Err(Failure::MemoryLimit));

    let trap = fault("trap", &state);
    assert!(
        matches!(trap.result, Err(Failure::Trap(_))),
        "{:?}",
        trap.result
    );
    assert!(
        trap.logs
            .iter()
            .any(|line| line.contains("faults: deliberate trap")),
        "the panic message is logged: {:?}",
        trap.logs
    );

    assert_eq!(
        fault("abort", &state).result,
        Err(Failure::Abort("faults: abort".into()))
    );

    let dirty = fault("write_then_trap", &state);
    assert!(matches!(dirty.result, Err(Failure::Trap(_))));
    assert!(dirty.writes.is_empty() && dirty.events.is_empty());

    assert_eq!(ok(&mut state), Ok(b"2".to_vec()));
    assert_eq!(state.0.get(b"n".as_slice()), Some(&b"2".to_vec()));
}
