//! Conclave checkpoints: the bytes members sign and the proxy contracts
//! verify, defined once here.
//!
//! - [`bls`]: BLS12-381 min-pk keys, signatures and proofs of possession
//!   (blst), in compressed, uncompressed and EIP-2537 encodings
//!   ([`encoding`]).
//! - [`members`]: the member set admitted by PoP, its quorum and its hash.
//! - [`domain`] and [`payload`]: the 217-byte checkpoint payload and the
//!   chain/contract domain it is bound to.
//! - [`bitmap`] and [`certificate`]: signer bitmap, aggregation and the
//!   verifier that mirrors the contracts' checks.
//! - [`actions`] and [`merkle`]: the outbox of on-chain actions, their leaf
//!   encodings and the Merkle tree behind `actions_root`.
//! - [`vectors`]: the deterministic JSON test vectors shared with the
//!   Solidity and NEAR contracts.
//!
//! The byte layouts are written out in `docs/checkpoint.md`. Nothing here
//! does I/O.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod actions;
pub mod bitmap;
pub mod bls;
pub mod certificate;
pub mod domain;
pub mod encoding;
pub mod error;
pub mod members;
pub mod merkle;
pub mod payload;
pub mod vectors;

pub use actions::{action_id, verify_action, Account, Action, ActionKind, Outbox};
pub use bitmap::SignerBitmap;
pub use bls::{hash_to_g2, ProofOfPossession, PublicKey, SecretKey, Signature, POP_DST, SIG_DST};
pub use certificate::{sign_checkpoint, Certificate, Verifier};
pub use domain::{ChainKind, Domain};
pub use error::{Error, Result};
pub use members::{default_quorum, members_hash, MemberSet, Registration, MAX_MEMBERS};
pub use merkle::MerkleProof;
pub use payload::{CheckpointPayload, PAYLOAD_LEN};
