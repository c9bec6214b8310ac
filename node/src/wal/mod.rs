//! A context's consensus write-ahead log: the inputs of the current height
//! that malachite asks to persist (`Output::WalAppend`), fsynced before any
//! later output is performed, so that after a crash the engine can replay
//! them and re-derive, not re-decide, what this node already signed.
//!
//! One file per context holds one height (see [`frame`] for the layout).
//! [`Wal::start_height`] rotates it atomically once the previous height's
//! block is durable. On [`Wal::open`] a torn or bit-flipped tail is cut off,
//! kept in a `<name>.corrupt-<unix_ms>` backup and reported in
//! [`Recovered`]; damage followed by intact records is refused unless
//! [`WalOptions::repair`] is set. Nothing read from disk can panic.

mod frame;
use crate::fsx;
mod shared;

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use conclave_consensus::wal_codec::{self, WalCodecError, WalInput};
use conclave_consensus::Height;
use thiserror::Error;
use tracing::warn;

use frame::{Stop, HEADER_LEN};
pub use shared::{LogParts, SharedLog};

/// Largest WAL file this node reads or writes.
pub const MAX_WAL_FILE_BYTES: u64 = 256 * 1024 * 1024;

#[derive(Debug, Error)]
pub enum WalError {
    #[error("wal {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("wal {}: unusable header ({reason})", path.display())]
    BadHeader { path: PathBuf, reason: String },
    #[error("wal {}: damaged record at offset {offset} followed by intact records from offset {next_intact} (not a torn write)", path.display())]
    CorruptMiddle {
        path: PathBuf,
        offset: u64,
        next_intact: u64,
    },
    #[error("wal {}: record at offset {offset} has a valid checksum but does not decode: {source}", path.display())]
    Undecodable {
        path: PathBuf,
        offset: u64,
        #[source]
        source: WalCodecError,
    },
    #[error("wal {}: file of {size} bytes exceeds the limit of {MAX_WAL_FILE_BYTES}", path.display())]
    TooLarge { path: PathBuf, size: u64 },
    #[error("wal entry: {0}")]
    Encode(#[from] WalCodecError),
    #[error("wal is at height {current}; cannot go back to {requested}")]
    HeightRegression { current: Height, requested: Height },
    #[error("wal is unusable after an earlier write or fsync failure")]
    Poisoned,
}

pub type Result<T, E = WalError> = std::result::Result<T, E>;

/// How to open a WAL.
#[derive(Clone, Copy, Debug, Default)]
pub struct WalOptions {
    /// Also repair damage that is not at the tail (keep the intact prefix,
    /// back up the rest). Off by default: such damage is not a torn write.
    pub repair: bool,
}

/// What was damaged, when [`Wal::open`] had to cut the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The last record was cut short: a crash during an append.
    TruncatedTail,
    /// The last record's length or checksum is wrong.
    CorruptTail,
    /// Damage followed by intact records (only with `repair`).
    CorruptMiddle,
    /// A checksum-valid record that does not decode (only with `repair`).
    Undecodable,
    /// The header was unusable; the whole file was backed up (only with
    /// `repair`).
    BadHeader,
}

/// A cut made while opening.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    pub damage: Damage,
    /// Bytes before this offset were kept.
    pub offset: u64,
    pub dropped_bytes: u64,
    pub backup: PathBuf,
}

/// What [`Wal::open`] found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovered {
    /// There was no file; an empty log was created.
    pub created: bool,
    /// The height the log holds entries of (0 before the first height).
    pub height: Height,
    pub entries: usize,
    pub repair: Option<Repair>,
}

