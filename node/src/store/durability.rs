//! Making the store's writes durable after the fact: one sync of
//! RocksDB's log, here or on a thread of its own while other work goes on.

use super::{Result, Store};

impl Store {
    /// Makes every write so far durable (one sync of RocksDB's log).
    pub fn sync_log(&self) -> Result<()> {
        self.db.flush_wal(true)?;
        Ok(())
    }

    /// [`Store::sync_log`] on a thread of its own, so that it overlaps
    /// other work (on this thread if none can be had).
    pub fn sync_log_alongside(&self) -> LogSync {
        let store = self.clone();
        match std::thread::Builder::new()
            .name("store-sync".into())
            .spawn(move || store.sync_log())
        {
            Ok(thread) => LogSync::Running(thread),
            Err(_) => LogSync::Done(self.sync_log()),
        }
    }
}

/// A sync of the store's log under way ([`Store::sync_log_alongside`]).
#[must_use = "the writes are durable only once `wait` returned Ok"]
pub enum LogSync {
    Running(std::thread::JoinHandle<Result<()>>),
    Done(Result<()>),
}

impl LogSync {
    /// Waits for the sync; `Ok` once every write made before it started
    /// is durable.
    pub fn wait(self) -> Result<()> {
        match self {
            LogSync::Done(done) => done,
            LogSync::Running(thread) => thread
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        }
    }
}
