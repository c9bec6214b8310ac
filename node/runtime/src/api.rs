//! The host API: the functions a guest may import from module `env`.
//!
//! All pointers and lengths are `i32`s read as `u32` offsets into the
//! guest's exported `memory`; an out-of-bounds range fails the call with
//! [`crate::Failure::Trap`]. Every function charges fuel per
//! [`crate::costs`] before it copies anything.

use wasmtime::{Caller, Linker};

use crate::costs::{self, cost};
use crate::host::{
    charge, check_len, guest_len, read_bytes, read_message, write_bytes, write_from_state,
    HostState,
};
use crate::trap::HostTrap;
use crate::types::Event;

/// Import module of the host API.
pub const MODULE: &str = "env";

/// A value type of the host API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ty {
    I32,
    I64,
}

impl Ty {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::I32 => "i32",
            Self::I64 => "i64",
        }
    }
}

use Ty::{I32, I64};

/// `(name, params, results)` of every host function, as [`define`] links
/// them; [`crate::app`] checks a module's imports against this table.
pub(crate) const HOST_API: &[(&str, &[Ty], &[Ty])] = &[
    ("input_len", &[], &[I32]),
    ("input_read", &[I32], &[]),
    ("output_write", &[I32, I32], &[]),
    ("storage_read", &[I32, I32, I32, I32], &[I64]),
    ("storage_write", &[I32, I32, I32, I32], &[]),
    ("storage_remove", &[I32, I32], &[]),
    ("caller", &[I32], &[]),
    ("context_id", &[I32], &[]),
    ("block_height", &[], &[I64]),
    ("block_time_ms", &[], &[I64]),
    ("members_count", &[], &[I32]),
    ("members_read", &[I32], &[]),
    ("emit_event", &[I32, I32, I32, I32], &[]),
    ("onchain_action", &[I32, I32], &[]),
    ("log", &[I32, I32], &[]),
    ("abort", &[I32, I32], &[]),
];

type Ctx<'a> = Caller<'a, HostState>;

