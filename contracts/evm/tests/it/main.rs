//! Tests of the Solidity proxy against a real anvil, one anvil per test.
//!
//! - `vectors`: the shared JSON vectors against the contract's encodings,
//!   hash-to-curve and PoP checks, and the vector checkpoints on the vector
//!   proxy address.
//! - `checkpoints`: submitCheckpoint and deployment refusals.
//! - `actions`: executeAction transfers, calls and refusals.
//! - `rotation`: rotateMembers.
//! - `gas`: gas by member count.
//! - `node_checkpoint`: a checkpoint made by the node's collector (and
//!   an action of its outbox) accepted and executed by the proxy.

mod actions;
mod checkpoints;
mod fixture;
mod gas;
mod node_checkpoint;
mod rotation;
mod vectors;
