//! The node's member keys, in files under `home/keys/` with mode 0600:
//! an ed25519 key that signs txs and votes (its public half is the member
//! id) and a BLS12-381 key (`blst::min_pk`, through `conclave-checkpoint`)
//! that signs checkpoints, with its proof of possession.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use conclave_checkpoint::bls;
use conclave_consensus::MemberId;
use ed25519_dalek::SigningKey;
use rand::RngCore;

use crate::{Error, Result};

pub struct NodeKeys {
    pub member: SigningKey,
    pub bls: bls::SecretKey,
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
        self.bls.public_key().to_compressed()
    }

    /// Proof of possession: the BLS key's signature over its own public key
    /// (the POP ciphersuite of `conclave-checkpoint`).
    pub fn bls_pop(&self) -> [u8; 96] {
        self.bls.prove_possession().as_signature().to_compressed()
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
        let bls = bls::SecretKey::from_seed(&bls_ikm)
            .map_err(|e| Error::Keys(format!("bls key: {e}")))?;
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

        let pk = bls::PublicKey::from_compressed(&a.bls_public_key()).unwrap();
        let pop = bls::ProofOfPossession::from_compressed(&a.bls_pop()).unwrap();
        assert!(pk.verify_pop(&pop));
        let other = NodeKeys::generate(tempfile::tempdir().unwrap().path()).unwrap();
        let foreign = bls::ProofOfPossession::from_compressed(&other.bls_pop()).unwrap();
        assert!(!pk.verify_pop(&foreign), "a PoP proves one key only");
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
