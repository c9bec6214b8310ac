//! NEAR for Conclave's anchoring: one account signing real NEAR
//! transactions through `near-jsonrpc-client`, and the context's NEAR proxy
//! (`contracts/near`) it deploys and feeds.
//!
//! - [`client`]: a NEAR RPC endpoint, checked on connect (it answers as a
//!   NEAR node, on the expected network), with view calls, blocks and
//!   accounts; [`client::NearAccount`] adds a key from a NEAR key file:
//!   access-key nonce, a recent final block hash, signed `Transaction`s sent
//!   with `send_tx` waiting for finality.
//! - [`proxy`]: the proxy's methods as the relayer uses them: deploy with
//!   `new` in one transaction, views, `submit_checkpoint`,
//!   `execute_action`, `register_keys`, `rotate_members`. A refusal that
//!   means "already done" is [`Submitted::AlreadyDone`], not an error.
//! - [`args`]: the JSON arguments of those calls (pure, unit-tested).
//! - [`PROXY_WASM`]: the proxy's deployable wasm, built and lowered by
//!   `contracts/near/wasm`.
//!
//! The relayer loop itself is `conclave-bridge`'s, generic over the chain;
//! this crate knows nothing of it.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod args;
pub mod client;
mod error;
pub mod proxy;

pub use client::{NearAccount, NearClient, Sent};
pub use error::{Error, Result};
pub use proxy::{NearProxy, Submitted};

/// The NEAR proxy to deploy: `contracts/near/proxy` compiled to wasm and
/// lowered to NEAR's feature set (`conclave-near-wasm`'s build script).
pub const PROXY_WASM: &[u8] = conclave_near_wasm::PROXY_WASM;

pub use near_primitives::types::AccountId;

/// Parses a NEAR account id (`alice.testnet`, an implicit account's hex).
pub fn parse_account(s: &str) -> Result<AccountId> {
    s.parse::<AccountId>().map_err(|e| Error::BadAccount {
        account: s.to_owned(),
        reason: e.to_string(),
    })
}
