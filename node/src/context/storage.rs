//! A storage fault: a write or sync of the context's own files failed (a
//! full disk, an I/O error). The WAL may end in a torn record and RocksDB
//! may refuse writes until it recovers, so the context stops where it is:
//! it signs and commits nothing, refuses new txs (it could not keep them),
//! keeps the txs it acknowledged, and says why (`node_health`, the
//! `conclave_storage_fault{context}` gauge, one ERROR line). It tries
//! again with backoff: a synced probe write to the database, then the WAL
//! and the sign guard reopened from disk (a torn tail cut, with a backup)
//! and a new engine; the height in progress resumes from the WAL as after
//! a restart, and what it missed meanwhile comes by catch-up.

use tracing::{error, info, warn};

use super::actor::{new_engine, open_log, ContextActor};
use super::fault::{backoff, root_cause, Fault};
use super::ingress::Message;
use crate::{Error, Result};

impl ContextActor {
    pub(super) fn is_faulted(&self) -> bool {
        self.fault.is_some()
    }

    /// Handles an error of the actor's work: a storage fault stops the
    /// context until a write succeeds; anything else is logged.
    pub(super) fn on_error(&mut self, e: Error, doing: &str) {
        if e.is_storage_fault() {
            self.enter_fault(e);
        } else {
            error!(context = %self.id(), error = %e, "{doing}");
        }
    }

    fn enter_fault(&mut self, e: Error) {
        let attempts = match &self.fault {
            Some(f) => f.attempts + 1,
            None => {
                error!(context = %self.id(), error = %e,
                    "cannot write to disk: this context signs, commits and admits nothing until a write succeeds (retrying)");
                self.deps
                    .metrics
                    .storage_fault
                    .with_label_values(&[&self.label])
                    .set(1);
                1
            }
        };
        self.status.set(Some(root_cause(&e)));
        self.fault = Some(Fault { attempts });
        self.end_height();
        self.timers.after(backoff(attempts), Message::RetryStorage);
    }

    /// What a faulted context does with a message (its intake refuses
    /// txs meanwhile): retries when it is time, and drops the rest (consensus
    /// traffic and pushes come again or by catch-up once it resumes).
    pub(super) fn while_faulted(&mut self, msg: Message) {
        match msg {
            Message::RetryStorage => self.retry_storage(),
            // The request in flight is over: the next one may go out (once
            // the fault clears), whatever this one brought.
            Message::Synced(_) => {
                self.catch_up.answered(false);
            }
            Message::TimeoutElapsed(..)
            | Message::Acknowledged
            | Message::Gossip(..)
            | Message::Pushed(..)
            | Message::CheckpointTick
            | Message::Paced
            | Message::RetrySync
            | Message::PeerConnected(_)
            | Message::TipSeen(..) => {}
        }
    }

    fn retry_storage(&mut self) {
        if let Err(e) = self.reopen() {
            if !e.is_storage_fault() {
                warn!(context = %self.id(), error = %e, "storage fault: reopening failed");
            }
            return self.enter_fault(e);
        }
        let attempts = self.fault.take().map_or(0, |f| f.attempts);
        self.status.set(None);
        self.deps
            .metrics
            .storage_fault
            .with_label_values(&[&self.label])
            .set(0);
        info!(context = %self.id(), attempts, "writes succeed again: resuming");
        if self.is_validator() && self.wal_holds_next_height() {
            if let Err(e) = self.begin_height() {
                self.on_error(e, "cannot resume the height in the WAL");
            }
        }
        // Whatever was decided meanwhile.
        if let Some(peer) = self.roster.other_readers().first().copied() {
            self.request_sync(peer);
        }
    }

    /// Refuses to go on writing while the filesystem of the WALs or of
    /// the database has less free space than `[storage] min_free_mb`: a
    /// storage fault raised before the disk is full, so RocksDB never
    /// meets a full disk (after which it would take no writes until the
    /// node restarts).
    pub(super) fn check_disk(&self) -> Result<()> {
        let min = self.deps.config.storage.min_free_mb.saturating_mul(1 << 20);
        if min == 0 {
            return Ok(());
        }
        for dir in [self.deps.wal_dir.as_path(), self.deps.store.path()] {
            let free = crate::fsx::free_bytes(dir)?;
            if free < min {
                return Err(Error::Io(std::io::Error::new(
                    std::io::ErrorKind::StorageFull,
                    format!(
                        "No space left: {} MiB free on the filesystem of {}, under the {} MiB kept free ([storage] min_free_mb)",
                        free >> 20,
                        dir.display(),
                        min >> 20
                    ),
                )));
            }
        }
        Ok(())
    }

    /// Proves the disk takes writes again, and rebuilds what a failed
    /// write may have left unusable: the WAL (poisoned, maybe torn), the
    /// sign guard's file handle, and the engine that holds them.
    fn reopen(&mut self) -> Result<()> {
        self.check_disk()?;
        self.deps.store.probe_write().map_err(|e| {
            // RocksDB keeps refusing writes after one failed (a full disk
            // met despite the reserve, an I/O error) until it is reopened.
            Error::Io(std::io::Error::other(format!(
                "the database refuses writes since one failed ({e}); restart the node"
            )))
        })?;
        let log = open_log(&self.deps, &self.id())?;
        let next = self.next_height();
        self.engine = new_engine(&self.deps, self.id(), next, &self.roster.validators, &log);
        self.log = log;
        Ok(())
    }
}
