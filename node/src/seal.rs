//! Sealing a context's traffic with its symmetric key, and handing that key
//! to members.
//!
//! Every context payload that crosses the network (gossip, sync responses,
//! app blobs) travels as an envelope
//! `version ‖ key epoch (u64 BE) ‖ nonce (24) ‖ ciphertext ‖ tag`:
//! XChaCha20-Poly1305 under the context key of that epoch, with a fresh
//! random 192-bit nonce per message (random nonces of that size do not
//! repeat in practice) and the context id, the purpose and the epoch as
//! associated data, so an envelope cannot be replayed into another context
//! or protocol. This is on top of libp2p's Noise: a relay, or a peer that
//! subscribes to the context's topic without being a member, learns sizes
//! and timing and nothing else.
//!
//! The key itself reaches each member sealed to that member's X25519 key,
//! the Montgomery form of its ed25519 member id: an ephemeral X25519 key
//! agreement, HKDF-SHA256 over the shared secret (bound to both public
//! keys, the context and the epoch) and ChaCha20-Poly1305. A sealed key is
//! 80 bytes and only its addressee can open it.

use conclave_aead::XChaCha;
use conclave_consensus::{ContextId, MemberId};
use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{SigningKey, VerifyingKey};
use rand::RngCore;
use sha2::Sha256;
use thiserror::Error;

const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Envelope bytes beyond the plaintext.
pub const OVERHEAD: usize = 1 + 8 + NONCE_LEN + TAG_LEN;
/// Length of a key sealed to one member.
pub const SEALED_KEY_LEN: usize = 32 + 32 + TAG_LEN;

#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum SealError {
    #[error("sealed message is malformed: {0}")]
    Malformed(&'static str),
    #[error("sealed under key epoch {0}, which this node does not hold")]
    UnknownEpoch(u64),
    #[error("authentication tag does not verify (tampered, or another key)")]
    Tag,
    #[error("member id is not a valid ed25519 key")]
    BadMember,
}

/// What an envelope carries; part of its associated data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Purpose {
    Gossip = 1,
    SyncResponse = 2,
    App = 3,
}

/// A context's symmetric key of one epoch. Epoch 0 comes with the genesis;
/// each removal of a member starts a new one.
#[derive(Clone, PartialEq, Eq)]
pub struct ContextKey {
    pub epoch: u64,
    key: [u8; 32],
}

impl std::fmt::Debug for ContextKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ContextKey(epoch {}, …)", self.epoch)
    }
}

impl ContextKey {
    pub fn generate(epoch: u64) -> Self {
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        Self { epoch, key }
    }

    pub fn from_bytes(epoch: u64, key: [u8; 32]) -> Self {
        Self { epoch, key }
    }

    /// The secret; for the node's own (encrypted) store only.
    pub fn secret(&self) -> &[u8; 32] {
        &self.key
    }

    fn aad(&self, ctx: &ContextId, purpose: Purpose) -> [u8; 16 + 32 + 1 + 8] {
        let mut aad = [0u8; 57];
        aad[..16].copy_from_slice(b"conclave/seal/v1");
        aad[16..48].copy_from_slice(ctx.as_bytes());
        aad[48] = purpose as u8;
        aad[49..].copy_from_slice(&self.epoch.to_be_bytes());
        aad
    }

    /// Seals `plaintext` for the members of `ctx`, under a fresh random
    /// nonce.
    pub fn seal(&self, ctx: &ContextId, purpose: Purpose, plaintext: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        self.seal_with_nonce(ctx, purpose, plaintext, nonce)
    }

    /// [`Self::seal`] under a given nonce: only for pinned test vectors (a
    /// nonce must never repeat under one key).
    pub(crate) fn seal_with_nonce(
        &self,
        ctx: &ContextId,
        purpose: Purpose,
        plaintext: &[u8],
        nonce: [u8; NONCE_LEN],
    ) -> Vec<u8> {
        let aad = self.aad(ctx, purpose);
        let mut out = Vec::with_capacity(OVERHEAD + plaintext.len());
        out.push(VERSION);
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let body = &mut out[1 + 8 + NONCE_LEN..];
        // Fails only beyond 256 GiB, which no message reaches.
        let tag = XChaCha::new(&self.key)
            .encrypt(&nonce, &aad, body)
            .unwrap_or_default();
        out.extend_from_slice(&tag);
        out
    }

