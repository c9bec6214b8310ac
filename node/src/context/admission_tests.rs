//! Admission: what enters the pool, what is kept until it commits.

use conclave_consensus::Tx;
use ed25519_dalek::SigningKey;

use super::*;
use crate::context::{create_context, CheckpointOptions};
use crate::store::{MemberInfo, StorageKey};

/// The actor's three steps of admitting pushed txs, in one.
fn admit_pushed(a: &mut Admission, txs: Vec<SignedTx>) -> Vec<Result<Hash32, SubmitError>> {
    let mut batch = a.sort_pushed(txs);
    let verified = a
        .sender_keys()
        .verified_all(std::mem::take(&mut batch.unsigned));
    a.insert_pushed(batch, verified)
}

pub(crate) struct Setup {
    _dir: tempfile::TempDir,
    pub(crate) store: Store,
    pub(crate) context: ContextId,
    pub(crate) key: SigningKey,
    pub(crate) members: Vec<MemberId>,
}

pub(crate) fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StorageKey::random()).unwrap();
    let runtime = conclave_runtime::Runtime::new(Default::default()).unwrap();
    let key = SigningKey::from_bytes(&[7; 32]);
    let bls = conclave_checkpoint::SecretKey::from_seed(&[8; 32]).unwrap();
    let me = MemberInfo::of(&key, &bls);
    let members = vec![me.id];
    let options = CheckpointOptions {
        anchors: Vec::new(),
        interval: 100,
    };
    let record = create_context(&store, &runtime, conclave_apps::KV, vec![me], 1, options).unwrap();
    Setup {
        _dir: dir,
        store,
        context: record.id,
        key,
        members,
    }
}

impl Setup {
    pub(crate) fn tx(&self, nonce: u64) -> SignedTx {
        Tx {
            context_id: self.context,
            sender: self.members[0],
            nonce,
            method: "set".into(),
            args: br#"{"key":"a","value":"1"}"#.to_vec(),
        }
        .sign(&self.key)
    }

    pub(crate) fn admission(&self) -> Admission {
        Admission::new(
            self.store.clone(),
            self.context,
            Height(0),
            MempoolConfig::default(),
            self.members.clone(),
        )
    }

    /// The hashes of the txs kept in the store, sorted.
    pub(crate) fn kept(&self) -> Vec<Hash32> {
        let mut kept: Vec<Hash32> = self
            .store
            .pending_txs(&self.context)
            .unwrap()
            .iter()
            .map(SignedTx::hash)
            .collect();
        kept.sort();
        kept
    }
}

#[test]
fn acknowledged_txs_outlive_the_pool_until_they_commit() {
    let s = setup();
    let mut a = s.admission();
    for n in 1..=3 {
        a.admit(s.tx(n).verified().unwrap()).unwrap();
    }
    // A pushed tx is kept by the node that acknowledged it, not here.
    let pushed = Tx {
        args: br#"{"key":"b","value":"2"}"#.to_vec(),
        ..s.tx(4).tx
    }
    .sign(&s.key);
    admit_pushed(&mut a, vec![pushed])[0].as_ref().unwrap();
    assert_eq!(s.store.pending_txs(&s.context).unwrap().len(), 3);

    // The node stops: a new pool gets its acknowledged txs back.
    let mut b = s.admission();
    assert_eq!(b.restore().unwrap(), 3);
    assert_eq!(b.pool().len(), 3);
    assert!(b.pool().contains(&s.tx(2).hash()));

    // Tx 1 commits: kept no more. Then a tx of nonce 2 other than the
    // one kept commits: the kept one can never commit, and goes too.
    b.committed(Height(1), &[s.tx(1)], &[s.tx(1).hash()], &[]);
    let mut other = s.tx(2);
    other.tx.args = br#"{"key":"c","value":"3"}"#.to_vec();
    let other = other.tx.sign(&s.key);
    b.committed(
        Height(2),
        std::slice::from_ref(&other),
        &[other.hash()],
        &[],
    );
    assert_eq!(s.kept(), vec![s.tx(3).hash()]);

    // Another restart gets back only what is still kept.
    let mut c = s.admission();
    assert_eq!(c.restore().unwrap(), 1);
    // One whose sender is no longer a member is forgotten.
    let mut d = s.admission();
    d.set_members(&[]);
    assert_eq!(d.restore().unwrap(), 0);
    assert!(s.store.pending_txs(&s.context).unwrap().is_empty());
}

#[test]
fn submitted_txs_are_kept_together_and_only_when_asked() {
    let s = setup();
    let mut a = s.admission();
    let txs: Vec<(Hash32, SignedTx)> = (1..=3)
        .map(|n| {
            let tx = s.tx(n);
            let hash = a.admit_unkept(tx.clone().verified().unwrap()).unwrap();
            (hash, tx)
        })
        .collect();
    // In the pool, ready for a block, but not acknowledged: not kept.
    assert_eq!(a.pool().len(), 3);
    assert!(s.kept().is_empty());
    a.keep(&txs).unwrap();
    let mut expected: Vec<Hash32> = txs.iter().map(|(hash, _)| *hash).collect();
    expected.sort();
    assert_eq!(s.kept(), expected);
    assert_eq!(s.admission().restore().unwrap(), 3);
}

