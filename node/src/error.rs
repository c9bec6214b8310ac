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
    UnknownContext(conclave_consensus::ContextId),
    #[error("{0}")]
    Other(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
