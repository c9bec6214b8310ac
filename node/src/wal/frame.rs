//! The on-disk layout of a WAL file and the scan that reads it back.
//!
//! ```text
//! header (24 bytes): magic "CNCLVWAL" | version u32 LE | height u64 LE | crc32 u32 LE
//! record:            len u32 LE | crc32 u32 LE | payload (len bytes)
//! ```
//!
//! The header's crc covers its first 20 bytes; a record's crc covers its
//! `len` field and its payload, so a damaged length is caught as well. The
//! payload is one [`conclave_consensus::wal_codec`] entry.

use conclave_consensus::wal_codec::{self, WalCodecError, WalInput, MAX_WAL_ENTRY_BYTES};
use conclave_consensus::Height;

pub(super) const MAGIC: &[u8; 8] = b"CNCLVWAL";
pub(super) const VERSION: u32 = 1;
pub(super) const HEADER_LEN: usize = 24;
pub(super) const RECORD_HEADER_LEN: usize = 8;

pub(super) fn header(height: Height) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&height.0.to_le_bytes());
    let crc = crc32fast::hash(&h[..20]);
    h[20..24].copy_from_slice(&crc.to_le_bytes());
    h
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

/// Reads the header: the height it names, or why it is unusable.
pub(super) fn read_header(buf: &[u8]) -> Result<Height, String> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Err(format!("file of {} bytes has no header", buf.len()));
    };
    if &h[..8] != MAGIC {
        return Err("bad magic".into());
    }
    if u32_at(h, 20) != Some(crc32fast::hash(&h[..20])) {
        return Err("header checksum mismatch".into());
    }
    let version = u32_at(h, 8).unwrap_or(0);
    if version != VERSION {
        return Err(format!("unsupported version {version}"));
    }
    let height: [u8; 8] = h[12..20].try_into().map_err(|_| "short header")?;
    Ok(Height(u64::from_le_bytes(height)))
}

fn record_crc(len: u32, payload: &[u8]) -> u32 {
    let mut c = crc32fast::Hasher::new();
    c.update(&len.to_le_bytes());
    c.update(payload);
    c.finalize()
}

/// Frames one encoded entry.
pub(super) fn record(payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = Vec::with_capacity(RECORD_HEADER_LEN + payload.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&record_crc(len, payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// What is at one offset of the file.
enum Frame<'a> {
    Good {
        payload: &'a [u8],
        next: usize,
    },
    /// The file ends inside the record.
    Truncated,
    /// The length is out of bounds or the checksum does not match.
    Bad,
}

fn frame_at(buf: &[u8], off: usize) -> Frame<'_> {
    let (Some(len), Some(crc)) = (u32_at(buf, off), u32_at(buf, off.saturating_add(4))) else {
        return Frame::Truncated;
    };
    if len as usize > MAX_WAL_ENTRY_BYTES || len == 0 {
        return Frame::Bad;
    }
    let start = off + RECORD_HEADER_LEN;
    let Some(payload) = buf.get(start..start + len as usize) else {
        return Frame::Truncated;
    };
    if record_crc(len, payload) != crc {
        return Frame::Bad;
    }
    Frame::Good {
        payload,
        next: start + len as usize,
    }
}

/// Why a scan stopped before the end of the file.
#[derive(Debug)]
pub(super) enum Stop {
    /// The last record is cut short (a torn write).
    Truncated,
    /// A record's length or checksum is wrong.
    Checksum,
    /// A record's checksum holds but its entry does not decode.
    Undecodable(WalCodecError),
}

/// The result of reading a file's records.
pub(super) struct Scan {
    pub entries: Vec<(Height, WalInput)>,
    /// End of the last good record: everything before it is intact.
    pub valid_end: usize,
    /// Set when the scan stopped before the end of the file.
    pub stop: Option<Stop>,
    /// Offset of an intact record after the damage: the damage is in the
    /// middle of the log, not at its tail.
    pub resync: Option<usize>,
}

/// Reads every record after the header.
pub(super) fn scan(buf: &[u8]) -> Scan {
    let mut entries = Vec::new();
    let mut off = HEADER_LEN;
    while off < buf.len() {
        let stop = match frame_at(buf, off) {
            Frame::Good { payload, next } => match wal_codec::decode_entry(payload) {
                Ok(entry) => {
                    entries.push(entry);
                    off = next;
                    continue;
                }
                Err(e) => Stop::Undecodable(e),
            },
            Frame::Truncated => Stop::Truncated,
            Frame::Bad => Stop::Checksum,
        };
        return Scan {
            entries,
            valid_end: off,
            resync: find_intact_record(buf, off + 1),
            stop: Some(stop),
        };
    }
    Scan {
        entries,
        valid_end: off,
        stop: None,
        resync: None,
    }
}

/// The first offset at or after `from` where an intact, decodable record
/// starts. Every offset is tried, since the damaged record's own length
/// cannot be trusted; a false match needs a random crc32 collision.
fn find_intact_record(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len().saturating_sub(RECORD_HEADER_LEN)).find(|&off| {
        matches!(frame_at(buf, off), Frame::Good { payload, .. }
            if wal_codec::decode_entry(payload).is_ok())
    })
}
