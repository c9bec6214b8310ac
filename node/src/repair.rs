//! `conclave repair`: what an operator runs, with the node stopped, when
//! the node refuses to start because its files are damaged. It checks and
//! repairs the three things a node keeps on disk, and backs up everything
//! it changes under `home/repair-backups/<unix time>/` first:
//!
//! - **the database** (`home/data`): every record is read against its
//!   checksum; if RocksDB cannot open it or a read fails, the directory is
//!   copied to the backup and RocksDB's repair rebuilds it from the table
//!   files it can read. Each context is then checked whole (every block,
//!   linked, certified; the state tree's root at the tip). A context that
//!   is still not whole cannot be repaired here: it is reported, and
//!   `--reset` moves the database and the WALs aside so the node can fetch
//!   its contexts again from the other members (its sign guards stay).
//! - **the WALs** (`home/wal/*.wal`): damage anywhere is cut at the last
//!   intact record, the rest backed up next to the file. First, each WAL's
//!   latest signature (its guard records, read past any damage) is carried
//!   into its context's sign guard file, synced, since the guard file
//!   alone may be behind the log (it is written unsynced).
//! - **the sign guards** (`home/wal/*.sign`): a damaged guard cannot say
//!   what this key signed last, so it is replaced by one that refuses every
//!   signature up to the height the context was at (its WAL's height, or
//!   the height after its committed tip): the node sits out that height and
//!   signs again from the next, never a conflicting vote.
//!
//! Nothing here guesses a state: the repaired database is accepted only if
//! its blocks and its state tree agree.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use conclave_consensus::sign_policy::{SignPosition, SignStep};
use conclave_consensus::{ContextId, Height};

use crate::config::Config;
use crate::node::HomeLock;
use crate::sign_guard::{SignGuard, SignGuardError};
use crate::store::{is_damage, repair_files, Depth, Store};
use crate::wal::{Wal, WalOptions};
use crate::{Error, Result};

/// What [`repair`] did.
#[derive(Debug, Default)]
pub struct Report {
    /// Where the originals of what changed were copied (created only if
    /// something changed).
    pub backup: PathBuf,
    /// What was found and done, one line each.
    pub actions: Vec<String>,
    /// Contexts whose data is not whole even after repair, with why.
    pub unrecoverable: Vec<(ContextId, String)>,
    /// Records read from the database.
    pub records: u64,
}

impl Report {
    /// Whether the node can start from what is on disk now.
    pub fn is_clean(&self) -> bool {
        self.unrecoverable.is_empty()
    }
}

/// What to do besides checking and repairing.
#[derive(Clone, Copy, Debug, Default)]
pub struct RepairOptions {
    /// Move the database and the WALs into the backup, keeping the sign
    /// guards, so that the node starts empty and fetches its contexts from
    /// the other members (the contexts of `home/genesis/` are installed
    /// again at start; others are joined with `conclave context join`).
    pub reset: bool,
}

/// Checks and repairs the node at `home`, which must not be running.
pub fn repair(home: &Path, options: RepairOptions) -> Result<Report> {
    let _lock = HomeLock::acquire(home)?;
    let mut report = Report {
        backup: home
            .join("repair-backups")
            .join(crate::node::now_ms().to_string()),
        ..Report::default()
    };
    let data_dir = Config::data_dir(home);
    let wal_dir = Config::wal_dir(home);
    let key = crate::keys::storage_key(home, &data_dir)?;

    // Heights of each context: its committed tip, and its WAL's height.
    let mut tips: HashMap<ContextId, Height> = HashMap::new();
    let signed = carry_signatures(&mut report, &wal_dir)?;
    let mut wal_heights = repair_wals(&mut report, &wal_dir)?;
    for (id, height) in signed {
        let at = wal_heights.entry(id).or_insert(height);
        *at = (*at).max(height);
    }
    if options.reset {
        reset(&mut report, &data_dir, &wal_dir)?;
    } else {
        let store = open_repaired(&mut report, &data_dir, &key)?;
        for record in store.contexts()? {
            tips.insert(record.id, record.height);
            match store.check_context(&record, Depth::Chain) {
                Ok(()) => {}
                Err(what) => report.unrecoverable.push((record.id, what)),
            }
        }
    }
    repair_guards(&mut report, &wal_dir, &tips, &wal_heights)?;
    Ok(report)
}

/// Opens the database, repairing it (after a backup) if it cannot be
/// opened or a record fails its checksum; the repaired database must open
/// and read whole.
fn open_repaired(
    report: &mut Report,
    data_dir: &Path,
    key: &crate::store::StorageKey,
) -> Result<Store> {
    let damage = match Store::open(data_dir, key) {
        Ok(store) => match store.verify_checksums() {
            Ok(scanned) => {
                report.records = scanned.records;
                return Ok(store);
            }
            Err(e) if is_damage(&e) => e,
            Err(e) => return Err(e.into()),
        },
        Err(e) if is_damage(&e) => e,
        Err(e) => return Err(e.into()),
    };
    report
        .actions
        .push(format!("database {}: {damage}", data_dir.display()));
    let copy = report.backup.join("data");
    copy_dir(data_dir, &copy)?;
    report
        .actions
        .push(format!("database: copied to {}", copy.display()));
    repair_files(data_dir)?;
    let store = Store::open(data_dir, key).map_err(|e| {
        Error::Unrepairable(format!(
            "database {}: still damaged after RocksDB's repair ({e}); restore it from a backup \
             or run `conclave repair --reset`",
            data_dir.display()
        ))
    })?;
    let scanned = store.verify_checksums().map_err(|e| {
        Error::Unrepairable(format!(
            "database {}: still unreadable after RocksDB's repair ({e}); restore it from a \
             backup or run `conclave repair --reset`",
            data_dir.display()
        ))
    })?;
    report.records = scanned.records;
    report.actions.push(format!(
        "database: repaired by RocksDB ({} records readable; unreadable tables set aside under {})",
        scanned.records,
        data_dir.join("lost").display()
    ));
    Ok(store)
}

