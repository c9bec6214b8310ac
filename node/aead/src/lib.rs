//! The AEAD ciphers Conclave seals with, behind plain functions:
//! XChaCha20-Poly1305 (the store's values at rest and the contexts'
//! traffic) and ChaCha20-Poly1305 under a key used once (wrapped keys).
//!
//! ChaCha20-Poly1305 is ring's (BoringSSL's assembly); the extended nonce
//! is the standard construction over it: HChaCha20 of the key and the
//! nonce's first 16 bytes gives the message's key, and the last 8 bytes,
//! after four zero bytes, its nonce. What it seals is what RustCrypto's
//! `XChaCha20Poly1305` seals, byte for byte (tested below), so values
//! sealed before still open. RustCrypto's took 1.6 to 2.0 us for a value
//! of 64 to 200 bytes, ring's 0.3 to 0.4 (the node seals or opens several
//! such values a tx: its record, its kept copy, the state it writes, the
//! frames that carry it).
//!
//! A crate of its own so that the cipher is compiled optimised in every
//! build (the workspace's `[profile.dev.package.conclave-aead]`).

use chacha20::cipher::consts::U10;
use ring::aead::{Aad, LessSafeKey, Nonce, Tag, UnboundKey, CHACHA20_POLY1305};

/// Bytes of an authentication tag.
pub const TAG_LEN: usize = 16;

/// Encryption failed (the message is beyond the cipher's limit) or a
/// ciphertext did not authenticate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AeadError;

impl std::fmt::Display for AeadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AEAD failure")
    }
}

impl std::error::Error for AeadError {}

/// XChaCha20-Poly1305 under one key (192-bit nonces: random ones do not
/// repeat in practice).
#[derive(Clone)]
pub struct XChaCha([u8; 32]);

impl XChaCha {
    pub fn new(key: &[u8; 32]) -> Self {
        Self(*key)
    }

    /// The ChaCha20-Poly1305 key and nonce of the message with `nonce`.
    fn message_key(&self, nonce: &[u8; 24]) -> (LessSafeKey, Nonce) {
        let mut head = [0u8; 16];
        head.copy_from_slice(&nonce[..16]);
        let key = chacha20::hchacha::<U10>(&self.0.into(), &head.into());
        let key = LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, &key).expect("a ChaCha20 key is 32 bytes"),
        );
        let mut tail = [0u8; 12];
        tail[4..].copy_from_slice(&nonce[16..]);
        (key, Nonce::assume_unique_for_key(tail))
    }

    /// Encrypts `buf` in place; returns the tag.
    #[inline(never)]
    pub fn encrypt(
        &self,
        nonce: &[u8; 24],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AeadError> {
        let (key, nonce) = self.message_key(nonce);
        let tag = key
            .seal_in_place_separate_tag(nonce, Aad::from(aad), buf)
            .map_err(|_| AeadError)?;
        let mut out = [0u8; TAG_LEN];
        out.copy_from_slice(tag.as_ref());
        Ok(out)
    }

    /// Decrypts `buf` in place if `tag` authenticates it with `aad`.
    #[inline(never)]
    pub fn decrypt(
        &self,
        nonce: &[u8; 24],
        aad: &[u8],
        buf: &mut [u8],
        tag: &[u8; TAG_LEN],
    ) -> Result<(), AeadError> {
        let (key, nonce) = self.message_key(nonce);
        key.open_in_place_separate_tag(nonce, Aad::from(aad), Tag::from(*tag), buf, 0..)
            .map(|_| ())
            .map_err(|_| AeadError)
    }
}

/// ChaCha20-Poly1305 under `key` with the all-zero nonce (the key is used
/// for one message only).
fn once(key: &[u8; 32]) -> (LessSafeKey, Nonce) {
    let key = LessSafeKey::new(
        UnboundKey::new(&CHACHA20_POLY1305, key).expect("a ChaCha20 key is 32 bytes"),
    );
    (key, Nonce::assume_unique_for_key([0u8; 12]))
}

