//! The context's key-value state.
//!
//! Reads see the current call's own writes first. Writes are buffered by the
//! host and applied only if the call succeeds; in a read-only (view) call any
//! write fails the call.

use crate::sys;

/// First buffer size tried by [`get`]; a larger value costs one more host call.
const INITIAL_READ_CAPACITY: usize = 256;

/// The value stored under `key`, if any.
pub fn get(key: &[u8]) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; INITIAL_READ_CAPACITY];
    let len = sys::storage_read(key, &mut buf)?;
    if len > buf.len() {
        buf.resize(len, 0);
        match sys::storage_read(key, &mut buf) {
            Some(again) if again == len => {}
            _ => crate::abort("storage value changed between two reads of one call"),
        }
    }
    buf.truncate(len);
    Some(buf)
}

/// Whether a value is stored under `key`.
pub fn contains(key: &[u8]) -> bool {
    sys::storage_read(key, &mut []).is_some()
}

/// Stores `value` under `key`, replacing any previous value.
pub fn set(key: &[u8], value: &[u8]) {
    sys::storage_write(key, value);
}

/// Removes `key` (no effect if absent).
pub fn remove(key: &[u8]) {
    sys::storage_remove(key);
}
