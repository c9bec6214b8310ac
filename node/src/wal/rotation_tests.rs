//! Rotations that rewrite only the header, and the crash states they can
//! leave on disk: each opens to the height's synced entries, never to
//! damage in the middle.

use conclave_consensus::wal_codec::encode_entry;

use super::frame::V1_HEADER_LEN;
use super::tests::{backups, entries, records_of, tmp, vote_at, written, H};
use super::*;

const NEXT: Height = Height(5);

fn record(height: Height, input: &WalInput) -> Vec<u8> {
    frame::record(&encode_entry(height, input).unwrap())
}

fn open_clean(p: &Path) -> (Wal, Recovered) {
    let (wal, rec) = Wal::open(p).unwrap();
    assert_eq!(rec.repair, None);
    (wal, rec)
}

#[test]
fn a_rotation_writes_the_header_only_and_syncs_nothing() {
    let (_dir, p, before, _) = written();
    let (mut wal, _) = open_clean(&p);
    wal.start_height(NEXT).unwrap();
    assert!(wal.dirty, "the header rides on the next sync");
    let after = records_of(&p);
    assert_eq!(after.len(), before.len());
    assert_eq!(
        after[HEADER_LEN..],
        before[HEADER_LEN..],
        "old records untouched"
    );
    let header = frame::read_header(&after).unwrap();
    assert_eq!((header.height, header.start), (NEXT, before.len() as u64));

    // The new height's records follow the old ones and are all that count.
    let v = vote_at(NEXT, 0, 7);
    wal.append(NEXT, &v).unwrap();
    drop(wal);
    let (wal, rec) = open_clean(&p);
    assert_eq!((rec.height, rec.entries), (NEXT, 1));
    assert_eq!(wal.entries_for(NEXT), vec![v]);
    assert!(wal.entries_for(H).is_empty());
}

#[test]
fn a_log_past_the_bound_is_cut_at_the_next_rotation() {
    let (_dir, p) = tmp();
    let (mut wal, _) = Wal::open(&p).unwrap();
    let mut height = Height(1);
    wal.start_height(height).unwrap();
    // Fill the file past the bound, rotating lightly on the way.
    loop {
        for round in 0..50 {
            wal.write(height, &vote_at(height, round, 3)).unwrap();
        }
        wal.sync().unwrap();
        if wal.len > KEEP_OLD_ENTRIES_BYTES {
            break;
        }
        assert!(height.0 < 10_000, "the file never grew past the bound");
        height = Height(height.0 + 1);
        wal.start_height(height).unwrap();
        assert!(wal.dirty, "a light rotation: the header waits for a sync");
    }
    // The next rotation finds the file past the bound: cut, durably.
    height = Height(height.0 + 1);
    wal.start_height(height).unwrap();
    assert_eq!(wal.len, HEADER_LEN as u64);
    assert!(!wal.dirty);
    assert_eq!(std::fs::metadata(&p).unwrap().len(), HEADER_LEN as u64);
    let v = vote_at(height, 1, 4);
    wal.append(height, &v).unwrap();
    drop(wal);
    let (wal, rec) = open_clean(&p);
    assert_eq!((rec.height, rec.entries), (height, 1));
    assert_eq!(wal.entries_for(height), vec![v]);
}

/// The old header over the old height's records, as synced, then what a
/// crash before the rotation's first sync may add: `tail`.
fn old_header_then(tail: &[u8]) -> (tempfile::TempDir, PathBuf, usize) {
    let (dir, p, mut bytes, _) = written();
    let synced = bytes.len();
    bytes.extend_from_slice(tail);
    std::fs::write(&p, &bytes).unwrap();
    (dir, p, synced)
}

#[test]
fn records_of_a_later_height_under_the_old_header_are_cut() {
    // The new header never reached the disk; some of the new height's
    // records did (none synced: a sync would have taken the header along).
    let mut tail = record(NEXT, &vote_at(NEXT, 0, 1));
    tail.extend_from_slice(&record(NEXT, &vote_at(NEXT, 1, 1)));
    let (dir, p, synced) = old_header_then(&tail);
    let (mut wal, rec) = Wal::open(&p).unwrap();
    assert_eq!((rec.height, rec.entries), (H, 3));
    let repair = rec.repair.expect("reported");
    assert_eq!(repair.damage, Damage::UnsyncedRotation);
    assert_eq!(repair.offset, synced as u64);
    assert_eq!(std::fs::read(&repair.backup).unwrap(), tail);
    assert_eq!(wal.entries_for(H), entries());
    // The node then starts the next height (the old one is committed)
    // without any of them.
    wal.start_height(NEXT).unwrap();
    assert!(wal.entries_for(NEXT).is_empty());
    wal.sync().unwrap();
    drop(wal);
    let (_, rec) = open_clean(&p);
    assert_eq!((rec.height, rec.entries), (NEXT, 0));
    assert_eq!(backups(dir.path()).len(), 1);
}

