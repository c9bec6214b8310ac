//! A context's pending txs. Admission checks what can be checked without
//! executing (signature, membership, size, nonce against the committed
//! state); the pool keeps each sender's txs by nonce, so txs from concurrent
//! clients may arrive out of order and wait for the gap before them to fill.
//! A block takes each sender's run of consecutive nonces after its committed
//! one, in turns (one tx of each sender a turn, in order of arrival), so
//! that senders share a full block.
//!
//! A full pool must never lock a sender out: txs waiting above a gap could
//! otherwise fill it (or the sender's quota) and refuse the very tx that
//! closes the gap. So the tx that closes its sender's first gap (its nonce
//! the first missing above the committed one, with the sender's txs
//! waiting above it) may go past its sender's quota (`max_txs_per_sender`)
//! by up to a quarter (at least one tx), and past the pool's total limits
//! (`max_txs`, `max_bytes`) whatever it holds; then those txs can run, so
//! blocks drain the excess. Such txs are at most as many as the txs
//! already waiting above the gaps they close (so the pool holds at most
//! twice what its limits and the reserve below let in). A tx another
//! member pushed (`Mempool::insert_pushed`) may go past the pool's total
//! limits (not its sender's quota) by up to a quarter: that member
//! acknowledged it, and a pool that refused it made its node fetch it
//! from every proposal carrying it. The gaps' closers
//! are not held to that quarter, which pushed txs may take whole: every
//! member's pool then stood full of txs waiting above gaps and pushed txs
//! waiting above theirs, none of them able to run, and nothing was
//! proposed again (four validators with pools of 100 txs under 64
//! clients). The node's own submissions stop at the limits, so when every
//! member's pool fills under load, what goes past them is the pushes
//! already under way and the gaps' closers. Any other tx finds a full
//! pool full.

use std::collections::{BTreeMap, HashMap};

use conclave_consensus::{Hash32, MemberId, SignedTx, VerifiedTx};
use thiserror::Error;

use crate::config::MempoolConfig;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum MempoolError {
    #[error("tx {0} is already pending")]
    Duplicate(Hash32),
    #[error("a tx from this sender with nonce {0} is already pending")]
    NonceTaken(u64),
    #[error("mempool is full ({0} txs); retry later")]
    Full(usize),
    #[error("mempool is full ({0} bytes); retry later")]
    FullBytes(usize),
    /// One sender may hold only so much of the pool, so that no member
    /// can fill it for the others.
    #[error("this sender has {0} txs pending, the most one sender may hold; retry later")]
    SenderFull(usize),
}

struct Entry {
    tx: SignedTx,
    size: usize,
}

pub struct Mempool {
    cfg: MempoolConfig,
    /// tx hash -> (sender, nonce)
    index: HashMap<Hash32, (MemberId, u64)>,
    /// sender -> nonce -> tx
    senders: HashMap<MemberId, BTreeMap<u64, Entry>>,
    /// arrival order of senders' first pending tx: seq -> sender
    arrivals: BTreeMap<u64, MemberId>,
    first_seq: HashMap<MemberId, u64>,
    next_seq: u64,
    bytes: usize,
}

