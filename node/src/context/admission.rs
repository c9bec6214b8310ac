//! Admission: which txs enter a context's mempool on this node, and which
//! of them are ready for a block. It owns the mempool, the senders'
//! decompressed keys, and a cache of each sender's committed nonce (read
//! and decrypted from the store once, then kept up to date by every
//! commit instead of re-read for every tx). The txs it acknowledges are
//! also kept in the store until they commit (`store/pending_txs.rs`), and
//! put back in the pool when the node restarts.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_consensus::{ContextId, Hash32, Height, MemberId, SignedTx, VerifiedTx};

use super::ingress::SubmitError;
use super::room::CommitPace;
use crate::config::MempoolConfig;
use crate::exec::{check_tx_with, TxRejection};
use crate::mempool::{Mempool, MempoolError};
use crate::sender_keys::SenderKeys;
use crate::store::Overlay;
use crate::store::Store;
use tracing::warn;

pub(super) struct Admission {
    store: Store,
    context: ContextId,
    /// The committed tip the nonces are of.
    tip: Height,
    pool: Mempool,
    config: MempoolConfig,
    /// Who may send txs: the members of the next height.
    members: Vec<MemberId>,
    /// Senders' public keys, decompressed (only members' txs get as far as
    /// a signature check, so this holds at most the members ever seen).
    sender_keys: Arc<SenderKeys>,
    /// Committed nonces as of `tip` (members only, so bounded likewise).
    nonces: RefCell<HashMap<MemberId, u64>>,
    /// Pool txs this node acknowledged, kept in the store until they
    /// commit or can never commit.
    kept: HashSet<Hash32>,
    /// Txs members pushed, not checked yet: while a height runs they wait
    /// here until enough have gathered for a cheap batch of signature
    /// checks, or until this node builds a block ([`Self::take_queued`]).
    /// One that a proposal carries meanwhile is checked with the block and
    /// is stale by the time the rest are admitted, so no tx's signature is
    /// checked twice.
    queued: Vec<SignedTx>,
    /// When this context's blocks commit here: when a full pool will
    /// likely have room again.
    commits: CommitPace,
}

/// Pushed txs through the cheap checks ([`Admission::sort_pushed`]), their
/// signatures not checked yet.
pub(super) struct PushedBatch {
    /// Each tx pushed, in order: refused by the cheap checks, or the next
    /// of `unsigned`.
    sorted: Vec<Option<SubmitError>>,
    pub(super) unsigned: Vec<SignedTx>,
}

/// Pushed txs gathered before they are admitted at once, whatever else the
/// actor is doing.
const MAX_QUEUED_PUSHED: usize = 4096;

/// Pushed txs worth a batch of signature checks while a height runs: from
/// about this many a batch costs a tx less than half a check alone
/// (`cargo bench -p conclave-node --bench hot -- "tx verify"`).
pub(super) const PUSHED_BATCH: usize = 32;

impl Admission {
    pub(super) fn new(
        store: Store,
        context: ContextId,
        tip: Height,
        config: MempoolConfig,
        members: Vec<MemberId>,
    ) -> Self {
        Self {
            store,
            context,
            tip,
            pool: Mempool::new(config.clone()),
            config,
            members,
            sender_keys: Arc::default(),
            nonces: RefCell::new(HashMap::new()),
            kept: HashSet::new(),
            queued: Vec::new(),
            commits: CommitPace::default(),
        }
    }

    /// Puts back in the pool the txs this node acknowledged before it
    /// stopped and that are not committed; forgets those that can no
    /// longer be (committed meanwhile, their sender no longer a member).
    /// Returns how many are back.
    pub(super) fn restore(&mut self) -> crate::Result<usize> {
        let mut gone = Vec::new();
        for tx in self.store.pending_txs(&self.context)? {
            let hash = tx.hash();
            let back = self
                .precheck(&tx)
                .and_then(|()| {
                    tx.verified()
                        .map_err(|_| SubmitError::from(TxRejection::BadSignature))
                })
                .and_then(|tx| self.insert(tx));
            match back {
                Ok(_) => {
                    self.kept.insert(hash);
                }
                Err(_) => gone.push(hash),
            }
        }
        self.store.forget_pending_txs(&self.context, &gone)?;
        Ok(self.kept.len())
    }

    pub(super) fn pool(&self) -> &Mempool {
        &self.pool
    }

    pub(super) fn context(&self) -> ContextId {
        self.context
    }

    pub(super) fn store(&self) -> &Store {
        &self.store
    }