#[test]
fn a_torn_old_record_before_later_records_is_no_damage_in_the_middle() {
    // The old height's last record (a received vote, written unsynced) was
    // torn; the new height's records after it were not.
    let old = record(H, &vote_at(H, 3, 5));
    let later = record(NEXT, &vote_at(NEXT, 0, 1));
    for cut in [1, old.len() / 2, old.len() - 1] {
        let mut torn = old.clone();
        torn[cut] ^= 0x20;
        let tail = [torn.as_slice(), &later].concat();
        let (_dir, p, synced) = old_header_then(&tail);
        let (wal, rec) = Wal::open(&p).unwrap();
        let repair = rec.repair.expect("reported");
        assert_eq!(repair.damage, Damage::UnsyncedRotation, "flip at {cut}");
        assert_eq!(repair.offset, synced as u64);
        assert_eq!(wal.entries_for(H), entries());
        assert_eq!(std::fs::metadata(&p).unwrap().len(), synced as u64);
    }
    // Records of the same height after damage are still refused.
    let mut torn = old.clone();
    torn[4] ^= 0x20;
    let tail = [torn.as_slice(), &record(H, &vote_at(H, 4, 5))].concat();
    let (_dir, p, _) = old_header_then(&tail);
    assert!(matches!(Wal::open(&p), Err(WalError::CorruptMiddle { .. })));
}

#[test]
fn under_the_new_header_a_torn_old_tail_is_never_read() {
    let (_dir, p, mut bytes, _) = written();
    let mut torn = record(H, &vote_at(H, 3, 5));
    torn.truncate(torn.len() / 2);
    bytes.extend_from_slice(&torn);
    let start = bytes.len() as u64;
    let v = vote_at(NEXT, 0, 1);
    bytes.extend_from_slice(&record(NEXT, &v));
    bytes[..HEADER_LEN].copy_from_slice(&frame::header(NEXT, start));
    std::fs::write(&p, &bytes).unwrap();
    let (wal, rec) = open_clean(&p);
    assert_eq!((rec.height, rec.entries), (NEXT, 1));
    assert_eq!(wal.entries_for(NEXT), vec![v]);
}

#[test]
fn a_start_past_the_end_is_moved_to_the_end() {
    // The new header reached the disk, the file's new length did not.
    let (_dir, p, mut bytes, _) = written();
    let end = bytes.len() as u64;
    bytes[..HEADER_LEN].copy_from_slice(&frame::header(NEXT, end + 100));
    std::fs::write(&p, &bytes).unwrap();
    let (mut wal, rec) = open_clean(&p);
    assert_eq!((rec.height, rec.entries), (NEXT, 0));
    let header = frame::read_header(&std::fs::read(&p).unwrap()).unwrap();
    assert_eq!(header.start, end);
    // Records appended now are read back (they start where the header says).
    let v = vote_at(NEXT, 0, 1);
    wal.append(NEXT, &v).unwrap();
    drop(wal);
    assert_eq!(open_clean(&p).0.entries_for(NEXT), vec![v]);
}

#[test]
fn a_cut_whose_truncation_was_lost_reads_no_old_records() {
    // A cutting rotation syncs the truncation and the header together; a
    // crash before that may leave the new header over the old records.
    let (_dir, p, mut bytes, _) = written();
    bytes[..HEADER_LEN].copy_from_slice(&frame::header(NEXT, HEADER_LEN as u64));
    std::fs::write(&p, &bytes).unwrap();
    let (_, rec) = open_clean(&p);
    assert_eq!((rec.height, rec.entries), (NEXT, 0));
}

#[test]
fn a_version_1_log_is_read_and_rewritten_in_this_version() {
    let mut v1 = Vec::new();
    v1.extend_from_slice(frame::MAGIC);
    v1.extend_from_slice(&1u32.to_le_bytes());
    v1.extend_from_slice(&H.0.to_le_bytes());
    let crc = crc32fast::hash(&v1);
    v1.extend_from_slice(&crc.to_le_bytes());
    assert_eq!(v1.len(), V1_HEADER_LEN);
    for e in entries() {
        v1.extend_from_slice(&record(H, &e));
    }
    let (_dir, p) = tmp();
    std::fs::write(&p, &v1).unwrap();
    let (mut wal, rec) = open_clean(&p);
    assert_eq!((rec.height, rec.entries), (H, 3));
    assert_eq!(wal.entries_for(H), entries());
    let now = std::fs::read(&p).unwrap();
    let header = frame::read_header(&now).unwrap();
    assert_eq!((header.version, header.height), (frame::VERSION, H));
    assert_eq!(now[HEADER_LEN..], v1[V1_HEADER_LEN..]);
    // It goes on like any other.
    wal.start_height(NEXT).unwrap();
    wal.append(NEXT, &vote_at(NEXT, 0, 1)).unwrap();
    drop(wal);
    assert_eq!(open_clean(&p).1.entries, 1);
}
