//! A commit made durable alongside the next height: nothing of that
//! height reaches the WAL or the sign guard before it, and a failed sync
//! stops both.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use conclave_consensus::sign_policy::{SignPolicy, SignPosition, SignRefusal, SignStep};
use conclave_consensus::Hash32;

use super::super::tests::{vote_at, written, H};
use super::*;

const NEXT: Height = Height(H.0 + 1);

fn prevote(height: Height, value: u8) -> SignRequest {
    SignRequest {
        position: SignPosition {
            height,
            round: 0,
            step: SignStep::Prevote,
        },
        value: Some(Hash32([value; 32])),
        digest: Hash32([value ^ 0x5a; 32]),
    }
}

/// A log at `H` (three entries) whose guard last signed a prevote at `H`.
fn log_at_h() -> (tempfile::TempDir, std::path::PathBuf, SharedLog) {
    let (dir, wal_path, _, _) = written();
    let (wal, _) = Wal::open(&wal_path).unwrap();
    let guard = SignGuard::open(dir.path().join("sign")).unwrap();
    let mut log = SharedLog::new(wal, guard);
    log.check_and_record(&prevote(H, 1), &[]).unwrap();
    (dir, wal_path, log)
}

fn last_signed(log: &SharedLog) -> Height {
    log.lock().guard.last().unwrap().position.height
}

#[test]
fn the_next_heights_first_signature_waits_for_the_commits_sync() {
    let (_dir, _, mut log) = log_at_h();
    let synced = Arc::new(AtomicBool::new(false));
    let done = synced.clone();
    let sync = LogSync::from_job(move || {
        // Slow enough that a signature not waiting for it would be seen.
        std::thread::sleep(Duration::from_millis(50));
        done.store(true, Ordering::SeqCst);
        Ok(())
    });
    log.lock().commit_syncing(sync).unwrap();
    log.check_and_record(&prevote(NEXT, 2), &[(NEXT, vote_at(NEXT, 0, 7))])
        .unwrap();
    assert!(
        synced.load(Ordering::SeqCst),
        "signed before the commit was durable"
    );
    assert_eq!(last_signed(&log), NEXT);
    assert_eq!(log.lock().wal.entries_for(NEXT), vec![vote_at(NEXT, 0, 7)]);
}

#[test]
fn the_first_record_of_the_next_height_waits_for_the_commits_sync() {
    let (_dir, _, log) = log_at_h();
    let synced = Arc::new(AtomicBool::new(false));
    let done = synced.clone();
    let mut parts = log.lock();
    parts
        .commit_syncing(LogSync::from_job(move || {
            std::thread::sleep(Duration::from_millis(50));
            done.store(true, Ordering::SeqCst);
            Ok(())
        }))
        .unwrap();
    parts.write(NEXT, &vote_at(NEXT, 0, 7)).unwrap();
    assert!(
        synced.load(Ordering::SeqCst),
        "the log moved on before the commit was durable"
    );
    assert_eq!(parts.wal.height(), NEXT);
}

#[test]
fn a_failed_commit_sync_lets_nothing_of_the_next_height_through() {
    let (dir, wal_path, mut log) = log_at_h();
    let wal_before = std::fs::read(&wal_path).unwrap();
    let guard_before = std::fs::read(dir.path().join("sign")).unwrap();
    let failed = LogSync::from_job(|| Err(StoreError::SyncLost));
    log.lock().commit_syncing(failed).unwrap();

    let refused = log.check_and_record(&prevote(NEXT, 2), &[(NEXT, vote_at(NEXT, 0, 7))]);
    assert!(
        matches!(refused, Err(SignRefusal::Persist(_))),
        "{refused:?}"
    );
    // And from then on, whatever is tried.
    let again = log.check_and_record(&prevote(NEXT, 2), &[]);
    assert!(matches!(again, Err(SignRefusal::Persist(_))), "{again:?}");
    assert!(log.lock().write(NEXT, &vote_at(NEXT, 0, 7)).is_err());
    assert!(log.lock().sync().is_err());
    let ok = LogSync::from_job(|| Ok(()));
    assert!(log.lock().commit_syncing(ok).is_err());

    assert_eq!(last_signed(&log), H);
    assert_eq!(log.lock().wal.height(), H);
    drop(log);
    assert_eq!(std::fs::read(&wal_path).unwrap(), wal_before);
    assert_eq!(
        std::fs::read(dir.path().join("sign")).unwrap(),
        guard_before
    );

    // Reopened, as storage fault recovery does, the log signs again.
    let (wal, _) = Wal::open(&wal_path).unwrap();
    let guard = SignGuard::open(dir.path().join("sign")).unwrap();
    let mut log = SharedLog::new(wal, guard);
    log.check_and_record(&prevote(NEXT, 2), &[]).unwrap();
    assert_eq!(last_signed(&log), NEXT);
}

