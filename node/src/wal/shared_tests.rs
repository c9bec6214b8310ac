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
