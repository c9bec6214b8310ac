//! The persisted last-signed `(height, round, step)` of one context, as
//! CometBFT's `priv_validator_state.json`: before a vote or proposal
//! signature is released, the request is checked against it and, if it moves
//! forward, written durably (temp file, fsync, rename, fsync of the
//! directory). It never goes back, and it never signs a different message at
//! the same position; signing the identical message again is allowed.
//!
//! File layout: `magic "CNCLSIGN" | version u32 LE | borsh(LastSigned) |
//! crc32 u32 LE` (the crc covers everything before it). A file that fails
//! any check is a refusal to start, never a silent reset.
//!
//! The engine reaches the guard through [`crate::wal::SharedLog`], which
//! makes the WAL entries ahead of a signature durable before recording it.

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use borsh::{BorshDeserialize, BorshSerialize};
use conclave_consensus::sign_policy::{SignPosition, SignRefusal, SignRequest, SignStep};
use conclave_consensus::{Hash32, Height};
use thiserror::Error;

use crate::wal::fsx;

const MAGIC: &[u8; 8] = b"CNCLSIGN";
const VERSION: u32 = 1;
/// Generous bound on the file (the state is under 128 bytes).
const MAX_FILE_BYTES: u64 = 4096;

/// A signature the guard refused.
pub type DoubleSign = SignRefusal;

#[derive(Debug, Error)]
pub enum SignGuardError {
    #[error("sign state {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("sign state {}: {reason}; refusing to start (remove the file only if this key has signed nothing since it was written)", path.display())]
    Corrupt { path: PathBuf, reason: String },
}

/// The last message signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct LastSigned {
    pub position: SignPosition,
    pub value: Option<Hash32>,
    /// SHA-256 of the signed bytes.
    pub digest: Hash32,
}

/// One context's sign guard.
pub struct SignGuard {
    path: PathBuf,
    last: Option<LastSigned>,
}

fn encode(last: &LastSigned) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    // Serialising a plain struct into a Vec cannot fail.
    let _ = last.serialize(&mut out);
    let crc = crc32fast::hash(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    out
}

fn decode(bytes: &[u8]) -> Result<LastSigned, String> {
    let (body, crc) = bytes
        .split_last_chunk::<4>()
        .ok_or_else(|| format!("{} bytes is too short", bytes.len()))?;
    if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
        return Err("checksum mismatch".into());
    }
    let rest = body.strip_prefix(MAGIC).ok_or("bad magic")?;
    let (version, state) = rest.split_first_chunk::<4>().ok_or("no version")?;
    let version = u32::from_le_bytes(*version);
    if version != VERSION {
        return Err(format!("unsupported version {version}"));
    }
    borsh::from_slice(state).map_err(|e| format!("malformed state: {e}"))
}

impl SignGuard {
    /// Opens the guard at `path`; a missing file means nothing was signed.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SignGuardError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |source| SignGuardError::Io {
            path: path.clone(),
            source,
        };
        let mut bytes = Vec::new();
        match std::fs::File::open(&path) {
            Ok(f) => {
                f.take(MAX_FILE_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(io_err)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Self { path, last: None });
            }
            Err(e) => return Err(io_err(e)),
        }
        if bytes.len() as u64 > MAX_FILE_BYTES {
            let reason = "file too large".to_string();
            return Err(SignGuardError::Corrupt { path, reason });
        }
        match decode(&bytes) {
            Ok(last) => Ok(Self {
                path,
                last: Some(last),
            }),
            Err(reason) => Err(SignGuardError::Corrupt { path, reason }),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The last message signed, if any.
    pub fn last(&self) -> Option<&LastSigned> {
        self.last.as_ref()
    }

    /// Allows signing `request` only if it is after everything signed so
    /// far, or is the very message signed last; records it durably before
    /// returning `Ok`.
    pub fn check_and_record(&mut self, request: &SignRequest) -> Result<(), DoubleSign> {
        if let Some(last) = &self.last {
            if request.position < last.position {
                return Err(SignRefusal::Regression {
                    last: last.position,
                    requested: request.position,
                });
            }
            if request.position == last.position {
                return if request.digest == last.digest {
                    Ok(())
                } else {
                    Err(SignRefusal::Conflict {
                        at: request.position,
                    })
                };
            }
        }
        let next = LastSigned {
            position: request.position,
            value: request.value,
            digest: request.digest,
        };
        fsx::write_atomic(&self.path, &encode(&next))
            .map_err(|e| SignRefusal::Persist(format!("{}: {e}", self.path.display())))?;
        self.last = Some(next);
        Ok(())
    }

    /// [`SignGuard::check_and_record`] from its parts.
    pub fn check(
        &mut self,
        height: Height,
        round: u32,
        step: SignStep,
        value: Option<Hash32>,
        digest: Hash32,
    ) -> Result<(), DoubleSign> {
        self.check_and_record(&SignRequest {
            position: SignPosition {
                height,
                round,
                step,
            },
            value,
            digest,
        })
    }
}

#[cfg(test)]
mod tests;
