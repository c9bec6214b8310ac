use borsh::{BorshDeserialize, BorshSerialize};
use ed25519_dalek::{Signer, SigningKey};
use ed25519_zebra::{batch, Signature, VerificationKey, VerificationKeyBytes};
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

    /// Signs the tx with the sender's key. The caller must make `sender`
    /// the key's public half, or the signature will not verify.
    pub fn sign(self, key: &SigningKey) -> SignedTx {
        let signature = key.sign(&sign_bytes(&self.hash())).to_bytes();
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

    /// Verifies the signature against the sender's key, by the rule of
    /// [`SenderKey`].
    pub fn verify(&self) -> Result<()> {
        self.verify_with(&self.sender_key()?)
    }

    /// The sender's public key, decompressed and checked (callers verifying
    /// many txs of few senders keep it: decompressing is a good part of a
    /// verification).
    pub fn sender_key(&self) -> Result<SenderKey> {
        SenderKey::new(&self.tx.sender)
    }

    /// [`Self::verify`] with the sender's key at hand; `key` must be
    /// [`Self::sender_key`].
    pub fn verify_with(&self, key: &SenderKey) -> Result<()> {
        self.verify_hashed(key, &self.hash())
    }

    fn verify_hashed(&self, key: &SenderKey, hash: &Hash32) -> Result<()> {
        if key.member != self.tx.sender {
            return Err(Error::BadPublicKey);
        }
        key.key
            .verify(&Signature::from_bytes(&self.signature), &sign_bytes(hash))
            .map_err(|_| Error::BadSignature)
    }

    /// This tx with its signature checked, as a [`VerifiedTx`].
    pub fn verified(self) -> Result<VerifiedTx> {
        let key = self.sender_key()?;
        self.verified_with(&key)
    }

    /// [`Self::verified`] with the sender's key at hand.
    pub fn verified_with(self, key: &SenderKey) -> Result<VerifiedTx> {
        let hash = self.hash();
        self.verify_hashed(key, &hash)?;
        Ok(VerifiedTx { tx: self, hash })
    }

    /// Size of the canonical encoding, the unit of the mempool's size limits.
    pub fn encoded_len(&self) -> usize {
        borsh::object_length(self).unwrap_or(usize::MAX)
    }
}

fn sign_bytes(hash: &Hash32) -> Vec<u8> {
    let mut out = TX_SIGN_DOMAIN.to_vec();
    out.extend_from_slice(hash.as_bytes());
    out
}

/// A tx sender's public key, decompressed once, and the rule its
/// signatures are held to.
///
/// The rule is ZIP-215's (cofactored verification: `[8][s]B = [8]R +
/// [8][k]A`, `s` canonical, `A` and `R` any point encoding) with one
/// addition: the key must not be of small order (anyone could sign for
/// such a key). Single and batch verification agree on it exactly, which
/// is what lets members check a proposal's txs in batches and still agree
/// on its validity. It accepts every signature that ed25519-dalek's
/// `verify_strict` (the rule before it) accepts, so no block committed
/// under the old rule becomes invalid.
#[derive(Clone, Copy, Debug)]
pub struct SenderKey {
    member: MemberId,
    key: VerificationKey,
}

impl SenderKey {
    pub fn new(member: &MemberId) -> Result<Self> {
        let weak = ed25519_dalek::VerifyingKey::from_bytes(member.as_bytes())
            .map_err(|_| Error::BadPublicKey)?
            .is_weak();
        if weak {
            return Err(Error::BadPublicKey);
        }
        let key = VerificationKey::try_from(*member.as_bytes()).map_err(|_| Error::BadPublicKey)?;
        Ok(Self {
            member: *member,
            key,
        })
    }
}

/// Checks many txs' signatures at once: one multi-scalar multiplication
/// for the whole batch, with the terms of each sender's key merged. The
/// answer for each tx is what [`SignedTx::verify_with`] would give; when
/// the batch fails, each tx is checked alone to find which.
pub fn verify_batch(txs: &[(&SignedTx, &SenderKey)]) -> Vec<Result<()>> {
    let hashes: Vec<Hash32> = txs.iter().map(|(tx, _)| tx.hash()).collect();
    let items: Vec<_> = txs
        .iter()
        .zip(&hashes)
        .map(|((tx, key), hash)| (*tx, *key, hash))
        .collect();
    check_batch(&items)
}

