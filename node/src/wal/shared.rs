//! A context's WAL and sign guard behind one lock: the context actor appends
//! the engine's `WalAppend` outputs through it, and the engine consults it,
//! as its [`SignPolicy`], before every signature.

use std::sync::Arc;

use conclave_consensus::sign_policy::{SignPolicy, SignRefusal, SignRequest, WalEntry};
use parking_lot::{Mutex, MutexGuard};

use super::Wal;
use crate::sign_guard::SignGuard;

/// The durable consensus state of one context.
pub struct LogParts {
    pub wal: Wal,
    pub guard: SignGuard,
}

/// A cheap, cloneable handle on a context's [`LogParts`].
#[derive(Clone)]
pub struct SharedLog(Arc<Mutex<LogParts>>);

impl SharedLog {
    pub fn new(wal: Wal, guard: SignGuard) -> Self {
        Self(Arc::new(Mutex::new(LogParts { wal, guard })))
    }

    pub fn lock(&self) -> MutexGuard<'_, LogParts> {
        self.0.lock()
    }

    /// The policy to give [`conclave_consensus::Engine::with_sign_policy`].
    pub fn sign_policy(&self) -> Box<dyn SignPolicy> {
        Box::new(self.clone())
    }
}

impl SignPolicy for SharedLog {
    fn check_and_record(
        &mut self,
        request: &SignRequest,
        log_first: &[WalEntry],
    ) -> Result<(), SignRefusal> {
        let mut parts = self.0.lock();
        let LogParts { wal, guard } = &mut *parts;
        let persist = |e: super::WalError| SignRefusal::Persist(e.to_string());
        for (height, input) in log_first {
            wal.write(*height, input).map_err(persist)?;
        }
        // Both the log and the guard are durable before the signature is
        // released; their fsyncs overlap.
        guard.check_and_record_alongside(request, || wal.sync().map_err(persist))?;
        crate::failpoint::hit("sign_recorded");
        Ok(())
    }
}