impl Mempool {
    pub fn new(cfg: MempoolConfig) -> Self {
        Self {
            cfg,
            index: HashMap::new(),
            senders: HashMap::new(),
            arrivals: BTreeMap::new(),
            first_seq: HashMap::new(),
            next_seq: 0,
            bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    /// Whether this very signed tx (same body and signature) is pending:
    /// its signature was verified at admission.
    pub fn holds(&self, tx: &SignedTx) -> bool {
        self.senders
            .get(&tx.tx.sender)
            .and_then(|q| q.get(&tx.tx.nonce))
            .is_some_and(|e| e.tx == *tx)
    }

    /// Up to `max` pending txs, each sender's in nonce order.
    pub fn pending(&self, max: usize) -> Vec<SignedTx> {
        self.senders
            .values()
            .flat_map(|queue| queue.values().map(|e| e.tx.clone()))
            .take(max)
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Pending tx `hash`.
    pub fn get(&self, hash: &Hash32) -> Option<&SignedTx> {
        let (sender, nonce) = self.index.get(hash)?;
        self.senders.get(sender)?.get(nonce).map(|e| &e.tx)
    }

    pub fn contains(&self, hash: &Hash32) -> bool {
        self.index.contains_key(hash)
    }

    /// How many txs of `sender` are pending.
    pub fn pending_of(&self, sender: &MemberId) -> usize {
        self.senders.get(sender).map_or(0, BTreeMap::len)
    }

    /// The highest pending nonce of `sender`, if any.
    pub fn highest_nonce(&self, sender: &MemberId) -> Option<u64> {
        self.senders
            .get(sender)
            .and_then(|m| m.last_key_value())
            .map(|(n, _)| *n)
    }

    /// Whether [`Self::insert`] would take `tx` (its hash `hash`, its
    /// sender's committed nonce `committed`), changing nothing: a
    /// duplicate, a nonce taken, or a full pool is refused.
    pub fn check(&self, tx: &SignedTx, hash: &Hash32, committed: u64) -> Result<(), MempoolError> {
        self.check_from(tx, hash, committed, false)
    }

    /// [`Self::check`] for a tx submitted here, or `pushed` by another
    /// member (which may go past the total limits within the reserve).
    fn check_from(
        &self,
        tx: &SignedTx,
        hash: &Hash32,
        committed: u64,
        pushed: bool,
    ) -> Result<(), MempoolError> {
        if self.index.contains_key(hash) {
            return Err(MempoolError::Duplicate(*hash));
        }
        let (sender, nonce) = (tx.tx.sender, tx.tx.nonce);
        if self
            .senders
            .get(&sender)
            .is_some_and(|m| m.contains_key(&nonce))
        {
            return Err(MempoolError::NonceTaken(nonce));
        }
        let (pending, size) = (self.pending_of(&sender), tx.encoded_len());
        let cfg = &self.cfg;
        let full = if pending >= cfg.max_txs_per_sender {
            Some(MempoolError::SenderFull(cfg.max_txs_per_sender))
        } else if self.index.len() >= cfg.max_txs {
            Some(MempoolError::Full(cfg.max_txs))
        } else if self.bytes + size > cfg.max_bytes {
            Some(MempoolError::FullBytes(cfg.max_bytes))
        } else {
            None
        };
        if let Some(full) = full {
            let sender_reserve = pending < cfg.max_txs_per_sender + cfg.max_txs_per_sender / 4 + 1;
            let pool_reserve = self.index.len() < cfg.max_txs + cfg.max_txs / 4 + 1
                && self.bytes + size <= cfg.max_bytes + cfg.max_bytes / 4;
            let closes_gap = self.highest_nonce(&sender).is_some_and(|h| h > nonce)
                && self.next_to_run(&sender, committed) == nonce;
            let acknowledged = pushed && !matches!(full, MempoolError::SenderFull(_));
            // The pool's reserve may be all pushed txs: a gap's closer
            // needs only its sender's (module docs).
            let admitted =
                (closes_gap && sender_reserve) || (acknowledged && sender_reserve && pool_reserve);
            if !admitted {
                return Err(full);
            }
        }
        Ok(())
    }

    /// Admits a tx whose signature, stateless checks and committed-nonce
    /// check passed (`committed`: its sender's committed nonce); its hash
    /// is the one computed when it was verified.
    pub fn insert(&mut self, tx: VerifiedTx, committed: u64) -> Result<Hash32, MempoolError> {
        self.insert_from(tx, committed, false)
    }

    /// [`Self::insert`] for a tx another member pushed: it acknowledged
    /// the tx, so a full pool takes it within the reserve (module docs).
    pub fn insert_pushed(
        &mut self,
        tx: VerifiedTx,
        committed: u64,
    ) -> Result<Hash32, MempoolError> {
        self.insert_from(tx, committed, true)
    }

    fn insert_from(
        &mut self,
        tx: VerifiedTx,
        committed: u64,
        pushed: bool,
    ) -> Result<Hash32, MempoolError> {
        let hash = tx.hash();
        let tx = tx.into_inner();
        self.check_from(&tx, &hash, committed, pushed)?;
        let (sender, nonce, size) = (tx.tx.sender, tx.tx.nonce, tx.encoded_len());
        self.bytes += size;
        self.index.insert(hash, (sender, nonce));
        if !self.first_seq.contains_key(&sender) {
            let seq = self.next_seq;
            self.next_seq += 1;
            self.first_seq.insert(sender, seq);
            self.arrivals.insert(seq, sender);
        }
        self.senders
            .entry(sender)
            .or_default()
            .insert(nonce, Entry { tx, size });
        Ok(hash)
    }

    /// The nonce `sender` needs next for its txs to run: the first one
    /// missing above `committed`.
    fn next_to_run(&self, sender: &MemberId, committed: u64) -> u64 {
        let first = committed.saturating_add(1);
        let Some(txs) = self.senders.get(sender) else {
            return first;
        };
        let mut next = first;
        for nonce in txs.range(first..).map(|(n, _)| *n) {
            if nonce != next {
                break;
            }
            next += 1;
        }
        next
    }

    /// Whether some sender's next tx (the nonce after
    /// `committed_nonce(sender)`) waits here: whether [`Self::select`] would
    /// take any. Asked at every turn of a context's actor that might start
    /// a height, including each turn of a held one; it looks up one nonce a
    /// sender and copies nothing.
    pub fn has_ready(&self, committed_nonce: impl Fn(&MemberId) -> u64) -> bool {
        self.senders
            .iter()
            .any(|(sender, txs)| txs.contains_key(&committed_nonce(sender).saturating_add(1)))
    }

    /// Up to `max_txs` / `max_bytes` of txs for a block from each sender's
    /// run of consecutive nonces after `committed_nonce(sender)`, taken in
    /// turns: one tx of each sender with txs ready a turn, senders in order
    /// of arrival; a sender whose next tx does not fit the bytes left is
    /// done. A full block is so shared among the senders. Taken sender by
    /// sender, the first to arrive, while its txs kept coming, filled every
    /// block and the others' txs waited: one context saturated by its four
    /// members (`conclave bench --validators 4`) committed most txs in
    /// about 1.3 s and its slowest hundredth in 4 to 12 s.
    pub fn select(
        &self,
        max_txs: usize,
        max_bytes: usize,
        committed_nonce: impl Fn(&MemberId) -> u64,
    ) -> Vec<SignedTx> {
        let mut runs: Vec<_> = self
            .arrivals
            .values()
            .filter_map(|sender| {
                let txs = self.senders.get(sender)?;
                let first = committed_nonce(sender).saturating_add(1);
                let run = (first..=u64::MAX)
                    .zip(txs.range(first..))
                    .map_while(|(expected, (nonce, entry))| (*nonce == expected).then_some(entry));
                Some(run)
            })
            .collect();
        let mut out = Vec::new();
        let mut bytes = 0;
        while !runs.is_empty() && out.len() < max_txs {
            runs.retain_mut(|run| {
                if out.len() >= max_txs {
                    return true;
                }
                match run.next() {
                    Some(entry) if bytes + entry.size <= max_bytes => {
                        bytes += entry.size;
                        out.push(entry.tx.clone());
                        true
                    }
                    // The sender's run ended, or its next tx does not fit.
                    _ => false,
                }
            });
        }
        out
    }

    pub fn remove(&mut self, hash: &Hash32) -> Option<SignedTx> {
        let (sender, nonce) = self.index.remove(hash)?;
        let txs = self.senders.get_mut(&sender)?;
        let entry = txs.remove(&nonce)?;
        self.bytes = self.bytes.saturating_sub(entry.size);
        if txs.is_empty() {
            self.senders.remove(&sender);
            if let Some(seq) = self.first_seq.remove(&sender) {
                self.arrivals.remove(&seq);
            }
        }
        Some(entry.tx)
    }

    /// Drops every pending tx of `sender` with a nonce at or below
    /// `committed` (they can never commit), returning their hashes.
    pub fn prune_stale(&mut self, sender: &MemberId, committed: u64) -> Vec<Hash32> {
        let stale: Vec<Hash32> = match self.senders.get(sender) {
            Some(txs) => txs.range(..=committed).map(|(_, e)| e.tx.hash()).collect(),
            None => return Vec::new(),
        };
        for h in &stale {
            self.remove(h);
        }
        stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_consensus::{ContextId, Tx};
    use ed25519_dalek::SigningKey;

    fn tx(key: &SigningKey, nonce: u64) -> VerifiedTx {
        tx_of_size(key, nonce, 0)
    }

    /// A tx whose args are `len` bytes.
    fn tx_of_size(key: &SigningKey, nonce: u64, len: usize) -> VerifiedTx {
        Tx {
            context_id: ContextId([0; 32]),
            sender: MemberId(key.verifying_key().to_bytes()),
            nonce,
            method: "set".into(),
            args: vec![7; len],
        }
        .sign(key)
        .verified()
        .unwrap()
    }

    fn id(key: &SigningKey) -> MemberId {
        MemberId(key.verifying_key().to_bytes())
    }

    /// The `n`th test sender's key.
    fn key(n: u8) -> SigningKey {
        SigningKey::from_bytes(&[n; 32])
    }

    #[test]
    fn duplicates_and_limits() {
        let k = key(1);
        let j = key(2);
        let mut m = Mempool::new(MempoolConfig {
            max_txs: 2,
            ..Default::default()
        });
        let h = m.insert(tx(&k, 1), 0).unwrap();
        assert_eq!(m.insert(tx(&k, 1), 0), Err(MempoolError::Duplicate(h)));
        m.insert(tx(&k, 2), 0).unwrap();
        // Full: a tx that would wait behind a gap is refused.
        assert_eq!(m.insert(tx(&j, 2), 0), Err(MempoolError::Full(2)));
        assert_eq!(m.highest_nonce(&id(&k)), Some(2));
        m.remove(&h);
        assert_eq!(m.len(), 1);
        m.insert(tx(&k, 3), 1).unwrap();
        assert_eq!(m.highest_nonce(&id(&k)), Some(3));
    }

    /// A pool of 4 txs filled by two senders' nonces 2 and 3, submitted
    /// here (concurrent clients: their later txs came first), so that
    /// nothing in it can run.
    fn full_of_waiting_txs(a: &SigningKey, b: &SigningKey) -> Mempool {
        let mut m = Mempool::new(MempoolConfig {
            max_txs: 4,
            ..Default::default()
        });
        for key in [a, b] {
            m.insert(tx(key, 2), 0).unwrap();
            m.insert(tx(key, 3), 0).unwrap();
        }
        assert!(m.select(10, usize::MAX, |_| 0).is_empty());
        m
    }

    #[test]
    fn a_full_pool_still_takes_the_tx_that_closes_a_senders_gap() {
        let (a, b, c) = (key(1), key(2), key(3));
        let mut m = full_of_waiting_txs(&a, &b);
        // Another waiting tx is refused, but the tx that closes each
        // sender's gap gets in, past the limit.
        assert_eq!(m.insert(tx(&a, 5), 0), Err(MempoolError::Full(4)));
        // So is a sender's tx that closes no gap, even one that could run.
        assert_eq!(m.insert(tx(&c, 1), 0), Err(MempoolError::Full(4)));
        m.insert(tx(&a, 1), 0).unwrap();
        m.insert(tx(&b, 1), 0).unwrap();
        assert_eq!(m.select(10, usize::MAX, |_| 0).len(), 6);
        // The reserve is bounded, even for txs that could run.
        assert_eq!(m.insert(tx(&a, 4), 0), Err(MempoolError::Full(4)));
    }

    #[test]
    fn pushed_txs_in_the_reserve_do_not_lock_out_a_gaps_closer() {
        let (a, b, c, d) = (key(1), key(2), key(3), key(4));
        // The node's own senders wait above gaps and fill the pool; pushed
        // txs, also waiting above theirs, fill its reserve.
        let mut m = full_of_waiting_txs(&a, &b);
        m.insert_pushed(tx(&c, 2), 0).unwrap();
        m.insert_pushed(tx(&d, 2), 0).unwrap();
        assert_eq!(m.insert_pushed(tx(&c, 3), 0), Err(MempoolError::Full(4)));
        assert!(m.select(10, usize::MAX, |_| 0).is_empty());
        // Nothing could ever run if the gaps' closers were refused now.
        m.insert(tx(&a, 1), 0).unwrap();
        m.insert_pushed(tx(&c, 1), 0).unwrap();
        assert_eq!(m.select(10, usize::MAX, |_| 0).len(), 5);
        // Still only the closers: a tx that could run but closes no gap is
        // refused.
        assert_eq!(m.insert(tx(&a, 4), 0), Err(MempoolError::Full(4)));
        assert_eq!(m.len(), 8);
    }

    #[test]
    fn a_full_pool_takes_pushed_txs_within_the_reserve_not_submitted_ones() {
        let keys: Vec<SigningKey> = (1..=7).map(key).collect();
        let mut m = Mempool::new(MempoolConfig {
            max_txs: 4,
            max_txs_per_sender: 2,
            ..Default::default()
        });
        for k in &keys[..4] {
            m.insert(tx(k, 1), 0).unwrap();
        }
        // Submitted here: refused at the limit.
        assert_eq!(m.insert(tx(&keys[4], 1), 0), Err(MempoolError::Full(4)));
        // Pushed by a member that acknowledged them: taken up to a quarter
        // past the limit and one (two txs here), then refused as well.
        m.insert_pushed(tx(&keys[4], 1), 0).unwrap();
        m.insert_pushed(tx(&keys[5], 1), 0).unwrap();
        assert_eq!(
            m.insert_pushed(tx(&keys[6], 1), 0),
            Err(MempoolError::Full(4))
        );
        assert_eq!(m.len(), 6);
        // A sender's quota binds pushed txs too.
        let mut m = Mempool::new(MempoolConfig {
            max_txs_per_sender: 2,
            ..Default::default()
        });
        m.insert_pushed(tx(&keys[0], 1), 0).unwrap();
        m.insert_pushed(tx(&keys[0], 2), 0).unwrap();
        assert_eq!(
            m.insert_pushed(tx(&keys[0], 3), 0),
            Err(MempoolError::SenderFull(2))
        );
    }

    #[test]
    fn one_sender_cannot_fill_the_pool_for_the_others() {
        let (a, b) = (key(1), key(2));
        let mut m = Mempool::new(MempoolConfig {
            max_txs: 4,
            max_txs_per_sender: 2,
            ..Default::default()
        });
        m.insert(tx(&a, 1), 0).unwrap();
        m.insert(tx(&a, 5), 0).unwrap();
        // Nonce 3 waits like 5: refused. (Nonce 2, which would let a's txs
        // run, may still use the reserve.)
        assert_eq!(m.insert(tx(&a, 3), 0), Err(MempoolError::SenderFull(2)));
        m.insert(tx(&b, 1), 0).unwrap();
        m.insert(tx(&b, 2), 0).unwrap();
        assert_eq!(m.len(), 4);
    }

    #[test]
    fn select_takes_consecutive_runs_in_turns_in_sender_arrival_order() {
        let a = key(1);
        let b = key(2);
        let mut m = Mempool::new(MempoolConfig::default());
        m.insert(tx(&a, 2), 0).unwrap();
        m.insert(tx(&b, 1), 0).unwrap();
        m.insert(tx(&a, 1), 0).unwrap();
        m.insert(tx(&a, 4), 0).unwrap(); // gap at 3: waits
        let sel = m.select(10, usize::MAX, |_| 0);
        let got: Vec<(MemberId, u64)> = sel.iter().map(|t| (t.tx.sender, t.tx.nonce)).collect();
        assert_eq!(got, vec![(id(&a), 1), (id(&b), 1), (id(&a), 2)]);
        // Once 3 is committed elsewhere, 4 is next for a.
        let sel = m.select(10, usize::MAX, |s| if *s == id(&a) { 3 } else { 1 });
        assert_eq!(sel.len(), 1);
        assert_eq!(sel[0].tx.nonce, 4);
        assert_eq!(m.select(1, usize::MAX, |_| 0).len(), 1);
        assert_eq!(m.prune_stale(&id(&a), 2).len(), 2);
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn a_tx_is_ready_exactly_when_select_would_take_one() {
        let (a, b) = (key(1), key(2));
        let mut m = Mempool::new(MempoolConfig::default());
        let agree = |m: &Mempool, committed: &dyn Fn(&MemberId) -> u64| {
            let ready = m.has_ready(committed);
            assert_eq!(ready, !m.select(1, usize::MAX, committed).is_empty());
            ready
        };
        assert!(!agree(&m, &|_| 0));
        // Behind a gap at 1 and 2: nothing can run.
        m.insert(tx(&a, 3), 0).unwrap();
        m.insert(tx(&b, 2), 0).unwrap();
        assert!(!agree(&m, &|_| 0));
        // The other sender's gap closes.
        assert!(agree(&m, &|s| if *s == id(&b) { 1 } else { 0 }));
        // Committed past what waits (stale until pruned), or unknown.
        assert!(!agree(&m, &|_| 3));
        assert!(!agree(&m, &|_| u64::MAX));
        m.insert(tx(&a, 1), 0).unwrap();
        assert!(agree(&m, &|_| 0));
    }

    #[test]
    fn a_full_block_is_shared_among_the_senders_with_txs_ready() {
        let (a, b, c) = (key(1), key(2), key(3));
        let mut m = Mempool::new(MempoolConfig::default());
        // The first sender to arrive has far more ready than a block takes.
        for nonce in 1..=50 {
            m.insert(tx(&a, nonce), 0).unwrap();
        }
        for nonce in 1..=3 {
            m.insert(tx(&b, nonce), 0).unwrap();
        }
        for nonce in 1..=20 {
            m.insert(tx(&c, nonce), 0).unwrap();
        }
        let count = |sel: &[SignedTx], key: &SigningKey| {
            sel.iter().filter(|t| t.tx.sender == id(key)).count()
        };
        let sel = m.select(12, usize::MAX, |_| 0);
        assert_eq!(sel.len(), 12);
        // b's 3 ready txs all go in; a and c share the rest evenly.
        assert_eq!(
            (count(&sel, &a), count(&sel, &b), count(&sel, &c)),
            (5, 3, 4)
        );
        // Each sender's txs are in nonce order.
        for key in [&a, &b, &c] {
            let nonces: Vec<u64> = sel
                .iter()
                .filter(|t| t.tx.sender == id(key))
                .map(|t| t.tx.nonce)
                .collect();
            assert_eq!(nonces, (1..=nonces.len() as u64).collect::<Vec<_>>());
        }
        let all = m.select(usize::MAX, usize::MAX, |_| 0);
        assert_eq!(all.len(), 73);
    }

    #[test]
    fn the_bytes_bound_ends_a_sender_whose_next_tx_does_not_fit_not_the_others() {
        let (a, b) = (key(1), key(2));
        let mut m = Mempool::new(MempoolConfig::default());
        let (large, small) = (tx_of_size(&a, 1, 1000), tx_of_size(&b, 1, 10));
        let (la, lb) = (large.tx().encoded_len(), small.tx().encoded_len());
        m.insert(large, 0).unwrap();
        m.insert(tx_of_size(&a, 2, 1000), 0).unwrap();
        m.insert(small, 0).unwrap();
        for nonce in 2..=5 {
            m.insert(tx_of_size(&b, nonce, 10), 0).unwrap();
        }
        let sel = m.select(usize::MAX, la + 3 * lb, |_| 0);
        let got: Vec<(MemberId, u64)> = sel.iter().map(|t| (t.tx.sender, t.tx.nonce)).collect();
        assert_eq!(
            got,
            vec![(id(&a), 1), (id(&b), 1), (id(&b), 2), (id(&b), 3)]
        );
    }
}
