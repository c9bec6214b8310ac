//! The on-disk layout of a WAL file and the scan that reads it back.
//!
//! ```text
//! header (32 bytes): magic "CNCLVWAL" | version u32 LE (2) | height u64 LE | start u64 LE | crc32 u32 LE
//! record:            len u32 LE | crc32 u32 LE | payload (len bytes)
//! ```
//!
//! The header's crc covers its first 28 bytes; a record's crc covers its
//! `len` field and its payload, so a damaged length is caught as well. The
//! payload is one [`conclave_consensus::wal_codec`] entry. The header's
//! height's records run from `start` to the end of the file; the bytes
//! between the header and `start` are older heights' records, never read.
//! Version 1 (a 24-byte header without `start`, its records right after
//! it) is still read.

use conclave_consensus::wal_codec::{self, WalCodecError, WalInput, MAX_WAL_ENTRY_BYTES};
use conclave_consensus::Height;

pub(super) const MAGIC: &[u8; 8] = b"CNCLVWAL";
pub(super) const VERSION: u32 = 2;
pub(super) const HEADER_LEN: usize = 32;
/// A version 1 header's length (and its records' start).
pub(super) const V1_HEADER_LEN: usize = 24;
pub(super) const RECORD_HEADER_LEN: usize = 8;

/// A header naming `height`, whose records start at `start`.
pub(super) fn header(height: Height, start: u64) -> [u8; HEADER_LEN] {
    let mut h = [0u8; HEADER_LEN];
    h[..8].copy_from_slice(MAGIC);
    h[8..12].copy_from_slice(&VERSION.to_le_bytes());
    h[12..20].copy_from_slice(&height.0.to_le_bytes());
    h[20..28].copy_from_slice(&start.to_le_bytes());
    let crc = crc32fast::hash(&h[..28]);
    h[28..32].copy_from_slice(&crc.to_le_bytes());
    h
}

/// What a file's header says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Header {
    pub version: u32,
    pub height: Height,
    /// Where the height's records start (at or after the header).
    pub start: u64,
}

fn u32_at(buf: &[u8], at: usize) -> Option<u32> {
    let bytes: [u8; 4] = buf.get(at..at.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(bytes))
}

fn u64_at(buf: &[u8], at: usize) -> Option<u64> {
    let bytes: [u8; 8] = buf.get(at..at.checked_add(8)?)?.try_into().ok()?;
    Some(u64::from_le_bytes(bytes))
}

/// Reads the header, or says why it is unusable.
pub(super) fn read_header(buf: &[u8]) -> Result<Header, String> {
    if buf.get(..8) != Some(&MAGIC[..]) {
        return Err(if buf.len() < V1_HEADER_LEN {
            format!("file of {} bytes has no header", buf.len())
        } else {
            "bad magic".into()
        });
    }
    let version = u32_at(buf, 8).unwrap_or(0);
    let (len, crc_at) = match version {
        1 => (V1_HEADER_LEN, 20),
        VERSION => (HEADER_LEN, 28),
        _ if buf.len() < V1_HEADER_LEN => {
            return Err(format!("file of {} bytes has no header", buf.len()))
        }
        v => return Err(format!("unsupported version {v}")),
    };
    let Some(h) = buf.get(..len) else {
        return Err(format!("file of {} bytes has no header", buf.len()));
    };
    if u32_at(h, crc_at) != Some(crc32fast::hash(&h[..crc_at])) {
        return Err("header checksum mismatch".into());
    }
    let height = Height(u64_at(h, 12).ok_or("short header")?);
    let start = match version {
        1 => V1_HEADER_LEN as u64,
        _ => u64_at(h, 20).ok_or("short header")?,
    };
    if start < len as u64 {
        return Err(format!("records start at {start}, inside the header"));
    }
    Ok(Header {
        version,
        height,
        start,
    })
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
    /// A record of a later height than the header's: written after a
    /// rotation whose new header never reached the disk.
    LaterHeight,
}

/// The result of reading a file's records.
pub(super) struct Scan {
    /// The header's height's entries (those of older heights, left by a
    /// crash during a rotation that cut the file, are skipped).
    pub entries: Vec<(Height, WalInput)>,
    /// End of the last good record: everything before it is intact.
    pub valid_end: usize,
    /// Set when the scan stopped before the end of the file.
    pub stop: Option<Stop>,
    /// Offset of an intact record after the damage: the damage is in the
    /// middle of the log, not at its tail.
    pub resync: Option<usize>,
}

/// Reads the records of `header`'s height, from its start to the end.
pub(super) fn scan(buf: &[u8], header: &Header) -> Scan {
    let mut entries = Vec::new();
    let mut off = usize::try_from(header.start).unwrap_or(usize::MAX);
    while off < buf.len() {
        let stop = match frame_at(buf, off) {
            Frame::Good { payload, next } => match wal_codec::decode_entry(payload) {
                Ok((height, _)) if height > header.height => {
                    return Scan {
                        entries,
                        valid_end: off,
                        stop: Some(Stop::LaterHeight),
                        resync: None,
                    }
                }
                Ok(entry) => {
                    if entry.0 == header.height {
                        entries.push(entry);
                    }
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
        valid_end: off.min(buf.len()),
        stop: None,
        resync: None,
    }
}

/// The height of the intact record at `off`, if one is there.
pub(super) fn height_at(buf: &[u8], off: usize) -> Option<Height> {
    match frame_at(buf, off) {
        Frame::Good { payload, .. } => wal_codec::decode_entry(payload).ok().map(|(h, _)| h),
        _ => None,
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