/// One context's write-ahead log.
pub struct Wal {
    path: PathBuf,
    file: File,
    height: Height,
    /// Length of the intact data in the file.
    len: u64,
    /// Length of the data known durable (the last good sync, or what was
    /// on disk at open).
    synced: u64,
    entries: Vec<(Height, WalInput)>,
    dirty: bool,
    poisoned: bool,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Wal {
    /// Opens (or creates) the log at `path`, refusing damage in its middle.
    pub fn open(path: impl AsRef<Path>) -> Result<(Self, Recovered)> {
        Self::open_with(path, WalOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: WalOptions) -> Result<(Self, Recovered)> {
        let path = path.as_ref().to_path_buf();
        let bytes = match read_bounded(&path) {
            Ok(b) => Some(b),
            Err(WalError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let Some(bytes) = bytes else {
            fsx::write_atomic(&path, &frame::header(Height(0))).map_err(io_err(&path))?;
            let wal = Self::reopen(path, Height(0), HEADER_LEN as u64, Vec::new())?;
            let recovered = Recovered {
                created: true,
                height: Height(0),
                entries: 0,
                repair: None,
            };
            return Ok((wal, recovered));
        };
        let height = match frame::read_header(&bytes) {
            Ok(h) => h,
            Err(reason) if options.repair => {
                let backup = fsx::backup(&path, &bytes).map_err(io_err(&path))?;
                warn!(path = %path.display(), %reason, backup = %backup.display(), "wal header unusable; backed up and started empty");
                fsx::write_atomic(&path, &frame::header(Height(0))).map_err(io_err(&path))?;
                let wal = Self::reopen(path, Height(0), HEADER_LEN as u64, Vec::new())?;
                let repair = Repair {
                    damage: Damage::BadHeader,
                    offset: 0,
                    dropped_bytes: bytes.len() as u64,
                    backup,
                };
                return Ok((wal, recovered(Height(0), 0, Some(repair))));
            }
            Err(reason) => return Err(WalError::BadHeader { path, reason }),
        };
        let scan = frame::scan(&bytes);
        let repair = match scan.stop {
            None => None,
            Some(stop) => {
                let offset = scan.valid_end as u64;
                let damage = match (&stop, scan.resync) {
                    (Stop::Undecodable(_), _) if options.repair => Damage::Undecodable,
                    (Stop::Undecodable(e), _) => {
                        return Err(WalError::Undecodable {
                            path,
                            offset,
                            source: e.clone(),
                        })
                    }
                    (_, Some(_)) if options.repair => Damage::CorruptMiddle,
                    (_, Some(next)) => {
                        return Err(WalError::CorruptMiddle {
                            path,
                            offset,
                            next_intact: next as u64,
                        })
                    }
                    (Stop::Truncated, None) => Damage::TruncatedTail,
                    (Stop::Checksum, None) => Damage::CorruptTail,
                };
                Some(cut_tail(&path, &bytes, scan.valid_end, damage)?)
            }
        };
        let entries = scan.entries.len();
        let wal = Self::reopen(path, height, scan.valid_end as u64, scan.entries)?;
        Ok((wal, recovered(height, entries, repair)))
    }

    fn reopen(
        path: PathBuf,
        height: Height,
        len: u64,
        entries: Vec<(Height, WalInput)>,
    ) -> Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Ok(Self {
            path,
            file,
            height,
            len,
            synced: len,
            entries,
            dirty: false,
            poisoned: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The height whose entries the log holds.
    pub fn height(&self) -> Height {
        self.height
    }

    /// The entries of `height` in append order (empty for any other height).
    pub fn entries_for(&self, height: Height) -> Vec<WalInput> {
        self.entries
            .iter()
            .filter(|(h, _)| *h == height)
            .map(|(_, i)| i.clone())
            .collect()
    }

    /// The value `proposer` proposed at `(height, round)` per the log: a
    /// restarted proposer must propose it again, never a new block.
    pub fn logged_proposal(
        &self,
        height: Height,
        round: conclave_consensus::mal::Round,
        proposer: &conclave_consensus::MemberId,
    ) -> Option<conclave_consensus::Hash32> {
        self.entries.iter().find_map(|(h, e)| match e {
            conclave_consensus::mal::Input::ProposedValue(pv, _)
                if *h == height && pv.round == round && pv.proposer == *proposer =>
            {
                Some(pv.value)
            }
            _ => None,
        })
    }

    /// Starts `height`: keeps the log if it already holds `height` (a
    /// restart), otherwise empties it for `height`, in place. Call only
    /// once the previous height's block is durable.
    ///
    /// The old entries are cut (durably) before the header names the new
    /// height, so the file never holds old entries under the new height's
    /// header, nor remains of them behind new entries. The new header is
    /// made durable by the next [`Wal::sync`], which comes before anything
    /// this node signs at the new height; a crash before it leaves the old
    /// header (or the new one) over no entries, or over unsynced entries of
    /// the new height that no signature relied on: the old height is
    /// committed, so the next start rotates again either way, and entries
    /// are read by their own height ([`Wal::entries_for`]). The header is
    /// 24 bytes with a checksum, written in one piece at offset 0. (This
    /// replaced a new file per height, renamed into place: two fsyncs and
    /// four file operations on every height, then two fsyncs in place.)
    pub fn start_height(&mut self, height: Height) -> Result<()> {
        self.check_usable()?;
        if height == self.height {
            return Ok(());
        }
        if height < self.height {
            return Err(WalError::HeightRegression {
                current: self.height,
                requested: height,
            });
        }
        let header = frame::header(height);
        let rotated = self
            .file
            .set_len(HEADER_LEN as u64)
            .and_then(|()| self.file.sync_data())
            .and_then(|()| self.file.write_all_at(&header, 0));
        if let Err(e) = rotated {
            // What is on disk is one of: the old log, the old header with
            // no entries, or the new log; a reopen reads whichever it is.
            self.poisoned = true;
            return Err(io_err(&self.path)(e));
        }
        self.height = height;
        self.len = HEADER_LEN as u64;
        self.synced = self.len;
        self.entries.clear();
        // The header waits for the next sync.
        self.dirty = true;
        Ok(())
    }

    /// Appends `input` and fsyncs before returning.
    pub fn append(&mut self, height: Height, input: &WalInput) -> Result<()> {
        self.write(height, input)?;
        self.sync()
    }

    /// Appends `input` without fsync (group commit): call [`Wal::sync`]
    /// before performing any output that follows it.
    pub fn write(&mut self, height: Height, input: &WalInput) -> Result<()> {
        self.check_usable()?;
        if height < self.height {
            return Err(WalError::HeightRegression {
                current: self.height,
                requested: height,
            });
        }
        let record = frame::record(&wal_codec::encode_entry(height, input)?);
        // Entries are only needed for the current height.
        if height > self.height {
            self.start_height(height)?;
        }
        let new_len = self.len + record.len() as u64;
        if new_len > MAX_WAL_FILE_BYTES {
            return Err(WalError::TooLarge {
                path: self.path.clone(),
                size: new_len,
            });
        }
        let written = self
            .file
            .seek(SeekFrom::Start(self.len))
            .and_then(|_| self.file.write_all(&record));
        if let Err(e) = written {
            // Never leave a partial record behind a later append.
            if self.file.set_len(self.len).is_err() {
                self.poisoned = true;
            }
            return Err(io_err(&self.path)(e));
        }
        self.len = new_len;
        self.dirty = true;
        self.entries.push((height, input.clone()));
        Ok(())
    }

    /// Makes every written entry durable.
    pub fn sync(&mut self) -> Result<()> {
        self.check_usable()?;
        if !self.dirty {
            return Ok(());
        }
        if let Err(e) = self.file.sync_data() {
            // After a failed fsync the kernel may have dropped the pages:
            // nothing written since the last good sync can be trusted. It
            // was never relied on (group commit syncs before any output),
            // so it is cut, and a reopened log starts from what was durable.
            self.poisoned = true;
            let _ = self.file.set_len(self.synced);
            return Err(io_err(&self.path)(e));
        }
        self.synced = self.len;
        self.dirty = false;
        Ok(())
    }

    fn check_usable(&self) -> Result<()> {
        if self.poisoned {
            return Err(WalError::Poisoned);
        }
        Ok(())
    }
}

fn recovered(height: Height, entries: usize, repair: Option<Repair>) -> Recovered {
    Recovered {
        created: false,
        height,
        entries,
        repair,
    }
}

fn read_bounded(path: &Path) -> Result<Vec<u8>> {
    let mut f = File::open(path).map_err(io_err(path))?;
    let size = f.metadata().map_err(io_err(path))?.len();
    if size > MAX_WAL_FILE_BYTES {
        return Err(WalError::TooLarge {
            path: path.to_path_buf(),
            size,
        });
    }
    let mut bytes = Vec::with_capacity(size as usize);
    Read::by_ref(&mut f)
        .take(MAX_WAL_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io_err(path))?;
    Ok(bytes)
}

/// Backs up `bytes[keep..]` durably, then truncates the file to `keep`.
fn cut_tail(path: &Path, bytes: &[u8], keep: usize, damage: Damage) -> Result<Repair> {
    let tail = bytes.get(keep..).unwrap_or_default();
    let backup = fsx::backup(path, tail).map_err(io_err(path))?;
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(io_err(path))?;
    f.set_len(keep as u64)
        .and_then(|_| f.sync_all())
        .map_err(io_err(path))?;
    warn!(path = %path.display(), ?damage, offset = keep, dropped = tail.len(), backup = %backup.display(), "wal damage cut off");
    Ok(Repair {
        damage,
        offset: keep as u64,
        dropped_bytes: tail.len() as u64,
        backup,
    })
}

#[cfg(test)]
mod replay_tests;
#[cfg(test)]
mod tests;
