//! Crash points for recovery tests. With `CONCLAVE_FAILPOINT=<name>[:<n>]`
//! in its environment the process aborts (no unwinding, no flushing: as a
//! `kill -9` would leave it) the `n`-th time (default: the first) it reaches
//! the point `name`. Unset, a point costs one load of an initialised cell.
//!
//! Points: `wal_write` (an input written to the WAL, not yet synced),
//! `guard_written_unsynced` (a signature's guard record written to the WAL
//! and the guard's file, neither synced yet), `sign_recorded` (the sign
//! guard advanced and durable, the signature not yet used),
//! `before_publish` (a vote or proposal about to be sent; the WAL synced
//! up to its signature, and for a proposal up to its own entry),
//! `after_publish`, `proposal_persisted` (own candidate block written, its
//! sync under way, its proposal not yet signed), `before_commit` and
//! `after_commit` (around the store's commit batch of a decided height),
//! `relay_after_checkpoint` (`conclave relay` posted a checkpoint, its
//! actions not yet executed).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

struct Armed {
    name: String,
    at: u64,
    hits: AtomicU64,
}

static ARMED: OnceLock<Option<Armed>> = OnceLock::new();

fn armed() -> Option<&'static Armed> {
    ARMED
        .get_or_init(|| {
            let spec = std::env::var("CONCLAVE_FAILPOINT").ok()?;
            let (name, at) = match spec.split_once(':') {
                Some((name, at)) => (name.to_string(), at.parse().ok()?),
                None => (spec, 1),
            };
            Some(Armed {
                name,
                at,
                hits: AtomicU64::new(0),
            })
        })
        .as_ref()
}

/// Aborts the process if the point `name` is armed and due.
pub fn hit(name: &str) {
    let Some(armed) = armed() else { return };
    if armed.name == name && armed.hits.fetch_add(1, Ordering::SeqCst) + 1 == armed.at {
        eprintln!("failpoint {name} reached: aborting");
        std::process::abort();
    }
}