/// Moves the database and every WAL into the backup.
fn reset(report: &mut Report, data_dir: &Path, wal_dir: &Path) -> Result<()> {
    std::fs::create_dir_all(&report.backup)?;
    if data_dir.exists() {
        let to = report.backup.join("data");
        std::fs::rename(data_dir, &to)?;
        report
            .actions
            .push(format!("database: moved to {}", to.display()));
    }
    for path in files_with(wal_dir, "wal")? {
        let to = report.backup.join(path.file_name().unwrap_or_default());
        std::fs::rename(&path, &to)?;
        report
            .actions
            .push(format!("wal {}: moved to {}", path.display(), to.display()));
    }
    Ok(())
}

/// Carries each WAL's latest recorded signature into its context's sign
/// guard file (synced) where the file is behind it, before anything cuts
/// or moves the WAL; returns the height of each such signature, so that a
/// damaged guard's replacement refuses everything up to it too.
fn carry_signatures(report: &mut Report, wal_dir: &Path) -> Result<HashMap<ContextId, Height>> {
    let mut heights = HashMap::new();
    for path in files_with(wal_dir, "wal")? {
        let Some(latest) = crate::wal::latest_signature_in(&path)? else {
            continue;
        };
        let Some(id) = context_of(&path) else {
            continue;
        };
        heights.insert(id, latest.position.height);
        let guard_path = wal_dir.join(format!("{}.sign", id.to_hex()));
        let mut guard = match SignGuard::open(&guard_path) {
            Ok(guard) => guard,
            // Replaced by a barrier below (`repair_guards`).
            Err(SignGuardError::Corrupt { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let before = guard.last().map(|l| l.position);
        let raised = guard.raise_to(Some(&latest));
        if let Err(SignGuardError::Corrupt { reason, .. }) = raised {
            // The file and the log disagree on one signature: sign nothing
            // more at that height.
            let barrier = SignPosition {
                height: latest.position.height,
                round: u32::MAX,
                step: SignStep::Precommit,
            };
            SignGuard::write_barrier(&guard_path, barrier)?;
            report.actions.push(format!(
                "sign guard {}: {reason}; replaced by a guard that signs nothing at or below \
                 height {}",
                guard_path.display(),
                latest.position.height
            ));
            continue;
        }
        raised?;
        if before != guard.last().map(|l| l.position) {
            report.actions.push(format!(
                "sign guard {}: raised to the WAL's last signature (height {}, round {}, {:?})",
                guard_path.display(),
                latest.position.height,
                latest.position.round,
                latest.position.step
            ));
        }
    }
    Ok(heights)
}

/// Opens every WAL with repair on; returns each context's WAL height.
fn repair_wals(report: &mut Report, wal_dir: &Path) -> Result<HashMap<ContextId, Height>> {
    let mut heights = HashMap::new();
    for path in files_with(wal_dir, "wal")? {
        let (_, recovered) = Wal::open_with(&path, WalOptions { repair: true })?;
        if let Some(cut) = &recovered.repair {
            report.actions.push(format!(
                "wal {}: {:?} at offset {}, {} bytes cut, backed up to {}",
                path.display(),
                cut.damage,
                cut.offset,
                cut.dropped_bytes,
                cut.backup.display()
            ));
        }
        if let Some(id) = context_of(&path) {
            heights.insert(id, recovered.height);
        }
    }
    Ok(heights)
}

/// Replaces each damaged sign guard by one that signs nothing up to the
/// height its context was at.
fn repair_guards(
    report: &mut Report,
    wal_dir: &Path,
    tips: &HashMap<ContextId, Height>,
    wal_heights: &HashMap<ContextId, Height>,
) -> Result<()> {
    for path in files_with(wal_dir, "sign")? {
        let reason = match SignGuard::open(&path) {
            Ok(_) => continue,
            Err(SignGuardError::Corrupt { reason, .. }) => reason,
            Err(e) => return Err(e.into()),
        };
        let id = context_of(&path);
        let tip_next = id
            .and_then(|id| tips.get(&id))
            .map_or(Height(0), |h| Height(h.0 + 1));
        let wal = id
            .and_then(|id| wal_heights.get(&id))
            .copied()
            .unwrap_or(Height(0));
        let height = tip_next.max(wal).max(Height(1));
        std::fs::create_dir_all(&report.backup)?;
        let copy = report.backup.join(path.file_name().unwrap_or_default());
        std::fs::copy(&path, &copy)?;
        SignGuard::write_barrier(
            &path,
            SignPosition {
                height,
                round: u32::MAX,
                step: SignStep::Precommit,
            },
        )?;
        report.actions.push(format!(
            "sign guard {}: {reason}; copied to {}, replaced by a guard that signs nothing \
             at or below height {height}",
            path.display(),
            copy.display()
        ));
    }
    Ok(())
}

/// The context a `<context hex>.<ext>` file in the WAL directory belongs to.
fn context_of(path: &Path) -> Option<ContextId> {
    path.file_stem()?.to_str()?.parse().ok()
}

/// The files `*.ext` directly in `dir` (none if it does not exist), sorted.
fn files_with(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry?.path();
        if path.is_file() && path.extension().and_then(|e| e.to_str()) == Some(ext) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// Copies the directory `from` (files and subdirectories) to `to`.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