/// Links every function of [`HOST_API`] into `linker`.
pub(crate) fn define(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    linker.func_wrap(MODULE, "input_len", |mut caller: Ctx<'_>| {
        charge(&mut caller, costs::HOST_CALL)?;
        // The input was checked against `max_input_bytes`, which fits an i32.
        Ok(i32::try_from(caller.data().input.len()).unwrap_or(i32::MAX))
    })?;

    linker.func_wrap(MODULE, "input_read", |mut caller: Ctx<'_>, ptr: i32| {
        let len = caller.data().input.len();
        charge(&mut caller, cost(costs::HOST_CALL, costs::PER_BYTE, len))?;
        write_from_state(&mut caller, "input_read", ptr, |state| &state.input)?;
        Ok(())
    })?;

    linker.func_wrap(
        MODULE,
        "output_write",
        |mut caller: Ctx<'_>, ptr: i32, len: i32| {
            let len = guest_len(len);
            check_len("output", len, caller.data().limits.max_output_bytes)?;
            charge(&mut caller, cost(costs::HOST_CALL, costs::PER_BYTE, len))?;
            let output = read_bytes(&mut caller, "output_write", ptr, len)?;
            caller.data_mut().output = Some(output);
            Ok(())
        },
    )?;

    linker.func_wrap_async(
        MODULE,
        "storage_read",
        |mut caller: Ctx<'_>, (key_ptr, key_len, out_ptr, out_cap): (i32, i32, i32, i32)| {
            Box::new(async move {
                let key = storage_key(&mut caller, key_ptr, key_len, costs::STORAGE_READ, 1)?;
                let value = match caller.data().cached(&key) {
                    Some(value) => value,
                    None => {
                        let channel = caller.data().channel.clone();
                        let value = channel.get(key.clone()).await?;
                        caller.data_mut().reads.insert(key, value.clone());
                        value
                    }
                };
                let Some(value) = value else {
                    return Ok(-1);
                };
                // Paid whether or not it is copied: the host holds the value.
                charge(&mut caller, cost(0, costs::PER_BYTE, value.len()))?;
                if value.len() <= guest_len(out_cap) {
                    write_bytes(&mut caller, "storage_read", out_ptr, &value)?;
                }
                // Values are bounded by `max_value_bytes` when written.
                Ok(i64::try_from(value.len()).unwrap_or(i64::MAX))
            })
        },
    )?;

    linker.func_wrap(
        MODULE,
        "storage_write",
        |mut caller: Ctx<'_>, key_ptr: i32, key_len: i32, val_ptr: i32, val_len: i32| {
            deny_if_read_only(&caller)?;
            let len = guest_len(val_len);
            check_len("storage value", len, caller.data().limits.max_value_bytes)?;
            let key = storage_key(
                &mut caller,
                key_ptr,
                key_len,
                cost(costs::STORAGE_WRITE, costs::STORAGE_WRITE_PER_BYTE, len),
                costs::STORAGE_WRITE_PER_BYTE,
            )?;
            let value = read_bytes(&mut caller, "storage_write", val_ptr, len)?;
            caller.data_mut().writes.insert(key, Some(value));
            Ok(())
        },
    )?;

    linker.func_wrap(
        MODULE,
        "storage_remove",
        |mut caller: Ctx<'_>, key_ptr: i32, key_len: i32| {
            deny_if_read_only(&caller)?;
            let key = storage_key(
                &mut caller,
                key_ptr,
                key_len,
                costs::STORAGE_WRITE,
                costs::STORAGE_WRITE_PER_BYTE,
            )?;
            caller.data_mut().writes.insert(key, None);
            Ok(())
        },
    )?;

    linker.func_wrap(MODULE, "caller", |mut caller: Ctx<'_>, ptr: i32| {
        charge(&mut caller, cost(costs::HOST_CALL, costs::PER_BYTE, 32))?;
        write_from_state(&mut caller, "caller", ptr, |state| &state.caller)?;
        Ok(())
    })?;

    linker.func_wrap(MODULE, "context_id", |mut caller: Ctx<'_>, ptr: i32| {
        charge(&mut caller, cost(costs::HOST_CALL, costs::PER_BYTE, 32))?;
        write_from_state(&mut caller, "context_id", ptr, |state| &state.context_id)?;
        Ok(())
    })?;

    linker.func_wrap(MODULE, "block_height", |mut caller: Ctx<'_>| {
        charge(&mut caller, costs::HOST_CALL)?;
        // The u64 travels as the i64 with the same bits.
        Ok(caller.data().block_height as i64)
    })?;

    linker.func_wrap(MODULE, "block_time_ms", |mut caller: Ctx<'_>| {
        charge(&mut caller, costs::HOST_CALL)?;
        Ok(caller.data().block_time_ms as i64)
    })?;

    linker.func_wrap(MODULE, "members_count", |mut caller: Ctx<'_>| {
        charge(&mut caller, costs::HOST_CALL)?;
        // At most MAX_MEMBERS (128) ids.
        Ok(i32::try_from(caller.data().members.len() / 32).unwrap_or(i32::MAX))
    })?;

    linker.func_wrap(MODULE, "members_read", |mut caller: Ctx<'_>, ptr: i32| {
        let len = caller.data().members.len();
        charge(&mut caller, cost(costs::HOST_CALL, costs::PER_BYTE, len))?;
        write_from_state(&mut caller, "members_read", ptr, |state| &state.members)?;
        Ok(())
    })?;

    linker.func_wrap(
        MODULE,
        "emit_event",
        |mut caller: Ctx<'_>, name_ptr: i32, name_len: i32, data_ptr: i32, data_len: i32| {
            let limits = caller.data().limits;
            if caller.data().events.len() >= limits.max_events {
                return Err(HostTrap::Limit(format!(
                    "more than {} events in one call",
                    limits.max_events
                ))
                .into());
            }
            let (name_len, data_len) = (guest_len(name_len), guest_len(data_len));
            let size = name_len.saturating_add(data_len);
            check_len("event", size, limits.max_event_bytes)?;
            charge(&mut caller, cost(costs::EVENT, costs::PER_BYTE, size))?;
            let name = read_bytes(&mut caller, "emit_event name", name_ptr, name_len)?;
            let data = read_bytes(&mut caller, "emit_event data", data_ptr, data_len)?;
            let name = String::from_utf8(name)
                .map_err(|_| HostTrap::Invalid("event name is not valid UTF-8".into()))?;
            caller.data_mut().events.push(Event { name, data });
            Ok(())
        },
    )?;

    linker.func_wrap(
        MODULE,
        "onchain_action",
        |mut caller: Ctx<'_>, ptr: i32, len: i32| {
            deny_if_read_only(&caller)?;
            let limits = caller.data().limits;
            if caller.data().actions.len() >= limits.max_actions {
                return Err(HostTrap::Limit(format!(
                    "more than {} on-chain actions in one call",
                    limits.max_actions
                ))
                .into());
            }
            let len = guest_len(len);
            check_len("on-chain action", len, limits.max_value_bytes)?;
            charge(&mut caller, cost(costs::ACTION, costs::PER_BYTE, len))?;
            let action = read_bytes(&mut caller, "onchain_action", ptr, len)?;
            caller.data_mut().actions.push(action);
            Ok(())
        },
    )?;

    linker.func_wrap(MODULE, "log", |mut caller: Ctx<'_>, ptr: i32, len: i32| {
        let state = caller.data();
        let budget = state.limits.max_log_bytes.saturating_sub(state.log_bytes);
        let line = read_message(&mut caller, "log", ptr, len, budget)?;
        if !line.is_empty() {
            tracing::debug!(target: "conclave_runtime::guest", %line, "guest log");
            let state = caller.data_mut();
            state.log_bytes = state.log_bytes.saturating_add(line.len());
            state.logs.push(line);
        }
        Ok(())
    })?;

    linker.func_wrap(
        MODULE,
        "abort",
        |mut caller: Ctx<'_>, ptr: i32, len: i32| {
            let budget = caller.data().limits.max_log_bytes;
            let message = read_message(&mut caller, "abort", ptr, len, budget)?;
            Err::<(), _>(HostTrap::Abort(message).into())
        },
    )?;

    Ok(())
}

fn deny_if_read_only(caller: &Ctx<'_>) -> Result<(), HostTrap> {
    if caller.data().read_only {
        return Err(HostTrap::ReadOnly);
    }
    Ok(())
}

/// Checks the key length, charges `base + per_key_byte * key_len`, and copies
/// the key out of guest memory.
fn storage_key(
    caller: &mut Ctx<'_>,
    ptr: i32,
    len: i32,
    base: u64,
    per_key_byte: u64,
) -> wasmtime::Result<Vec<u8>> {
    let len = guest_len(len);
    check_len("storage key", len, caller.data().limits.max_key_bytes)?;
    charge(caller, cost(base, per_key_byte, len))?;
    Ok(read_bytes(caller, "storage key", ptr, len)?)
}