    /// Opens an envelope sealed under this key.
    pub fn open(
        &self,
        ctx: &ContextId,
        purpose: Purpose,
        sealed: &[u8],
    ) -> Result<Vec<u8>, SealError> {
        let epoch = envelope_epoch(sealed)?;
        if epoch != self.epoch {
            return Err(SealError::UnknownEpoch(epoch));
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&sealed[9..9 + NONCE_LEN]);
        let (body, tag) = sealed[9 + NONCE_LEN..].split_at(sealed.len() - 9 - NONCE_LEN - TAG_LEN);
        let mut tag_bytes = [0u8; TAG_LEN];
        tag_bytes.copy_from_slice(tag);
        let mut plain = body.to_vec();
        XChaCha::new(&self.key)
            .decrypt(&nonce, &self.aad(ctx, purpose), &mut plain, &tag_bytes)
            .map_err(|_| SealError::Tag)?;
        Ok(plain)
    }
}

/// The key epoch an envelope names (checked for shape, not opened).
pub fn envelope_epoch(sealed: &[u8]) -> Result<u64, SealError> {
    if sealed.len() < OVERHEAD {
        return Err(SealError::Malformed("shorter than an envelope"));
    }
    if sealed[0] != VERSION {
        return Err(SealError::Malformed("unknown envelope version"));
    }
    let mut epoch = [0u8; 8];
    epoch.copy_from_slice(&sealed[1..9]);
    Ok(u64::from_be_bytes(epoch))
}

fn montgomery_of(member: &MemberId) -> Result<MontgomeryPoint, SealError> {
    let vk = VerifyingKey::from_bytes(member.as_bytes()).map_err(|_| SealError::BadMember)?;
    Ok(vk.to_montgomery())
}

/// The one-use key that wraps a context key for one recipient.
fn wrap_key(
    shared: &MontgomeryPoint,
    ephemeral: &MontgomeryPoint,
    recipient: &MontgomeryPoint,
    ctx: &ContextId,
    epoch: u64,
) -> Result<[u8; 32], SealError> {
    if shared.as_bytes() == &[0u8; 32] {
        // A small-order point: no secret was agreed.
        return Err(SealError::Malformed("degenerate key agreement"));
    }
    let hk = hkdf::Hkdf::<Sha256>::new(None, shared.as_bytes());
    let mut info = Vec::with_capacity(20 + 32 * 3 + 8);
    info.extend_from_slice(b"conclave/key-seal/v1");
    info.extend_from_slice(ephemeral.as_bytes());
    info.extend_from_slice(recipient.as_bytes());
    info.extend_from_slice(ctx.as_bytes());
    info.extend_from_slice(&epoch.to_be_bytes());
    let mut okm = [0u8; 32];
    hk.expand(&info, &mut okm)
        .map_err(|_| SealError::Malformed("key derivation"))?;
    Ok(okm)
}

/// Seals `key` to `member`: only the holder of that member's secret key
/// can open it.
pub fn seal_key_to(
    member: &MemberId,
    ctx: &ContextId,
    key: &ContextKey,
) -> Result<Vec<u8>, SealError> {
    let recipient = montgomery_of(member)?;
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let ephemeral = MontgomeryPoint::mul_base_clamped(secret);
    let shared = recipient.mul_clamped(secret);
    let wrap = wrap_key(&shared, &ephemeral, &recipient, ctx, key.epoch)?;
    let body = conclave_aead::seal_once(&wrap, &key.key)
        .map_err(|_| SealError::Malformed("encryption"))?;
    let mut out = ephemeral.as_bytes().to_vec();
    out.extend_from_slice(&body);
    Ok(out)
}

