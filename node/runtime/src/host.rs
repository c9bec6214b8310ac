//! Per-call host state: the call's context, its write overlay and side
//! outputs, the memory limiter, and the helpers host functions use to move
//! bytes across the guest boundary safely and for a deterministic fee.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use wasmtime::{Caller, Memory, ResourceLimiter};

use crate::config::{Limits, MAX_TABLE_ELEMENTS, TABLE_SLOT};
use crate::costs;
use crate::driver::StateChannel;
use crate::trap::HostTrap;
use crate::types::{Call, Event};

/// Bounds the guest's memory and tables. Growing past a bound traps with
/// [`HostTrap::MemoryLimit`] (or [`HostTrap::Limit`] for tables) rather than
/// returning -1, so an unbounded allocator fails the call identifiably.
pub(crate) struct Limiter {
    max_memory_bytes: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if maximum.is_some_and(|maximum| desired > maximum) {
            // Beyond the module's own declared maximum: plain wasm semantics.
            return Ok(false);
        }
        if desired > self.max_memory_bytes {
            return Err(HostTrap::MemoryLimit {
                desired,
                limit: self.max_memory_bytes,
            }
            .into());
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // A maximum of the pool's slot size is the pool's, not the module's
        // (the module declared none, or one above it).
        if maximum.is_some_and(|maximum| desired > maximum && maximum < TABLE_SLOT) {
            return Ok(false);
        }
        if desired > MAX_TABLE_ELEMENTS {
            return Err(HostTrap::Limit(format!(
                "table would grow to {desired} elements, the limit is {MAX_TABLE_ELEMENTS}"
            ))
            .into());
        }
        Ok(true)
    }

    fn instances(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        16
    }
}

/// Everything one call's host functions see: the store data.
pub(crate) struct HostState {
    pub(crate) limits: Limits,
    pub(crate) input: Vec<u8>,
    pub(crate) caller: [u8; 32],
    pub(crate) context_id: [u8; 32],
    pub(crate) block_height: u64,
    pub(crate) block_time_ms: u64,
    /// The member ids of [`Call::members`], concatenated.
    pub(crate) members: Vec<u8>,
    pub(crate) read_only: bool,
    /// The instance's exported `memory`, set right after instantiation.
    pub(crate) memory: Option<Memory>,
    pub(crate) output: Option<Vec<u8>>,
    /// The call's writes (`None` = removed); reads consult it first.
    pub(crate) writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Answers of the node's state already fetched during this call.
    pub(crate) reads: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    pub(crate) events: Vec<Event>,
    pub(crate) actions: Vec<Vec<u8>>,
    pub(crate) logs: Vec<String>,
    pub(crate) log_bytes: usize,
    pub(crate) limiter: Limiter,
    /// Where storage reads are handed to the driver, which owns the
    /// borrowed [`crate::StateView`].
    pub(crate) channel: Arc<StateChannel>,
}

impl HostState {
    pub(crate) fn new(limits: Limits, call: &Call<'_>, channel: Arc<StateChannel>) -> Self {
        Self {
            limits,
            input: call.args.to_vec(),
            caller: call.caller,
            context_id: call.context_id,
            block_height: call.block_height,
            block_time_ms: call.block_time_ms,
            members: call.members.concat(),
            read_only: call.read_only,
            memory: None,
            output: None,
            writes: BTreeMap::new(),
            reads: BTreeMap::new(),
            events: Vec::new(),
            actions: Vec::new(),
            logs: Vec::new(),
            log_bytes: 0,
            limiter: Limiter {
                max_memory_bytes: limits.max_memory_bytes,
            },
            channel,
        }
    }

    /// The value of `key` as this call sees it, if known without asking the
    /// node: the call's own write, or an earlier answer.
    pub(crate) fn cached(&self, key: &[u8]) -> Option<Option<Vec<u8>>> {
        self.writes
            .get(key)
            .or_else(|| self.reads.get(key))
            .cloned()
    }
}

