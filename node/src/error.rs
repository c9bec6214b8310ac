//! The node's errors, typed by what went wrong, so that each interface can
//! answer by kind (the RPC layer maps them to JSON-RPC codes in one place,
//! `rpc::error_object`) and never by reading a message.

use conclave_consensus::{ContextId, MemberId};
use thiserror::Error;

/// Errors of the node.
#[derive(Debug, Error)]
pub enum Error {
    #[error("config: {0}")]
    Config(String),
    #[error("keys: {0}")]
    Keys(String),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("runtime: {0}")]
    Runtime(#[from] conclave_runtime::Error),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    #[error("unknown context {0}")]
    UnknownContext(ContextId),
    /// What the caller asked for cannot be done as asked (invalid
    /// checkpoint parameters, a member who is one already, a node that is
    /// not a member, ...): the caller's to fix; nothing changed.
    #[error("{0}")]
    Invalid(String),
    /// A member's node named in the request could not be reached, refused,
    /// or answered with something invalid (keys, genesis, app).
    #[error("member {member}: {reason}")]
    Member { member: MemberId, reason: String },
    /// A member-set change this node signed was refused by its context.
    #[error("membership tx refused: {0}")]
    TxRefused(String),
    /// A block could not be executed (building or validating one).
    #[error("execution: {0}")]
    Exec(#[from] crate::exec::ExecError),
    #[error("consensus engine: {0}")]
    Engine(#[from] conclave_consensus::Error),
    #[error("wal: {0}")]
    Wal(#[from] crate::wal::WalError),
    #[error("sign guard: {0}")]
    SignGuard(#[from] crate::sign_guard::SignGuardError),
    /// Anything else: a fault of this node, not of the request.
    #[error("{0}")]
    Other(String),
}

impl Error {
    /// A named member's node failed the request.
    pub fn member(member: MemberId, reason: impl std::fmt::Display) -> Self {
        Self::Member {
            member,
            reason: reason.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
