//! Encryption at rest of the values that carry context content.
//!
//! Each such value is sealed under the node-local [`StorageKey`]
//! (`home/keys/storage.key`) with XChaCha20-Poly1305 and a fresh random
//! 24-byte nonce per write. On disk:
//!
//! ```text
//! version (1 byte, = 1) ‖ nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes)
//! ```
//!
//! The associated data is `column family name ‖ 0x00 ‖ RocksDB key`, so a
//! sealed value only opens under the key and column family it was written
//! to: one moved to another key (another height, tx or context) or another
//! column family is refused like a tampered one. (Column family names
//! contain no NUL, so the separator makes the encoding unambiguous.)
//!
//! RocksDB keys stay in clear: they are context ids, heights, tx hashes and
//! state key hashes, never app data. Which column families are sealed is
//! listed in `store/mod.rs`.

use std::sync::Arc;

use conclave_aead::XChaCha;
use rand::RngCore;

use super::StoreError;

/// The only format written and read so far.
const VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const HEADER_LEN: usize = 1 + NONCE_LEN;
/// Bytes a sealed value has beyond its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

/// The node-local key that seals context data in the store. Cheap to clone;
/// the key is wiped from memory when the last clone drops. Never printed.
#[derive(Clone)]
pub struct StorageKey {
    cipher: Arc<XChaCha>,
}

impl std::fmt::Debug for StorageKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StorageKey(..)")
    }
}

impl StorageKey {
    /// Length of the key in bytes.
    pub const LEN: usize = 32;

    pub fn from_bytes(bytes: &[u8; Self::LEN]) -> Self {
        Self {
            cipher: Arc::new(XChaCha::new(bytes)),
        }
    }

    /// A fresh random key (tests, and `storage.key` creation).
    pub fn random() -> Self {
        let mut bytes = [0u8; Self::LEN];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let key = Self::from_bytes(&bytes);
        bytes.fill(0);
        key
    }

    /// Seals the value that `write` appends to an empty buffer, for key
    /// `key` of column family `cf`. The plaintext is written straight into
    /// the output buffer and encrypted in place: no copy of it is made.
    pub(crate) fn seal_with<E: std::fmt::Display>(
        &self,
        cf: &'static str,
        key: &[u8],
        write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
    ) -> Result<Vec<u8>, StoreError> {
        let mut buf = Vec::with_capacity(256);
        buf.push(VERSION);
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        buf.extend_from_slice(&nonce);
        write(&mut buf).map_err(|e| StoreError::Encode {
            cf,
            msg: e.to_string(),
        })?;
        let tag = self
            .cipher
            .encrypt(&nonce, &aad(cf, key), &mut buf[HEADER_LEN..])
            .map_err(|_| StoreError::Encode {
                cf,
                msg: "value too large to encrypt".into(),
            })?;
        buf.extend_from_slice(&tag);
        Ok(buf)
    }

    /// Seals `plaintext` for key `key` of column family `cf`.
    pub(crate) fn seal(
        &self,
        cf: &'static str,
        key: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, StoreError> {
        self.seal_with(cf, key, |buf| {
            buf.extend_from_slice(plaintext);
            Ok::<_, std::convert::Infallible>(())
        })
    }

    /// Opens a value read from key `key` of column family `cf`, decrypting
    /// in place; returns the plaintext, a part of `sealed`. A value that was
    /// tampered with, moved from another key or column family, or sealed
    /// under another key is a [`StoreError::Corrupt`] error.
    pub(crate) fn open<'a>(
        &self,
        cf: &'static str,
        key: &[u8],
        sealed: &'a mut [u8],
    ) -> Result<&'a [u8], StoreError> {
        let corrupt = |msg: String| StoreError::Corrupt { cf, msg };
        if sealed.len() < OVERHEAD {
            return Err(corrupt(format!(
                "encrypted record of {} bytes is too short",
                sealed.len()
            )));
        }
        if sealed[0] != VERSION {
            return Err(corrupt(format!(
                "unknown encrypted record format {} (not encrypted at rest?)",
                sealed[0]
            )));
        }
        let (header, rest) = sealed.split_at_mut(HEADER_LEN);
        let (body, tag) = rest.split_at_mut(rest.len() - TAG_LEN);
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&header[1..]);
        let mut tag_bytes = [0u8; TAG_LEN];
        tag_bytes.copy_from_slice(tag);
        self.cipher
            .decrypt(&nonce, &aad(cf, key), body, &tag_bytes)
            .map_err(|_| {
                corrupt(
                    "record does not authenticate: corrupt, moved from another key, \
                     or sealed under another storage key"
                        .into(),
                )
            })?;
        Ok(body)
    }

    /// [`StorageKey::open`] into an owned plaintext.
    pub(crate) fn open_vec(
        &self,
        cf: &'static str,
        key: &[u8],
        mut sealed: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        let len = self.open(cf, key, &mut sealed)?.len();
        sealed.truncate(HEADER_LEN + len);
        sealed.drain(..HEADER_LEN);
        Ok(sealed)
    }
}

/// `cf ‖ 0x00 ‖ key`.
fn aad(cf: &str, key: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(cf.len() + 1 + key.len());
    aad.extend_from_slice(cf.as_bytes());
    aad.push(0);
    aad.extend_from_slice(key);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_roundtrip_and_fresh_nonces() {
        let k = StorageKey::random();
        let a = k.seal("blocks", b"key", b"hello world").unwrap();
        let b = k.seal("blocks", b"key", b"hello world").unwrap();
        assert_eq!(a.len(), 11 + OVERHEAD);
        assert_ne!(a, b, "a fresh nonce per write");
        assert!(!a.windows(11).any(|w| w == b"hello world"));
        assert_eq!(k.open_vec("blocks", b"key", a).unwrap(), b"hello world");
        let empty = k.seal("blocks", b"key", b"").unwrap();
        assert_eq!(k.open_vec("blocks", b"key", empty).unwrap(), b"");
    }

    #[test]
    fn anything_else_is_refused() {
        let k = StorageKey::random();
        let sealed = k.seal("txs", b"key", b"secret").unwrap();
        let refused = |cf: &'static str, key: &[u8], bytes: Vec<u8>, with: &StorageKey| {
            let err = with.open_vec(cf, key, bytes).unwrap_err().to_string();
            assert!(err.contains("corrupt"), "{err}");
        };
        refused("txs", b"other", sealed.clone(), &k);
        refused("blocks", b"key", sealed.clone(), &k);
        refused("txs", b"key", sealed.clone(), &StorageKey::random());
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x40;
            refused("txs", b"key", bad, &k);
        }
        refused("txs", b"key", sealed[..OVERHEAD - 1].to_vec(), &k);
        refused("txs", b"key", b"plain borsh".to_vec(), &k);
    }
}