/// Takes `cost` fuel from the call, or fails it with [`HostTrap::OutOfFuel`]
/// (leaving no fuel, as running out inside wasm does).
pub(crate) fn charge(caller: &mut Caller<'_, HostState>, cost: u64) -> wasmtime::Result<()> {
    let fuel = caller.get_fuel()?;
    match fuel.checked_sub(cost) {
        Some(left) => caller.set_fuel(left),
        None => {
            caller.set_fuel(0)?;
            Err(HostTrap::OutOfFuel.into())
        }
    }
}

/// A guest length (an `i32` holding a `u32`) as `usize`.
pub(crate) fn guest_len(len: i32) -> usize {
    // Lossless on the 32- and 64-bit hosts wasmtime supports.
    len as u32 as usize
}

/// Fails with [`HostTrap::Limit`] if `len` exceeds `limit`.
pub(crate) fn check_len(what: &str, len: usize, limit: usize) -> Result<(), HostTrap> {
    if len > limit {
        return Err(HostTrap::Limit(format!(
            "{what} is {len} bytes, the limit is {limit}"
        )));
    }
    Ok(())
}

fn memory(caller: &Caller<'_, HostState>) -> Result<Memory, HostTrap> {
    caller.data().memory.ok_or_else(|| {
        HostTrap::Invalid("host API called before the module's memory was available".into())
    })
}

fn range(what: &str, ptr: i32, len: usize, memory_len: usize) -> Result<Range<usize>, HostTrap> {
    let start = guest_len(ptr);
    match start.checked_add(len) {
        Some(end) if end <= memory_len => Ok(start..end),
        _ => Err(HostTrap::Invalid(format!(
            "{what}: {len} bytes at {start:#x} are out of bounds of the {memory_len}-byte memory"
        ))),
    }
}

/// Copies `len` bytes at `ptr` out of guest memory.
pub(crate) fn read_bytes(
    caller: &mut Caller<'_, HostState>,
    what: &str,
    ptr: i32,
    len: usize,
) -> Result<Vec<u8>, HostTrap> {
    let memory = memory(caller)?;
    let data = memory.data(&*caller);
    let range = range(what, ptr, len, data.len())?;
    Ok(data[range].to_vec())
}

/// Copies `bytes` into guest memory at `ptr`.
pub(crate) fn write_bytes(
    caller: &mut Caller<'_, HostState>,
    what: &str,
    ptr: i32,
    bytes: &[u8],
) -> Result<(), HostTrap> {
    let memory = memory(caller)?;
    let data = memory.data_mut(&mut *caller);
    let range = range(what, ptr, bytes.len(), data.len())?;
    data[range].copy_from_slice(bytes);
    Ok(())
}

/// Copies one of the host state's own buffers (chosen by `pick`) into guest
/// memory at `ptr`, without cloning it first.
pub(crate) fn write_from_state(
    caller: &mut Caller<'_, HostState>,
    what: &str,
    ptr: i32,
    pick: impl FnOnce(&HostState) -> &[u8],
) -> Result<(), HostTrap> {
    let memory = memory(caller)?;
    let (data, state) = memory.data_and_store_mut(&mut *caller);
    let bytes = pick(state);
    let range = range(what, ptr, bytes.len(), data.len())?;
    data[range].copy_from_slice(bytes);
    Ok(())
}

/// Charges for and copies up to `budget` bytes of a guest message at
/// `ptr`/`len`, checking the whole range is in bounds, and decodes it lossily.
pub(crate) fn read_message(
    caller: &mut Caller<'_, HostState>,
    what: &str,
    ptr: i32,
    len: i32,
    budget: usize,
) -> wasmtime::Result<String> {
    let len = guest_len(len);
    let kept = len.min(budget);
    charge(caller, costs::cost(costs::HOST_CALL, costs::PER_BYTE, kept))?;
    let memory = memory(caller)?;
    let data = memory.data(&*caller);
    let whole = range(what, ptr, len, data.len())?;
    let bytes = &data[whole.start..whole.start + kept];
    Ok(String::from_utf8_lossy(bytes).into_owned())
}
