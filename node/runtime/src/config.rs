//! Resource limits of a call and the deterministic wasmtime configuration.

use serde::{Deserialize, Serialize};
use wasmtime::{
    Config, Enabled, InstanceAllocationStrategy, OperatorCost, OptLevel, PoolingAllocationConfig,
    WasmBacktraceDetails,
};

use crate::costs;
use crate::error::{Error, Result};

/// Wasm stack a call may use; a deeper recursion traps (`call stack
/// exhausted`). The same on every validator because it is part of the
/// configuration, not of the host thread.
pub const MAX_WASM_STACK: usize = 512 * 1024;
/// Native stack each call runs on (a fiber); must exceed [`MAX_WASM_STACK`]
/// with room for the host functions.
const FIBER_STACK: usize = 2 * 1024 * 1024;
/// Most table elements a module may have or grow to.
pub const MAX_TABLE_ELEMENTS: usize = 65_536;
/// One wasm page.
const WASM_PAGE: usize = 64 * 1024;
/// Instances that may exist at once (one per call in progress); calls
/// beyond it wait for a slot ([`crate::Runtime`]), never fail.
pub(crate) const POOL_SLOTS: u32 = 64;
/// Tables a module may declare (Rust guests have one).
const MAX_TABLES: u32 = 4;
/// Elements each pooled table can hold: far above [`MAX_TABLE_ELEMENTS`],
/// so that growth is refused by the call's limiter with its own failure,
/// not by the pool (a memory slot likewise holds a full 4 GiB, the pool's
/// default). A limiter told of this maximum knows it is the pool's, not
/// the module's.
pub(crate) const TABLE_SLOT: usize = 1 << 20;
/// Linear memory, per slot, reset in place instead of with `madvise` when
/// a call ends, so a small app's pages stay mapped from call to call. On
/// Linux 6.7 and later wasmtime asks the kernel which pages are resident
/// and dirty (`PAGEMAP_SCAN`, enabled in [`engine_config`]) and resets only
/// those; elsewhere it resets all of the first 4 MiB. An app built by Rust
/// has a 1 MiB stack below its data, so its live pages sit just above
/// 1 MiB: at 64 KiB they were given back with `madvise` after every call,
/// which interrupts every core running the process to flush its TLB and
/// faults the pages in again on the next call (about 3 % of a member's CPU
/// at 1,000 tx/s). Without the scan, the reset wrote the whole 1 MiB stack
/// and the data after it on every call: 30 µs of a kv `set`'s 57.
const KEEP_RESIDENT: usize = 4 << 20;

/// Bounds on what one call may consume or produce. Every validator of a
/// context must use the same limits: they decide whether a call fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Fuel available to one call (wasm operators and host calls, see
    /// [`crate::costs`]).
    pub fuel_per_call: u64,
    /// Largest linear memory, in bytes.
    pub max_memory_bytes: usize,
    /// Largest call argument.
    pub max_input_bytes: usize,
    /// Largest call result.
    pub max_output_bytes: usize,
    /// Largest storage key.
    pub max_key_bytes: usize,
    /// Largest storage value; also the largest on-chain action.
    pub max_value_bytes: usize,
    /// Most events one call may emit.
    pub max_events: usize,
    /// Largest event (name plus data).
    pub max_event_bytes: usize,
    /// Most on-chain actions one call may request.
    pub max_actions: usize,
    /// Log bytes kept per call (further log lines are dropped; an abort
    /// message is cut to this size).
    pub max_log_bytes: usize,
    /// Largest wasm module accepted by [`crate::Runtime::load`].
    pub max_module_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            fuel_per_call: 10_000_000,
            max_memory_bytes: 32 * 1024 * 1024,
            max_input_bytes: 64 * 1024,
            max_output_bytes: 64 * 1024,
            max_key_bytes: 1024,
            max_value_bytes: 64 * 1024,
            max_events: 64,
            max_event_bytes: 16 * 1024,
            max_actions: 16,
            max_log_bytes: 16 * 1024,
            max_module_bytes: 8 * 1024 * 1024,
        }
    }
}

impl Limits {
    /// Checks that the limits can be enforced: lengths travel as `i32` across
    /// the host API and wasm32 memory is at most 4 GiB.
    pub fn validate(&self) -> Result<()> {
        if self.fuel_per_call == 0 {
            return Err(Error::InvalidLimits("fuel_per_call must be positive"));
        }
        if self.max_memory_bytes < WASM_PAGE || self.max_memory_bytes > 1 << 32 {
            return Err(Error::InvalidLimits(
                "max_memory_bytes must be between one wasm page (64 KiB) and 4 GiB",
            ));
        }
        let lengths = [
            self.max_input_bytes,
            self.max_output_bytes,
            self.max_key_bytes,
            self.max_value_bytes,
            self.max_event_bytes,
            self.max_log_bytes,
        ];
        if lengths.iter().any(|&len| i32::try_from(len).is_err()) {
            return Err(Error::InvalidLimits(
                "byte limits must fit the host API's i32 lengths",
            ));
        }
        if self.max_module_bytes == 0 {
            return Err(Error::InvalidLimits("max_module_bytes must be positive"));
        }
        Ok(())
    }
}

