//! `chat`: a group chat among a context's members, and private notes.
//!
//! Methods (arguments and results are JSON):
//!
//! - `post {"text"}` → `{"seq"}`: appends a message (non-empty, at most
//!   [`MAX_TEXT_BYTES`] bytes of UTF-8) with author = the caller, the
//!   block's height and time and the next sequence number (from 1); emits
//!   event `posted` whose data is the message.
//! - `messages {"before"?, "after"?, "limit"?}` (view) →
//!   `{"messages": [..], "total"}`: messages oldest first, each
//!   `{"seq", "author", "height", "time_ms", "text"}` (`author` a hex member
//!   id), and `total`, the number of messages so far (the newest `seq`).
//!   Without `before` or `after`: the most recent ones; `before: s`: the ones
//!   just before `s` (paging back); `after: s`: the ones just after `s`
//!   (polling forward). At most `limit` (default 20, at most 100), and fewer
//!   if more would not fit in one answer: page on from the seqs returned.
//!   Empty arguments are `{}`.
//! - `note {"text"}` → `{"seq"}`: keeps a note under the caller's id (same
//!   bounds as a message; at most [`MAX_NOTES`] per member). No event.
//! - `notes {"after"?, "limit"?}` (view) → `{"notes": [..], "total"}`: the
//!   caller's own notes, oldest first, each `{"seq", "height", "time_ms",
//!   "text"}`, paged like `messages {"after"}`. An anonymous view (caller
//!   all zeros) is refused: notes are per member.
//!
//! Privacy: `notes` only keeps other members' *views* from showing a
//! member's notes. Every member's node executes every tx and keeps all of
//! the state, so a note's text is visible to every member's node operator
//! (see `docs/privacy.md`). Encrypt client-side what must stay private.
//!
//! Bad input (invalid JSON, unknown fields, an empty or oversized text, an
//! out-of-range limit) fails the call with a clear message and changes
//! nothing.
//!
//! Storage: `m#` (message count, u64 LE), `m/<seq u64 BE>` (message JSON),
//! `n#<member>` (that member's note count), `n/<member><seq u64 BE>` (note
//! JSON). Messages are stored as the JSON the views return, so a page is
//! assembled without decoding them.

use conclave_sdk::{
    abort, block_height, block_time_ms, caller, emit_event, input, input_json, member_caller,
    output, output_json, storage,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// Longest message or note text, in bytes of UTF-8.
pub const MAX_TEXT_BYTES: usize = 2048;
/// Most notes one member may keep.
pub const MAX_NOTES: u64 = 1000;
/// Items a page holds when the caller gives no limit.
const DEFAULT_LIMIT: u64 = 20;
/// Most items one page holds.
const MAX_LIMIT: u64 = 100;
/// Largest answer assembled, in bytes: below the host's 64 KiB output
/// limit, with room for the envelope. A text of [`MAX_TEXT_BYTES`] encodes
/// to at most six times its size, so at least one item always fits.
const PAGE_BYTES: usize = 56 * 1024;

const MESSAGE_COUNT: &[u8] = b"m#";
const MESSAGE_PREFIX: &[u8] = b"m/";
const NOTE_COUNT_PREFIX: &[u8] = b"n#";
const NOTE_PREFIX: &[u8] = b"n/";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TextArgs {
    text: String,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct MessagesArgs {
    before: Option<u64>,
    after: Option<u64>,
    limit: Option<u64>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NotesArgs {
    after: Option<u64>,
    limit: Option<u64>,
}

#[derive(Serialize)]
struct Message<'a> {
    seq: u64,
    author: String,
    height: u64,
    time_ms: u64,
    text: &'a str,
}

#[derive(Serialize)]
struct Note<'a> {
    seq: u64,
    height: u64,
    time_ms: u64,
    text: &'a str,
}

#[derive(Serialize)]
struct Seq {
    seq: u64,
}

fn hex_encode(b: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(char::from(DIGITS[usize::from(x >> 4)]));
        s.push(char::from(DIGITS[usize::from(x & 0xf)]));
    }
    s
}

/// The call's arguments; empty input counts as `{}`.
fn args_or_default<T: DeserializeOwned + Default>() -> T {
    if input().iter().all(u8::is_ascii_whitespace) {
        T::default()
    } else {
        input_json()
    }
}

/// The `text` argument, checked. JSON strings are UTF-8 (the JSON decoder
/// refuses invalid bytes and lone surrogates), so only the size and the
/// emptiness are left to check.
fn text_arg(what: &str) -> String {
    let args: TextArgs = input_json();
    if args.text.trim().is_empty() {
        abort(&format!("{what} is empty"));
    }
    if args.text.len() > MAX_TEXT_BYTES {
        abort(&format!(
            "{what} is {} bytes, the limit is {MAX_TEXT_BYTES}",
            args.text.len()
        ));
    }
    args.text
}

