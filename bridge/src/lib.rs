//! Anchoring: carries a context's checkpoints and actions to the proxy
//! contracts on its chains.
//!
//! - [`source`]: what the relayer reads from a member's node (completed
//!   checkpoints, actions with their inclusion proofs), as a trait the
//!   node's CLI implements over its authenticated JSON-RPC.
//! - [`plan`]: which checkpoints to post, in which order (pure, tested
//!   without a chain).
//! - [`chain`]: what the relayer needs of a proxy on a chain (the
//!   [`chain::Anchor`] trait), whatever the chain.
//! - [`evm`] (feature `evm`): Ethereum through alloy: connecting with
//!   checks (URL, chain id, funds), deploying a `ConclaveProxy`, posting
//!   checkpoints and executing actions, each simulated before it is sent.
//! - [`near`] (feature `near`): the NEAR proxy of `conclave-bridge-near`
//!   (near-jsonrpc-client, real signed transactions) as an
//!   [`chain::Anchor`].
//! - [`relay`]: the relayer loop, one for every chain: state re-derived
//!   from the chain and the node on every pass, so restarts, rival
//!   relayers and reorgs need no local state; retries with backoff and
//!   jitter.
//! - [`status`]: the per-chain status `conclave anchor status` prints.
//! - [`metrics`]: the relayer's Prometheus metrics.
//!
//! The `conclave` binary (node crate) wires these into `conclave anchor
//! deploy|status` and `conclave relay`.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod chain;
mod error;
#[cfg(feature = "evm")]
pub mod evm;
pub mod metrics;
#[cfg(feature = "near")]
pub mod near;
pub mod plan;
pub mod relay;
pub mod source;
pub mod status;

pub use error::{Error, Result};
