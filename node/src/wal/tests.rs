use conclave_consensus::mal::{
    Input, NilOrVal, ProposedValue, Round, SignedMessage, Timeout, Validity, ValueOrigin,
};
use conclave_consensus::{Hash32, MemberId, Proposal, Vote};
use malachitebft_core_types::VoteType;

use super::*;
use crate::wal::frame::RECORD_HEADER_LEN;

pub(super) const H: Height = Height(4);

fn vote(round: u32, value: u8) -> WalInput {
    vote_at(H, round, value)
}

pub(super) fn vote_at(height: Height, round: u32, value: u8) -> WalInput {
    Input::Vote(SignedMessage::new(
        Vote {
            typ: VoteType::Prevote,
            height,
            round: Round::new(round),
            value: NilOrVal::Val(Hash32([value; 32])),
            validator: MemberId([value; 32]),
            extension: None,
        },
        conclave_consensus::context::Sig([value; 64]),
    ))
}

/// Three entries of different kinds.
pub(super) fn entries() -> Vec<WalInput> {
    vec![
        Input::ProposedValue(
            ProposedValue {
                height: H,
                round: Round::new(0),
                valid_round: Round::Nil,
                proposer: MemberId([1; 32]),
                value: Hash32([2; 32]),
                validity: Validity::Valid,
            },
            ValueOrigin::Consensus,
        ),
        Input::Proposal(SignedMessage::new(
            Proposal {
                height: H,
                round: Round::new(0),
                value: Hash32([2; 32]),
                pol_round: Round::Nil,
                proposer: MemberId([1; 32]),
            },
            conclave_consensus::context::Sig([3; 64]),
        )),
        vote(0, 2),
    ]
}

pub(super) fn tmp() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("wal");
    (dir, p)
}

/// Writes `entries()` at height `H`; returns the file and each record's
/// start offset.
pub(super) fn written() -> (tempfile::TempDir, PathBuf, Vec<u8>, Vec<usize>) {
    let (dir, p) = tmp();
    let (mut wal, rec) = Wal::open(&p).unwrap();
    assert!(rec.created);
    wal.start_height(H).unwrap();
    let mut starts = Vec::new();
    for e in entries() {
        starts.push(wal.len as usize);
        wal.append(H, &e).unwrap();
    }
    drop(wal);
    (dir, p.clone(), records_of(&p), starts)
}

/// The log file at `p` up to the end of its records, without the zeros
/// written ahead of them ([`PREALLOCATE`]).
pub(super) fn records_of(p: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(p).unwrap();
    let header = frame::read_header(&bytes).unwrap();
    let end = frame::scan(&bytes, &header).valid_end;
    assert!(bytes[end..].iter().all(|&b| b == 0), "only zeros follow");
    bytes.truncate(end);
    bytes
}

pub(super) fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains(".corrupt-"))
        .collect();
    v.sort();
    v
}

#[test]
fn append_then_reopen_gives_the_same_entries() {
    let (_dir, p, _, _) = written();
    let (wal, rec) = Wal::open(&p).unwrap();
    assert_eq!(
        rec,
        Recovered {
            created: false,
            height: H,
            entries: 3,
            repair: None
        }
    );
    assert_eq!(wal.entries_for(H), entries());
    assert!(wal.entries_for(Height(5)).is_empty());
}

#[test]
fn group_commit_writes_then_syncs_once() {
    let (_dir, p) = tmp();
    let (mut wal, _) = Wal::open(&p).unwrap();
    wal.start_height(H).unwrap();
    for e in entries() {
        wal.write(H, &e).unwrap();
    }
    assert!(wal.dirty);
    wal.sync().unwrap();
    assert!(!wal.dirty);
    drop(wal);
    assert_eq!(Wal::open(&p).unwrap().0.entries_for(H), entries());
}