/// ChaCha20-Poly1305 with the all-zero nonce, for a key used once (a key
/// derived for one message): encrypts `plaintext`, returns
/// `ciphertext ‖ tag`.
#[inline(never)]
pub fn seal_once(key: &[u8; 32], plaintext: &[u8]) -> Result<Vec<u8>, AeadError> {
    let mut buf = plaintext.to_vec();
    let (key, nonce) = once(key);
    let tag = key
        .seal_in_place_separate_tag(nonce, Aad::empty(), &mut buf)
        .map_err(|_| AeadError)?;
    buf.extend_from_slice(tag.as_ref());
    Ok(buf)
}

/// Opens what [`seal_once`] made under `key`.
#[inline(never)]
pub fn open_once(key: &[u8; 32], sealed: &[u8]) -> Result<Vec<u8>, AeadError> {
    if sealed.len() < TAG_LEN {
        return Err(AeadError);
    }
    let (body, tag) = sealed.split_at(sealed.len() - TAG_LEN);
    let mut buf = body.to_vec();
    let mut t = [0u8; TAG_LEN];
    t.copy_from_slice(tag);
    let (key, nonce) = once(key);
    key.open_in_place_separate_tag(nonce, Aad::empty(), Tag::from(t), &mut buf, 0..)
        .map_err(|_| AeadError)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrips_and_refuses_tampering() {
        let c = XChaCha::new(&[7; 32]);
        let mut buf = b"hello".to_vec();
        let tag = c.encrypt(&[1; 24], b"ad", &mut buf).unwrap();
        assert_ne!(buf, b"hello");
        let mut copy = buf.clone();
        c.decrypt(&[1; 24], b"ad", &mut copy, &tag).unwrap();
        assert_eq!(copy, b"hello");
        let mut copy = buf.clone();
        assert!(c.decrypt(&[1; 24], b"AD", &mut copy, &tag).is_err());
        let mut copy = buf.clone();
        assert!(c.decrypt(&[2; 24], b"ad", &mut copy, &tag).is_err());

        let sealed = seal_once(&[3; 32], b"key").unwrap();
        assert_eq!(open_once(&[3; 32], &sealed).unwrap(), b"key");
        assert!(open_once(&[4; 32], &sealed).is_err());
        assert!(open_once(&[3; 32], &sealed[1..]).is_err());
    }

    /// What is sealed here is what RustCrypto's ciphers seal (the format
    /// of every value sealed before ring was used), at every length a
    /// block boundary can fall around, and each opens the other's.
    #[test]
    fn seals_what_rustcrypto_seals_and_opens_it() {
        use chacha20poly1305::aead::{AeadInPlace, KeyInit};
        use chacha20poly1305::{ChaCha20Poly1305, XChaCha20Poly1305, XNonce};

        let key = [0x5a; 32];
        let theirs = XChaCha20Poly1305::new(&key.into());
        let ours = XChaCha::new(&key);
        for len in (0..300).chain([1_000, 4_095, 4_096, 65_537]) {
            let nonce: [u8; 24] = std::array::from_fn(|i| (i * 7 + len) as u8);
            let plain: Vec<u8> = (0..len).map(|i| (i * 31 + 3) as u8).collect();
            let aad = &plain[..len.min(40)];
            let mut a = plain.clone();
            let tag_a = ours.encrypt(&nonce, aad, &mut a).unwrap();
            let mut b = plain.clone();
            let tag_b = theirs
                .encrypt_in_place_detached(&XNonce::from(nonce), aad, &mut b)
                .unwrap();
            assert_eq!((&a, tag_a), (&b, <[u8; TAG_LEN]>::from(tag_b)), "len {len}");
            ours.decrypt(&nonce, aad, &mut b, &tag_b.into()).unwrap();
            assert_eq!(b, plain);
            theirs
                .decrypt_in_place_detached(&XNonce::from(nonce), aad, &mut a, &tag_a.into())
                .unwrap();
            assert_eq!(a, plain);

            let sealed = seal_once(&key, &plain).unwrap();
            let mut c = plain.clone();
            let tag_c = ChaCha20Poly1305::new(&key.into())
                .encrypt_in_place_detached(&[0u8; 12].into(), &[], &mut c)
                .unwrap();
            c.extend_from_slice(&tag_c);
            assert_eq!(sealed, c, "len {len}");
        }
    }
}
