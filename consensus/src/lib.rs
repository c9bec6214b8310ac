//! Conclave's protocol: the types every member agrees on and the per-context
//! BFT engine that orders them.
//!
//! - [`types`]: identifiers ([`ContextId`], [`MemberId`], [`Height`]),
//!   transactions ([`Tx`], [`SignedTx`]) and blocks ([`Block`], [`BlockHeader`]).
//! - [`context`]: the malachite [`Context`](malachitebft_core_types::Context)
//!   implementation: members are validators, values are block hashes, votes and
//!   proposals are ed25519-signed over a context-bound domain.
//! - [`engine`]: one [`Engine`] per context drives malachite's pure consensus
//!   core. Inputs go in, [`Output`]s come out; the node performs them (publish,
//!   timers, WAL, building and validating blocks, committing). No I/O, no
//!   clocks and no async runtime live in this crate, so a simulation can run
//!   many engines in one process.
//! - [`codec`]: the bounded wire encoding of consensus messages.
//! - [`wal_codec`]: the versioned encoding of the inputs malachite asks the
//!   node to persist in its write-ahead log.
//! - [`sign_policy`]: the hook through which the node's persisted sign
//!   state (CometBFT's `priv_validator_state`) may refuse a signature.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod checked;
pub mod codec;
pub mod context;
pub mod engine;
mod error;
pub mod evidence;
pub mod output;
pub mod sign_policy;
pub mod types;
pub mod wal_codec;
pub mod witness;

pub use context::{proposer_index, ConclaveContext, Proposal, Validator, ValidatorSet, Vote};
pub use engine::{Engine, EngineConfig};
pub use error::{Error, Result};
pub use evidence::{Evidence, EvidenceError, EvidenceKind};
pub use output::Output;
pub use types::*;
pub use witness::Witness;

/// Re-exports of the malachite types that appear in this crate's API.
pub mod mal {
    pub use malachitebft_core_consensus::{
        Input, LivenessMsg, LocallyProposedValue, ProposedValue, Role, SignedConsensusMsg,
    };
    pub use malachitebft_core_types::{
        CommitCertificate, CommitSignature, NilOrVal, Round, SignedMessage, Timeout, TimeoutKind,
        Validity, ValueOrigin, VoteType,
    };
}
