//! Admission: which txs enter a context's mempool on this node, and which
//! of them are ready for a block. It owns the mempool, the senders'
//! decompressed keys, and a cache of each sender's committed nonce (read
//! and decrypted from the store once, then kept up to date by every
//! commit instead of re-read for every tx).

use std::cell::RefCell;
use std::collections::HashMap;

use conclave_consensus::{ContextId, Hash32, Height, MemberId, SignedTx, VerifiedTx};
use ed25519_dalek::VerifyingKey;

use super::ingress::SubmitError;
use crate::config::MempoolConfig;
use crate::exec::{check_tx_with, TxRejection};
use crate::mempool::{Mempool, MempoolError};
use crate::store::Overlay;
use crate::store::Store;

pub(super) struct Admission {
    store: Store,
    context: ContextId,
    /// The committed tip the nonces are of.
    tip: Height,
    pool: Mempool,
    config: MempoolConfig,
    /// Senders' public keys, decompressed (only members' txs get as far as
    /// a signature check, so this holds at most the members ever seen).
    sender_keys: HashMap<MemberId, VerifyingKey>,
    /// Committed nonces as of `tip` (members only, so bounded likewise).
    nonces: RefCell<HashMap<MemberId, u64>>,
}

impl Admission {
    pub(super) fn new(
        store: Store,
        context: ContextId,
        tip: Height,
        config: MempoolConfig,
    ) -> Self {
        Self {
            store,
            context,
            tip,
            pool: Mempool::new(config.clone()),
            config,
            sender_keys: HashMap::new(),
            nonces: RefCell::new(HashMap::new()),
        }
    }

    pub(super) fn pool(&self) -> &Mempool {
        &self.pool
    }

    /// `member`'s last committed nonce (0: none yet).
    pub(super) fn committed_nonce(&self, member: &MemberId) -> Result<u64, SubmitError> {
        if let Some(n) = self.nonces.borrow().get(member) {
            return Ok(*n);
        }
        let state = self.store.state(self.context);
        let n = Overlay::new(&state, self.tip)
            .nonce(member)
            .map_err(|e| SubmitError::Internal(e.to_string()))?;
        self.nonces.borrow_mut().insert(*member, n);
        Ok(n)
    }

    /// The nonce `member` should use next: above committed and pending.
    pub(super) fn next_nonce(&self, member: &MemberId) -> Result<u64, SubmitError> {
        let committed = self.committed_nonce(member)?;
        let pending = self.pool.highest_nonce(member).unwrap_or(0);
        Ok(committed.max(pending) + 1)
    }

    /// Admits a tx whose signature was checked where it entered the node.
    pub(super) fn admit(
        &mut self,
        tx: VerifiedTx,
        members: &[MemberId],
    ) -> Result<Hash32, SubmitError> {
        self.precheck(tx.tx(), members)?;
        Ok(self.pool.insert(tx)?)
    }

    /// Admits a tx another member pushed: the cheap checks first, so that a
    /// duplicate or stale tx costs no signature check; then the signature,
    /// with the sender's key decompressed once per member.
    pub(super) fn admit_pushed(
        &mut self,
        tx: SignedTx,
        members: &[MemberId],
    ) -> Result<Hash32, SubmitError> {
        self.precheck(&tx, members)?;
        if self.pool.holds(&tx) {
            return Err(MempoolError::Duplicate(tx.hash()).into());
        }
        let sender = tx.tx.sender;
        let key = match self.sender_keys.get(&sender) {
            Some(key) => *key,
            None => {
                let key = tx.sender_key().map_err(|_| TxRejection::BadSignature)?;
                self.sender_keys.insert(sender, key);
                key
            }
        };
        let tx = tx
            .verified_with(&key)
            .map_err(|_| TxRejection::BadSignature)?;
        Ok(self.pool.insert(tx)?)
    }

    /// Every check of admission but the signature's: the static ones, then
    /// the nonce against the committed one.
    fn precheck(&self, tx: &SignedTx, members: &[MemberId]) -> Result<(), SubmitError> {
        check_tx_with(tx, &self.context, members, self.config.max_tx_bytes, true)?;
        let last = self.committed_nonce(&tx.tx.sender)?;
        if tx.tx.nonce <= last {
            return Err(TxRejection::StaleNonce {
                got: tx.tx.nonce,
                last,
            }
            .into());
        }
        // Txs may arrive out of order (concurrent clients); they wait in the
        // pool until the gap before them fills, within a bounded window.
        let window = self.config.max_nonce_gap;
        if tx.tx.nonce - last > window {
            return Err(TxRejection::NonceTooFar {
                got: tx.tx.nonce,
                last,
                window,
            }
            .into());
        }
        Ok(())
    }

    /// Up to `max_txs` / `max_bytes` of pending txs that can go into the
    /// next block in order (txs waiting behind a nonce gap cannot).
    pub(super) fn select(&self, max_txs: usize, max_bytes: usize) -> Vec<SignedTx> {
        self.pool.select(max_txs, max_bytes, |sender| {
            self.committed_nonce(sender).unwrap_or(u64::MAX)
        })
    }