/// The wasmtime configuration every node uses. Each setting here removes a
/// source of divergence between validators:
///
/// - fuel metering with a pinned operator cost table ([`crate::costs`]);
/// - NaN canonicalisation, so float results have one bit pattern;
/// - relaxed SIMD off (and deterministic if ever enabled);
/// - no threads (the `threads` cargo feature is off), memory64,
///   multi-memory, custom page sizes or stack switching;
/// - a fixed wasm stack bound, run on a fixed-size fiber stack, so stack
///   exhaustion does not depend on the host thread;
/// - no backtraces, so trap messages are short and identical everywhere.
///
/// Instances come from a pool ([`POOL_SLOTS`] slots of memory, table and
/// fiber stack, reserved once): a call then maps and unmaps nothing, where
/// a fresh mapping per call (and its unmapping, which interrupts every core
/// running the process) cost more than running the call itself. A reused
/// slot starts from the module's initial memory image like a fresh one.
/// Explicit bounds checks (no guard pages, no signal-based traps) also keep
/// the slot's protections fixed: with guard pages, the pages a call grew
/// were made inaccessible again before the next call, an `mprotect` that
/// interrupts every core running the process to flush its TLB, on every
/// call that grows memory (every call of a Rust app: its allocator grows
/// memory for its first allocation). A kv `set` went from 24 to 15 µs.
pub(crate) fn engine_config(limits: &Limits) -> Config {
    let mut pool = PoolingAllocationConfig::default();
    pool.total_core_instances(POOL_SLOTS)
        .total_memories(POOL_SLOTS)
        .total_tables(POOL_SLOTS)
        .total_stacks(POOL_SLOTS)
        .total_component_instances(0)
        .max_memories_per_module(1)
        .max_tables_per_module(MAX_TABLES)
        .table_elements(TABLE_SLOT)
        .linear_memory_keep_resident(KEEP_RESIDENT.min(limits.max_memory_bytes))
        .table_keep_resident(KEEP_RESIDENT)
        .pagemap_scan(Enabled::Auto);

    let mut cost = OperatorCost::new();
    cost.variable.memory_grow_per_page = costs::MEMORY_GROW_PER_PAGE;

    let mut config = Config::new();
    config
        .consume_fuel(true)
        .operator_cost(cost)
        .cranelift_nan_canonicalization(true)
        .cranelift_opt_level(OptLevel::Speed)
        .wasm_relaxed_simd(false)
        .relaxed_simd_deterministic(true)
        .wasm_memory64(false)
        .wasm_multi_memory(false)
        .wasm_custom_page_sizes(false)
        .wasm_stack_switching(false)
        .wasm_shared_everything_threads(false)
        .wasm_backtrace_max_frames(None)
        .wasm_backtrace_details(WasmBacktraceDetails::Disable)
        .max_wasm_stack(MAX_WASM_STACK)
        .signals_based_traps(false)
        .memory_guard_size(0)
        .async_stack_size(FIBER_STACK)
        .parallel_compilation(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_limits_are_valid() {
        assert!(Limits::default().validate().is_ok());
    }

    #[test]
    fn unusable_limits_are_refused() {
        let cases = [
            Limits {
                fuel_per_call: 0,
                ..Limits::default()
            },
            Limits {
                max_memory_bytes: 1024,
                ..Limits::default()
            },
            Limits {
                max_input_bytes: usize::MAX,
                ..Limits::default()
            },
            Limits {
                max_module_bytes: 0,
                ..Limits::default()
            },
        ];
        for limits in cases {
            assert!(
                matches!(limits.validate(), Err(Error::InvalidLimits(_))),
                "{limits:?} was accepted"
            );
        }
    }

    #[test]
    fn limits_deserialize_with_defaults() {
        let limits: Limits =
            serde_json::from_str(r#"{"fuel_per_call": 5}"#).expect("partial limits parse");
        assert_eq!(limits.fuel_per_call, 5);
        assert_eq!(limits.max_memory_bytes, Limits::default().max_memory_bytes);
    }

    #[test]
    fn engine_config_builds_an_engine() {
        assert!(wasmtime::Engine::new(&engine_config(&Limits::default())).is_ok());
    }
}
