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
    Exec(#[from] ExecError),
    #[error("consensus engine: {0}")]
    Engine(#[from] conclave_consensus::Error),
    #[error("wal: {0}")]
    Wal(#[from] crate::wal::WalError),
    #[error("sign guard: {0}")]
    SignGuard(#[from] crate::sign_guard::SignGuardError),
    /// This node's files are damaged (the database, a WAL, a sign guard):
    /// it refuses to start rather than sign or serve from them. The message
    /// says what is damaged and what to run.
    #[error("damaged: {what}; stop the node and run `conclave --home {} repair` (it backs up what it changes; see docs/operations.md, \"Damaged data\")", home.display())]
    Damaged {
        home: std::path::PathBuf,
        what: String,
    },
    /// Sealing or opening with a context key failed.
    #[error("seal: {0}")]
    Seal(#[from] crate::seal::SealError),
    /// Something this node made could not be encoded: a fault of this
    /// node, not of the request.
    #[error("encode: {0}")]
    Encode(String),
    /// This node lacks what its own records say it holds (an app, a
    /// context key of an epoch, a decided block).
    #[error("not held by this node: {0}")]
    Missing(String),
    /// A task this node started ended without an answer (it panicked or
    /// was cancelled).
    #[error("task: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The peer-to-peer network could not start.
    #[error("p2p: {0}")]
    Network(String),
    /// The node's services could not be set up (metrics, RPC methods).
    #[error("setup: {0}")]
    Setup(String),
    /// `conclave repair` could not repair what is damaged; the message
    /// says what to do instead.
    #[error("{0}")]
    Unrepairable(String),
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

impl Error {
    /// Whether this is a failed write or sync of this node's own files (a
    /// full disk, an I/O error, a WAL or sign guard that could not be made
    /// durable): not a bad input and not a bug, but a condition the node
    /// waits out, signing and committing nothing until a write succeeds.
    pub fn is_storage_fault(&self) -> bool {
        use crate::sign_guard::SignGuardError;
        use crate::store::StoreError;
        use crate::wal::WalError;
        use conclave_consensus::sign_policy::SignRefusal;
        match self {
            Self::Io(_) => true,
            Self::Wal(e) => matches!(e, WalError::Io { .. } | WalError::Poisoned),
            Self::SignGuard(e) => matches!(e, SignGuardError::Io { .. }),
            Self::Store(StoreError::Db(e)) => e.kind() == rocksdb::ErrorKind::IOError,
            Self::Store(StoreError::SyncLost | StoreError::CommitNotDurable(_)) => true,
            Self::Engine(conclave_consensus::Error::SignRefused(SignRefusal::Persist(_))) => true,
            _ => false,
        }
    }

    /// Borsh bytes of a value this node made.
    pub fn encode(value: &impl borsh::BorshSerialize) -> Result<Vec<u8>> {
        borsh::to_vec(value).map_err(|e| Self::Encode(e.to_string()))
    }

    /// [`Error::Damaged`] for the node at `home`.
    pub fn damaged(home: &std::path::Path, what: impl std::fmt::Display) -> Self {
        Self::Damaged {
            home: home.to_path_buf(),
            what: what.to_string(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a tx cannot be part of a block (a block carrying one is invalid).
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum TxRejection {
    #[error("tx is for context {0}, not this one")]
    WrongContext(ContextId),
    #[error("bad signature")]
    BadSignature,
    #[error("sender {0} is not a member of the context")]
    NotMember(MemberId),
    #[error("nonce {got} is not above the sender's last nonce {last}")]
    StaleNonce { got: u64, last: u64 },
    #[error("nonce {got} leaves a gap after the sender's last nonce {last}")]
    NonceGap { got: u64, last: u64 },
    #[error("nonce {got} is more than {window} ahead of the sender's last nonce {last}")]
    NonceTooFar { got: u64, last: u64, window: u64 },
    #[error("tx of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("method name is empty or longer than 64 bytes")]
    BadMethod,
}

#[derive(Debug, Error)]
pub enum ExecError {
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("runtime: {0}")]
    Runtime(#[from] conclave_runtime::Error),
    #[error("tx {index}: {reason}")]
    InvalidTx { index: usize, reason: TxRejection },
    #[error("outbox: {0}")]
    Outbox(String),
}