#[test]
fn a_commit_names_the_acknowledged_txs_its_write_forgets() {
    let s = setup();
    let mut a = s.admission();
    let mine = s.tx(1).verified().unwrap();
    a.admit(mine.clone()).unwrap();
    let pushed = s.tx(2);
    admit_pushed(&mut a, vec![pushed.clone()])[0]
        .as_ref()
        .unwrap();
    let hashes = [mine.tx().hash(), pushed.hash()];
    // Only the tx acknowledged here is kept, so only it is forgotten.
    let forgotten = a.acknowledged_among(&hashes);
    assert_eq!(forgotten, vec![mine.tx().hash()]);
    a.committed(Height(1), &[mine.tx().clone(), pushed], &hashes, &forgotten);
    assert!(!a.acknowledged(&mine.tx().hash()));
    // Its kept copy is the commit's to delete (`CommitBatch::forgotten`):
    // no second write deletes it here.
    assert_eq!(s.kept(), vec![mine.tx().hash()]);
    assert!(a.acknowledged_among(&hashes).is_empty());
}

#[test]
fn nonces_follow_commits_without_the_store() {
    let s = setup();
    let mut a = s.admission();
    let me = s.members[0];
    assert_eq!(a.next_nonce(&me).unwrap(), 1);
    let t1 = s.tx(1).verified().unwrap();
    let t2 = s.tx(2);
    a.admit(t1.clone()).unwrap();
    admit_pushed(&mut a, vec![t2.clone()])[0].as_ref().unwrap();
    assert_eq!(a.next_nonce(&me).unwrap(), 3);
    assert_eq!(a.select(10, usize::MAX).len(), 2);
    // Height 1 commits both (the store is not written here: the cache
    // alone must know the new nonce).
    let hashes = [t1.tx().hash(), t2.hash()];
    a.committed(Height(1), &[t1.tx().clone(), t2], &hashes, &[]);
    assert!(a.pool().is_empty());
    assert_eq!(a.committed_nonce(&me).unwrap(), 2);
    let stale = a.admit(s.tx(2).verified().unwrap());
    assert!(matches!(
        stale,
        Err(SubmitError::Rejected(TxRejection::StaleNonce {
            got: 2,
            last: 2
        }))
    ));
}

#[test]
fn a_gap_waits_and_a_far_nonce_is_refused() {
    let s = setup();
    let mut a = s.admission();
    a.admit(s.tx(2).verified().unwrap()).unwrap();
    assert!(!a.has_ready_tx(), "nonce 2 waits for 1");
    a.admit(s.tx(1).verified().unwrap()).unwrap();
    assert!(a.has_ready_tx());
    let far = 1 + MempoolConfig::default().max_nonce_gap + 1;
    let refused = a.admit(s.tx(far).verified().unwrap());
    assert!(matches!(
        refused,
        Err(SubmitError::Rejected(TxRejection::NonceTooFar { .. }))
    ));
}

#[test]
fn a_sender_whose_quota_waits_above_a_gap_can_still_close_it() {
    let s = setup();
    let mut a = Admission::new(
        s.store.clone(),
        s.context,
        Height(0),
        MempoolConfig {
            max_txs_per_sender: 3,
            max_nonce_gap: 10,
            ..Default::default()
        },
        s.members.clone(),
    );
    // Many clients of one sender: later nonces arrive first and fill
    // its quota, all waiting for nonce 1.
    for n in [2, 3, 4] {
        a.admit(s.tx(n).verified().unwrap()).unwrap();
    }
    let full = |r| matches!(r, Err(SubmitError::Mempool(MempoolError::SenderFull(3))));
    assert!(full(a.admit(s.tx(5).verified().unwrap())));
    assert!(!a.has_ready_tx());
    // Nonce 1 closes the gap: it still gets in, and all four can run.
    a.admit(s.tx(1).verified().unwrap()).unwrap();
    assert_eq!(a.select(10, usize::MAX).len(), 4);
    assert!(full(a.admit(s.tx(5).verified().unwrap())));
}

#[test]
fn pushed_txs_are_checked_cheaply_first_then_signed_in_one_batch() {
    let s = setup();
    let mut a = s.admission();
    let tx = s.tx(1);
    let mut forged = s.tx(2);
    forged.tx.args = br#"{"key":"a","value":"evil"}"#.to_vec();
    let answers = admit_pushed(&mut a, vec![tx.clone(), tx, forged, s.tx(3)]);
    assert!(answers[0].is_ok());
    assert!(matches!(
        answers[1],
        Err(SubmitError::Mempool(MempoolError::Duplicate(_)))
    ));
    assert!(matches!(
        answers[2],
        Err(SubmitError::Rejected(TxRejection::BadSignature))
    ));
    assert_eq!(answers[3].as_ref().unwrap(), &s.tx(3).hash());
    let again = admit_pushed(&mut a, vec![s.tx(1)]);
    assert!(matches!(
        again[0],
        Err(SubmitError::Mempool(MempoolError::Duplicate(_)))
    ));
    a.set_members(&[MemberId([9; 32])]);
    let stranger = admit_pushed(&mut a, vec![s.tx(4)]);
    assert!(matches!(
        stranger[0],
        Err(SubmitError::Rejected(TxRejection::NotMember(_)))
    ));
    assert_eq!(a.pool().len(), 2);
}

/// Pushed txs are admitted at once when no height is under way (they may
/// start one); while one runs or is held, only once a batch is worth its
/// signature checks.
#[test]
fn pushed_txs_wait_for_a_batch_while_a_height_is_under_way() {
    let s = setup();
    let mut a = s.admission();
    assert!(!a.pushed_due(false), "nothing queued, nothing to admit");
    let nonces: Vec<u64> = (1..=PUSHED_BATCH as u64).collect();
    let (first, last) = nonces.split_at(PUSHED_BATCH - 1);
    a.queue_pushed(first.iter().map(|n| s.tx(*n)).collect());
    assert!(a.pushed_due(false), "idle: admitted at once");
    assert!(!a.pushed_due(true), "under way: they wait for a batch");
    a.queue_pushed(last.iter().map(|n| s.tx(*n)).collect());
    assert!(a.pushed_due(true), "a batch: admitted");
}
