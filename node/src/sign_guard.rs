//! The persisted last-signed `(height, round, step)` of one context, as
//! CometBFT's `priv_validator_state.json`: before a vote or proposal
//! signature is released, the request is checked against it and, if it moves
//! forward, written durably. It never goes back, and it never signs a
//! different message at the same position; signing the identical message
//! again is allowed.
//!
//! File layout (version 2): one record of exactly [`RECORD_LEN`] bytes,
//! `magic "CNCLSIGN" | version u32 LE | borsh(LastSigned) | zero padding |
//! crc32 u32 LE` (the crc, in the last four bytes, covers everything before
//! it). The file is created (or upgraded from version 1, the same record
//! without padding) atomically: temp file, fsync, rename, fsync of the
//! directory. Every later update overwrites the record in place with one
//! `pwrite`, since the file's size never changes again: followed by an
//! `fdatasync` when the guard stands alone ([`SignGuard::check_and_record`]),
//! by none in the node (below). A record that fails any check, a write torn
//! by a crash included, is a refusal to start, never a silent reset.
//!
//! The engine reaches the guard through [`crate::wal::SharedLog`], which
//! records each signature twice and syncs once: a guard record appended to
//! the context's WAL, made durable by the WAL's own sync (the one the
//! entries ahead of the signature need anyway), and this file overwritten
//! without a sync. At start the guard is the later of this file and the
//! WAL's last guard record ([`SignGuard::raise_to`]); whatever cuts synced
//! WAL records (a rotation past its bound, `conclave repair`) first makes
//! this file durable or raises it. The file's own first record is still
//! created atomically and synced.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use conclave_consensus::sign_policy::{SignPosition, SignRefusal, SignRequest, SignStep};
use conclave_consensus::{Hash32, Height};
use thiserror::Error;

use crate::fsx;

const MAGIC: &[u8; 8] = b"CNCLSIGN";
/// Version 1 files (a record without padding) are read and upgraded.
const VERSION_1: u32 = 1;
const VERSION: u32 = 2;
/// The record's fixed length: one disk sector, well over the state
/// (under 128 bytes).
pub const RECORD_LEN: usize = 512;
/// Generous bound on the file.
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
    #[error("sign state {}: {reason}", path.display())]
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
    /// The file, open for in-place updates once it holds a version 2
    /// record; `None` until then (the next write creates it atomically).
    /// Shared with the thread that flushes it alongside the WAL.
    file: Option<Arc<File>>,
}

