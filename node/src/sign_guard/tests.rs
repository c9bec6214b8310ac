use super::*;

fn req(h: u64, r: u32, step: SignStep, value: u8) -> SignRequest {
    SignRequest {
        position: SignPosition {
            height: Height(h),
            round: r,
            step,
        },
        value: Some(Hash32([value; 32])),
        // The digest stands for the signed bytes: distinct per value here.
        digest: Hash32([value ^ 0x5a; 32]),
    }
}

fn path() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("sign_state");
    (dir, p)
}

#[test]
fn refuses_a_conflicting_vote_after_a_restart() {
    let (_dir, p) = path();
    let mut g = SignGuard::open(&p).unwrap();
    assert!(g.last().is_none());
    g.check_and_record(&req(5, 0, SignStep::Prevote, 1))
        .unwrap();
    drop(g);

    let mut g = SignGuard::open(&p).unwrap();
    assert_eq!(
        g.last().unwrap().position,
        req(5, 0, SignStep::Prevote, 1).position
    );
    assert_eq!(
        g.check_and_record(&req(5, 0, SignStep::Prevote, 2)),
        Err(SignRefusal::Conflict {
            at: req(5, 0, SignStep::Prevote, 2).position
        })
    );
    // The identical message may be signed again, any number of times.
    g.check_and_record(&req(5, 0, SignStep::Prevote, 1))
        .unwrap();
    g.check_and_record(&req(5, 0, SignStep::Prevote, 1))
        .unwrap();
}

#[test]
fn never_goes_back() {
    let (_dir, p) = path();
    let mut g = SignGuard::open(&p).unwrap();
    g.check(Height(5), 2, SignStep::Precommit, None, Hash32([1; 32]))
        .unwrap();
    for (h, r, step) in [
        (5, 2, SignStep::Prevote),
        (5, 2, SignStep::Propose),
        (5, 1, SignStep::Precommit),
        (4, 9, SignStep::Precommit),
    ] {
        assert!(matches!(
            g.check_and_record(&req(h, r, step, 3)),
            Err(SignRefusal::Regression { .. })
        ));
    }
    drop(g);
    let mut g = SignGuard::open(&p).unwrap();
    assert!(matches!(
        g.check_and_record(&req(5, 1, SignStep::Precommit, 3)),
        Err(SignRefusal::Regression { .. })
    ));
    // Forward is fine: a later round, a later height.
    g.check_and_record(&req(5, 3, SignStep::Propose, 4))
        .unwrap();
    g.check_and_record(&req(6, 0, SignStep::Prevote, 4))
        .unwrap();
    drop(g);
    assert_eq!(
        SignGuard::open(&p).unwrap().last().unwrap().position,
        req(6, 0, SignStep::Prevote, 0).position
    );
}

#[test]
fn a_crash_between_temp_write_and_rename_keeps_the_old_state() {
    let (_dir, p) = path();
    let mut g = SignGuard::open(&p).unwrap();
    g.check_and_record(&req(3, 0, SignStep::Prevote, 1))
        .unwrap();
    drop(g);
    // The next state reached the temp file, then the process died.
    let newer = LastSigned {
        position: req(3, 0, SignStep::Precommit, 2).position,
        value: None,
        digest: Hash32([2; 32]),
    };
    let tmp = fsx::with_suffix(&p, ".tmp");
    std::fs::write(&tmp, &encode(&newer)[..10]).unwrap();
    let mut g = SignGuard::open(&p).unwrap();
    assert_eq!(
        g.last().unwrap().position,
        req(3, 0, SignStep::Prevote, 1).position
    );
    assert!(g
        .check_and_record(&req(3, 0, SignStep::Prevote, 9))
        .is_err());
    // The stale temp file does not get in the way of the next write.
    g.check_and_record(&req(3, 0, SignStep::Precommit, 2))
        .unwrap();
    drop(g);
    assert_eq!(
        SignGuard::open(&p).unwrap().last().unwrap().position,
        newer.position
    );
}

