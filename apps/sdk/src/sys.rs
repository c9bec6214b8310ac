//! The raw host imports (wasm module `env`) and their thinnest safe wrappers.
//!
//! This is the only module of the SDK with `unsafe`: calling an imported
//! function is `unsafe` in Rust because the compiler cannot see its body. Each
//! wrapper passes pointers and lengths of live Rust slices, so the host only
//! ever reads or writes memory the guest owns for the duration of the call;
//! the host bounds-checks every access on its side as well.
#![allow(unsafe_code)]

#[link(wasm_import_module = "env")]
unsafe extern "C" {
    #[link_name = "input_len"]
    fn host_input_len() -> i32;
    #[link_name = "input_read"]
    fn host_input_read(ptr: *mut u8);
    #[link_name = "output_write"]
    fn host_output_write(ptr: *const u8, len: i32);
    #[link_name = "storage_read"]
    fn host_storage_read(key_ptr: *const u8, key_len: i32, out_ptr: *mut u8, out_cap: i32) -> i64;
    #[link_name = "storage_write"]
    fn host_storage_write(key_ptr: *const u8, key_len: i32, val_ptr: *const u8, val_len: i32);
    #[link_name = "storage_remove"]
    fn host_storage_remove(key_ptr: *const u8, key_len: i32);
    #[link_name = "caller"]
    fn host_caller(out_ptr: *mut u8);
    #[link_name = "context_id"]
    fn host_context_id(out_ptr: *mut u8);
    #[link_name = "block_height"]
    fn host_block_height() -> i64;
    #[link_name = "block_time_ms"]
    fn host_block_time_ms() -> i64;
    #[link_name = "members_count"]
    fn host_members_count() -> i32;
    #[link_name = "members_read"]
    fn host_members_read(out_ptr: *mut u8);
    #[link_name = "emit_event"]
    fn host_emit_event(name_ptr: *const u8, name_len: i32, data_ptr: *const u8, data_len: i32);
    #[link_name = "onchain_action"]
    fn host_onchain_action(ptr: *const u8, len: i32);
    #[link_name = "log"]
    fn host_log(ptr: *const u8, len: i32);
    #[link_name = "abort"]
    fn host_abort(ptr: *const u8, len: i32);
}

/// Converts a slice length to the host ABI's `i32`. Slices longer than
/// `i32::MAX` cannot exist on wasm32 in practice; saturate so the host refuses
/// them with a clear limit error instead of seeing a wrapped length.
fn len32(bytes: &[u8]) -> i32 {
    i32::try_from(bytes.len()).unwrap_or(i32::MAX)
}

pub(crate) fn input() -> Vec<u8> {
    // SAFETY: no arguments.
    let len = unsafe { host_input_len() };
    let mut buf = vec![0u8; usize::try_from(len).unwrap_or(0)];
    // SAFETY: `buf` holds exactly `input_len()` writable bytes.
    unsafe { host_input_read(buf.as_mut_ptr()) };
    buf
}

pub(crate) fn output(bytes: &[u8]) {
    // SAFETY: `bytes` is a live slice of `len` readable bytes.
    unsafe { host_output_write(bytes.as_ptr(), len32(bytes)) }
}

/// Reads `key` into `out`; returns the value's full length, or `None` if the
/// key is absent. The bytes are copied only when they fit in `out`.
pub(crate) fn storage_read(key: &[u8], out: &mut [u8]) -> Option<usize> {
    // SAFETY: both slices are live; the host writes at most `out.len()` bytes.
    let len = unsafe { host_storage_read(key.as_ptr(), len32(key), out.as_mut_ptr(), len32(out)) };
    usize::try_from(len).ok()
}

pub(crate) fn storage_write(key: &[u8], value: &[u8]) {
    // SAFETY: both slices are live and only read by the host.
    unsafe { host_storage_write(key.as_ptr(), len32(key), value.as_ptr(), len32(value)) }
}

pub(crate) fn storage_remove(key: &[u8]) {
    // SAFETY: `key` is a live slice only read by the host.
    unsafe { host_storage_remove(key.as_ptr(), len32(key)) }
}

pub(crate) fn caller() -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: `out` has the 32 writable bytes the host fills.
    unsafe { host_caller(out.as_mut_ptr()) };
    out
}

pub(crate) fn context_id() -> [u8; 32] {
    let mut out = [0u8; 32];
    // SAFETY: `out` has the 32 writable bytes the host fills.
    unsafe { host_context_id(out.as_mut_ptr()) };
    out
}

pub(crate) fn block_height() -> u64 {
    // SAFETY: no arguments. The host passes the u64 bit pattern as i64.
    unsafe { host_block_height() as u64 }
}

pub(crate) fn members() -> Vec<[u8; 32]> {
    // SAFETY: no arguments.
    let n = usize::try_from(unsafe { host_members_count() }).unwrap_or(0);
    let mut flat = vec![0u8; n * 32];
    // SAFETY: `flat` has the `32 * n` writable bytes the host fills.
    unsafe { host_members_read(flat.as_mut_ptr()) };
    flat.chunks_exact(32)
        .map(|c| {
            let mut id = [0u8; 32];
            id.copy_from_slice(c);
            id
        })
        .collect()
}

pub(crate) fn block_time_ms() -> u64 {
    // SAFETY: no arguments. The host passes the u64 bit pattern as i64.
    unsafe { host_block_time_ms() as u64 }
}

pub(crate) fn emit_event(name: &[u8], data: &[u8]) {
    // SAFETY: both slices are live and only read by the host.
    unsafe { host_emit_event(name.as_ptr(), len32(name), data.as_ptr(), len32(data)) }
}

pub(crate) fn onchain_action(bytes: &[u8]) {
    // SAFETY: `bytes` is a live slice only read by the host.
    unsafe { host_onchain_action(bytes.as_ptr(), len32(bytes)) }
}

pub(crate) fn log(msg: &[u8]) {
    // SAFETY: `msg` is a live slice only read by the host.
    unsafe { host_log(msg.as_ptr(), len32(msg)) }
}

pub(crate) fn abort(msg: &[u8]) -> ! {
    // SAFETY: `msg` is a live slice only read by the host.
    unsafe { host_abort(msg.as_ptr(), len32(msg)) };
    // The host never returns from `abort`; trap in case a host ever does.
    std::process::abort()
}
