//! The AEAD ciphers Conclave seals with, behind plain (non-generic)
//! functions. RustCrypto's ciphers are generic, so they are compiled in the
//! crate that calls them: called from the node, whose dev build is not
//! optimised, ChaCha20 ran with debug checks in its inner loop. Here the
//! cipher is compiled once, in this crate, which every build optimises
//! (the workspace's `[profile.dev.package.conclave-aead]`).

use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Tag, XChaCha20Poly1305, XNonce};

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
pub struct XChaCha(XChaCha20Poly1305);

impl XChaCha {
    pub fn new(key: &[u8; 32]) -> Self {
        Self(XChaCha20Poly1305::new(key.into()))
    }

    /// Encrypts `buf` in place; returns the tag.
    #[inline(never)]
    pub fn encrypt(
        &self,
        nonce: &[u8; 24],
        aad: &[u8],
        buf: &mut [u8],
    ) -> Result<[u8; TAG_LEN], AeadError> {
        let tag = self
            .0
            .encrypt_in_place_detached(&XNonce::from(*nonce), aad, buf)
            .map_err(|_| AeadError)?;
        Ok(tag.into())
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
        self.0
            .decrypt_in_place_detached(&XNonce::from(*nonce), aad, buf, &Tag::from(*tag))
            .map_err(|_| AeadError)
    }
}

/// ChaCha20-Poly1305 with the all-zero nonce, for a key used once (a key
/// derived for one message): encrypts `plaintext`, returns
/// `ciphertext ‖ tag`.
#[inline(never)]
pub fn seal_once(key: &[u8; 32], plaintext: &[u8]) -> Result<Vec<u8>, AeadError> {
    let mut buf = plaintext.to_vec();
    let tag = ChaCha20Poly1305::new(key.into())
        .encrypt_in_place_detached(&[0u8; 12].into(), &[], &mut buf)
        .map_err(|_| AeadError)?;
    buf.extend_from_slice(&tag);
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
    ChaCha20Poly1305::new(key.into())
        .decrypt_in_place_detached(&[0u8; 12].into(), &[], &mut buf, &Tag::from(t))
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
}
