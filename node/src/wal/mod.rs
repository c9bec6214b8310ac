//! A context's consensus write-ahead log: the inputs of the current height
//! that malachite asks to persist (`Output::WalAppend`), fsynced before any
//! later output is performed, so that after a crash the engine can replay
//! them and re-derive, not re-decide, what this node already signed.
//!
//! One file per context holds the current height's records after older
//! heights' (see [`frame`] for the layout); [`Wal::start_height`] moves it
//! to the next height once the previous height's block is durable, by
//! rewriting its header, and cuts it once it has grown past a bound. On [`Wal::open`] a torn or bit-flipped tail is cut off,
//! kept in a `<name>.corrupt-<unix_ms>` backup and reported in
//! [`Recovered`]; damage followed by intact records is refused unless
//! [`WalOptions::repair`] is set. Nothing read from disk can panic.
//! Appends overwrite zeros written ahead of them ([`PREALLOCATE`]), so
//! that their syncs do not also commit the file system's journal.

mod disk;
mod frame;
use crate::fsx;
mod shared;

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use conclave_consensus::wal_codec::{self, WalCodecError, WalInput};
use conclave_consensus::Height;
use thiserror::Error;
use tracing::warn;

use crate::sign_guard::LastSigned;
use disk::{cut_tail, read_bounded, rewrite_header, PREALLOCATE};
use frame::{Stop, HEADER_LEN};
pub use shared::{LogParts, SharedLog};

