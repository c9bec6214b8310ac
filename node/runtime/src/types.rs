//! The plain types of a method call: its inputs ([`Call`], [`StateView`])
//! and its result ([`Outcome`], [`Failure`], [`Event`]). Executing one is
//! `call.rs`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::StateError;
#[cfg(doc)]
use crate::{config::Limits, error::Error};

/// A request to run one method of an app.
#[derive(Clone, Copy, Debug)]
pub struct Call<'a> {
    /// Name of the exported method.
    pub method: &'a str,
    /// Argument bytes, read by the guest with `input_read`.
    pub args: &'a [u8],
    /// The transaction's sender.
    pub caller: [u8; 32],
    /// The context the app instance belongs to.
    pub context_id: [u8; 32],
    /// Height of the block being executed.
    pub block_height: u64,
    /// Agreed time of that block, in ms since the Unix epoch.
    pub block_time_ms: u64,
    /// The members who validate that block (the context's member set at
    /// its height), sorted by id: what `members_read` gives the guest.
    pub members: &'a [[u8; 32]],
    /// A view call: any state change or on-chain action fails the call.
    pub read_only: bool,
}

/// The state a call reads: the node's committed state under its block's
/// pending writes. Must answer identically on every validator.
pub trait StateView {
    /// The value under `key`, if any. An error aborts the call with
    /// [`Error::State`] (it says nothing about the guest).
    fn get(&self, key: &[u8]) -> std::result::Result<Option<Vec<u8>>, StateError>;
}

/// An application event emitted by a successful call.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Event name (UTF-8).
    pub name: String,
    /// Opaque payload.
    pub data: Vec<u8>,
}

/// Why a call failed. Deterministic: every validator reaches the same one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "message", rename_all = "snake_case")]
pub enum Failure {
    /// The call used all its fuel.
    #[error("out of fuel")]
    OutOfFuel,
    /// The guest tried to grow its memory past the limit.
    #[error("memory limit exceeded")]
    MemoryLimit,
    /// The guest trapped (panic, `unreachable`, bad memory access, stack
    /// exhaustion, or a host API misuse such as an out-of-bounds pointer).
    #[error("trap: {0}")]
    Trap(String),
    /// The guest called `abort` with this message.
    #[error("aborted: {0}")]
    Abort(String),
    /// The app has no method of that name.
    #[error("unknown method `{0}`")]
    UnknownMethod(String),
    /// A size or count limit was exceeded.
    #[error("limit exceeded: {0}")]
    LimitExceeded(String),
    /// A read-only call tried to change state or request an action.
    #[error("read-only call attempted a state change")]
    ReadOnlyViolation,
}

/// What a call did. On failure, `writes`, `events` and `actions` are empty;
/// `logs` are kept for diagnosis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The output bytes, or why the call failed.
    pub result: std::result::Result<Vec<u8>, Failure>,
    /// Fuel consumed, identical on every validator.
    pub fuel_used: u64,
    /// State changes to apply (`None` = remove), sorted by key.
    pub writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
    /// Events in emission order.
    pub events: Vec<Event>,
    /// On-chain action requests in order.
    pub actions: Vec<Vec<u8>>,
    /// Guest log lines (bounded by [`Limits::max_log_bytes`]).
    pub logs: Vec<String>,
}

impl Outcome {
    pub(crate) fn failed(failure: Failure, fuel_used: u64, logs: Vec<String>) -> Self {
        Self {
            result: Err(failure),
            fuel_used,
            writes: BTreeMap::new(),
            events: Vec::new(),
            actions: Vec::new(),
            logs,
        }
    }

    /// Whether the call succeeded.
    pub fn is_ok(&self) -> bool {
        self.result.is_ok()
    }
}