fn precommit(height: Height, value: u8) -> SignRequest {
    SignRequest {
        position: SignPosition {
            step: SignStep::Precommit,
            ..prevote(height, value).position
        },
        ..prevote(height, value)
    }
}

/// The log and guard at `dir`, opened as a node opens them.
fn reopen(dir: &std::path::Path, wal_path: &std::path::Path) -> SharedLog {
    let (wal, _) = Wal::open(wal_path).unwrap();
    let mut guard = SignGuard::open(dir.join("sign")).unwrap();
    guard.raise_to(wal.last_guard()).unwrap();
    SharedLog::new(wal, guard)
}

#[test]
fn a_signature_is_recorded_in_the_wal_and_in_the_guards_file() {
    let (dir, _, mut log) = log_at_h();
    log.check_and_record(&precommit(H, 1), &[]).unwrap();
    let parts = log.lock();
    let last = parts.guard.last().copied();
    assert_eq!(last.unwrap().position, precommit(H, 1).position);
    assert_eq!(parts.wal.last_guard().copied(), last);
    assert_eq!(SignGuard::peek(&dir.path().join("sign")).unwrap(), last);
    // The log's entries are untouched by the guard records among them.
    assert_eq!(parts.wal.entries_for(H), super::super::tests::entries());
}

/// The guard's file is written without a sync: a machine that stops may
/// lose that write. The WAL's record, synced before the signature left,
/// still refuses a conflicting vote after the restart.
#[test]
fn the_wals_record_outlives_a_lost_write_of_the_guards_file() {
    let (dir, wal_path, mut log) = log_at_h();
    let file = dir.path().join("sign");
    let synced_file = std::fs::read(&file).unwrap();
    log.check_and_record(&precommit(H, 1), &[]).unwrap();
    drop(log);
    std::fs::write(&file, &synced_file).unwrap();
    assert_eq!(
        SignGuard::peek(&file).unwrap().unwrap().position,
        prevote(H, 1).position
    );

    let mut log = reopen(dir.path(), &wal_path);
    assert_eq!(
        log.lock().guard.last().unwrap().position,
        precommit(H, 1).position
    );
    assert!(matches!(
        log.check_and_record(&precommit(H, 2), &[]),
        Err(SignRefusal::Conflict { .. })
    ));
    // Raised durably: the file says so now.
    assert_eq!(
        SignGuard::peek(&file).unwrap().unwrap().position,
        precommit(H, 1).position
    );
    // The very message signed last is still allowed.
    log.check_and_record(&precommit(H, 1), &[]).unwrap();
}

/// A rotation that cuts the file drops its guard records: it waits for
/// the guard's file to be durable, and does not happen if that fails.
#[test]
fn a_cutting_rotation_waits_for_the_guards_file() {
    let (_dir, wal_path, log) = log_at_h();
    let mut parts = log.lock();
    let mut round = 0;
    while !parts.wal.cuts_at_next_height() {
        parts.write(H, &vote_at(H, round, 3)).unwrap();
        round += 1;
    }
    parts.sync().unwrap();
    let before = std::fs::read(&wal_path).unwrap();
    // A file whose sync fails (a pipe cannot be synced).
    let (_reader, writer) = std::io::pipe().unwrap();
    parts
        .guard
        .replace_file(std::fs::File::from(std::os::fd::OwnedFd::from(writer)));
    assert!(parts.write(NEXT, &vote_at(NEXT, 0, 7)).is_err());
    assert_eq!(parts.wal.height(), H);
    assert!(parts.wal.last_guard().is_some());
    assert_eq!(std::fs::read(&wal_path).unwrap(), before);
}

#[test]
fn a_cutting_rotation_after_the_guards_sync_leaves_the_guard_whole() {
    let (dir, wal_path, mut log) = log_at_h();
    {
        let mut parts = log.lock();
        let mut round = 0;
        while !parts.wal.cuts_at_next_height() {
            parts.write(H, &vote_at(H, round, 3)).unwrap();
            round += 1;
        }
    }
    log.check_and_record(&precommit(H, 1), &[]).unwrap();
    log.check_and_record(&prevote(NEXT, 2), &[(NEXT, vote_at(NEXT, 0, 7))])
        .unwrap();
    {
        let parts = log.lock();
        assert_eq!(parts.wal.height(), NEXT);
        // Cut: the next height's signature is the only record left.
        assert_eq!(
            parts.wal.last_guard().unwrap().position,
            prevote(NEXT, 2).position
        );
    }
    drop(log);
    let log = reopen(dir.path(), &wal_path);
    assert_eq!(last_signed(&log), NEXT);
}
