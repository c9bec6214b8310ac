//! Errors of the runtime itself (as opposed to guest failures, which are
//! values: see [`crate::Failure`]).

use std::fmt;

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A host-side failure: the module was refused, the limits are invalid, or the
/// node's state could not be read. Guest misbehaviour is never an `Error`.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The limits given to [`crate::Runtime::new`] are unusable.
    #[error("invalid runtime limits: {0}")]
    InvalidLimits(&'static str),
    /// The wasm engine could not be configured.
    #[error("cannot configure the wasm engine: {0}")]
    Engine(String),
    /// The module is larger than [`crate::Limits::max_module_bytes`].
    #[error("wasm module is {size} bytes, the limit is {limit}")]
    ModuleTooLarge {
        /// Size of the module.
        size: usize,
        /// The limit it exceeds.
        limit: usize,
    },
    /// The bytes are not a binary wasm module (text format is not accepted).
    #[error("not a binary wasm module (missing the `\\0asm` header)")]
    NotWasm,
    /// The module failed validation or compilation.
    #[error("invalid wasm module: {0}")]
    InvalidModule(String),
    /// The module imports something other than a Conclave host function.
    #[error("module imports `{module}::{name}`, which is not part of the Conclave host API")]
    UnknownImport {
        /// Import module name.
        module: String,
        /// Import field name.
        name: String,
    },
    /// The module imports a host function with the wrong signature.
    #[error("module imports `env::{name}` as {found}, the host API defines it as {expected}")]
    ImportSignature {
        /// Host function name.
        name: String,
        /// Signature the host defines.
        expected: String,
        /// Signature the module declares.
        found: String,
    },
    /// The module does not export a usable linear memory named `memory`.
    #[error("module must export its linear memory as `memory`: {0}")]
    Memory(String),
    /// Reading the node's state failed; the call's result is unknown.
    #[error("state read failed: {0}")]
    State(#[from] StateError),
    /// A wasmtime operation that cannot fail under this crate's configuration
    /// failed anyway.
    #[error("internal runtime error: {0}")]
    Internal(String),
}

impl Error {
    /// Whether the module itself was refused (too large, not wasm,
    /// invalid, importing outside the host API, no exported memory): the
    /// submitter's fault, not the host's.
    pub fn is_module_refusal(&self) -> bool {
        matches!(
            self,
            Self::ModuleTooLarge { .. }
                | Self::NotWasm
                | Self::InvalidModule(_)
                | Self::UnknownImport { .. }
                | Self::ImportSignature { .. }
                | Self::Memory(_)
        )
    }
}

/// An I/O failure of a [`crate::StateView`].
pub struct StateError(Box<dyn std::error::Error + Send + Sync>);

impl StateError {
    /// Wraps any error or message.
    pub fn new(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self(err.into())
    }
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl fmt::Debug for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("StateError").field(&self.0).finish()
    }
}

impl std::error::Error for StateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}