fn limit_arg(limit: Option<u64>) -> u64 {
    match limit.unwrap_or(DEFAULT_LIMIT) {
        0 => abort("limit must be at least 1"),
        n if n > MAX_LIMIT => abort(&format!("limit is {n}, at most {MAX_LIMIT}")),
        n => n,
    }
}

fn read_count(key: &[u8]) -> u64 {
    match storage::get(key) {
        None => 0,
        Some(b) => match <[u8; 8]>::try_from(b.as_slice()) {
            Ok(b) => u64::from_le_bytes(b),
            Err(_) => abort("stored counter is corrupt"),
        },
    }
}

fn write_count(key: &[u8], n: u64) {
    storage::set(key, &n.to_le_bytes());
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_else(|e| abort(&format!("cannot encode JSON: {e}")))
}

fn message_key(seq: u64) -> Vec<u8> {
    [MESSAGE_PREFIX, &seq.to_be_bytes()].concat()
}

fn note_count_key(member: &[u8; 32]) -> Vec<u8> {
    [NOTE_COUNT_PREFIX, member].concat()
}

fn note_key(member: &[u8; 32], seq: u64) -> Vec<u8> {
    [NOTE_PREFIX, member, &seq.to_be_bytes()].concat()
}

/// `{"<field>": [items], "total": total}` from items already encoded as
/// JSON, in the order given.
fn page(field: &str, items: &[Vec<u8>], total: u64) -> Vec<u8> {
    let mut out = format!("{{\"{field}\":[").into_bytes();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(item);
    }
    out.extend_from_slice(format!("],\"total\":{total}}}").as_bytes());
    out
}

/// Reads the stored items of `seqs` (in that order) while they fit in one
/// answer.
fn read_items(seqs: impl Iterator<Item = u64>, key: impl Fn(u64) -> Vec<u8>) -> Vec<Vec<u8>> {
    let mut items = Vec::new();
    let mut bytes = 0;
    for seq in seqs {
        let item = storage::get(&key(seq))
            .unwrap_or_else(|| abort(&format!("item {seq} is missing from storage")));
        bytes += item.len() + 1;
        if bytes > PAGE_BYTES && !items.is_empty() {
            break;
        }
        items.push(item);
    }
    items
}

fn post() {
    let text = text_arg("message");
    let seq = read_count(MESSAGE_COUNT) + 1;
    let message = encode(&Message {
        seq,
        author: hex_encode(&caller()),
        height: block_height(),
        time_ms: block_time_ms(),
        text: &text,
    });
    storage::set(&message_key(seq), &message);
    write_count(MESSAGE_COUNT, seq);
    emit_event("posted", &message);
    output_json(&Seq { seq });
}

fn messages() {
    let args: MessagesArgs = args_or_default();
    let limit = limit_arg(args.limit);
    let total = read_count(MESSAGE_COUNT);
    let items = match (args.before, args.after) {
        (Some(_), Some(_)) => abort("give `before` or `after`, not both"),
        (None, Some(after)) => {
            let first = after.saturating_add(1);
            let end = total.min(after.saturating_add(limit));
            read_items(first..=end, message_key)
        }
        (before, None) => {
            // The `limit` messages below `before`, newest first while
            // reading (so a cut keeps the most recent), then reversed.
            let end = before.map_or(total, |b| b.saturating_sub(1).min(total));
            let first = end.saturating_sub(limit - 1).max(1);
            let mut items = read_items((first..=end).rev(), message_key);
            items.reverse();
            items
        }
    };
    output(&page("messages", &items, total));
}

/// The caller of a per-member method: refuses an anonymous view.
fn member() -> [u8; 32] {
    member_caller().unwrap_or_else(|| {
        abort("notes are per member: an anonymous view has no caller to show them to; call as a member")
    })
}

fn note() {
    let me = member();
    let text = text_arg("note");
    let count_key = note_count_key(&me);
    let seq = read_count(&count_key) + 1;
    if seq > MAX_NOTES {
        abort(&format!("a member keeps at most {MAX_NOTES} notes"));
    }
    let note = encode(&Note {
        seq,
        height: block_height(),
        time_ms: block_time_ms(),
        text: &text,
    });
    storage::set(&note_key(&me, seq), &note);
    write_count(&count_key, seq);
    output_json(&Seq { seq });
}

fn notes() {
    let me = member();
    let args: NotesArgs = args_or_default();
    let limit = limit_arg(args.limit);
    let total = read_count(&note_count_key(&me));
    let after = args.after.unwrap_or(0);
    let first = after.saturating_add(1);
    let end = total.min(after.saturating_add(limit));
    let items = read_items(first..=end, |seq| note_key(&me, seq));
    output(&page("notes", &items, total));
}

conclave_sdk::methods!(post, messages, note, notes);