/// Opens a key of `epoch` sealed to this node's member key.
pub fn open_key(
    me: &SigningKey,
    ctx: &ContextId,
    epoch: u64,
    sealed: &[u8],
) -> Result<ContextKey, SealError> {
    if sealed.len() != SEALED_KEY_LEN {
        return Err(SealError::Malformed("a sealed key is 80 bytes"));
    }
    let mut e = [0u8; 32];
    e.copy_from_slice(&sealed[..32]);
    let ephemeral = MontgomeryPoint(e);
    let recipient = me.verifying_key().to_montgomery();
    let shared = ephemeral.mul_clamped(me.to_scalar_bytes());
    let wrap = wrap_key(&shared, &ephemeral, &recipient, ctx, epoch)?;
    let key = conclave_aead::open_once(&wrap, &sealed[32..]).map_err(|_| SealError::Tag)?;
    let key: [u8; 32] = key
        .try_into()
        .map_err(|_| SealError::Malformed("key length"))?;
    Ok(ContextKey { epoch, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member() -> (SigningKey, MemberId) {
        let k = SigningKey::from_bytes(&rand::random());
        let id = MemberId(k.verifying_key().to_bytes());
        (k, id)
    }

    #[test]
    fn envelopes_roundtrip_and_refuse_tampering() {
        let ctx = ContextId([1; 32]);
        let key = ContextKey::generate(3);
        let msg = b"a private tx".to_vec();
        let a = key.seal(&ctx, Purpose::Gossip, &msg);
        let b = key.seal(&ctx, Purpose::Gossip, &msg);
        assert_ne!(a, b, "fresh nonce per message");
        assert_eq!(a.len(), msg.len() + OVERHEAD);
        assert!(!a.windows(msg.len()).any(|w| w == msg), "no plaintext");
        assert_eq!(key.open(&ctx, Purpose::Gossip, &a).unwrap(), msg);
        assert_eq!(envelope_epoch(&a).unwrap(), 3);

        // Every byte of the tag, the body or the nonce is covered.
        for i in [9, 20, a.len() - 1, a.len() - 17] {
            let mut t = a.clone();
            t[i] ^= 0x01;
            assert_eq!(key.open(&ctx, Purpose::Gossip, &t), Err(SealError::Tag));
        }
        // Bound to the context, the purpose and the epoch.
        assert_eq!(
            key.open(&ContextId([2; 32]), Purpose::Gossip, &a),
            Err(SealError::Tag)
        );
        assert_eq!(
            key.open(&ctx, Purpose::SyncResponse, &a),
            Err(SealError::Tag)
        );
        let mut other_epoch = a.clone();
        other_epoch[8] ^= 1;
        assert!(matches!(
            key.open(&ctx, Purpose::Gossip, &other_epoch),
            Err(SealError::UnknownEpoch(_))
        ));
        // Another key of the same epoch.
        let other = ContextKey::generate(3);
        assert_eq!(other.open(&ctx, Purpose::Gossip, &a), Err(SealError::Tag));
        // Shapes.
        assert!(matches!(
            key.open(&ctx, Purpose::Gossip, &a[..10]),
            Err(SealError::Malformed(_))
        ));
        let mut v = a.clone();
        v[0] = 9;
        assert!(matches!(
            key.open(&ctx, Purpose::Gossip, &v),
            Err(SealError::Malformed(_))
        ));
    }

    #[test]
    fn a_sealed_key_opens_for_its_addressee_only() {
        let ctx = ContextId([7; 32]);
        let key = ContextKey::generate(2);
        let (alice, alice_id) = member();
        let (mallory, _) = member();
        let sealed = seal_key_to(&alice_id, &ctx, &key).unwrap();
        assert_eq!(sealed.len(), SEALED_KEY_LEN);
        assert!(!sealed.windows(32).any(|w| w == key.secret()));
        assert_eq!(open_key(&alice, &ctx, 2, &sealed).unwrap(), key);
        assert_eq!(open_key(&mallory, &ctx, 2, &sealed), Err(SealError::Tag));
        // Bound to the context and the epoch it was sealed for.
        assert_eq!(
            open_key(&alice, &ContextId([8; 32]), 2, &sealed),
            Err(SealError::Tag)
        );
        assert_eq!(open_key(&alice, &ctx, 3, &sealed), Err(SealError::Tag));
        let mut t = sealed.clone();
        t[40] ^= 1;
        assert_eq!(open_key(&alice, &ctx, 2, &t), Err(SealError::Tag));
        assert!(open_key(&alice, &ctx, 2, &sealed[1..]).is_err());
        // The identity point as ephemeral key agrees on nothing.
        let mut zero = sealed.clone();
        zero[..32].copy_from_slice(&[0; 32]);
        assert!(open_key(&alice, &ctx, 2, &zero).is_err());
    }
}