#[test]
fn a_tail_cut_at_any_byte_keeps_the_prefix_and_a_backup() {
    let (dir, p, bytes, starts) = written();
    let last = starts[2];
    for cut in last + 1..bytes.len() {
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let (wal, rec) = Wal::open(&p).unwrap();
        assert_eq!(wal.entries_for(H), entries()[..2].to_vec(), "cut at {cut}");
        let repair = rec.repair.expect("damage reported");
        assert_eq!(repair.damage, Damage::TruncatedTail, "cut at {cut}");
        assert_eq!(repair.offset, last as u64);
        assert_eq!(std::fs::read(&repair.backup).unwrap(), &bytes[last..cut]);
        drop(wal);
        // The cut is durable: the next open is clean.
        assert_eq!(std::fs::metadata(&p).unwrap().len(), last as u64);
        assert_eq!(Wal::open(&p).unwrap().1.repair, None);
    }
    assert_eq!(backups(dir.path()).len(), bytes.len() - last - 1);
}

#[test]
fn a_bit_flip_in_the_last_record_is_detected() {
    let (_dir, p, bytes, starts) = written();
    let last = starts[2];
    for i in last..bytes.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = bytes.clone();
            bad[i] ^= bit;
            std::fs::write(&p, &bad).unwrap();
            let (mut wal, rec) = Wal::open(&p).unwrap();
            assert_eq!(wal.entries_for(H), entries()[..2].to_vec(), "flip at {i}");
            let repair = rec.repair.expect("damage reported");
            assert!(matches!(
                repair.damage,
                Damage::CorruptTail | Damage::TruncatedTail
            ));
            assert_eq!(std::fs::read(&repair.backup).unwrap(), &bad[last..]);
            // Appending after the repair yields a clean log.
            wal.append(H, &vote(1, 9)).unwrap();
            drop(wal);
            let (wal, rec) = Wal::open(&p).unwrap();
            assert_eq!(rec.repair, None);
            assert_eq!(wal.entries_for(H).len(), 3);
        }
    }
}

#[test]
fn a_bit_flip_in_a_middle_record_is_refused_unless_repairing() {
    let (dir, p, bytes, starts) = written();
    let (middle, last) = (starts[1], starts[2]);
    for i in middle..last {
        let mut bad = bytes.clone();
        bad[i] ^= 0x04;
        std::fs::write(&p, &bad).unwrap();
        match Wal::open(&p) {
            Err(WalError::CorruptMiddle {
                offset,
                next_intact,
                ..
            }) => {
                assert_eq!(offset, middle as u64);
                assert_eq!(next_intact, last as u64, "flip at {i}");
            }
            Err(e) => panic!("flip at {i}: unexpected error {e}"),
            Ok(_) => panic!("flip at {i}: middle damage accepted"),
        }
        // Refusing touched nothing.
        assert_eq!(std::fs::read(&p).unwrap(), bad);
    }
    assert!(backups(dir.path()).is_empty());

    let mut bad = bytes.clone();
    bad[middle + RECORD_HEADER_LEN + 3] ^= 0x04;
    std::fs::write(&p, &bad).unwrap();
    let (wal, rec) = Wal::open_with(&p, WalOptions { repair: true }).unwrap();
    assert_eq!(wal.entries_for(H), entries()[..1].to_vec());
    let repair = rec.repair.expect("repaired");
    assert_eq!(repair.damage, Damage::CorruptMiddle);
    assert_eq!(std::fs::read(&repair.backup).unwrap(), &bad[middle..]);
}

#[test]
fn a_checksum_valid_but_undecodable_record_is_refused() {
    let (_dir, p, mut bytes, _) = written();
    bytes.extend_from_slice(&frame::record(&[9, 9, 9]));
    std::fs::write(&p, &bytes).unwrap();
    assert!(matches!(Wal::open(&p), Err(WalError::Undecodable { .. })));
    let (wal, rec) = Wal::open_with(&p, WalOptions { repair: true }).unwrap();
    assert_eq!(rec.repair.unwrap().damage, Damage::Undecodable);
    assert_eq!(wal.entries_for(H), entries());
}

