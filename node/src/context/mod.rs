//! One actor per context: it owns the context's consensus engine and
//! mempool, builds and re-executes blocks, commits decided heights and
//! answers the RPC layer through a typed mailbox.
//!
//! - `actor.rs`: the run loop and the handling of engine outputs.
//! - `ingress.rs`: the [`Message`]s and the [`ContextHandle`] mailbox.
//! - `genesis.rs`: creating a context (its genesis and initial state).
//! - [`wire`]: what members gossip on a context's topic, and sync
//!   requests (public so tests can speak it as a byzantine member).

mod actor;
mod genesis;
mod ingress;
pub mod wire;

pub use actor::{ContextActor, ContextDeps};
pub use genesis::{check_member_keys, create_context, install_genesis, CheckpointOptions};
pub use ingress::{BlockEvent, CheckpointEvent, ContextHandle, Message, SubmitError};