    /// Whether some pending tx can go into the next block.
    pub(super) fn has_ready_tx(&self) -> bool {
        !self.pool.is_empty() && !self.select(1, usize::MAX).is_empty()
    }

    /// A tx dropped at block building: it can never be included.
    pub(super) fn drop_tx(&mut self, hash: &Hash32) {
        self.pool.remove(hash);
    }

    /// The txs of the block committed at `tip` left the pool, their
    /// senders' nonces moved (every included tx uses its nonce, whatever
    /// its call did), and txs those nonces made stale are dropped.
    pub(super) fn committed(&mut self, tip: Height, txs: &[SignedTx]) {
        self.tip = tip;
        let mut last: HashMap<MemberId, u64> = HashMap::new();
        for tx in txs {
            self.pool.remove(&tx.hash());
            let n = last.entry(tx.tx.sender).or_default();
            *n = (*n).max(tx.tx.nonce);
        }
        let mut nonces = self.nonces.borrow_mut();
        for (sender, nonce) in last {
            self.pool.prune_stale(&sender, nonce);
            nonces.insert(sender, nonce);
        }
    }
}

#[cfg(test)]
mod tests {
    use conclave_consensus::Tx;
    use ed25519_dalek::SigningKey;

    use super::*;
    use crate::context::{create_context, CheckpointOptions};
    use crate::store::{MemberInfo, StorageKey};

    struct Setup {
        _dir: tempfile::TempDir,
        store: Store,
        context: ContextId,
        key: SigningKey,
        members: Vec<MemberId>,
    }

    fn setup() -> Setup {
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
        let record =
            create_context(&store, &runtime, conclave_apps::KV, vec![me], 1, options).unwrap();
        Setup {
            _dir: dir,
            store,
            context: record.id,
            key,
            members,
        }
    }

    impl Setup {
        fn tx(&self, nonce: u64) -> SignedTx {
            Tx {
                context_id: self.context,
                sender: self.members[0],
                nonce,
                method: "set".into(),
                args: br#"{"key":"a","value":"1"}"#.to_vec(),
            }
            .sign(&self.key)
        }

        fn admission(&self) -> Admission {
            Admission::new(
                self.store.clone(),
                self.context,
                Height(0),
                MempoolConfig::default(),
            )
        }
    }

    #[test]
    fn nonces_follow_commits_without_the_store() {
        let s = setup();
        let mut a = s.admission();
        let me = s.members[0];
        assert_eq!(a.next_nonce(&me).unwrap(), 1);
        let t1 = s.tx(1).verified().unwrap();
        let t2 = s.tx(2);
        a.admit(t1.clone(), &s.members).unwrap();
        a.admit_pushed(t2.clone(), &s.members).unwrap();
        assert_eq!(a.next_nonce(&me).unwrap(), 3);
        assert_eq!(a.select(10, usize::MAX).len(), 2);
        // Height 1 commits both (the store is not written here: the cache
        // alone must know the new nonce).
        a.committed(Height(1), &[t1.tx().clone(), t2]);
        assert!(a.pool().is_empty());
        assert_eq!(a.committed_nonce(&me).unwrap(), 2);
        let stale = a.admit(s.tx(2).verified().unwrap(), &s.members);
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
        a.admit(s.tx(2).verified().unwrap(), &s.members).unwrap();
        assert!(!a.has_ready_tx(), "nonce 2 waits for 1");
        a.admit(s.tx(1).verified().unwrap(), &s.members).unwrap();
        assert!(a.has_ready_tx());
        let far = 1 + MempoolConfig::default().max_nonce_gap + 1;
        let refused = a.admit(s.tx(far).verified().unwrap(), &s.members);
        assert!(matches!(
            refused,
            Err(SubmitError::Rejected(TxRejection::NonceTooFar { .. }))
        ));
    }

    #[test]
    fn pushed_txs_are_checked_cheaply_first_then_signed() {
        let s = setup();
        let mut a = s.admission();
        let tx = s.tx(1);
        a.admit_pushed(tx.clone(), &s.members).unwrap();
        let again = a.admit_pushed(tx, &s.members);
        assert!(matches!(
            again,
            Err(SubmitError::Mempool(MempoolError::Duplicate(_)))
        ));
        let mut forged = s.tx(2);
        forged.tx.args = br#"{"key":"a","value":"evil"}"#.to_vec();
        let refused = a.admit_pushed(forged, &s.members);
        assert!(matches!(
            refused,
            Err(SubmitError::Rejected(TxRejection::BadSignature))
        ));
        let stranger = a.admit_pushed(s.tx(3), &[MemberId([9; 32])]);
        assert!(matches!(
            stranger,
            Err(SubmitError::Rejected(TxRejection::NotMember(_)))
        ));
        assert_eq!(a.pool().len(), 1);
    }
}
