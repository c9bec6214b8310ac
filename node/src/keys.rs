//! The node's member keys, in files under `home/keys/` with mode 0600:
//! an ed25519 key that signs txs and votes (its public half is the member
//! id) and a BLS12-381 key (`blst::min_pk`, through `conclave-checkpoint`)
//! that signs checkpoints, with its proof of possession.
//!
//! A third file, `storage.key`, holds the node-local key that seals context
//! data in the store (encryption at rest, see `store/crypt.rs`). It never
//! leaves the node and is not part of any member identity. It is created
//! with the other keys; a home that predates it gets one when the node
//! starts on a new database. A database that exists without the key is
//! refused: it was written in clear by an older version, or its key is lost,
//! and either way it cannot be read (see [`storage_key`]).
//!
//! Beside them, the RPC server's secrets ([`RpcSecrets`]): the operator's
//! admin token and the key member tokens are authenticated with.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use conclave_checkpoint::bls;
use conclave_consensus::MemberId;
use ed25519_dalek::SigningKey;
use rand::RngCore;

use crate::store::StorageKey;
use crate::{Error, Result};

const MEMBER_KEY: &str = "member.key";
const BLS_KEY: &str = "bls.key";
const STORAGE_KEY: &str = "storage.key";

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
        for name in [
            MEMBER_KEY,
            BLS_KEY,
            STORAGE_KEY,
            ADMIN_TOKEN_FILE,
            TOKEN_KEY_FILE,
        ] {
            write_secret_if_missing(&dir.join(name))?;
        }
        Self::load(home)
    }

    /// Loads the keys, refusing files that others can read.
    pub fn load(home: &Path) -> Result<Self> {
        let dir = Self::dir(home);
        let member = read_secret(&dir.join(MEMBER_KEY))?;
        let bls_ikm = read_secret(&dir.join(BLS_KEY))?;
        let bls = bls::SecretKey::from_seed(&bls_ikm)
            .map_err(|e| Error::Keys(format!("bls key: {e}")))?;
        Ok(Self {
            member: SigningKey::from_bytes(&member),
            bls,
        })
    }
}

/// The storage key of `home`, for the database at `data_dir`: read from
/// `home/keys/storage.key`, or, if that file is missing and `data_dir`
/// holds no database yet, created there first. A missing key with an
/// existing database is an error: that database was written in clear (by a
/// version before encryption at rest) or under a key that is lost.
pub fn storage_key(home: &Path, data_dir: &Path) -> Result<StorageKey> {
    let path = NodeKeys::dir(home).join(STORAGE_KEY);
    if !path.exists() {
        if data_dir.join("CURRENT").exists() {
            return Err(Error::Keys(format!(
                "{} is missing but the database at {} exists: it was written before \
                 encryption at rest or its key is lost, and cannot be read; restore the \
                 key, or move the data directory away to start afresh",
                path.display(),
                data_dir.display()
            )));
        }
        let dir = NodeKeys::dir(home);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        write_new_secret(&path)?;
        tracing::info!(path = %path.display(), "created the storage key");
    }
    load_storage_key(home)
}

/// Reads `home/keys/storage.key`, refusing a file that others can read.
pub fn load_storage_key(home: &Path) -> Result<StorageKey> {
    let mut bytes = read_secret(&NodeKeys::dir(home).join(STORAGE_KEY))?;
    let key = StorageKey::from_bytes(&bytes);
    bytes.fill(0);
    Ok(key)
}

/// Writes 32 fresh random bytes, hex, to a new file of mode 0600.
fn write_new_secret(path: &Path) -> Result<()> {
    let mut secret = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(hex::encode(secret).as_bytes())?;
    f.sync_all()?;
    secret.fill(0);
    // The file must outlive a crash before anything is written under it.
    crate::fsx::sync_parent(path)?;
    Ok(())
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
    secret.fill(0);
    crate::fsx::sync_parent(path)?;
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

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn storage_key_is_made_with_the_others_or_for_a_new_database_only() {
        let home = tempfile::tempdir().unwrap();
        NodeKeys::generate(home.path()).unwrap();
        let path = home.path().join("keys/storage.key");
        assert_eq!(mode(&path), 0o600);
        let before = std::fs::read(&path).unwrap();
        NodeKeys::generate(home.path()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), before, "kept");
        load_storage_key(home.path()).unwrap();

        // A home from before encryption at rest, no database yet: created.
        let data = home.path().join("data");
        std::fs::remove_file(&path).unwrap();
        storage_key(home.path(), &data).unwrap();
        assert_eq!(mode(&path), 0o600);
        assert_ne!(std::fs::read(&path).unwrap(), before);

        // A database without its key: refused, and no key is made up.
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("CURRENT"), "MANIFEST-000001\n").unwrap();
        let err = storage_key(home.path(), &data).err().unwrap().to_string();
        assert!(err.contains("storage.key is missing"), "{err}");
        assert!(!path.exists());
    }

    #[test]
    fn world_readable_storage_key_is_refused() {
        let home = tempfile::tempdir().unwrap();
        NodeKeys::generate(home.path()).unwrap();
        let path = home.path().join("keys/storage.key");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = storage_key(home.path(), &home.path().join("data"))
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("readable by others"), "{err}");
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
