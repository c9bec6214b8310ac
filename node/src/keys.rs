//! The node's member keys, in files under `home/keys/` with mode 0600:
//! an ed25519 key that signs txs and votes (its public half is the member
//! id) and a BLS12-381 key (`blst::min_pk`) that signs checkpoints, with its
//! proof of possession.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use conclave_consensus::MemberId;
use ed25519_dalek::SigningKey;
use rand::RngCore;

use crate::{Error, Result};

/// Domain of BLS proofs of possession (the IETF POP ciphersuite).
pub const BLS_POP_DST: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

pub struct NodeKeys {
    pub member: SigningKey,
    pub bls: blst::min_pk::SecretKey,
}

impl NodeKeys {
    fn dir(home: &Path) -> PathBuf {
        home.join("keys")
    }

    pub fn member_id(&self) -> MemberId {
        MemberId(self.member.verifying_key().to_bytes())
    }

    /// Compressed G1 public key (48 bytes).
    pub fn bls_public_key(&self) -> [u8; 48] {
        self.bls.sk_to_pk().compress()
    }

    /// Proof of possession: the BLS key's signature over its own public key.
    pub fn bls_pop(&self) -> [u8; 96] {
        let pk = self.bls_public_key();
        self.bls.sign(&pk, BLS_POP_DST, &[]).compress()
    }

    /// Creates fresh keys under `home/keys` unless they exist.
    pub fn generate(home: &Path) -> Result<Self> {
        let dir = Self::dir(home);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        for (name, len) in [("member.key", 32), ("bls.key", 32)] {
            let path = dir.join(name);
            if path.exists() {
                continue;
            }
            let mut secret = vec![0u8; len];
            rand::rngs::OsRng.fill_bytes(&mut secret);
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&path)?;
            f.write_all(hex::encode(&secret).as_bytes())?;
            f.sync_all()?;
        }
        Self::load(home)
    }

    /// Loads the keys, refusing files that others can read.
    pub fn load(home: &Path) -> Result<Self> {
        let dir = Self::dir(home);
        let member = read_secret(&dir.join("member.key"))?;
        let bls_ikm = read_secret(&dir.join("bls.key"))?;
        let bls = blst::min_pk::SecretKey::key_gen(&bls_ikm, &[])
            .map_err(|e| Error::Keys(format!("bls key: {e:?}")))?;
        Ok(Self {
            member: SigningKey::from_bytes(&member),
            bls,
        })
    }
}

fn read_secret(path: &Path) -> Result<[u8; 32]> {
    let meta = std::fs::metadata(path).map_err(|e| {
        Error::Keys(format!(
            "{}: {e} (run `conclave init` first)",
            path.display()
        ))
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Error::Keys(format!(
            "{} is readable by others (mode {:o}); chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        )));
    }
    let text = std::fs::read_to_string(path)?;
    let bytes = hex::decode(text.trim())
        .map_err(|_| Error::Keys(format!("{}: not hex", path.display())))?;
    bytes
        .try_into()
        .map_err(|_| Error::Keys(format!("{}: expected 32 bytes", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generate_is_stable_private_and_pop_verifies() {
        let home = tempfile::tempdir().unwrap();
        let a = NodeKeys::generate(home.path()).unwrap();
        let b = NodeKeys::generate(home.path()).unwrap();
        assert_eq!(a.member_id(), b.member_id(), "existing keys are kept");
        let mode = std::fs::metadata(home.path().join("keys/member.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);

        let pk = blst::min_pk::PublicKey::uncompress(&a.bls_public_key()).unwrap();
        let pop = blst::min_pk::Signature::uncompress(&a.bls_pop()).unwrap();
        let ok = pop.verify(true, &a.bls_public_key(), BLS_POP_DST, &[], &pk, true);
        assert_eq!(ok, blst::BLST_ERROR::BLST_SUCCESS);
    }

    #[test]
    fn world_readable_key_is_refused() {
        let home = tempfile::tempdir().unwrap();
        NodeKeys::generate(home.path()).unwrap();
        let path = home.path().join("keys/bls.key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = NodeKeys::load(home.path()).err().unwrap().to_string();
        assert!(err.contains("readable by others"), "{err}");
    }
}
