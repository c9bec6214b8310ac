//! Guard records in the WAL: read back at open wherever they are (the
//! current height's records, or the older heights' behind the header),
//! never taken for entries, lost only to cuts that come after the guard's
//! file is durable, and found past damage by `conclave repair`.

use conclave_consensus::sign_policy::{SignPosition, SignStep};
use conclave_consensus::Hash32;

use super::frame::RECORD_HEADER_LEN;
use super::tests::{entries, records_of, tmp, vote_at, written, H};
use super::*;

fn signed(height: Height, round: u32, step: SignStep, value: u8) -> LastSigned {
    LastSigned {
        position: SignPosition {
            height,
            round,
            step,
        },
        value: Some(Hash32([value; 32])),
        digest: Hash32([value ^ 0x5a; 32]),
    }
}

/// The log of `written()` (three entries at `H`) with two guard records
/// after its entries, synced; returns the file's length before the second.
fn with_two_guards() -> (tempfile::TempDir, PathBuf, LastSigned, LastSigned, u64) {
    let (dir, p, _, _) = written();
    let (mut wal, _) = Wal::open(&p).unwrap();
    let (first, second) = (
        signed(H, 0, SignStep::Prevote, 1),
        signed(H, 0, SignStep::Precommit, 2),
    );
    wal.write_guard(&first).unwrap();
    wal.sync().unwrap();
    let before_second = wal.len;
    wal.write_guard(&second).unwrap();
    wal.sync().unwrap();
    (dir, p, first, second, before_second)
}

#[test]
fn guard_records_are_read_back_and_are_not_entries() {
    let (_dir, p, _, second, _) = with_two_guards();
    let (mut wal, rec) = Wal::open(&p).unwrap();
    assert_eq!(rec.repair, None);
    assert_eq!((rec.height, rec.entries), (H, 3));
    assert_eq!(wal.entries_for(H), entries());
    assert_eq!(wal.last_guard(), Some(&second));
    // Entries after a guard record are read as before.
    let v = vote_at(H, 3, 9);
    wal.append(H, &v).unwrap();
    drop(wal);
    let (wal, _) = Wal::open(&p).unwrap();
    assert_eq!(wal.entries_for(H).last(), Some(&v));
    assert_eq!(wal.last_guard(), Some(&second));
}

#[test]
fn a_torn_guard_record_at_the_tail_is_cut_and_the_one_before_counts() {
    let (_dir, p, first, _, before_second) = with_two_guards();
    let bytes = records_of(&p);
    for cut in before_second as usize + 1..bytes.len() {
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let (wal, rec) = Wal::open(&p).unwrap();
        assert_eq!(
            rec.repair.map(|r| r.damage),
            Some(Damage::TruncatedTail),
            "cut at {cut}"
        );
        assert_eq!(wal.last_guard(), Some(&first), "cut at {cut}");
        assert_eq!(wal.entries_for(H), entries());
    }
}

#[test]
fn the_older_heights_guard_records_are_found_behind_the_header() {
    let (_dir, p, _, second, _) = with_two_guards();
    let (mut wal, _) = Wal::open(&p).unwrap();
    // A light rotation: the old records stay, out of the new height's.
    let next = Height(H.0 + 1);
    wal.append(next, &vote_at(next, 0, 3)).unwrap();
    assert_eq!(wal.last_guard(), Some(&second));
    drop(wal);
    let (wal, rec) = Wal::open(&p).unwrap();
    assert_eq!((rec.height, rec.entries, rec.repair), (next, 1, None));
    assert_eq!(wal.last_guard(), Some(&second));
}

#[test]
fn a_torn_tail_of_the_older_heights_ends_their_reading_quietly() {
    let (_dir, p, _, second, _) = with_two_guards();
    // After the last sync, a received vote was written and torn; then the
    // rotation's header reached the disk (the crash states of
    // `Wal::start_height`).
    let mut bytes = records_of(&p);
    let torn =
        frame::record(&conclave_consensus::wal_codec::encode_entry(H, &vote_at(H, 2, 8)).unwrap());
    bytes.extend_from_slice(&torn[..torn.len() / 2]);
    let next = Height(H.0 + 1);
    let header = frame::header(next, bytes.len() as u64);
    bytes[..HEADER_LEN].copy_from_slice(&header);
    std::fs::write(&p, &bytes).unwrap();
    let (wal, rec) = Wal::open(&p).unwrap();
    assert_eq!((rec.height, rec.entries, rec.repair), (next, 0, None));
    assert_eq!(wal.last_guard(), Some(&second));
}

#[test]
fn a_cut_at_a_rotation_drops_the_guard_records() {
    let (_dir, p) = tmp();
    let (mut wal, _) = Wal::open(&p).unwrap();
    let mut height = Height(1);
    let guard = signed(height, 0, SignStep::Prevote, 1);
    wal.write_guard(&guard).unwrap();
    loop {
        for round in 0..50 {
            wal.write(height, &vote_at(height, round, 3)).unwrap();
        }
        wal.sync().unwrap();
        if wal.cuts_at_next_height() {
            break;
        }
        assert!(height.0 < 10_000, "the file never grew past the bound");
        height = Height(height.0 + 1);
        wal.start_height(height).unwrap();
    }
    assert_eq!(wal.last_guard(), Some(&guard));
    wal.start_height(Height(height.0 + 1)).unwrap();
    assert_eq!(wal.last_guard(), None);
    drop(wal);
    assert_eq!(Wal::open(&p).unwrap().0.last_guard(), None);
}

#[test]
fn the_latest_signature_is_found_past_damage_in_the_middle() {
    let (_dir, p, _, second, before_second) = with_two_guards();
    let mut bytes = records_of(&p);
    // A record before the last guard record, damaged: the log refuses to
    // open without repair, and the latest signature is still found.
    let (wal, _) = Wal::open(&p).unwrap();
    let start = frame::read_header(&bytes).unwrap().start as usize;
    drop(wal);
    bytes[start + RECORD_HEADER_LEN + 2] ^= 0xff;
    assert!(before_second as usize > start + RECORD_HEADER_LEN + 2);
    std::fs::write(&p, &bytes).unwrap();
    assert!(matches!(Wal::open(&p), Err(WalError::CorruptMiddle { .. })));
    assert_eq!(latest_signature_in(&p).unwrap(), Some(second));
    // No file: nothing signed.
    assert_eq!(
        latest_signature_in(&p.with_extension("missing")).unwrap(),
        None
    );
}
