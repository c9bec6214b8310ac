use thiserror::Error;

/// Errors of the protocol layer.
#[derive(Debug, Error)]
pub enum Error {
    #[error("decode: {0}")]
    Decode(String),
    #[error("message of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("bad signature")]
    BadSignature,
    #[error("invalid public key")]
    BadPublicKey,
    #[error("validator set is empty")]
    EmptyValidatorSet,
    #[error("consensus: {0}")]
    Consensus(String),
    #[error("signing refused: {0}")]
    SignRefused(#[from] crate::sign_policy::SignRefusal),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
