use ed25519_dalek::SigningKey;
use malachitebft_core_types::Round;

use super::*;
use crate::codec::commit_signature;
use crate::types::MemberId;

fn entry(i: u8) -> CohortEntry {
    CohortEntry {
        context: ContextId([i; 32]),
        height: Height(u64::from(i) + 10),
        block: Hash32([i.wrapping_add(100); 32]),
    }
}

fn value(n: u8) -> CohortValue {
    CohortValue::new((1..=n).map(entry).collect()).expect("a value")
}

#[test]
fn a_cohort_id_is_no_context_id_of_the_same_hash_and_follows_the_set() {
    let set = Hash32([7; 32]);
    assert_eq!(cohort_id(&set), cohort_id(&set));
    assert_ne!(cohort_id(&set), cohort_id(&Hash32([8; 32])));
    assert_ne!(cohort_id(&set).0, set.0);
}

#[test]
fn a_value_is_in_context_order_with_each_context_once() {
    let v = CohortValue::new(vec![entry(3), entry(1), entry(2)]).expect("a value");
    let order: Vec<u8> = v.entries().iter().map(|e| e.context.0[0]).collect();
    assert_eq!(order, [1, 2, 3]);
    assert_eq!(v.entry(&ContextId([2; 32])), Some(&entry(2)));
    assert_eq!(v.entry(&ContextId([9; 32])), None);
    assert_eq!(CohortValue::new(Vec::new()), Err(CohortError::Empty));
    let mut twice = entry(2);
    twice.block = Hash32([0; 32]);
    assert_eq!(
        CohortValue::new(vec![entry(1), entry(2), twice]),
        Err(CohortError::Duplicate(ContextId([2; 32])))
    );
    let many = (0..=MAX_COHORT_ENTRIES as u32)
        .map(|i| CohortEntry {
            context: ContextId(sha256(&[&i.to_le_bytes()]).0),
            ..entry(1)
        })
        .collect();
    assert_eq!(
        CohortValue::new(many),
        Err(CohortError::TooMany(MAX_COHORT_ENTRIES + 1))
    );
}

/// A value decodes only from its one encoding: entries in context order,
/// each context once, within the bound.
#[test]
fn a_value_decodes_only_from_its_canonical_encoding() {
    let v = value(5);
    let bytes = borsh::to_vec(&v).expect("encode");
    assert_eq!(borsh::from_slice::<CohortValue>(&bytes).expect("decode"), v);
    let encoded = |entries: Vec<CohortEntry>| {
        let mut out = (entries.len() as u32).to_le_bytes().to_vec();
        for e in entries {
            out.extend(borsh::to_vec(&e).expect("encode"));
        }
        out
    };
    for bad in [
        vec![entry(2), entry(1)],
        vec![entry(1), entry(1)],
        Vec::new(),
    ] {
        assert!(
            borsh::from_slice::<CohortValue>(&encoded(bad.clone())).is_err(),
            "decoded {bad:?}"
        );
    }
    let mut too_many = (MAX_COHORT_ENTRIES as u32 + 1).to_le_bytes().to_vec();
    too_many.extend(borsh::to_vec(&entry(1)).expect("encode"));
    assert!(borsh::from_slice::<CohortValue>(&too_many).is_err());
}

/// The id is the tree a block's txs root is (`types::merkle_root`) over
/// the entries' leaves; a leaf names the context, the height and the
/// block, each of which moves it.
#[test]
fn the_id_is_the_merkle_root_of_the_entries_leaves() {
    let v = value(3);
    let leaves: Vec<Hash32> = v.entries().iter().map(CohortEntry::leaf).collect();
    assert_eq!(v.id(), merkle_root(&leaves));
    let e = entry(1);
    let moved = [
        CohortEntry {
            context: ContextId([9; 32]),
            ..e
        },
        CohortEntry {
            height: Height(99),
            ..e
        },
        CohortEntry {
            block: Hash32([9; 32]),
            ..e
        },
    ];
    for m in moved {
        assert_ne!(m.leaf(), e.leaf());
    }
}