/// Largest WAL file this node reads or writes.
pub const MAX_WAL_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Up to this size a rotation leaves the older heights' records in the
/// file; past it, it cuts them (see [`Wal::start_height`]).
pub const KEEP_OLD_ENTRIES_BYTES: u64 = 1024 * 1024;

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
    /// Records of a later height than the header's (maybe after a torn
    /// record of its own): written after a rotation the crash kept off the
    /// disk, so never synced, and the header's height is committed.
    UnsyncedRotation,
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
    /// The file's length: from `len` to here it holds zeros
    /// ([`PREALLOCATE`]).
    allocated: u64,
    /// Length of the data known durable (the last good sync, or what was
    /// on disk at open).
    synced: u64,
    entries: Vec<(Height, WalInput)>,
    /// The last guard record in the file (see [`Wal::write_guard`]).
    guard: Option<LastSigned>,
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
            fsx::write_atomic(&path, &frame::header(Height(0), HEADER_LEN as u64))
                .map_err(io_err(&path))?;
            let empty = (HEADER_LEN as u64, HEADER_LEN as u64);
            let wal = Self::reopen(path, Height(0), empty, Vec::new(), None)?;
            let recovered = Recovered {
                created: true,
                height: Height(0),
                entries: 0,
                repair: None,
            };
            return Ok((wal, recovered));
        };
        let mut header = match frame::read_header(&bytes) {
            Ok(h) => h,
            Err(reason) if options.repair => {
                let backup = fsx::backup(&path, &bytes).map_err(io_err(&path))?;
                warn!(path = %path.display(), %reason, backup = %backup.display(), "wal header unusable; backed up and started empty");
                fsx::write_atomic(&path, &frame::header(Height(0), HEADER_LEN as u64))
                    .map_err(io_err(&path))?;
                let empty = (HEADER_LEN as u64, HEADER_LEN as u64);
                let wal = Self::reopen(path, Height(0), empty, Vec::new(), None)?;
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
        let height = header.height;
        if header.start > bytes.len() as u64 {
            // A rotation's header reached the disk but the file's length
            // did not: nothing of `height` was synced (a sync would have
            // made the length durable too). Its records start at the end.
            header.start = bytes.len() as u64;
            rewrite_header(&path, height, header.start)?;
            warn!(path = %path.display(), height = height.0, "wal header named a start past the end (a crash during a rotation); moved to the end");
        }
        let scan = frame::scan(&bytes, &header);
        let repair = match scan.stop {
            None => None,
            Some(stop) => {
                let offset = scan.valid_end as u64;
                let later =
                    |at: usize| matches!(frame::height_at(&bytes, at), Some(h) if h > height);
                let damage = match (&stop, scan.resync) {
                    // Written after a rotation whose header never reached
                    // the disk, so never synced; `height` is committed.
                    (Stop::LaterHeight, _) => Damage::UnsyncedRotation,
                    (Stop::Undecodable(_), _) if options.repair => Damage::Undecodable,
                    (Stop::Undecodable(e), _) => {
                        return Err(WalError::Undecodable {
                            path,
                            offset,
                            source: e.clone(),
                        })
                    }
                    // A torn record of `height` (never synced) before such
                    // records, rather than damage in the middle.
                    (_, Some(next)) if later(next) => Damage::UnsyncedRotation,
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
        let mut len = scan.valid_end as u64;
        // A cut tail took the zeros after it along.
        let mut allocated = if repair.is_some() {
            len
        } else {
            bytes.len() as u64
        };
        if header.version != frame::VERSION {
            // Written by an older version: rewritten once in this one.
            let records = bytes
                .get(frame::V1_HEADER_LEN..scan.valid_end)
                .unwrap_or_default();
            let mut upgraded = frame::header(height, HEADER_LEN as u64).to_vec();
            upgraded.extend_from_slice(records);
            fsx::write_atomic(&path, &upgraded).map_err(io_err(&path))?;
            len = upgraded.len() as u64;
            allocated = len;
        }
        let entries = scan.entries.len();
        let wal = Self::reopen(path, height, (len, allocated), scan.entries, scan.guard)?;
        Ok((wal, recovered(height, entries, repair)))
    }

    fn reopen(
        path: PathBuf,
        height: Height,
        (len, allocated): (u64, u64),
        entries: Vec<(Height, WalInput)>,
        guard: Option<LastSigned>,
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
            allocated,
            synced: len,
            entries,
            guard,
            dirty: false,
            poisoned: false,
        })
    }

    /// Where the records end and the zeros written ahead begin.
    #[cfg(test)]
    pub(crate) fn records_end(&self) -> u64 {
        self.len
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The height whose entries the log holds.
    pub fn height(&self) -> Height {
        self.height
    }

    /// The last guard record in the file: the latest signature this node
    /// recorded in the log (a cut at a rotation drops the older ones).
    pub fn last_guard(&self) -> Option<&LastSigned> {
        self.guard.as_ref()
    }

    /// Whether the rotation to the next height cuts the file (and with it
    /// every guard record in it): the sign guard's file must be durable
    /// first.
    pub fn cuts_at_next_height(&self) -> bool {
        self.len > KEEP_OLD_ENTRIES_BYTES
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
    /// restart), otherwise moves it to `height`, in place. Call only once
    /// the previous height's block is durable ([`LogParts::write`] moves
    /// the log with the new height's first record, after the commit's
    /// sync).
    ///
    /// Usually only the header changes: it names `height` and the end of
    /// the file as where `height`'s records start, and the older heights'
    /// records stay where they are, never read again. Nothing is synced
    /// here: the header and the old height's last records (votes received
    /// after this node's last signature) ride on the next [`Wal::sync`],
    /// which comes before anything this node signs at `height`. A crash
    /// before it leaves on disk either header, over a file in which the
    /// old height's unsynced tail and `height`'s first records may each be
    /// torn or missing. Under the new header the old tail is never read;
    /// under the old one, records of a later height mark a rotation that
    /// never reached the disk, and [`Wal::open`] cuts from them or from
    /// the torn record before them ([`Damage::UnsyncedRotation`]): nothing
    /// there was synced, and the old height is committed. If the file's
    /// length was lost but the header was not, the start lies past the end
    /// and open moves it there.
    ///
    /// Once the file holds more than [`KEEP_OLD_ENTRIES_BYTES`] it is cut
    /// instead: truncated and given the new header, both synced here
    /// before anything of `height` is written. (This replaced a cut and a
    /// sync at every height, right after the commit's own sync; before
    /// that, a new file per height renamed into place.) The header is 32
    /// bytes with a checksum, written in one piece at offset 0.
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
        let cut = self.len > KEEP_OLD_ENTRIES_BYTES;
        let start = if cut { HEADER_LEN as u64 } else { self.len };
        let header = frame::header(height, start);
        let rotated = if cut {
            self.file
                .set_len(start)
                .and_then(|()| self.file.write_all_at(&header, 0))
                .and_then(|()| crate::fsx::timed_sync("wal", || self.file.sync_data()))
        } else {
            self.file.write_all_at(&header, 0)
        };
        if let Err(e) = rotated {
            // What is on disk is the old log or the new one, or one of the
            // crash states above; a reopen reads whichever it is.
            self.poisoned = true;
            return Err(io_err(&self.path)(e));
        }
        self.height = height;
        self.entries.clear();
        if cut {
            self.guard = None;
            self.len = start;
            self.allocated = start;
            self.synced = start;
            self.dirty = false;
        } else {
            // The header waits for the next sync.
            self.dirty = true;
        }
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
        self.append_record(&record)?;
        self.entries.push((height, input.clone()));
        Ok(())
    }

    /// Appends a guard record of `last` without fsync: the sign guard's
    /// record of a signature, made durable by the [`Wal::sync`] that
    /// precedes the signature's release. It leaves the log's height and
    /// entries as they are.
    pub fn write_guard(&mut self, last: &LastSigned) -> Result<()> {
        self.check_usable()?;
        self.append_record(&frame::record(&frame::guard_payload(last)))?;
        self.guard = Some(*last);
        Ok(())
    }

    fn append_record(&mut self, record: &[u8]) -> Result<()> {
        let new_len = self.len + record.len() as u64;
        if new_len > MAX_WAL_FILE_BYTES {
            return Err(WalError::TooLarge {
                path: self.path.clone(),
                size: new_len,
            });
        }
        let written = self
            .preallocate(new_len)
            .and_then(|()| self.file.write_all_at(record, self.len));
        if let Err(e) = written {
            // Never leave a partial record behind a later append.
            if self.file.set_len(self.len).is_err() {
                self.poisoned = true;
            }
            self.allocated = self.len;
            return Err(io_err(&self.path)(e));
        }
        self.len = new_len;
        self.dirty = true;
        Ok(())
    }

    /// Writes zeros ahead of the records once an append would pass the
    /// file's end, [`PREALLOCATE`] past the new end (within
    /// [`MAX_WAL_FILE_BYTES`]); the next sync makes them durable with it.
    fn preallocate(&mut self, new_len: u64) -> io::Result<()> {
        if new_len <= self.allocated {
            return Ok(());
        }
        let to = new_len
            .saturating_add(PREALLOCATE)
            .min(MAX_WAL_FILE_BYTES)
            .max(new_len);
        disk::write_zeros(&self.file, self.allocated, to)?;
        self.allocated = to;
        Ok(())
    }

    /// Makes every written entry durable.
    pub fn sync(&mut self) -> Result<()> {
        self.check_usable()?;
        if !self.dirty {
            return Ok(());
        }
        if let Err(e) = crate::fsx::timed_sync("wal", || self.file.sync_data()) {
            // After a failed fsync the kernel may have dropped the pages:
            // nothing written since the last good sync can be trusted. It
            // was never relied on (group commit syncs before any output),
            // so it is cut, and a reopened log starts from what was durable.
            self.poisoned = true;
            let _ = self.file.set_len(self.synced);
            self.allocated = self.synced;
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

/// The latest signature recorded in the WAL at `path` (its guard record of
/// the highest position), read past any damage: what `conclave repair`
/// carries into the sign guard's file before it cuts or moves the log.
/// `None` if the file holds none or does not exist.
pub fn latest_signature_in(path: &Path) -> Result<Option<LastSigned>> {
    match read_bounded(path) {
        Ok(bytes) => Ok(frame::latest_guard_anywhere(&bytes)),
        Err(WalError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
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

#[cfg(test)]
mod guard_tests;
#[cfg(test)]
mod replay_tests;
#[cfg(test)]
mod rotation_tests;
#[cfg(test)]
mod tests;
