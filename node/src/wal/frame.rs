//! The on-disk layout of a WAL file and the scan that reads it back.
//!
//! ```text
//! header (32 bytes): magic "CNCLVWAL" | version u32 LE (2) | height u64 LE | start u64 LE | crc32 u32 LE
//! record:            len u32 LE | crc32 u32 LE | payload (len bytes)
//! ```
//!
//! The header's crc covers its first 28 bytes; a record's crc covers its
//! `len` field and its payload, so a damaged length is caught as well. The
//! payload is one [`conclave_consensus::wal_codec`] entry (its first byte
//! is the codec's version, 1), or a sign guard record: [`GUARD_TAG`] then
//! the borsh of the [`LastSigned`] this node recorded before a signature
//! (see `shared.rs`). Guard records do not move the log's height. The header's
//! height's records run from `start` to the end of the file, or to the
//! zeros that fill the rest of it (space written ahead, see
//! [`super::PREALLOCATE`]; no record begins with a zero length); the bytes
//! between the header and `start` are older heights' records, never read.
//! Version 1 (a 24-byte header without `start`, its records right after
//! it) is still read.

use conclave_consensus::wal_codec::{self, WalCodecError, WalInput, MAX_WAL_ENTRY_BYTES};
use conclave_consensus::Height;

use crate::sign_guard::LastSigned;

pub(super) const MAGIC: &[u8; 8] = b"CNCLVWAL";
pub(super) const VERSION: u32 = 2;
pub(super) const HEADER_LEN: usize = 32;
/// A version 1 header's length (and its records' start).
pub(super) const V1_HEADER_LEN: usize = 24;
pub(super) const RECORD_HEADER_LEN: usize = 8;
/// The first byte of a guard record's payload (never a codec version).
pub(super) const GUARD_TAG: u8 = 0xC5;

/// What an intact record holds.
pub(super) enum Payload {
    Entry(Height, WalInput),
    Guard(LastSigned),
}

/// The payload of a guard record of `last`.
pub(super) fn guard_payload(last: &LastSigned) -> Vec<u8> {
    let mut out = vec![GUARD_TAG];
    // Serialising a plain struct into a Vec cannot fail.
    let _ = borsh::BorshSerialize::serialize(last, &mut out);
    out
}

fn decode(payload: &[u8]) -> Result<Payload, WalCodecError> {
    match payload.split_first() {
        Some((&GUARD_TAG, body)) => borsh::from_slice(body)
            .map(Payload::Guard)
            .map_err(|e| WalCodecError::Malformed(format!("guard record: {e}"))),
        _ => wal_codec::decode_entry(payload).map(|(h, input)| Payload::Entry(h, input)),
    }
}

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

/// Whether `buf` holds only zeros from `off` on.
fn zeros_from(buf: &[u8], off: usize) -> bool {
    buf.get(off..)
        .is_some_and(|rest| rest.iter().all(|&b| b == 0))
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
    /// The last guard record read (of the header's height's records, or
    /// if they hold none, of the older heights' before them).
    pub guard: Option<LastSigned>,
    /// Offset of an intact record after the damage: the damage is in the
    /// middle of the log, not at its tail.
    pub resync: Option<usize>,
}

/// Reads the records of `header`'s height, from its start to the end.
pub(super) fn scan(buf: &[u8], header: &Header) -> Scan {
    let mut entries = Vec::new();
    let mut guard = None;
    let mut off = usize::try_from(header.start).unwrap_or(usize::MAX);
    let stopped = |entries, guard: Option<LastSigned>, valid_end, stop| Scan {
        entries,
        valid_end,
        stop: Some(stop),
        resync: None,
        guard: guard.or_else(|| older_guard(buf, header)),
    };
    while off < buf.len() {
        let stop = match frame_at(buf, off) {
            Frame::Good { payload, next } => match decode(payload) {
                Ok(Payload::Entry(height, _)) if height > header.height => {
                    return stopped(entries, guard, off, Stop::LaterHeight);
                }
                Ok(Payload::Entry(height, input)) => {
                    if height == header.height {
                        entries.push((height, input));
                    }
                    off = next;
                    continue;
                }
                Ok(Payload::Guard(last)) => {
                    guard = Some(last);
                    off = next;
                    continue;
                }
                Err(e) => Stop::Undecodable(e),
            },
            // Nothing but zeros from here: the space written ahead.
            _ if zeros_from(buf, off) => break,
            Frame::Truncated => Stop::Truncated,
            Frame::Bad => Stop::Checksum,
        };
        return Scan {
            resync: find_intact_record(buf, off + 1),
            ..stopped(entries, guard, off, stop)
        };
    }
    Scan {
        entries,
        valid_end: off.min(buf.len()),
        stop: None,
        resync: None,
        guard: guard.or_else(|| older_guard(buf, header)),
    }
}

/// The last guard record among the older heights' records, between the
/// header and `header.start`. They were all synced before the header
/// moved past them, except a tail written after the last sync (votes
/// received, never a guard record a signature was released on): reading
/// stops quietly where that tail is torn.
fn older_guard(buf: &[u8], header: &Header) -> Option<LastSigned> {
    let first = if header.version == 1 {
        V1_HEADER_LEN
    } else {
        HEADER_LEN
    };
    let end = usize::try_from(header.start)
        .unwrap_or(usize::MAX)
        .min(buf.len());
    let mut guard = None;
    let mut off = first;
    while off < end {
        let Frame::Good { payload, next } = frame_at(&buf[..end], off) else {
            break;
        };
        if let Ok(Payload::Guard(last)) = decode(payload) {
            guard = Some(last);
        }
        off = next;
    }
    guard
}

/// The guard record with the latest position anywhere in a file, past any
/// damage (each intact record after it is found as
/// [`find_intact_record`] finds one): what `conclave repair` keeps of the
/// log's signatures before it cuts the log.
pub(super) fn latest_guard_anywhere(buf: &[u8]) -> Option<LastSigned> {
    let first = match read_header(buf) {
        Ok(h) if h.version == 1 => V1_HEADER_LEN,
        _ => HEADER_LEN,
    };
    let mut latest: Option<LastSigned> = None;
    let mut off = first;
    while off < buf.len() {
        match frame_at(buf, off) {
            Frame::Good { payload, next } => {
                if let Ok(Payload::Guard(last)) = decode(payload) {
                    if latest.is_none_or(|l| last.position > l.position) {
                        latest = Some(last);
                    }
                }
                off = next;
            }
            _ => match find_intact_record(buf, off + 1) {
                Some(next) => off = next,
                None => break,
            },
        }
    }
    latest
}

/// The height of the intact record at `off`, if one is there.
pub(super) fn height_at(buf: &[u8], off: usize) -> Option<Height> {
    match frame_at(buf, off) {
        Frame::Good { payload, .. } => match decode(payload) {
            Ok(Payload::Entry(height, _)) => Some(height),
            _ => None,
        },
        _ => None,
    }
}

/// The first offset at or after `from` where an intact, decodable record
/// starts. Every offset is tried, since the damaged record's own length
/// cannot be trusted; a false match needs a random crc32 collision.
fn find_intact_record(buf: &[u8], from: usize) -> Option<usize> {
    (from..buf.len().saturating_sub(RECORD_HEADER_LEN)).find(
        |&off| matches!(frame_at(buf, off), Frame::Good { payload, .. } if decode(payload).is_ok()),
    )
}
