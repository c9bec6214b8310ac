//! One actor per context: it owns the context's consensus engine and
//! mempool, builds and re-executes blocks, commits decided heights and
//! answers the RPC layer through a typed mailbox.
//!
//! The actor (a loop that dispatches) and the parts that own its state:
//! - `actor.rs`: the actor, its loop over its two mailbox lanes, and its
//!   dependencies ([`ContextDeps`]); `height.rs`: the height lifecycle and
//!   the engine's effects, commit included; `inbound.rs`: what members
//!   send (gossip, pushes, catch-up answers); `submit.rs`: txs submitted
//!   here, admitted beside the actor by its `Intake` (the pool under a
//!   lock shared with the RPC tasks) and pushed to the members by the
//!   actor.
//! - `admission.rs`: the mempool and what may enter it (nonces cached,
//!   the members who may send); `room.rs`: when a full pool will likely
//!   have room again (the wait told to a refused submitter).
//! - `blocks.rs`: building, validating and writing blocks (one execution
//!   setup for the three).
//! - `gossip.rs`: the key ring, sealing and the publisher; `later.rs`:
//!   gossip held for heights not reached yet.
//! - `catchup.rs`: asking members for decided blocks; the safety net's
//!   view of silent members.
//! - `roster.rs`: who validates, who reads, which anchors sign.
//! - `sign_check.rs`: this node's precommits signed elsewhere (another
//!   process with its key): the context then follows without signing.
//! - `storage.rs`: a failed write of the context's own files (a full
//!   disk): the context stops signing and committing, refuses txs, and
//!   retries until a write succeeds, then resumes from its WAL;
//!   `fault.rs`: what such a fault is (its reason, shared with the
//!   handle, and the backoff between attempts).
//! - `timers.rs`: engine timeouts and the checkpoint tick.
//! - [`seams`]: the clock and the transport the actor is given, so tests
//!   run it without sockets.
//! - `sim/`: a seeded simulation of several actors in one process over
//!   an in-memory bus (tests only).
//! - `ingress.rs`: the [`Message`]s and the [`ContextHandle`] mailbox.
//! - `genesis.rs`: creating a context (its genesis and initial state).
//! - [`wire`]: what members gossip on a context's topic, and sync
//!   requests (public so tests can speak it as a byzantine member).

mod actor;
mod admission;
mod blocks;
mod catchup;
mod compact;
mod fault;
mod genesis;
mod gossip;
mod height;
mod inbound;
mod ingress;
mod later;
mod pace;
mod room;
mod roster;
pub mod seams;
mod sign_check;
#[cfg(test)]
mod sim;
mod storage;
mod submit;
mod timers;
pub mod watch;
pub mod wire;

pub use crate::checkpoint::CheckpointEvent;
pub use actor::{ContextActor, ContextDeps};
pub use genesis::{create_context, install_genesis, CheckpointOptions};
pub use ingress::{BlockEvent, ContextHandle, Message, Standing, SubmitError};
pub use pace::ProposalDelays;
pub use seams::{Clock, SystemClock, Transport};