#[test]
fn a_bad_header_is_refused_unless_repairing() {
    let (dir, p, bytes, _) = written();
    for i in 0..HEADER_LEN {
        let mut bad = bytes.clone();
        bad[i] ^= 0x01;
        std::fs::write(&p, &bad).unwrap();
        assert!(matches!(Wal::open(&p), Err(WalError::BadHeader { .. })));
    }
    std::fs::write(&p, &bytes[..HEADER_LEN - 1]).unwrap();
    assert!(matches!(Wal::open(&p), Err(WalError::BadHeader { .. })));
    let (wal, rec) = Wal::open_with(&p, WalOptions { repair: true }).unwrap();
    assert_eq!(rec.repair.unwrap().damage, Damage::BadHeader);
    assert_eq!(wal.height(), Height(0));
    assert_eq!(backups(dir.path()).len(), 1);
}

#[test]
fn start_height_moves_on_and_never_goes_back() {
    let (_dir, p, _, _) = written();
    let (mut wal, _) = Wal::open(&p).unwrap();
    // A restart at the same height keeps the entries.
    wal.start_height(H).unwrap();
    assert_eq!(wal.entries_for(H).len(), 3);
    wal.start_height(Height(5)).unwrap();
    assert!(wal.entries_for(H).is_empty());
    assert!(matches!(
        wal.start_height(H),
        Err(WalError::HeightRegression { .. })
    ));
    assert!(matches!(
        wal.append(H, &vote(0, 1)),
        Err(WalError::HeightRegression { .. })
    ));
    drop(wal);
    let (mut wal, rec) = Wal::open(&p).unwrap();
    assert_eq!((rec.height, rec.entries, rec.repair), (Height(5), 0, None));
    // The same file takes the new height's entries, and the next rotation
    // leaves them behind too.
    wal.append(Height(5), &vote_at(Height(5), 0, 1)).unwrap();
    wal.append(Height(5), &vote_at(Height(5), 1, 1)).unwrap();
    wal.start_height(Height(6)).unwrap();
    wal.append(Height(6), &vote_at(Height(6), 2, 1)).unwrap();
    drop(wal);
    let (wal, rec) = Wal::open(&p).unwrap();
    assert_eq!((rec.height, rec.entries), (Height(6), 1));
    assert_eq!(wal.entries_for(Height(6)), vec![vote_at(Height(6), 2, 1)]);
}

#[test]
fn an_entry_of_a_later_height_rotates_the_log_first() {
    let (_dir, p, _, _) = written();
    let (mut wal, _) = Wal::open(&p).unwrap();
    let later = Input::TimeoutElapsed(Timeout::propose(Round::new(2)));
    wal.append(Height(6), &later).unwrap();
    assert_eq!(wal.height(), Height(6));
    assert!(wal.entries_for(H).is_empty());
    wal.append(Height(6), &later).unwrap();
    drop(wal);
    let (wal, rec) = Wal::open(&p).unwrap();
    assert_eq!((rec.height, rec.entries, rec.repair), (Height(6), 2, None));
    assert_eq!(wal.entries_for(Height(6)), vec![later.clone(), later]);
}

#[test]
fn unpersisted_inputs_are_refused_and_leave_the_log_intact() {
    let (_dir, p, bytes, _) = written();
    let (mut wal, _) = Wal::open(&p).unwrap();
    let propose = Input::Propose(conclave_consensus::mal::LocallyProposedValue::new(
        H,
        Round::new(0),
        Hash32([1; 32]),
    ));
    assert!(matches!(wal.append(H, &propose), Err(WalError::Encode(_))));
    assert!(matches!(
        wal.append(H, &Input::TimeoutElapsed(Timeout::propose(Round::new(0)))),
        Ok(())
    ));
    drop(wal);
    let after = std::fs::read(&p).unwrap();
    assert_eq!(&after[..bytes.len()], &bytes[..]);
}

/// The file's length on disk.
fn file_len(p: &Path) -> u64 {
    std::fs::metadata(p).unwrap().len()
}