#[test]
fn a_damaged_file_is_a_refusal_to_start() {
    let (_dir, p) = path();
    let mut g = SignGuard::open(&p).unwrap();
    g.check_and_record(&req(3, 0, SignStep::Prevote, 1))
        .unwrap();
    drop(g);
    let good = std::fs::read(&p).unwrap();
    for i in 0..good.len() {
        let mut bad = good.clone();
        bad[i] ^= 0x10;
        std::fs::write(&p, &bad).unwrap();
        assert!(
            matches!(SignGuard::open(&p), Err(SignGuardError::Corrupt { .. })),
            "flip at byte {i} went unnoticed"
        );
    }
    for cut in 0..good.len() {
        std::fs::write(&p, &good[..cut]).unwrap();
        assert!(matches!(
            SignGuard::open(&p),
            Err(SignGuardError::Corrupt { .. })
        ));
    }
    std::fs::write(&p, vec![0u8; 1 << 20]).unwrap();
    assert!(matches!(
        SignGuard::open(&p),
        Err(SignGuardError::Corrupt { .. })
    ));
}

#[test]
fn a_failed_write_refuses_the_signature() {
    let (dir, _) = path();
    // The guard's path is a directory: the rename fails, so nothing is
    // recorded and the signature is refused.
    let p = dir.path().join("occupied");
    std::fs::create_dir(&p).unwrap();
    std::fs::write(p.join("x"), b"x").unwrap();
    let mut g = SignGuard {
        path: p,
        last: None,
        file: None,
    };
    assert!(matches!(
        g.check_and_record(&req(1, 0, SignStep::Prevote, 1)),
        Err(SignRefusal::Persist(_))
    ));
    assert!(g.last().is_none());
}

#[test]
fn format_is_pinned() {
    let last = LastSigned {
        position: req(7, 2, SignStep::Precommit, 0).position,
        value: None,
        digest: Hash32([0xab; 32]),
    };
    let bytes = encode(&last);
    assert_eq!(
        hex::encode(&bytes[..34]),
        concat!(
            "434e434c5349474e", // magic
            "02000000",         // version
            "0700000000000000", // height
            "02000000",         // round
            "02",               // step: precommit
            "00",               // value: none
            "abababababababab"
        )
    );
    assert_eq!(bytes.len(), RECORD_LEN);
    // The state, then zeros up to the crc.
    let state_end = 8 + 4 + 8 + 4 + 1 + 1 + 32;
    assert!(bytes[state_end..RECORD_LEN - 4].iter().all(|b| *b == 0));
    let crc = crc32fast::hash(&bytes[..RECORD_LEN - 4]).to_le_bytes();
    assert_eq!(bytes[RECORD_LEN - 4..], crc);
    assert_eq!(decode(&bytes), Ok(last));
}

/// A version 1 file: the record without padding.
fn encode_v1(last: &LastSigned) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&1u32.to_le_bytes());
    out.extend_from_slice(&borsh::to_vec(last).unwrap());
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

#[test]
fn a_version_1_file_is_read_and_upgraded() {
    let (_dir, p) = path();
    let old = LastSigned {
        position: req(9, 1, SignStep::Prevote, 0).position,
        value: Some(Hash32([4; 32])),
        digest: Hash32([5; 32]),
    };
    std::fs::write(&p, encode_v1(&old)).unwrap();
    let mut g = SignGuard::open(&p).unwrap();
    assert_eq!(g.last(), Some(&old));
    // Upgraded on open: the version 2 record, same state.
    let bytes = std::fs::read(&p).unwrap();
    assert_eq!(bytes.len(), RECORD_LEN);
    assert_eq!(decode(&bytes), Ok(old));
    // It still refuses what version 1 refused, and moves on from there.
    assert!(g
        .check_and_record(&req(9, 1, SignStep::Prevote, 7))
        .is_err());
    g.check_and_record(&req(9, 1, SignStep::Precommit, 7))
        .unwrap();
    drop(g);
    assert_eq!(
        SignGuard::open(&p).unwrap().last().unwrap().position,
        req(9, 1, SignStep::Precommit, 0).position
    );
}

