//! Tests of the Solidity proxy against a real anvil, one anvil per test.
//!
//! - `vectors`: the shared JSON vectors against the contract's encodings,
//!   hash-to-curve and PoP checks, and the vector checkpoints on the vector
//!   proxy address.
//! - `checkpoints`: submitCheckpoint and deployment refusals.
//! - `actions`: executeAction transfers, calls and refusals.
//! - `rotation`: rotateMembers.
//! - `gas`: gas by member count.

mod actions;
mod anvil;
mod checkpoints;
mod fixture;
mod gas;
mod rotation;
mod vectors;
