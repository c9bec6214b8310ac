//! A context's pending txs. Admission checks what can be checked without
//! executing (signature, membership, size, nonce against the committed state
//! and the pool); block building takes txs in arrival order.

use std::collections::{BTreeMap, HashMap, HashSet};

use conclave_consensus::{Hash32, MemberId, SignedTx};
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
}

pub struct Mempool {
    cfg: MempoolConfig,
    txs: HashMap<Hash32, (u64, SignedTx)>,
    order: BTreeMap<u64, Hash32>,
    nonces: HashSet<(MemberId, u64)>,
    highest: HashMap<MemberId, u64>,
    next_seq: u64,
    bytes: usize,
}

impl Mempool {
    pub fn new(cfg: MempoolConfig) -> Self {
        Self {
            cfg,
            txs: HashMap::new(),
            order: BTreeMap::new(),
            nonces: HashSet::new(),
            highest: HashMap::new(),
            next_seq: 0,
            bytes: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.txs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.txs.is_empty()
    }

    pub fn contains(&self, hash: &Hash32) -> bool {
        self.txs.contains_key(hash)
    }

    /// The highest pending nonce of `sender`, if any.
    pub fn highest_nonce(&self, sender: &MemberId) -> Option<u64> {
        self.highest.get(sender).copied()
    }

    /// Admits a tx whose stateless checks and committed-nonce check passed.
    pub fn insert(&mut self, tx: SignedTx) -> Result<Hash32, MempoolError> {
        let hash = tx.hash();
        if self.txs.contains_key(&hash) {
            return Err(MempoolError::Duplicate(hash));
        }
        let key = (tx.tx.sender, tx.tx.nonce);
        if self.nonces.contains(&key) {
            return Err(MempoolError::NonceTaken(tx.tx.nonce));
        }
        if self.txs.len() >= self.cfg.max_txs {
            return Err(MempoolError::Full(self.cfg.max_txs));
        }
        let size = tx.encoded_len();
        if self.bytes + size > self.cfg.max_bytes {
            return Err(MempoolError::FullBytes(self.cfg.max_bytes));
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += size;
        self.nonces.insert(key);
        let h = self.highest.entry(key.0).or_insert(key.1);
        *h = (*h).max(key.1);
        self.order.insert(seq, hash);
        self.txs.insert(hash, (seq, tx));
        Ok(hash)
    }

    /// Up to `max_txs` / `max_bytes` of pending txs for a block, oldest
    /// first, each sender's txs in nonce order.
    pub fn select(&self, max_txs: usize, max_bytes: usize) -> Vec<SignedTx> {
        let mut out: Vec<SignedTx> = Vec::new();
        let mut bytes = 0;
        for hash in self.order.values() {
            let Some((_, tx)) = self.txs.get(hash) else {
                continue;
            };
            let size = tx.encoded_len();
            if out.len() >= max_txs || bytes + size > max_bytes {
                break;
            }
            bytes += size;
            out.push(tx.clone());
        }
        // Keep arrival order between senders, but order each sender's txs by
        // nonce so a later-arriving lower nonce is not made stale.
        let mut slots: HashMap<MemberId, Vec<usize>> = HashMap::new();
        for (i, tx) in out.iter().enumerate() {
            slots.entry(tx.tx.sender).or_default().push(i);
        }
        let mut sorted = out.clone();
        for idxs in slots.values() {
            let mut txs: Vec<&SignedTx> = idxs.iter().map(|&i| &out[i]).collect();
            txs.sort_by_key(|t| t.tx.nonce);
            for (&slot, tx) in idxs.iter().zip(txs) {
                sorted[slot] = tx.clone();
            }
        }
        sorted
    }

    pub fn remove(&mut self, hash: &Hash32) -> Option<SignedTx> {
        let (seq, tx) = self.txs.remove(hash)?;
        self.order.remove(&seq);
        self.nonces.remove(&(tx.tx.sender, tx.tx.nonce));
        self.bytes = self.bytes.saturating_sub(tx.encoded_len());
        if self.highest.get(&tx.tx.sender) == Some(&tx.tx.nonce) {
            let rest = self
                .nonces
                .iter()
                .filter(|(s, _)| *s == tx.tx.sender)
                .map(|(_, n)| *n)
                .max();
            match rest {
                Some(n) => {
                    self.highest.insert(tx.tx.sender, n);
                }
                None => {
                    self.highest.remove(&tx.tx.sender);
                }
            }
        }
        Some(tx)
    }

    /// Drops pending txs that `is_stale` says can never commit (their nonce
    /// was used), returning how many.
    pub fn retain(&mut self, mut keep: impl FnMut(&SignedTx) -> bool) -> usize {
        let stale: Vec<Hash32> = self
            .txs
            .iter()
            .filter(|(_, (_, tx))| !keep(tx))
            .map(|(h, _)| *h)
            .collect();
        for h in &stale {
            self.remove(h);
        }
        stale.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_consensus::{ContextId, Tx};
    use ed25519_dalek::SigningKey;

    fn tx(key: &SigningKey, nonce: u64) -> SignedTx {
        Tx {
            context_id: ContextId([0; 32]),
            sender: MemberId(key.verifying_key().to_bytes()),
            nonce,
            method: "set".into(),
            args: vec![],
        }
        .sign(key)
    }

    #[test]
    fn duplicates_and_limits() {
        let k = SigningKey::from_bytes(&[1; 32]);
        let mut m = Mempool::new(MempoolConfig {
            max_txs: 2,
            ..Default::default()
        });
        let h = m.insert(tx(&k, 1)).unwrap();
        assert_eq!(m.insert(tx(&k, 1)), Err(MempoolError::Duplicate(h)));
        m.insert(tx(&k, 2)).unwrap();
        assert_eq!(m.insert(tx(&k, 3)), Err(MempoolError::Full(2)));
        assert_eq!(
            m.highest_nonce(&MemberId(k.verifying_key().to_bytes())),
            Some(2)
        );
        m.remove(&h);
        assert_eq!(m.len(), 1);
        m.insert(tx(&k, 3)).unwrap();
    }

    #[test]
    fn select_orders_each_sender_by_nonce() {
        let a = SigningKey::from_bytes(&[1; 32]);
        let b = SigningKey::from_bytes(&[2; 32]);
        let mut m = Mempool::new(MempoolConfig::default());
        m.insert(tx(&a, 5)).unwrap();
        m.insert(tx(&b, 1)).unwrap();
        m.insert(tx(&a, 4)).unwrap();
        let sel = m.select(10, usize::MAX);
        let got: Vec<(u8, u64)> = sel
            .iter()
            .map(|t| {
                (
                    t.tx.sender.0[0] ^ a.verifying_key().to_bytes()[0],
                    t.tx.nonce,
                )
            })
            .collect();
        assert_eq!(got.len(), 3);
        assert_eq!(sel[0].tx.nonce, 4);
        assert_eq!(sel[2].tx.nonce, 5);
        assert_eq!(m.select(1, usize::MAX).len(), 1);
    }
}