#[test]
fn updates_overwrite_the_record_in_place() {
    use std::os::unix::fs::MetadataExt;
    let (_dir, p) = path();
    let mut g = SignGuard::open(&p).unwrap();
    g.check_and_record(&req(1, 0, SignStep::Prevote, 1))
        .unwrap();
    let inode = std::fs::metadata(&p).unwrap().ino();
    // A state with a value, then without: the record keeps its length and
    // no byte of a longer state survives a shorter one.
    g.check_and_record(&req(1, 0, SignStep::Precommit, 2))
        .unwrap();
    g.check(Height(2), 0, SignStep::Prevote, None, Hash32([3; 32]))
        .unwrap();
    let meta = std::fs::metadata(&p).unwrap();
    assert_eq!(meta.ino(), inode, "rewritten, not replaced");
    assert_eq!(meta.len(), RECORD_LEN as u64);
    drop(g);
    let g = SignGuard::open(&p).unwrap();
    assert_eq!(
        g.last(),
        Some(&LastSigned {
            position: req(2, 0, SignStep::Prevote, 0).position,
            value: None,
            digest: Hash32([3; 32]),
        })
    );
}

#[test]
fn a_torn_update_is_a_refusal_to_start() {
    let (_dir, p) = path();
    let mut g = SignGuard::open(&p).unwrap();
    g.check_and_record(&req(4, 0, SignStep::Prevote, 1))
        .unwrap();
    drop(g);
    let old = std::fs::read(&p).unwrap();
    let new = encode(&LastSigned {
        position: req(4, 0, SignStep::Precommit, 0).position,
        value: None,
        digest: Hash32([6; 32]),
    });
    // A crash in the middle of the overwrite: the new record's head over
    // the old record's tail, at any cut.
    for cut in 1..RECORD_LEN {
        let torn = [&new[..cut], &old[cut..]].concat();
        if torn == old || torn == new {
            continue;
        }
        std::fs::write(&p, &torn).unwrap();
        assert!(
            matches!(SignGuard::open(&p), Err(SignGuardError::Corrupt { .. })),
            "a write torn at byte {cut} went unnoticed"
        );
    }
}

#[test]
fn a_barrier_refuses_everything_at_its_height_and_allows_the_next() {
    let (_dir, p) = path();
    std::fs::write(&p, b"damaged").unwrap();
    let barrier = SignPosition {
        height: Height(7),
        round: u32::MAX,
        step: SignStep::Precommit,
    };
    SignGuard::write_barrier(&p, barrier).unwrap();
    let mut g = SignGuard::open(&p).unwrap();
    for step in [SignStep::Propose, SignStep::Prevote, SignStep::Precommit] {
        for (h, r) in [(6, 9), (7, 0), (7, 1_000)] {
            assert!(
                matches!(
                    g.check_and_record(&req(h, r, step, 1)),
                    Err(SignRefusal::Regression { .. })
                ),
                "signed {h}/{r}/{step:?} behind the barrier"
            );
        }
    }
    g.check_and_record(&req(8, 0, SignStep::Propose, 1))
        .unwrap();
}

#[test]
fn the_flush_alongside_decides_with_the_guard() {
    flush_alongside_decides_with_the_guard();
}

/// As in the node: the guard's flush on the runtime's blocking pool.
#[test]
fn the_flush_alongside_on_a_runtime_decides_with_the_guard() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    let _entered = runtime.enter();
    flush_alongside_decides_with_the_guard();
}

