//! The fuel schedule: what each host call costs, so that the fuel a call uses
//! is the same on every validator.
//!
//! Wasm operators cost wasmtime's default operator costs (1 per operator,
//! plus 1 per byte for `memory.copy`, `memory.fill` and `memory.init`), with
//! [`MEMORY_GROW_PER_PAGE`] per 64 KiB page grown. Every host call costs a base
//! amount plus a per-byte amount for the bytes it moves across the boundary.
//! Changing any number here changes `fuel_used`, so it is a consensus change.

/// Base cost of every host call.
pub const HOST_CALL: u64 = 100;
/// Per byte copied between guest memory and the host.
pub const PER_BYTE: u64 = 1;
/// Base cost of `storage_read` (a state lookup), plus [`PER_BYTE`] for the
/// key and for the value found (copied out or not: the host fetched it).
pub const STORAGE_READ: u64 = 1_000;
/// Base cost of `storage_write` and `storage_remove`, plus
/// [`STORAGE_WRITE_PER_BYTE`] for the key and value.
pub const STORAGE_WRITE: u64 = 2_000;
/// Per byte of key and value written to state (it is hashed and persisted).
pub const STORAGE_WRITE_PER_BYTE: u64 = 4;
/// Base cost of `emit_event`, plus [`PER_BYTE`] for name and data.
pub const EVENT: u64 = 500;
/// Base cost of `onchain_action`, plus [`PER_BYTE`] for its bytes.
pub const ACTION: u64 = 1_000;
/// Fuel per 64 KiB wasm page that `memory.grow` adds.
pub const MEMORY_GROW_PER_PAGE: u8 = 64;

/// `base + per_byte * bytes`, saturating (a saturated cost simply exhausts
/// the fuel).
pub(crate) fn cost(base: u64, per_byte: u64, bytes: usize) -> u64 {
    let bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
    base.saturating_add(per_byte.saturating_mul(bytes))
}
