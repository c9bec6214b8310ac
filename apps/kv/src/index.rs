//! A sorted index of the store's keys, kept in storage.
//!
//! The host API has no range scan, so `list` walks this index instead. The
//! keys are split into pages of at most [`PAGE_MAX_BYTES`] encoded bytes,
//! stored under `i/p/<page id>`; the directory under `i/d` lists each page's
//! id with its first key, in key order. An insert touches one page (two when
//! it splits) and the directory only when a page's first key or the page set
//! changes, so the cost of a write does not grow with the number of keys
//! beyond the directory's size.
//!
//! Encoding (all integers little-endian): a page is `u32 count` then `count`
//! times `u16 len, len bytes`; the directory is `u32 next_id, u32 count` then
//! `count` times `u32 id, u16 len, len bytes`.

use conclave_sdk::{abort, storage};

/// Largest encoded page; a page that grows past it splits in two.
const PAGE_MAX_BYTES: usize = 16 * 1024;
/// Largest encoded directory (well under the host's value limit); with keys
/// of at most 256 bytes this still indexes tens of thousands of keys, and
/// millions of short ones.
const DIR_MAX_BYTES: usize = 60 * 1024;
const DIR_KEY: &[u8] = b"\0i/d";
const PAGE_PREFIX: &[u8] = b"\0i/p/";

struct Directory {
    next_id: u32,
    /// `(first key, page id)`, sorted by first key.
    pages: Vec<(String, u32)>,
}

impl Directory {
    fn load() -> Self {
        let Some(bytes) = storage::get(DIR_KEY) else {
            return Self {
                next_id: 0,
                pages: Vec::new(),
            };
        };
        let mut reader = Reader::new(&bytes);
        let next_id = reader.u32();
        let count = reader.u32();
        let pages = (0..count)
            .map(|_| {
                let id = reader.u32();
                (reader.string(), id)
            })
            .collect();
        reader.finish();
        Self { next_id, pages }
    }

    fn save(&self) {
        let mut out = Vec::new();
        put_u32(&mut out, self.next_id);
        put_u32(&mut out, len_u32(self.pages.len()));
        for (first, id) in &self.pages {
            put_u32(&mut out, *id);
            put_str(&mut out, first);
        }
        if out.len() > DIR_MAX_BYTES {
            abort("the key index is full: delete keys before adding new ones");
        }
        storage::set(DIR_KEY, &out);
    }

    fn allocate(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = match id.checked_add(1) {
            Some(next) => next,
            None => abort("the key index ran out of page ids"),
        };
        id
    }

    /// Slot of the page that holds `key` or would hold it: the last page
    /// whose first key is `<= key`, or the first page.
    fn locate(&self, key: &str) -> usize {
        self.pages
            .partition_point(|(first, _)| first.as_str() <= key)
            .saturating_sub(1)
    }
}

fn page_key(id: u32) -> Vec<u8> {
    [PAGE_PREFIX, &id.to_be_bytes()].concat()
}

fn load_page(id: u32) -> Vec<String> {
    let Some(bytes) = storage::get(&page_key(id)) else {
        abort(&format!("corrupt key index: page {id} is missing"));
    };
    let mut reader = Reader::new(&bytes);
    let count = reader.u32();
    let keys = (0..count).map(|_| reader.string()).collect();
    reader.finish();
    keys
}

fn save_page(id: u32, keys: &[String]) {
    let mut out = Vec::new();
    put_u32(&mut out, len_u32(keys.len()));
    for key in keys {
        put_str(&mut out, key);
    }
    storage::set(&page_key(id), &out);
}

fn encoded_page_len(keys: &[String]) -> usize {
    4 + keys.iter().map(|key| 2 + key.len()).sum::<usize>()
}

fn search(keys: &[String], key: &str) -> Result<usize, usize> {
    keys.binary_search_by(|probe| probe.as_str().cmp(key))
}

/// Adds `key` to the index (no effect if present).
pub fn insert(key: &str) {
    let mut dir = Directory::load();
    if dir.pages.is_empty() {
        let id = dir.allocate();
        save_page(id, &[key.to_owned()]);
        dir.pages.push((key.to_owned(), id));
        dir.save();
        return;
    }
    let slot = dir.locate(key);
    let id = dir.pages[slot].1;
    let mut keys = load_page(id);
    let Err(pos) = search(&keys, key) else {
        return;
    };
    keys.insert(pos, key.to_owned());
    let mut dir_changed = false;
    if pos == 0 {
        dir.pages[slot].0 = key.to_owned();
        dir_changed = true;
    }
    if encoded_page_len(&keys) > PAGE_MAX_BYTES {
        let right = keys.split_off(keys.len() / 2);
        let right_id = dir.allocate();
        dir.pages.insert(slot + 1, (right[0].clone(), right_id));
        save_page(right_id, &right);
        dir_changed = true;
    }
    save_page(id, &keys);
    if dir_changed {
        dir.save();
    }
}

/// Removes `key` from the index (no effect if absent).
pub fn remove(key: &str) {
    let mut dir = Directory::load();
    if dir.pages.is_empty() {
        return;
    }
    let slot = dir.locate(key);
    let id = dir.pages[slot].1;
    let mut keys = load_page(id);
    let Ok(pos) = search(&keys, key) else {
        return;
    };
    keys.remove(pos);
    if keys.is_empty() {
        storage::remove(&page_key(id));
        dir.pages.remove(slot);
        dir.save();
        return;
    }
    save_page(id, &keys);
    if pos == 0 {
        dir.pages[slot].0 = keys[0].clone();
        dir.save();
    }
}

/// Up to `limit` keys starting with `prefix`, in order, skipping keys up to
/// and including `after` when given.
pub fn scan(prefix: &str, after: Option<&str>, limit: usize) -> Vec<String> {
    let mut found = Vec::new();
    if limit == 0 {
        return found;
    }
    let dir = Directory::load();
    let from = match after {
        Some(after) if after > prefix => after,
        _ => prefix,
    };
    for (_, id) in &dir.pages[dir.locate(from)..] {
        for key in load_page(*id) {
            if key.as_str() < prefix || after.is_some_and(|after| key.as_str() <= after) {
                continue;
            }
            if !key.starts_with(prefix) {
                // Keys with the prefix are contiguous: past them, stop.
                return found;
            }
            found.push(key);
            if found.len() == limit {
                return found;
            }
        }
    }
    found
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len).unwrap_or_else(|_| abort("key index entry count overflows u32"))
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, value: &str) {
    let len = u16::try_from(value.len()).unwrap_or_else(|_| abort("indexed key is too long"));
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(value.as_bytes());
}

/// Decoder over an index record; any malformation aborts the call.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self { bytes }
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        if self.bytes.len() < n {
            abort("corrupt key index: record is truncated");
        }
        let (head, rest) = self.bytes.split_at(n);
        self.bytes = rest;
        head
    }

    fn u32(&mut self) -> u32 {
        let mut buf = [0u8; 4];
        buf.copy_from_slice(self.take(4));
        u32::from_le_bytes(buf)
    }

    fn string(&mut self) -> String {
        let mut buf = [0u8; 2];
        buf.copy_from_slice(self.take(2));
        let len = usize::from(u16::from_le_bytes(buf));
        match std::str::from_utf8(self.take(len)) {
            Ok(s) => s.to_owned(),
            Err(_) => abort("corrupt key index: key is not UTF-8"),
        }
    }

    fn finish(self) {
        if !self.bytes.is_empty() {
            abort("corrupt key index: trailing bytes");
        }
    }
}
