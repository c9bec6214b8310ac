//! Guest-side SDK for Conclave apps.
//!
//! A Conclave app is a `cdylib` compiled to `wasm32-unknown-unknown`. Each
//! method is an exported function with no parameters and no results; the
//! host passes arguments and takes results through the host API that this
//! crate wraps:
//!
//! - [`input`] / [`input_json`] read the call's arguments, [`output`] /
//!   [`output_json`] set its return value;
//! - [`storage`] reads and writes the context's key-value state (the host
//!   buffers writes and discards them if the call fails);
//! - [`caller`] (the signing member in a transaction, the authenticated RPC
//!   caller in a view, [`ANONYMOUS`] for an anonymous view), [`context_id`],
//!   [`block_height`], [`block_time_ms`] describe the call;
//! - [`emit_event`], [`request_action`] (typed, see [`action`]),
//!   [`onchain_action`] (raw bytes) and [`log`] produce side outputs;
//! - [`abort`] fails the call with a message.
//!
//! Declare methods with [`methods!`], which exports them and installs a panic
//! hook that logs the panic message before the guest traps (the build uses
//! `panic = "abort"`, so a panic ends in a wasm `unreachable` trap).
//!
//! ```text
//! fn hello() {
//!     conclave_sdk::output(b"hello");
//! }
//! conclave_sdk::methods!(hello);
//! ```

mod sys;

pub mod action;
pub mod storage;

use serde::{de::DeserializeOwned, Serialize};

/// The call's raw argument bytes.
pub fn input() -> Vec<u8> {
    sys::input()
}

/// The call's arguments decoded from JSON; aborts the call with a clear
/// message if they are not valid JSON for `T`.
pub fn input_json<T: DeserializeOwned>() -> T {
    let bytes = input();
    match serde_json::from_slice(&bytes) {
        Ok(value) => value,
        Err(err) => abort(&format!("invalid JSON arguments: {err}")),
    }
}

/// Sets the call's return value (the last call wins).
pub fn output(bytes: &[u8]) {
    sys::output(bytes);
}

/// Sets the call's return value to `value` encoded as JSON.
pub fn output_json<T: Serialize + ?Sized>(value: &T) {
    match serde_json::to_vec(value) {
        Ok(bytes) => output(&bytes),
        Err(err) => abort(&format!("cannot encode output as JSON: {err}")),
    }
}

/// The caller of an anonymous view: all zeros, never a member id.
pub const ANONYMOUS: [u8; 32] = [0; 32];

/// The 32-byte member id (ed25519 public key) of whoever made the call:
///
/// - in a transaction, the member who signed it (its `sender`), checked by
///   every member's node before the app runs;
/// - in a view (`app_view`, read-only), the member the RPC caller
///   authenticated as, as the node passes it; [`ANONYMOUS`] (all zeros) if
///   the view is anonymous.
///
/// An app that answers per member (e.g. "my notes") must refuse
/// [`ANONYMOUS`]; [`member_caller`] does that check. Note that hiding data
/// from other members' views does not hide it from their nodes: every
/// member's node executes every transaction and holds all the state.
pub fn caller() -> [u8; 32] {
    sys::caller()
}

/// The caller's member id, or `None` for an anonymous view (see
/// [`caller`]).
pub fn member_caller() -> Option<[u8; 32]> {
    let id = caller();
    (id != ANONYMOUS).then_some(id)
}

/// The 32-byte id of the context this app instance belongs to.
pub fn context_id() -> [u8; 32] {
    sys::context_id()
}

/// The members of the context who validate the block the call executes in
/// (for a view: the next block), sorted by id. Membership changes show here
/// from the height they take effect, so an app can count votes against the
/// current members, e.g. a quorum of two thirds of them.
pub fn members() -> Vec<[u8; 32]> {
    sys::members()
}

/// Height of the block the call executes in.
pub fn block_height() -> u64 {
    sys::block_height()
}

/// Timestamp of the block the call executes in, in milliseconds since the
/// Unix epoch (the block's agreed time, not a wall clock).
pub fn block_time_ms() -> u64 {
    sys::block_time_ms()
}

/// Emits an application event (delivered to subscribers once the block
/// commits; dropped if the call fails).
pub fn emit_event(name: &str, data: &[u8]) {
    sys::emit_event(name.as_bytes(), data);
}

/// Requests an on-chain action: `bytes` is an encoded
/// [`action::ActionRequest`]. The node fails the call if they do not
/// decode or do not fit the domain's chain. Carried to the chain by the
/// checkpoint of this block; dropped if the call fails.
pub fn onchain_action(bytes: &[u8]) {
    sys::onchain_action(bytes);
}

/// Requests the on-chain action `req` (see [`onchain_action`]).
pub fn request_action(req: &action::ActionRequest) {
    onchain_action(&req.encode());
}

/// Appends a line to the call's log (for debugging; not part of the state).
pub fn log(msg: &str) {
    sys::log(msg.as_bytes());
}

/// Fails the call with `msg`; its writes, events and actions are discarded.
pub fn abort(msg: &str) -> ! {
    sys::abort(msg.as_bytes())
}

/// Runs one method body. Used by [`methods!`]; not meant to be called directly.
#[doc(hidden)]
pub fn __run(method: fn()) {
    std::panic::set_hook(Box::new(|info| log(&info.to_string())));
    method();
}

/// Exports functions of type `fn()` as the app's callable methods.
///
/// `methods!(set, get)` exports the functions `set` and `get` under their own
/// names; `methods!(abort = abort_method)` exports `abort_method` under the
/// name `abort` (useful when the method name would clash with an item in
/// scope). A panic inside a method logs its message (see [`log`]) and then
/// traps, failing the call.
#[macro_export]
macro_rules! methods {
    ($($name:ident $(= $function:path)?),+ $(,)?) => {
        $( $crate::__export_method!($name $(= $function)?); )+
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __export_method {
    ($name:ident) => {
        $crate::__export_method!($name = $name);
    };
    ($name:ident = $function:path) => {
        const _: () = {
            // Naming a wasm export requires an unmangled symbol, which the
            // `unsafe_code` lint flags; the function itself is safe.
            #[allow(unsafe_code)]
            #[export_name = stringify!($name)]
            extern "C" fn export() {
                $crate::__run($function);
            }
        };
    };
}