#[test]
fn appends_overwrite_zeros_written_ahead_and_the_zeros_read_as_the_end() {
    let (_dir, p) = tmp();
    let (mut wal, _) = Wal::open(&p).unwrap();
    wal.start_height(H).unwrap();
    let mut written = Vec::new();
    let mut lengths = std::collections::BTreeSet::new();
    // About 300 KB of records: the file grows by PREALLOCATE at a time,
    // and is always ahead of the records by at most that much.
    for round in 0..2_000 {
        let v = vote_at(H, round, 1);
        wal.append(H, &v).unwrap();
        written.push(v);
        let len = file_len(&p);
        assert!(len >= wal.len && len - wal.len <= PREALLOCATE, "{len}");
        lengths.insert(len);
    }
    let steps = wal.len.div_ceil(PREALLOCATE) + 1;
    assert!(lengths.len() as u64 <= steps, "{} lengths", lengths.len());
    let end = wal.len;
    drop(wal);
    // Reopened: every record, no damage, the zeros kept for later appends.
    let (mut wal, rec) = Wal::open(&p).unwrap();
    assert_eq!((rec.entries, rec.repair), (written.len(), None));
    assert_eq!(wal.len, end);
    let before = file_len(&p);
    let v = vote_at(H, 9_999, 2);
    wal.append(H, &v).unwrap();
    written.push(v);
    assert_eq!(file_len(&p), before, "written into the zeros");
    drop(wal);
    let (wal, rec) = Wal::open(&p).unwrap();
    assert_eq!(rec.repair, None);
    assert_eq!(wal.entries_for(H), written);
}

/// [`entries`] appended to a new log: the whole file, with the zeros
/// written ahead of the records, and where the records end.
fn written_ahead() -> (tempfile::TempDir, PathBuf, Vec<u8>, usize) {
    let (dir, p) = tmp();
    let (mut wal, _) = Wal::open(&p).unwrap();
    wal.start_height(H).unwrap();
    for e in entries() {
        wal.append(H, &e).unwrap();
    }
    let end = wal.len as usize;
    drop(wal);
    let bytes = std::fs::read(&p).unwrap();
    assert!(bytes.len() > end + 1_000, "zeros written ahead");
    (dir, p, bytes, end)
}

#[test]
fn a_record_torn_in_the_zeros_written_ahead_is_cut() {
    let (dir, p, mut bytes, end) = written_ahead();
    // A crash during the next append: part of its record reached the
    // disk, the rest of the space still zeros.
    let torn = frame::record(&wal_codec::encode_entry(H, &vote(7, 7)).unwrap());
    for cut in [1, 5, RECORD_HEADER_LEN + 3, torn.len() / 2] {
        bytes[end..end + torn.len()].fill(0);
        bytes[end..end + cut].copy_from_slice(&torn[..cut]);
        std::fs::write(&p, &bytes).unwrap();
        let (wal, rec) = Wal::open(&p).unwrap();
        assert_eq!(wal.entries_for(H), entries(), "cut at {cut}");
        let repair = rec.repair.expect("damage reported");
        assert!(matches!(
            repair.damage,
            Damage::CorruptTail | Damage::TruncatedTail
        ));
        assert_eq!(repair.offset, end as u64);
        drop(wal);
        assert_eq!(file_len(&p), end as u64, "cut with the zeros after it");
        assert_eq!(Wal::open(&p).unwrap().1.repair, None);
    }
    assert_eq!(backups(dir.path()).len(), 4);
}

#[test]
fn zeros_followed_by_a_record_of_the_height_are_refused() {
    // Records never follow zeros: appends are contiguous. A record after
    // zeros is refused like any damage followed by intact records (the
    // zeros may be synced records lost), not read as the end.
    let (_dir, p, mut bytes, end) = written_ahead();
    let later = frame::record(&wal_codec::encode_entry(H, &vote(8, 8)).unwrap());
    bytes[end + 100..end + 100 + later.len()].copy_from_slice(&later);
    std::fs::write(&p, &bytes).unwrap();
    assert!(matches!(
        Wal::open(&p),
        Err(WalError::CorruptMiddle { offset, .. }) if offset == end as u64
    ));
}
