//! Anchoring: carries a context's checkpoints and actions to the proxy
//! contracts on its chains.
//!
//! - [`source`]: what the relayer reads from a member's node (completed
//!   checkpoints, actions with their inclusion proofs), as a trait the
//!   node's CLI implements over its authenticated JSON-RPC.
//! - [`plan`]: which checkpoints to post, in which order (pure, tested
//!   without a chain).
//! - [`evm`]: Ethereum through alloy: connecting with checks (URL, chain
//!   id, funds), deploying a `ConclaveProxy`, posting checkpoints and
//!   executing actions, each simulated before it is sent.
//! - [`relay`]: the relayer loop: state re-derived from the chain and the
//!   node on every pass, so restarts, rival relayers and reorgs need no
//!   local state; retries with backoff and jitter.
//! - [`status`]: the per-chain status `conclave anchor status` prints.
//! - [`metrics`]: the relayer's Prometheus metrics.
//!
//! The `conclave` binary (node crate) wires these into `conclave anchor
//! deploy|status` and `conclave relay`.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod error;
pub mod evm;
pub mod metrics;
pub mod plan;
pub mod relay;
pub mod source;
pub mod status;

pub use error::{Error, Result};