    /// The members of the next height changed: only they may send txs.
    pub(super) fn set_members(&mut self, members: &[MemberId]) {
        self.members = members.to_vec();
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

    /// Puts a checked tx in the pool, which needs its sender's committed
    /// nonce to tell whether it is the next to run.
    fn insert(&mut self, tx: VerifiedTx) -> Result<Hash32, SubmitError> {
        let committed = self.committed_nonce(&tx.tx().tx.sender)?;
        Ok(self.pool.insert(tx, committed)?)
    }

    /// Admits a tx whose signature was checked where it entered the node,
    /// and keeps it ([`Self::keep`]).
    pub(super) fn admit(&mut self, tx: VerifiedTx) -> Result<Hash32, SubmitError> {
        let signed = tx.tx().clone();
        let hash = self.admit_unkept(tx)?;
        self.keep(&[(hash, signed)])?;
        Ok(hash)
    }

    /// Admits a tx whose signature was checked where it entered the node
    /// into the pool only: it may be acknowledged once [`Self::keep`] has
    /// it in the store.
    pub(super) fn admit_unkept(&mut self, tx: VerifiedTx) -> Result<Hash32, SubmitError> {
        self.precheck(tx.tx())?;
        self.insert(tx)
    }

    /// Whether [`Self::admit_unkept`] would take `tx` now (its hash
    /// `hash`), changing nothing.
    pub(super) fn check_new(&self, tx: &SignedTx, hash: &Hash32) -> Result<(), SubmitError> {
        self.precheck(tx)?;
        let committed = self.committed_nonce(&tx.tx.sender)?;
        Ok(self.pool.check(tx, hash, committed)?)
    }

    /// Admits a tx already written to the store as kept (under its hash,
    /// by [`crate::store::Store::put_pending_txs`], outside any lock): into
    /// the pool and the kept set. If refused now (a duplicate or a commit
    /// got in since the write), the written copy is forgotten unless the
    /// pool holds that very tx, kept by another submission.
    pub(super) fn admit_written(&mut self, tx: VerifiedTx) -> Result<Hash32, SubmitError> {
        let hash = tx.hash();
        match self.admit_unkept(tx) {
            Ok(hash) => {
                self.kept.insert(hash);
                Ok(hash)
            }
            Err(e) => {
                if !self.kept.contains(&hash) {
                    if let Err(e) = self.store.forget_pending_txs(&self.context, &[hash]) {
                        // Left behind, it is dropped at the next restart.
                        warn!(context = %self.context, error = %e, "cannot forget a kept tx");
                    }
                }
                Err(e)
            }
        }
    }

    /// Keeps admitted txs (each with its hash) in the store until they
    /// commit, in one write: acknowledged means kept, so that a node killed
    /// before they commit puts them back in its pool when it restarts. If
    /// the write fails they leave the pool again.
    pub(super) fn keep(&mut self, txs: &[(Hash32, SignedTx)]) -> Result<(), SubmitError> {
        if let Err(e) = self.store.put_pending_txs(&self.context, txs) {
            for (hash, _) in txs {
                self.pool.remove(hash);
            }
            return Err(SubmitError::Storage(e.to_string()));
        }
        self.kept.extend(txs.iter().map(|(hash, _)| *hash));
        Ok(())
    }

    /// Whether this node acknowledged tx `hash` (a client submitted it
    /// here), and it waits in the pool.
    pub(super) fn acknowledged(&self, hash: &Hash32) -> bool {
        self.kept.contains(hash)
    }

    /// The txs among `hashes` this node acknowledged and keeps: a commit
    /// of them forgets them in its own write ([`Self::committed`]).
    pub(super) fn acknowledged_among(&self, hashes: &[Hash32]) -> Vec<Hash32> {
        if self.kept.is_empty() {
            return Vec::new();
        }
        hashes
            .iter()
            .filter(|h| self.kept.contains(*h))
            .copied()
            .collect()
    }

    /// Pool tx `hash`.
    pub(super) fn pooled(&self, hash: &Hash32) -> Option<SignedTx> {
        self.pool.get(hash).cloned()
    }

    /// The pushed txs not admitted yet.
    pub(super) fn queued_txs(&self) -> &[SignedTx] {
        &self.queued
    }

    /// Queues txs a member pushed for [`Self::take_queued`]; whether
    /// enough wait that they should be admitted now.
    pub(super) fn queue_pushed(&mut self, txs: Vec<SignedTx>) -> bool {
        self.queued.extend(txs);
        self.queued.len() >= MAX_QUEUED_PUSHED
    }

    /// Whether the queued pushed txs are to be admitted now: at once while
    /// no height is `under_way` (running, or held for a fuller block), as
    /// they may start one; otherwise once [`PUSHED_BATCH`] wait.
    pub(super) fn pushed_due(&self, under_way: bool) -> bool {
        !self.queued.is_empty() && (!under_way || self.queued.len() >= PUSHED_BATCH)
    }

    /// Takes the queued pushed txs, through the cheap checks
    /// ([`Self::sort_pushed`]).
    pub(super) fn take_queued(&mut self) -> PushedBatch {
        let txs = std::mem::take(&mut self.queued);
        self.sort_pushed(txs)
    }

    /// Forgets the queued pushed txs (they reach this node again, in a
    /// proposal or a push after a reconnect).
    pub(super) fn drop_queued(&mut self) {
        self.queued.clear();
    }

    /// The senders' keys, for checking a [`PushedBatch`]'s signatures
    /// outside the pool's lock.
    pub(super) fn sender_keys(&self) -> Arc<SenderKeys> {
        Arc::clone(&self.sender_keys)
    }

    /// Admitting txs other members pushed, answering for each in order,
    /// runs in three steps, the second outside the pool's lock: the cheap
    /// checks (here), so that a duplicate or stale tx costs no signature
    /// check; the signatures of the rest in one batch
    /// ([`SenderKeys::verified_all`], each sender's key decompressed once);
    /// then the pool ([`Self::insert_pushed`]).
    pub(super) fn sort_pushed(&self, txs: Vec<SignedTx>) -> PushedBatch {
        let mut sorted = Vec::with_capacity(txs.len());
        let mut unsigned = Vec::with_capacity(txs.len());
        for tx in txs {
            let checked = self.precheck(&tx).and_then(|()| {
                if self.pool.holds(&tx) {
                    return Err(MempoolError::Duplicate(tx.hash()).into());
                }
                Ok(())
            });
            match checked {
                Ok(()) => {
                    sorted.push(None);
                    unsigned.push(tx);
                }
                Err(e) => sorted.push(Some(e)),
            }
        }
        PushedBatch { sorted, unsigned }
    }

    /// Puts a batch's txs whose signatures held (`verified`, in the order
    /// of its `unsigned`) in the pool; the answers for every tx pushed.
    pub(super) fn insert_pushed(
        &mut self,
        batch: PushedBatch,
        verified: Vec<conclave_consensus::Result<VerifiedTx>>,
    ) -> Vec<Result<Hash32, SubmitError>> {
        let mut verified = verified.into_iter();
        batch
            .sorted
            .into_iter()
            .map(|refused| match refused {
                Some(e) => Err(e),
                // Only the unsigned take a check, in their order.
                None => match verified.next() {
                    Some(Ok(tx)) => {
                        let committed = self.committed_nonce(&tx.tx().tx.sender)?;
                        Ok(self.pool.insert_pushed(tx, committed)?)
                    }
                    _ => Err(TxRejection::BadSignature.into()),
                },
            })
            .collect()
    }

    /// Every check of admission but the signature's: the static ones, then
    /// the nonce against the committed one.
    fn precheck(&self, tx: &SignedTx) -> Result<(), SubmitError> {
        let max_tx_bytes = self.config.max_tx_bytes;
        check_tx_with(tx, &self.context, &self.members, max_tx_bytes, true)?;
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
        self.pool
            .has_ready(|sender| self.committed_nonce(sender).unwrap_or(u64::MAX))
    }

    /// A tx dropped at block building: it can never be included.
    pub(super) fn drop_tx(&mut self, hash: &Hash32) {
        self.pool.remove(hash);
        self.forget(vec![*hash]);
    }

    /// Forgets the kept txs among `hashes`: they left the pool for good.
    fn forget(&mut self, mut hashes: Vec<Hash32>) {
        hashes.retain(|h| self.kept.remove(h));
        if let Err(e) = self.store.forget_pending_txs(&self.context, &hashes) {
            // Left behind, they are dropped at the next restart (stale).
            warn!(context = %self.context, error = %e, "cannot forget kept txs");
        }
    }

    /// How long a submitter refused for lack of room (a full pool, a
    /// sender's full share) should wait before it tries again: until the
    /// next commit is likely to have taken txs out ([`CommitPace`]).
    pub(super) fn retry_after(&self) -> Duration {
        self.commits.retry_after(Instant::now())
    }

    /// The txs of the block committed at `tip` (their hashes `hashes`)
    /// left the pool, their senders' nonces moved (every included tx uses
    /// its nonce, whatever its call did), and txs those nonces made stale
    /// are dropped. The commit's write deleted the kept copies of
    /// `forgotten` ([`Self::acknowledged_among`]); any other kept tx
    /// among those gone is deleted here.
    pub(super) fn committed(
        &mut self,
        tip: Height,
        txs: &[SignedTx],
        hashes: &[Hash32],
        forgotten: &[Hash32],
    ) {
        for hash in forgotten {
            self.kept.remove(hash);
        }
        self.tip = tip;
        self.commits.committed(Instant::now());
        let mut last: HashMap<MemberId, u64> = HashMap::new();
        let mut gone = Vec::new();
        for (tx, hash) in txs.iter().zip(hashes) {
            self.pool.remove(hash);
            gone.push(*hash);
            let n = last.entry(tx.tx.sender).or_default();
            *n = (*n).max(tx.tx.nonce);
        }
        {
            let mut nonces = self.nonces.borrow_mut();
            for (sender, nonce) in last {
                gone.extend(self.pool.prune_stale(&sender, nonce));
                nonces.insert(sender, nonce);
            }
        }
        if !self.kept.is_empty() {
            self.forget(gone);
        }
    }
}

#[cfg(test)]
#[path = "admission_tests.rs"]
pub(super) mod tests;
