use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

use super::{sha256, ContextId, Hash32, MemberId};
use crate::{Error, Result};

/// Domain separator for transaction signatures, so a tx signature can never
/// be replayed as a vote or proposal signature.
pub const TX_SIGN_DOMAIN: &[u8] = b"conclave/tx/v1";

/// A member's request to call a method of a context's app.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Tx {
    pub context_id: ContextId,
    pub sender: MemberId,
    /// Strictly greater than the sender's previous committed nonce.
    pub nonce: u64,
    pub method: String,
    /// Method arguments, opaque to the node (the kv app takes JSON).
    #[serde(with = "super::serde_hex::bytes")]
    pub args: Vec<u8>,
}

impl Tx {
    /// The tx's id: SHA-256 of its canonical (borsh) encoding.
    pub fn hash(&self) -> Hash32 {
        sha256(&[&borsh::to_vec(self).unwrap_or_default()])
    }

    fn sign_bytes(&self) -> Vec<u8> {
        let mut out = TX_SIGN_DOMAIN.to_vec();
        out.extend_from_slice(self.hash().as_bytes());
        out
    }

    /// Signs the tx with the sender's key. The caller must make `sender`
    /// the key's public half, or the signature will not verify.
    pub fn sign(self, key: &SigningKey) -> SignedTx {
        let signature = key.sign(&self.sign_bytes()).to_bytes();
        SignedTx {
            tx: self,
            signature,
        }
    }
}

/// A transaction with its sender's ed25519 signature.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedTx {
    pub tx: Tx,
    #[serde(with = "super::serde_hex::array64")]
    pub signature: [u8; 64],
}

impl SignedTx {
    pub fn hash(&self) -> Hash32 {
        self.tx.hash()
    }

    /// Verifies the signature against the sender's key (strict: rejects
    /// malleable and small-order encodings).
    pub fn verify(&self) -> Result<()> {
        self.verify_with(&self.sender_key()?)
    }

    /// The sender's public key, decompressed (callers verifying many txs of
    /// few senders keep it: decompressing is a good part of a verification).
    pub fn sender_key(&self) -> Result<VerifyingKey> {
        VerifyingKey::from_bytes(self.tx.sender.as_bytes()).map_err(|_| Error::BadPublicKey)
    }

    /// [`Self::verify`] with the sender's key at hand; `key` must be
    /// [`Self::sender_key`].
    pub fn verify_with(&self, key: &VerifyingKey) -> Result<()> {
        if key.as_bytes() != self.tx.sender.as_bytes() {
            return Err(Error::BadPublicKey);
        }
        key.verify_strict(
            &self.tx.sign_bytes(),
            &Signature::from_bytes(&self.signature),
        )
        .map_err(|_| Error::BadSignature)
    }

    /// This tx with its signature checked, as a [`VerifiedTx`].
    pub fn verified(self) -> Result<VerifiedTx> {
        let key = self.sender_key()?;
        self.verified_with(&key)
    }

    /// [`Self::verified`] with the sender's key at hand.
    pub fn verified_with(self, key: &VerifyingKey) -> Result<VerifiedTx> {
        self.verify_with(key)?;
        Ok(VerifiedTx {
            hash: self.hash(),
            tx: self,
        })
    }

    /// Size of the canonical encoding, the unit of the mempool's size limits.
    pub fn encoded_len(&self) -> usize {
        borsh::object_length(self).unwrap_or(usize::MAX)
    }
}

/// A signed tx whose signature this node has checked, with its id. Made
/// only by [`SignedTx::verified`]: holding one means the check is done, so
/// it is done once per node, where the tx enters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTx {
    tx: SignedTx,
    hash: Hash32,
}

impl VerifiedTx {
    pub fn tx(&self) -> &SignedTx {
        &self.tx
    }

    pub fn hash(&self) -> Hash32 {
        self.hash
    }

    pub fn into_inner(self) -> SignedTx {
        self.tx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn key(seed: u64) -> SigningKey {
        SigningKey::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed))
    }

    fn tx(k: &SigningKey) -> Tx {
        Tx {
            context_id: ContextId([1; 32]),
            sender: MemberId(k.verifying_key().to_bytes()),
            nonce: 1,
            method: "set".into(),
            args: b"{}".to_vec(),
        }
    }

    #[test]
    fn sign_and_verify() {
        let k = key(1);
        let signed = tx(&k).sign(&k);
        signed.verify().unwrap();
    }

    #[test]
    fn verified_carries_the_hash_and_refuses_a_key_not_the_senders() {
        let k = key(1);
        let signed = tx(&k).sign(&k);
        let hash = signed.hash();
        let verified = signed.clone().verified().unwrap();
        assert_eq!(verified.hash(), hash);
        assert_eq!(verified.tx(), &signed);
        let other = key(2).verifying_key();
        assert!(matches!(
            signed.verified_with(&other),
            Err(Error::BadPublicKey)
        ));
    }

    #[test]
    fn tampered_or_wrong_key_fails() {
        let k = key(1);
        let mut signed = tx(&k).sign(&k);
        signed.tx.nonce = 2;
        assert!(matches!(signed.verify(), Err(Error::BadSignature)));

        let other = key(2);
        let forged = tx(&k).sign(&other);
        assert!(matches!(forged.verify(), Err(Error::BadSignature)));
    }

    #[test]
    fn json_roundtrip() {
        let k = key(3);
        let signed = tx(&k).sign(&k);
        let json = serde_json_roundtrip(&signed);
        assert_eq!(json, signed);
    }

    fn serde_json_roundtrip(s: &SignedTx) -> SignedTx {
        let bytes = borsh::to_vec(s).unwrap();
        borsh::from_slice(&bytes).unwrap()
    }
}
