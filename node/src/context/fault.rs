//! What a context's storage fault is (see `storage.rs` for how the actor
//! enters and leaves one): the reason shared with its handle, the attempts
//! so far, and the backoff between them.

use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;

use crate::Error;

/// Why a context cannot write now (the innermost error only), shared with
/// its [`super::ContextHandle`].
#[derive(Clone, Debug, Default)]
pub struct FaultStatus(Arc<RwLock<Option<String>>>);

impl FaultStatus {
    pub fn get(&self) -> Option<String> {
        self.0.read().clone()
    }

    pub(super) fn set(&self, reason: Option<String>) {
        *self.0.write() = reason;
    }
}

/// The fault a context is waiting out.
pub(super) struct Fault {
    pub(super) attempts: u32,
}

const FIRST_RETRY: Duration = Duration::from_millis(250);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// The wait before attempt `n` (from 1): doubling, capped.
pub(super) fn backoff(attempts: u32) -> Duration {
    FIRST_RETRY
        .saturating_mul(1 << attempts.saturating_sub(1).min(8))
        .min(MAX_RETRY)
}

/// The innermost error of `e` (the operating system's, typically "No
/// space left on device"): what the public health check may show, since
/// the outer messages name the context's files.
pub(super) fn root_cause(e: &Error) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_to_a_cap() {
        assert_eq!(backoff(1), FIRST_RETRY);
        assert_eq!(backoff(2), FIRST_RETRY * 2);
        assert_eq!(backoff(5), FIRST_RETRY * 16);
        assert_eq!(backoff(40), MAX_RETRY);
    }
}