/// For values of every size up to past a few powers of two, every entry's
/// path leads to the id, with at most `ceil(log2(n))` siblings; no other
/// entry, no altered sibling, index or count, and no sibling more or
/// fewer does.
#[test]
fn every_entry_s_path_leads_to_the_id_and_nothing_else_does() {
    for n in 1..=33u8 {
        let v = value(n);
        let id = v.id();
        let depth = (usize::from(n)).next_power_of_two().trailing_zeros() as usize;
        for e in v.entries() {
            let path = v.path(&e.context).expect("a path");
            assert!(path.siblings.len() <= depth, "n {n}: {path:?}");
            assert_eq!(path.root(e), Some(id), "n {n}, entry {:?}", e.context);

            let stranger = CohortEntry {
                block: Hash32([0; 32]),
                ..*e
            };
            assert_ne!(path.root(&stranger), Some(id));
            if let Some(first) = path.siblings.first() {
                let mut altered = path.clone();
                altered.siblings[0] = Hash32([first.0[0] ^ 1; 32]);
                assert_ne!(altered.root(e), Some(id));
                let mut fewer = path.clone();
                fewer.siblings.pop();
                assert_ne!(fewer.root(e), Some(id));
            }
            let mut more = path.clone();
            more.siblings.push(Hash32([1; 32]));
            assert_eq!(more.root(e), None);
            let past = CohortPath {
                index: path.count,
                ..path.clone()
            };
            assert_eq!(past.root(e), None);
            if n > 1 {
                let moved = CohortPath {
                    index: (path.index + 1) % path.count,
                    ..path.clone()
                };
                assert_ne!(moved.root(e), Some(id));
            }
        }
        assert_eq!(v.path(&ContextId([200; 32])), None);
    }
}

fn keys() -> Vec<SigningKey> {
    (1..=4u8)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .collect()
}

fn member(key: &SigningKey) -> MemberId {
    MemberId(key.verifying_key().to_bytes())
}

/// The commit certificate of `value` at cohort height 7, signed by
/// `signers` over `scope` (a cohort's id, or for contrast a context's).
fn commit(
    scope: &ContextId,
    signers: &[SigningKey],
    value: Hash32,
) -> CommitCertificate<ConclaveContext> {
    let mut cert = CommitCertificate {
        height: Height(7),
        round: Round::new(0),
        value_id: value,
        commit_signatures: Vec::new(),
    };
    for key in signers {
        let signature = commit_signature(scope, &cert, key);
        cert.commit_signatures.push(signature);
    }
    cert
}

/// A context block decided in a cohort height is shown so by the cohort's
/// precommits and its entry's path, checked against the context's own
/// validators; not by fewer than a quorum, not for a block the value does
/// not carry, not with precommits over another cohort's id or over a
/// context's.
#[test]
fn a_cohort_certificate_shows_each_entry_decided_and_nothing_more() {
    let keys = keys();
    let validators =
        ValidatorSet::from_members(&keys.iter().map(member).collect::<Vec<_>>()).expect("a set");
    let set = Hash32([42; 32]);
    let v = value(10);
    let decided = commit(&cohort_id(&set), &keys[..3], v.id());
    let check = |entry: &CohortEntry, cert: &CohortCertificate, set: &Hash32| {
        verify_cohort_certificate(set, entry, cert, &validators, ThresholdParams::default())
    };
    for e in v.entries() {
        let cert = CohortCertificate {
            commit: decided.clone(),
            path: v.path(&e.context).expect("a path"),
        };
        check(e, &cert, &set).expect("decided in the cohort");

        let other_block = CohortEntry {
            block: Hash32([1; 32]),
            ..*e
        };
        assert!(matches!(
            check(&other_block, &cert, &set),
            Err(CohortCertificateError::NotDecided)
        ));
        // Another member set's cohort did not decide it.
        assert!(matches!(
            check(e, &cert, &Hash32([43; 32])),
            Err(CohortCertificateError::Commit(_))
        ));
    }
    let e = &v.entries()[0];
    let path = v.path(&e.context).expect("a path");
    for commit in [
        commit(&cohort_id(&set), &keys[..2], v.id()),
        commit(&e.context, &keys[..3], v.id()),
        commit(&ContextId(set.0), &keys[..3], v.id()),
    ] {
        let cert = CohortCertificate {
            commit,
            path: path.clone(),
        };
        assert!(matches!(
            check(e, &cert, &set),
            Err(CohortCertificateError::Commit(_))
        ));
    }
}