/// [`verify_batch`], keeping each tx that passes as a [`VerifiedTx`].
pub fn verified_batch(txs: Vec<(SignedTx, SenderKey)>) -> Vec<Result<VerifiedTx>> {
    let hashes: Vec<Hash32> = txs.iter().map(|(tx, _)| tx.hash()).collect();
    let items: Vec<_> = txs
        .iter()
        .zip(&hashes)
        .map(|((tx, key), hash)| (tx, key, hash))
        .collect();
    let answers = check_batch(&items);
    txs.into_iter()
        .zip(hashes)
        .zip(answers)
        .map(|(((tx, _), hash), answer)| answer.map(|()| VerifiedTx { tx, hash }))
        .collect()
}

/// Below this many txs a batch costs more than checking each with its key
/// at hand (44.6 us a tx alone, 46.9 in a batch of 2, 37.2 of 4, 19.0 of
/// 16 with AVX2 on an earlier machine; with IFMA here 16.0, 15.8, 13.5
/// and 7.3: `cargo bench -p conclave-node --bench hot -- "tx verify"`).
const MIN_BATCH: usize = 3;

fn check_batch(txs: &[(&SignedTx, &SenderKey, &Hash32)]) -> Vec<Result<()>> {
    if txs.len() < MIN_BATCH {
        return txs
            .iter()
            .map(|(tx, key, hash)| tx.verify_hashed(key, hash))
            .collect();
    }
    let mut answers: Vec<Result<()>> = Vec::with_capacity(txs.len());
    let mut items = Vec::with_capacity(txs.len());
    let mut batch = batch::Verifier::new();
    for (tx, key, hash) in txs {
        if key.member != tx.tx.sender {
            answers.push(Err(Error::BadPublicKey));
            continue;
        }
        let item = batch::Item::from((
            VerificationKeyBytes::from(*key.member.as_bytes()),
            Signature::from_bytes(&tx.signature),
            &sign_bytes(hash)[..],
        ));
        batch.queue(item.clone());
        items.push((answers.len(), item));
        answers.push(Ok(()));
    }
    if items.is_empty() || batch.verify(rand_batch::rng()).is_ok() {
        return answers;
    }
    for (at, item) in items {
        answers[at] = item.verify_single().map_err(|_| Error::BadSignature);
    }
    answers
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

    fn key(seed: u64) -> SigningKey {
        SigningKey::from_bytes(&[seed as u8; 32])
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
        let other = SenderKey::new(&tx(&key(2)).sender).unwrap();
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

    /// A signature made with the secret scalar by hand, with `torsion`
    /// added to its commitment R (an honest signer adds nothing).
    fn sign_with_torsion(k: &SigningKey, tx: &Tx, torsion: usize) -> SignedTx {
        use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
        use curve25519_dalek::Scalar;
        use sha2::{Digest, Sha512};
        let wide = |parts: &[&[u8]]| {
            let mut h = Sha512::new();
            for p in parts {
                h.update(p);
            }
            Scalar::from_bytes_mod_order_wide(&h.finalize().into())
        };
        let a = k.to_scalar();
        let msg = sign_bytes(&tx.hash());
        let r = wide(&[b"nonce", &msg, &k.to_bytes()]);
        let big_r = (r * ED25519_BASEPOINT_POINT + EIGHT_TORSION[torsion]).compress();
        let challenge = wide(&[big_r.as_bytes(), tx.sender.as_bytes(), &msg]);
        let s = r + challenge * a;
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(big_r.as_bytes());
        signature[32..].copy_from_slice(s.as_bytes());
        SignedTx {
            tx: tx.clone(),
            signature,
        }
    }

    #[test]
    fn the_rule_accepts_all_that_verify_strict_did() {
        for seed in 0..32 {
            let k = key(seed);
            let mut t = tx(&k);
            t.nonce = seed + 1;
            let signed = t.clone().sign(&k);
            let dalek = k.verifying_key();
            let old = dalek.verify_strict(
                &sign_bytes(&t.hash()),
                &ed25519_dalek::Signature::from_bytes(&signed.signature),
            );
            assert!(old.is_ok());
            assert!(signed.verify().is_ok(), "seed {seed}");
            // The hand-made signer matches the library's.
            assert!(sign_with_torsion(&k, &t, 0).verify().is_ok());
        }
    }

    #[test]
    fn a_small_order_key_is_refused() {
        // The identity point: every signature with R = -[k]A + [s]B would
        // pass for it.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            SenderKey::new(&MemberId(identity)),
            Err(Error::BadPublicKey)
        ));
        // Not a point at all (about half of all y coordinates are not).
        let not_a_point = (2u8..)
            .map(|y| {
                let mut b = [0u8; 32];
                b[0] = y;
                b
            })
            .find(|b| ed25519_dalek::VerifyingKey::from_bytes(b).is_err())
            .unwrap();
        assert!(SenderKey::new(&MemberId(not_a_point)).is_err());
    }

    #[test]
    fn batch_and_single_give_the_same_answer_for_every_tx() {
        let keys: Vec<SigningKey> = (10..14).map(key).collect();
        let mut txs = Vec::new();
        for (i, k) in keys.iter().enumerate() {
            for nonce in 1..=8u64 {
                let mut t = tx(k);
                t.nonce = nonce;
                txs.push(t.sign(k));
            }
            // A commitment with a torsion component: cofactorless checks
            // (verify_strict, dalek's batch) disagree on it, the rule here
            // accepts it alone and in a batch alike.
            let mut t = tx(k);
            t.nonce = 100;
            txs.push(sign_with_torsion(k, &t, 1 + i));
        }
        // Tampered args, another signer, a non-canonical s (s + l), and a
        // garbage R.
        txs[1].tx.args = b"{\"x\":1}".to_vec();
        let other = &keys[2];
        txs[10] = {
            let mut t = tx(&keys[1]);
            t.nonce = 50;
            let forged = t.clone().sign(other);
            SignedTx {
                tx: t,
                signature: forged.signature,
            }
        };
        // The group order l = 2^252 + 27742317777372353535851937790883648493,
        // little-endian.
        let l: [u8; 32] = {
            let mut l = [0u8; 32];
            l[..16].copy_from_slice(&0x14def9dea2f79cd65812631a5cf5d3edu128.to_le_bytes());
            l[31] = 0x10;
            l
        };
        let mut s = [0u8; 32];
        s.copy_from_slice(&txs[20].signature[32..]);
        let mut carry = 0u16;
        for i in 0..32 {
            let sum = u16::from(s[i]) + u16::from(l[i]) + carry;
            s[i] = sum as u8;
            carry = sum >> 8;
        }
        txs[20].signature[32..].copy_from_slice(&s);
        txs[30].signature[..32].copy_from_slice(&[0xff; 32]);

        let keyed: Vec<SenderKey> = txs.iter().map(|t| t.sender_key().unwrap()).collect();
        let pairs: Vec<(&SignedTx, &SenderKey)> = txs.iter().zip(&keyed).collect();
        let batch = verify_batch(&pairs);
        let single: Vec<bool> = txs.iter().map(|t| t.verify().is_ok()).collect();
        assert_eq!(batch.iter().map(Result::is_ok).collect::<Vec<_>>(), single);
        let refused: Vec<usize> = (0..txs.len()).filter(|i| !single[*i]).collect();
        assert_eq!(refused, vec![1, 10, 20, 30]);
        // Every torsion-carrying tx passed, though `verify_strict` refuses
        // it (so this is the case the two rules differ on).
        for i in 0..keys.len() {
            let t = &txs[i * 9 + 8];
            assert!(single[i * 9 + 8], "torsion tx of key {i}");
            let strict = ed25519_dalek::VerifyingKey::from_bytes(t.tx.sender.as_bytes())
                .unwrap()
                .verify_strict(
                    &sign_bytes(&t.hash()),
                    &ed25519_dalek::Signature::from_bytes(&t.signature),
                );
            assert!(strict.is_err(), "torsion tx of key {i}");
        }
        // All valid: the batch passes whole; a key not the sender's fails
        // that tx only.
        let good: Vec<(&SignedTx, &SenderKey)> = pairs
            .iter()
            .enumerate()
            .filter(|(i, _)| !refused.contains(i))
            .map(|(_, p)| *p)
            .collect();
        assert!(verify_batch(&good).iter().all(Result::is_ok));
        let mut wrong = good.clone();
        wrong[3].1 = &keyed[35];
        let answers = verify_batch(&wrong);
        assert!(matches!(answers[3], Err(Error::BadPublicKey)));
        assert_eq!(answers.iter().filter(|a| a.is_err()).count(), 1);
        assert!(verify_batch(&[]).is_empty());
        // Batches too small to pay, checked one by one, and the smallest
        // that do, answer alike.
        for n in 1..=MIN_BATCH + 1 {
            for window in pairs.windows(n) {
                let answers: Vec<bool> = verify_batch(window).iter().map(Result::is_ok).collect();
                let alone: Vec<bool> = window.iter().map(|(t, _)| t.verify().is_ok()).collect();
                assert_eq!(answers, alone);
            }
        }
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
