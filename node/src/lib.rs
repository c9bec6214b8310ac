//! The Conclave node: everything between the network, the disk and the
//! consensus engine of each context this node is a member of.
//!
//! - [`config`] and [`keys`]: the home directory (`config.toml`, key files,
//!   the RPC secrets).
//! - [`store`]: RocksDB with column families; each context's state is a
//!   Jellyfish Merkle Tree, so reads come with proofs against a state root.
//! - [`exec`]: executes txs in the context's WASM app (via
//!   `conclave-runtime`) and computes the block's roots; used alike by the
//!   proposer and by every member re-executing a proposal.
//! - [`mempool`]: per-context pending txs, checked before admission.
//! - [`checkpoint`]: checkpoint heights, collecting members' BLS
//!   signatures into aggregates, and their RPC views with the outbox.
//! - [`context`]: one actor per context driving its consensus engine, and
//!   its gossip with the other members over `conclave-network`.
//! - [`cpu`]: how short of the CPU it may use the node is lately, which scales
//!   how long a busy node's contexts hold their heights.
//! - [`wal`] and [`sign_guard`]: the per-context consensus write-ahead log
//!   (checksummed, fsynced, tail repair with a backup) and the persisted
//!   last-signed position, consulted before every signature.
//! - [`repair`]: `conclave repair`, the operator's path back from damaged
//!   files (database, WALs, sign guards), backing up what it changes.
//! - [`link_faults`]: lossy and slow links from chosen members (fault
//!   tests and the soak only).
//! - [`failpoint`]: crash points armed from the environment, for recovery
//!   tests.
//! - [`members`]: a context's member sets over time (the state machine
//!   of membership txs); [`onboarding`]: the node-to-node protocol by
//!   which a context created with other members reaches their nodes
//!   (identities, genesis offers, app fetch by hash).
//! - [`rpc`]: JSON-RPC 2.0 over HTTP and WebSocket (jsonrpsee); one table
//!   says which methods are public, which need the admin token and which a
//!   member token of a member of the context they read.
//! - [`metrics`]: Prometheus metrics and their HTTP endpoint.
//! - [`node`]: the shared handle on a running node (store, keys, context
//!   mailboxes); [`launch`] opens one, routes the network's events to its
//!   contexts and to onboarding, and serves RPC and metrics; [`cli`] is the
//!   `conclave` command.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod alongside;
pub mod anchors;
pub mod checkpoint;
pub mod cli;
pub mod config;
pub mod context;
pub mod cpu;
mod error;
pub mod exec;
pub mod failpoint;
pub(crate) mod fsx;
mod gate;
mod good_pops;
pub mod keys;
pub mod launch;
pub mod link_faults;
pub mod members;
pub mod mempool;
pub mod metrics;
pub mod node;
pub mod onboarding;
pub mod repair;
pub mod rpc;
pub mod seal;
mod sender_keys;
pub mod sign_guard;
pub mod store;
pub mod tip_watch;
pub mod wal;

#[cfg(test)]
mod vectors;

pub use error::{Error, Result};
