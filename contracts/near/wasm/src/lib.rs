//! The NEAR proxy as deployable wasm: `../proxy` built for
//! wasm32-unknown-unknown and lowered to the features NEAR accepts by this
//! crate's build script. The tests (`tests/it`) run it in nearcore's
//! `near-vm-runner`.

/// The contract code to deploy.
pub const PROXY_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/proxy.wasm"));

/// The module as rustc emitted it, before lowering (NEAR refuses it); for
/// tests.
#[doc(hidden)]
pub const UNLOWERED_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/proxy.raw.wasm"));
