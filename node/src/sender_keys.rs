//! Senders' public keys, decompressed and checked once and kept, so that a
//! member's next tx costs only its signature check (a key's decompression
//! and small-order check are about a quarter of a tx's check). The RPC
//! layer keeps one for the txs it receives, each context's admission one
//! for the txs members push.

use std::collections::HashMap;

use conclave_consensus::{MemberId, SenderKey};
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

    /// Checks `tx`'s signature, as `SignedTx::verified` does.
    #[cfg(test)]
    fn verified(
        &self,
        tx: conclave_consensus::SignedTx,
    ) -> conclave_consensus::Result<conclave_consensus::VerifiedTx> {
        let key = self.key(&tx.tx.sender)?;
        tx.verified_with(&key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_consensus::{ContextId, SignedTx, Tx};
    use ed25519_dalek::SigningKey;

    fn signed(seed: u8, nonce: u64) -> SignedTx {
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
        // The identity point: of small order, anyone could sign for it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        tx.tx.sender = MemberId(identity);
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
}
