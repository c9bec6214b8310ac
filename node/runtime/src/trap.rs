//! How a guest failure travels out of a host function: as a [`HostTrap`],
//! the error of the wasmtime call, turned into a [`Failure`] by type.

use crate::error::Error;
use crate::types::Failure;

/// A guest-caused failure raised inside a host function or the limiter. It
/// travels through wasmtime as the error of the call and is turned into a
/// [`Failure`] by [`HostTrap::failure`], by type, never by message.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HostTrap {
    #[error("out of fuel")]
    OutOfFuel,
    #[error("linear memory would grow to {desired} bytes, the limit is {limit}")]
    MemoryLimit { desired: usize, limit: usize },
    #[error("{0}")]
    Limit(String),
    #[error("read-only call attempted a state change")]
    ReadOnly,
    #[error("{0}")]
    Abort(String),
    #[error("{0}")]
    Invalid(String),
    /// The node's state could not be read; the driver holds the cause.
    #[error("state read failed")]
    State,
}

impl HostTrap {
    /// The guest failure this trap stands for, or the host error it is.
    pub(crate) fn failure(&self) -> Result<Failure, Error> {
        Ok(match self {
            Self::OutOfFuel => Failure::OutOfFuel,
            Self::MemoryLimit { .. } => Failure::MemoryLimit,
            Self::Limit(msg) => Failure::LimitExceeded(msg.clone()),
            Self::ReadOnly => Failure::ReadOnlyViolation,
            Self::Abort(msg) => Failure::Abort(msg.clone()),
            Self::Invalid(msg) => Failure::Trap(msg.clone()),
            Self::State => return Err(Error::Internal(self.to_string())),
        })
    }
}
