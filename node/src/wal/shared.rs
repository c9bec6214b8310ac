//! A context's WAL and sign guard behind one lock: the context actor appends
//! the engine's `WalAppend` outputs through it, and the engine consults it,
//! as its [`SignPolicy`], before every signature.
//!
//! A decided height is committed to the store unsynced, and the store's
//! sync runs alongside the start of the next height
//! ([`LogParts::commit_syncing`]): nothing of a later height becomes
//! durable here (no WAL record written, no signature recorded) before that
//! sync completed. So on disk the log and the guard never run ahead of the
//! store's last durable commit, the same states a crash just before a
//! synced commit left, while the sync leaves the path of a height.

use std::sync::Arc;

use conclave_consensus::sign_policy::{SignPolicy, SignRefusal, SignRequest, WalEntry};
use conclave_consensus::wal_codec::WalInput;
use conclave_consensus::Height;
use parking_lot::{Mutex, MutexGuard};

use super::Wal;
use crate::sign_guard::SignGuard;
use crate::store::{LogSync, StoreError};

/// The durable consensus state of one context.
pub struct LogParts {
    pub wal: Wal,
    pub guard: SignGuard,
    /// The store's sync of the last commit, if still unobserved.
    commit_sync: Option<LogSync>,
    /// A commit's sync failed: that commit may be lost, so nothing later
    /// may become durable until the context reopens its log (storage
    /// fault recovery builds new parts).
    sync_failed: Option<String>,
}

impl LogParts {
    /// Hands over the sync of a commit just written unsynced; an earlier
    /// one still unobserved is waited for first (the actor settles before
    /// it writes a commit, so that this finds none).
    pub fn commit_syncing(&mut self, sync: LogSync) -> Result<(), StoreError> {
        self.settle()?;
        self.commit_sync = Some(sync);
        Ok(())
    }

    /// Waits for the last commit's sync; fails, now and from then on, if
    /// it failed.
    pub fn settle(&mut self) -> Result<(), StoreError> {
        if let Some(reason) = &self.sync_failed {
            return Err(StoreError::CommitNotDurable(reason.clone()));
        }
        let Some(sync) = self.commit_sync.take() else {
            return Ok(());
        };
        sync.wait().map_err(|e| {
            let reason = e.to_string();
            self.sync_failed = Some(reason.clone());
            StoreError::CommitNotDurable(reason)
        })
    }

    /// Writes `input` to the WAL unsynced (group commit); the first record
    /// of a later height (the one that moves the log to it) waits for the
    /// last commit to be durable, and, if that move cuts the file, for the
    /// sign guard's file to be durable (the cut drops the guard records).
    pub fn write(&mut self, height: Height, input: &WalInput) -> crate::Result<()> {
        if height > self.wal.height() {
            self.settle()?;
            if self.wal.cuts_at_next_height() {
                self.guard.sync_file()?;
            }
        }
        Ok(self.wal.write(height, input)?)
    }

    /// Records a signature of `request` and makes it durable with
    /// everything written to the WAL before it, in one sync: a guard record
    /// appended to the WAL, and the guard's file overwritten unsynced (the
    /// first one ever is created synced, alongside). `Ok` only once
    /// durable; a refusal records nothing, and a failed sync leaves the
    /// guard holding the new record (stricter than needed, never looser).
    fn record_signature(&mut self, request: &SignRequest) -> Result<(), SignRefusal> {
        let refusal = |e: &dyn std::fmt::Display| SignRefusal::Persist(e.to_string());
        let LogParts { wal, guard, .. } = self;
        let Some(next) = guard.admit(request)? else {
            // The very message signed last: only the log to sync.
            return wal.sync().map_err(|e| refusal(&e));
        };
        wal.write_guard(&next).map_err(|e| refusal(&e))?;
        if !guard.is_created() {
            return guard
                .check_and_record_alongside(request, || wal.sync().map_err(|e| refusal(&e)));
        }
        guard.write_unsynced(next).map_err(|e| refusal(&e))?;
        crate::failpoint::hit("guard_written_unsynced");
        wal.sync().map_err(|e| refusal(&e))
    }

    /// Makes the WAL durable, after the last commit.
    pub fn sync(&mut self) -> crate::Result<()> {
        self.settle()?;
        Ok(self.wal.sync()?)
    }
}

/// A cheap, cloneable handle on a context's [`LogParts`].
#[derive(Clone)]
pub struct SharedLog(Arc<Mutex<LogParts>>);

impl SharedLog {
    pub fn new(wal: Wal, guard: SignGuard) -> Self {
        Self(Arc::new(Mutex::new(LogParts {
            wal,
            guard,
            commit_sync: None,
            sync_failed: None,
        })))
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
        let refusal = |e: &dyn std::fmt::Display| SignRefusal::Persist(e.to_string());
        // The guard records nothing before the last commit is durable.
        parts.settle().map_err(|e| refusal(&e))?;
        for (height, input) in log_first {
            parts.write(*height, input).map_err(|e| refusal(&e))?;
        }
        // The log and the guard's record in it are durable before the
        // signature is released: one sync.
        parts.record_signature(request)?;
        crate::failpoint::hit("sign_recorded");
        Ok(())
    }
}

#[cfg(test)]
#[path = "shared_tests.rs"]
mod tests;