/// The version 2 record of `last`: exactly [`RECORD_LEN`] bytes.
fn encode(last: &LastSigned) -> Vec<u8> {
    let mut out = Vec::with_capacity(RECORD_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    // Serialising a plain struct into a Vec cannot fail.
    let _ = last.serialize(&mut out);
    out.resize(RECORD_LEN - 4, 0);
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
    let (version, mut state) = rest.split_first_chunk::<4>().ok_or("no version")?;
    match u32::from_le_bytes(*version) {
        VERSION_1 => borsh::from_slice(state).map_err(|e| format!("malformed state: {e}")),
        VERSION if bytes.len() == RECORD_LEN => {
            let last =
                LastSigned::deserialize(&mut state).map_err(|e| format!("malformed state: {e}"))?;
            if state.iter().any(|b| *b != 0) {
                return Err("bytes after the state".into());
            }
            Ok(last)
        }
        VERSION => Err(format!("record of {} bytes, not {RECORD_LEN}", bytes.len())),
        other => Err(format!("unsupported version {other}")),
    }
}

impl SignGuard {
    /// Reads the guard at `path` without opening it for writes: what it
    /// says was signed last (`None`: nothing). For checks from outside the
    /// node; a record read while the node rewrites it may be torn, and is
    /// then `Corrupt`.
    pub fn peek(path: &Path) -> Result<Option<LastSigned>, SignGuardError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                let path = path.to_path_buf();
                return Err(SignGuardError::Io { path, source });
            }
        };
        decode(&bytes)
            .map(Some)
            .map_err(|reason| SignGuardError::Corrupt {
                path: path.to_path_buf(),
                reason,
            })
    }

    /// Opens the guard at `path`; a missing file means nothing was signed.
    /// A version 1 file is rewritten as version 2 before this returns.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, SignGuardError> {
        let path = path.as_ref().to_path_buf();
        let io_err = |source| SignGuardError::Io {
            path: path.clone(),
            source,
        };
        let mut bytes = Vec::new();
        match File::open(&path) {
            Ok(f) => {
                f.take(MAX_FILE_BYTES + 1)
                    .read_to_end(&mut bytes)
                    .map_err(io_err)?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(Self {
                    path,
                    last: None,
                    file: None,
                });
            }
            Err(e) => return Err(io_err(e)),
        }
        if bytes.len() as u64 > MAX_FILE_BYTES {
            let reason = "file too large".to_string();
            return Err(SignGuardError::Corrupt { path, reason });
        }
        let last = match decode(&bytes) {
            Ok(last) => last,
            Err(reason) => return Err(SignGuardError::Corrupt { path, reason }),
        };
        if bytes.len() != RECORD_LEN {
            // Version 1: upgrade it atomically, then update in place.
            fsx::write_atomic(&path, &encode(&last)).map_err(io_err)?;
        }
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_err)?;
        Ok(Self {
            path,
            last: Some(last),
            file: Some(Arc::new(file)),
        })
    }

    /// Writes `next` durably: in place when the file holds a version 2
    /// record, otherwise by creating it atomically.
    fn persist(&mut self, next: &LastSigned) -> io::Result<()> {
        let record = encode(next);
        match &self.file {
            Some(file) => {
                file.write_all_at(&record, 0)?;
                crate::fsx::timed_sync("sign_guard", || file.sync_data())
            }
            None => {
                fsx::write_atomic(&self.path, &record)?;
                let file = std::fs::OpenOptions::new().write(true).open(&self.path)?;
                self.file = Some(Arc::new(file));
                Ok(())
            }
        }
    }

    /// Writes (atomically, replacing any file at `path`) a guard whose last
    /// signature is at `position` with no message: it refuses everything at
    /// or before `position` and allows what comes after. What `conclave
    /// repair` puts in place of a damaged guard.
    pub fn write_barrier(path: &Path, position: SignPosition) -> Result<(), SignGuardError> {
        let last = LastSigned {
            position,
            value: None,
            digest: Hash32::default(),
        };
        fsx::write_atomic(path, &encode(&last)).map_err(|source| SignGuardError::Io {
            path: path.to_path_buf(),
            source,
        })
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
        self.check_and_record_alongside(request, || Ok(()))
    }

    /// [`SignGuard::check_and_record`], running `alongside` (the WAL's
    /// fsync, which must also complete before the signature is released)
    /// on this thread while the guard's record is flushed on another
    /// ([`crate::alongside`]): the two flushes overlap instead of queueing,
    /// on the path of every vote. `Ok` only if both succeeded. If only
    /// `alongside` failed, the guard still holds the new record: stricter
    /// than needed, never looser.
    pub fn check_and_record_alongside(
        &mut self,
        request: &SignRequest,
        alongside: impl FnOnce() -> Result<(), SignRefusal>,
    ) -> Result<(), DoubleSign> {
        let Some(next) = self.admit(request)? else {
            // The very message signed last: nothing new to record.
            return alongside();
        };
        let path = self.path.clone();
        let persist_err = |e: io::Error| SignRefusal::Persist(format!("{}: {e}", path.display()));
        let (other, flushed) = match &self.file {
            Some(file) => {
                file.write_all_at(&encode(&next), 0).map_err(persist_err)?;
                let flush = {
                    let file = Arc::clone(file);
                    crate::alongside::start("sign-guard-flush", move || {
                        crate::fsx::timed_sync("sign_guard", || file.sync_data())
                    })
                };
                let other = alongside();
                let flushed = flush
                    .wait()
                    .unwrap_or_else(|| Err(io::Error::other("the guard's flush did not complete")));
                (other, flushed)
            }
            None => {
                let other = alongside();
                (other, self.persist(&next))
            }
        };
        flushed.map_err(persist_err)?;
        self.last = Some(next);
        other
    }

    /// Whether the file exists: until then a record cannot be written in
    /// place ([`Self::write_unsynced`]), only created, synced.
    pub(crate) fn is_created(&self) -> bool {
        self.file.is_some()
    }

    /// Overwrites the file's record with `next` without a sync, and holds
    /// `next` as the last signature from now on: for a signature whose
    /// guard record the WAL makes durable. Call only with a record
    /// [`Self::admit`] allowed, on a created file.
    pub(crate) fn write_unsynced(&mut self, next: LastSigned) -> io::Result<()> {
        let Some(file) = &self.file else {
            return Err(io::Error::other("the sign guard's file does not exist yet"));
        };
        file.write_all_at(&encode(&next), 0)?;
        self.last = Some(next);
        Ok(())
    }

    /// Makes the file's record durable (before a cut of the WAL's guard
    /// records).
    pub(crate) fn sync_file(&self) -> io::Result<()> {
        match &self.file {
            Some(file) => crate::fsx::timed_sync("sign_guard", || file.sync_data()),
            None => Ok(()),
        }
    }

    /// Puts `file` in place of the guard's file handle (tests: a file
    /// whose writes or syncs fail).
    #[cfg(test)]
    pub(crate) fn replace_file(&mut self, file: File) {
        self.file = Some(Arc::new(file));
    }

    /// Raises the guard to `wal`, the WAL's last guard record, if that is
    /// later than the file's (the file's last overwrite was lost with the
    /// machine, the WAL's sync was not), writing the file durably. A file
    /// that is ahead stays (the WAL was cut since). The same position with
    /// another message is damage: a refusal to start.
    pub fn raise_to(&mut self, wal: Option<&LastSigned>) -> Result<(), SignGuardError> {
        let Some(wal) = wal else { return Ok(()) };
        match &self.last {
            Some(last) if last.position > wal.position => return Ok(()),
            Some(last) if last.position == wal.position => {
                if last == wal {
                    return Ok(());
                }
                return Err(SignGuardError::Corrupt {
                    path: self.path.clone(),
                    reason: format!(
                        "the WAL's last signature at {:?} is not the one this file records there",
                        wal.position
                    ),
                });
            }
            _ => {}
        }
        self.persist(wal).map_err(|source| SignGuardError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.last = Some(*wal);
        Ok(())
    }

    /// What recording `request` would write: `None` for the very message
    /// signed last, a refusal for anything before it or in its place.
    pub(crate) fn admit(&self, request: &SignRequest) -> Result<Option<LastSigned>, DoubleSign> {
        if let Some(last) = &self.last {
            if request.position < last.position {
                return Err(SignRefusal::Regression {
                    last: last.position,
                    requested: request.position,
                });
            }
            if request.position == last.position {
                return if request.digest == last.digest {
                    Ok(None)
                } else {
                    Err(SignRefusal::Conflict {
                        at: request.position,
                    })
                };
            }
        }
        Ok(Some(LastSigned {
            position: request.position,
            value: request.value,
            digest: request.digest,
        }))
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
