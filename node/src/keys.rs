//! The node's member keys, in files under `home/keys/` with mode 0600:
//! an ed25519 key that signs txs and votes (its public half is the member
//! id) and a BLS12-381 key (`blst::min_pk`, through `conclave-checkpoint`)
//! that signs checkpoints, with its proof of possession. Beside them, the
//! RPC server's secrets ([`RpcSecrets`]): the operator's admin token and the
//! key member tokens are authenticated with.

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

    /// Creates fresh keys (and the RPC secrets) under `home/keys` unless
    /// they exist.
    pub fn generate(home: &Path) -> Result<Self> {
        let dir = Self::dir(home);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        for name in ["member.key", "bls.key", ADMIN_TOKEN_FILE, TOKEN_KEY_FILE] {
            write_secret_if_missing(&dir.join(name))?;
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

/// The admin token's file name under `home/keys/`.
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// The member-token MAC key's file name under `home/keys/`.
pub const TOKEN_KEY_FILE: &str = "rpc_token.key";

/// The RPC server's node-local secrets, each 32 random bytes in hex under
/// `home/keys/` with mode 0600: the admin token operators present to call
/// operator methods (`admin.token`), and the HMAC-SHA256 key member tokens
/// are authenticated with (`rpc_token.key`). Neither leaves the node but
/// through its operator; neither is ever logged (no `Debug`).
pub struct RpcSecrets {
    pub admin_token: [u8; 32],
    pub token_key: [u8; 32],
}

impl RpcSecrets {
    /// Loads the secrets, creating the missing ones first (homes made
    /// before they existed get them at the next start).
    pub fn load_or_create(home: &Path) -> Result<Self> {
        let dir = NodeKeys::dir(home);
        for name in [ADMIN_TOKEN_FILE, TOKEN_KEY_FILE] {
            write_secret_if_missing(&dir.join(name))?;
        }
        Self::load(home)
    }

    /// Loads the secrets, refusing files that others can read.
    pub fn load(home: &Path) -> Result<Self> {
        let dir = NodeKeys::dir(home);
        Ok(Self {
            admin_token: read_secret(&dir.join(ADMIN_TOKEN_FILE))?,
            token_key: read_secret(&dir.join(TOKEN_KEY_FILE))?,
        })
    }

    /// Where the admin token is: `home/keys/admin.token`.
    pub fn admin_token_path(home: &Path) -> PathBuf {
        NodeKeys::dir(home).join(ADMIN_TOKEN_FILE)
    }

    /// The admin token as clients send it (`X-Conclave-Admin`): hex.
    pub fn admin_token_hex(&self) -> String {
        hex::encode(self.admin_token)
    }
}

/// Writes 32 fresh random bytes (hex) to `path`, mode 0600, unless the
/// file exists.
fn write_secret_if_missing(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let mut f = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(f) => f,
        // Another process made it meanwhile: keep theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e.into()),
    };
    f.write_all(hex::encode(secret).as_bytes())?;
    f.sync_all()?;
    Ok(())
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
    fn rpc_secrets_are_made_once_private_and_distinct() {
        let home = tempfile::tempdir().unwrap();
        NodeKeys::generate(home.path()).unwrap();
        let a = RpcSecrets::load(home.path()).unwrap();
        for name in [ADMIN_TOKEN_FILE, TOKEN_KEY_FILE] {
            let mode = std::fs::metadata(home.path().join("keys").join(name))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{name}");
        }
        assert_ne!(a.admin_token, a.token_key);
        // A home from before the RPC secrets existed gets them at start;
        // existing ones are kept.
        std::fs::remove_file(RpcSecrets::admin_token_path(home.path())).unwrap();
        let b = RpcSecrets::load_or_create(home.path()).unwrap();
        assert_ne!(a.admin_token, b.admin_token, "a fresh admin token");
        assert_eq!(a.token_key, b.token_key, "the token key is kept");
        let c = RpcSecrets::load_or_create(home.path()).unwrap();
        assert_eq!(b.admin_token, c.admin_token);
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
