//! Making the store's writes durable after the fact: one sync of
//! RocksDB's log, here or on another thread while other work goes on.

use super::{Result, Store};

impl Store {
    /// Makes every write so far durable (one sync of RocksDB's log).
    pub fn sync_log(&self) -> Result<()> {
        crate::fsx::timed_sync("store_log", || self.db.flush_wal(true))?;
        Ok(())
    }

    /// [`Store::sync_log`] on another thread ([`crate::alongside`]), so
    /// that it overlaps other work.
    pub fn sync_log_alongside(&self) -> LogSync {
        let store = self.clone();
        LogSync(crate::alongside::start("store-sync", move || {
            store.sync_log()
        }))
    }
}

/// A sync of the store's log under way ([`Store::sync_log_alongside`]).
#[must_use = "the writes are durable only once `wait` returned Ok"]
pub struct LogSync(crate::alongside::Alongside<Result<()>>);

impl LogSync {
    /// Waits for the sync; `Ok` once every write made before it started
    /// is durable.
    pub fn wait(self) -> Result<()> {
        self.0.wait().unwrap_or(Err(super::StoreError::SyncLost))
    }
}

#[cfg(test)]
impl LogSync {
    /// A "sync" that is `job`, run on another thread.
    pub(crate) fn from_job(job: impl FnOnce() -> Result<()> + Send + 'static) -> Self {
        LogSync(crate::alongside::start("test-sync", job))
    }
}
