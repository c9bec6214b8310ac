//! Senders' public keys, decompressed and checked once and kept, so that a
//! member's next tx costs only its signature check (a key's decompression
//! and small-order check are about a quarter of a tx's check). The RPC
//! layer keeps one for the txs it receives, each context's admission one
//! for the txs members push.

use std::collections::HashMap;

use conclave_consensus::{verified_batch, MemberId, SenderKey, SignedTx, VerifiedTx};
use parking_lot::Mutex;

/// Keys kept at most; past it the cache starts over (anyone may send txs
/// under made-up keys, and those must not grow it without bound).
const MAX_KEYS: usize = 4096;

#[derive(Default)]
pub struct SenderKeys(Mutex<HashMap<MemberId, SenderKey>>);

impl SenderKeys {
    /// `sender`'s key, decompressed and checked the first time.
    pub fn key(&self, sender: &MemberId) -> conclave_consensus::Result<SenderKey> {
        if let Some(key) = self.0.lock().get(sender) {
            return Ok(*key);
        }
        let key = SenderKey::new(sender)?;
        let mut keys = self.0.lock();
        if keys.len() >= MAX_KEYS {
            keys.clear();
        }
        keys.insert(*sender, key);
        Ok(key)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().len()
    }

    /// Checks the signature of each of `txs`, answering for each in order
    /// as [`SignedTx::verified`] would: together in one batch (checked tx
    /// by tx if it fails), with each sender's key decompressed once; a
    /// sender that is no key fails its own tx only.
    pub fn verified_all(&self, txs: Vec<SignedTx>) -> Vec<conclave_consensus::Result<VerifiedTx>> {
        let mut answers = Vec::with_capacity(txs.len());
        let mut places = Vec::with_capacity(txs.len());
        let mut batch = Vec::with_capacity(txs.len());
        for tx in txs {
            match self.key(&tx.tx.sender) {
                Ok(key) => {
                    places.push(answers.len());
                    answers.push(Err(conclave_consensus::Error::BadSignature));
                    batch.push((tx, key));
                }
                Err(e) => answers.push(Err(e)),
            }
        }
        for (at, answer) in places.into_iter().zip(verified_batch(batch)) {
            answers[at] = answer;
        }
        answers
    }
}

/// Signed txs for tests: good ones and the ways a signature goes wrong.
#[cfg(test)]
pub(crate) mod test_txs {
    use conclave_consensus::{ContextId, MemberId, SignedTx, Tx};
    use ed25519_dalek::SigningKey;

    /// A tx of the member of key `[seed; 32]`.
    pub(crate) fn signed(seed: u8, nonce: u64) -> SignedTx {
        let key = SigningKey::from_bytes(&[seed; 32]);
        Tx {
            context_id: ContextId([7; 32]),
            sender: MemberId(key.verifying_key().to_bytes()),
            nonce,
            method: "set".into(),
            args: b"{}".to_vec(),
        }
        .sign(&key)
    }

    /// A sender that is no key: the identity point, of small order, which
    /// anyone could sign for.
    pub(crate) fn no_key() -> MemberId {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        MemberId(identity)
    }

    /// `n` txs, each with whether its signature is good: good ones, forged
    /// signatures, signatures by another key than the sender's, and
    /// senders that are no key, mixed.
    pub(crate) fn mixed(n: u64) -> Vec<(SignedTx, bool)> {
        (0..n)
            .map(|i| {
                let mut tx = signed(1 + (i % 3) as u8, i);
                let good = match i % 5 {
                    1 => {
                        tx.signature[i as usize % 64] ^= 1;
                        false
                    }
                    3 => {
                        tx.tx.sender = signed(9, i).tx.sender;
                        false
                    }
                    4 if i % 2 == 0 => {
                        tx.tx.sender = no_key();
                        false
                    }
                    _ => true,
                };
                (tx, good)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::test_txs::{mixed, no_key, signed};
    use super::*;
    use conclave_consensus::{ContextId, Tx};
    use ed25519_dalek::SigningKey;

    impl SenderKeys {
        fn verified(&self, tx: SignedTx) -> conclave_consensus::Result<VerifiedTx> {
            self.verified_all(vec![tx]).remove(0)
        }
    }

    #[test]
    fn a_kept_key_checks_like_a_fresh_one() {
        let keys = SenderKeys::default();
        let good = signed(1, 1);
        assert_eq!(
            keys.verified(good.clone()).unwrap().hash(),
            good.clone().verified().unwrap().hash()
        );
        assert_eq!(keys.len(), 1);
        // The key is kept now: a second tx of that sender still has its
        // own signature checked.
        let mut forged = signed(1, 2);
        forged.signature[0] ^= 1;
        assert!(keys.verified(forged).is_err());
        // A signature made by another key under this sender fails too.
        let mut stolen = signed(2, 3);
        stolen.tx.sender = good.tx.sender;
        assert!(keys.verified(stolen).is_err());
        assert!(keys.verified(signed(1, 4)).is_ok());
        assert_eq!(keys.len(), 1);
    }

    #[test]
    fn a_bad_key_is_refused_and_not_kept() {
        let keys = SenderKeys::default();
        let mut tx = signed(1, 1);
        tx.tx.sender = no_key();
        assert!(keys.verified(tx).is_err());
        assert_eq!(keys.len(), 0);
    }

    #[test]
    fn the_cache_stays_bounded() {
        let keys = SenderKeys::default();
        for i in 0..(MAX_KEYS + 10) {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            let key = SigningKey::from_bytes(&seed);
            let tx = Tx {
                context_id: ContextId([7; 32]),
                sender: MemberId(key.verifying_key().to_bytes()),
                nonce: 1,
                method: "set".into(),
                args: Vec::new(),
            }
            .sign(&key);
            keys.verified(tx).unwrap();
        }
        assert!(keys.len() <= MAX_KEYS);
    }

    #[test]
    fn a_batch_answers_each_tx_as_a_check_one_by_one_would() {
        let keys = SenderKeys::default();
        for n in [1, 2, 3, 40] {
            let txs = mixed(n);
            let answers = keys.verified_all(txs.iter().map(|(tx, _)| tx.clone()).collect());
            assert_eq!(answers.len(), txs.len());
            for ((tx, good), answer) in txs.into_iter().zip(answers) {
                let alone = tx.clone().verified();
                assert_eq!(answer.is_ok(), good, "nonce {}", tx.tx.nonce);
                assert_eq!(answer.ok(), alone.ok());
            }
        }
    }
}