fn flush_alongside_decides_with_the_guard() {
    let (_dir, p) = path();
    let mut g = SignGuard::open(&p).unwrap();
    // The first record (a new file), then one in place: `alongside` runs
    // each time and both must succeed.
    for (h, step) in [(5, SignStep::Prevote), (5, SignStep::Precommit)] {
        let mut ran = false;
        g.check_and_record_alongside(&req(h, 0, step, 1), || {
            ran = true;
            Ok(())
        })
        .unwrap();
        assert!(ran);
    }

    // A refusal runs nothing alongside.
    let refused = g.check_and_record_alongside(&req(5, 0, SignStep::Prevote, 1), || {
        panic!("ran alongside a refused signature")
    });
    assert!(matches!(refused, Err(SignRefusal::Regression { .. })));

    // If the flush alongside fails, the signature is refused, yet the guard
    // holds the new record: stricter than needed, never looser.
    let failed = g.check_and_record_alongside(&req(6, 0, SignStep::Prevote, 2), || {
        Err(SignRefusal::Persist("wal: disk gone".into()))
    });
    assert_eq!(failed, Err(SignRefusal::Persist("wal: disk gone".into())));
    drop(g);
    let mut g = SignGuard::open(&p).unwrap();
    assert_eq!(
        g.last().unwrap().position,
        req(6, 0, SignStep::Prevote, 2).position
    );
    assert!(matches!(
        g.check_and_record(&req(6, 0, SignStep::Prevote, 3)),
        Err(SignRefusal::Conflict { .. })
    ));
    // The identical message still runs (and needs) the flush alongside.
    let mut ran = false;
    g.check_and_record_alongside(&req(6, 0, SignStep::Prevote, 2), || {
        ran = true;
        Ok(())
    })
    .unwrap();
    assert!(ran);
}

fn signed(request: &SignRequest) -> LastSigned {
    LastSigned {
        position: request.position,
        value: request.value,
        digest: request.digest,
    }
}

#[test]
fn a_later_record_from_the_wal_raises_the_guard_durably() {
    let (_dir, p) = path();
    let mut g = SignGuard::open(&p).unwrap();
    // Nothing from the log: nothing changes, no file is made.
    g.raise_to(None).unwrap();
    assert!(g.last().is_none() && !p.exists());
    // A log record and no file (it was never created, or is gone): the
    // record is written, durably.
    let first = signed(&req(3, 0, SignStep::Prevote, 1));
    g.raise_to(Some(&first)).unwrap();
    assert_eq!(SignGuard::peek(&p).unwrap(), Some(first));
    // A later one raises it; the file says so after a reopen.
    let later = signed(&req(3, 1, SignStep::Precommit, 2));
    g.raise_to(Some(&later)).unwrap();
    drop(g);
    let mut g = SignGuard::open(&p).unwrap();
    assert_eq!(g.last(), Some(&later));
    assert!(matches!(
        g.check_and_record(&req(3, 1, SignStep::Precommit, 9)),
        Err(SignRefusal::Conflict { .. })
    ));
}

#[test]
fn an_earlier_or_equal_record_from_the_wal_changes_nothing_and_a_conflict_is_damage() {
    let (_dir, p) = path();
    let mut g = SignGuard::open(&p).unwrap();
    let at = req(8, 2, SignStep::Prevote, 4);
    g.check_and_record(&at).unwrap();
    let before = std::fs::read(&p).unwrap();
    // The log was cut since its older record: the file stays ahead.
    g.raise_to(Some(&signed(&req(7, 0, SignStep::Precommit, 1))))
        .unwrap();
    g.raise_to(Some(&signed(&at))).unwrap();
    assert_eq!(g.last(), Some(&signed(&at)));
    assert_eq!(std::fs::read(&p).unwrap(), before);
    // The same position, another message: neither can be trusted.
    let other = signed(&req(8, 2, SignStep::Prevote, 5));
    assert!(matches!(
        g.raise_to(Some(&other)),
        Err(SignGuardError::Corrupt { .. })
    ));
    assert_eq!(g.last(), Some(&signed(&at)));
}

#[test]
fn an_unsynced_write_moves_the_guard_and_the_file() {
    let (_dir, p) = path();
    let mut g = SignGuard::open(&p).unwrap();
    let next = signed(&req(2, 0, SignStep::Prevote, 1));
    // No file yet: it has to be created, synced, by the first record.
    assert!(!g.is_created());
    assert!(g.write_unsynced(next).is_err());
    assert!(g.last().is_none());
    g.check_and_record(&req(1, 0, SignStep::Prevote, 1))
        .unwrap();
    assert!(g.is_created());
    g.write_unsynced(next).unwrap();
    g.sync_file().unwrap();
    assert_eq!(g.last(), Some(&next));
    assert_eq!(SignGuard::peek(&p).unwrap(), Some(next));
}
