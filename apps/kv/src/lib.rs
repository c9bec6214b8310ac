//! `kv`: a key-value store app for Conclave contexts.
//!
//! Methods (arguments and results are JSON):
//!
//! - `set {"key", "value"}`: stores a string value; emits event `set` with
//!   data `{"key"}`.
//! - `get {"key"}` → `{"key", "value"}`, `value` is `null` if absent.
//! - `delete {"key"}` → `{"key", "deleted"}`; emits event `delete` if the
//!   key existed.
//! - `list {"prefix", "limit"?, "after"?}` → `[{"key", "value"}, ..]` sorted
//!   by key: up to `limit` (default 100, at most 1000) entries whose key
//!   starts with `prefix` and, if `after` is given, sorts after it (for
//!   paging).
//!
//! Storage layout: a user value lives at its key itself (so `state_get`
//! reads it with a proof); the host has no range scan, so a sorted index of
//! the keys lives under `\0i/` (see [`index`]), a prefix user keys cannot
//! have.

mod index;

use conclave_sdk::{abort, emit_event, input_json, output_json, storage};
use serde::{Deserialize, Serialize};

/// Longest key accepted, in bytes.
const MAX_KEY_BYTES: usize = 256;
/// Longest value accepted, in bytes.
const MAX_VALUE_BYTES: usize = 32 * 1024;
/// Entries returned by `list` when no limit is given.
const DEFAULT_LIST_LIMIT: usize = 100;
/// Most entries one `list` call returns.
const MAX_LIST_LIMIT: usize = 1000;
/// Storage prefix of user values: none, so a key's value is readable (with a
/// proof) at the key itself through `state_get`. The index lives under
/// `\0i/`, which user keys cannot start with.
const VALUE_PREFIX: &[u8] = b"";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetArgs {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyArgs {
    key: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListArgs {
    prefix: String,
    limit: Option<usize>,
    after: Option<String>,
}

#[derive(Serialize)]
struct Entry<'a> {
    key: &'a str,
    value: Option<String>,
}

#[derive(Serialize)]
struct Deleted<'a> {
    key: &'a str,
    deleted: bool,
}

#[derive(Serialize)]
struct KeyEvent<'a> {
    key: &'a str,
}

fn check_key(key: &str) {
    if key.is_empty() {
        abort("key must not be empty");
    }
    if key.starts_with('\0') {
        abort("keys starting with NUL are reserved");
    }
    if key.len() > MAX_KEY_BYTES {
        abort(&format!(
            "key is {} bytes, the limit is {MAX_KEY_BYTES}",
            key.len()
        ));
    }
}

fn value_key(key: &str) -> Vec<u8> {
    [VALUE_PREFIX, key.as_bytes()].concat()
}

fn read_value(key: &str) -> Option<String> {
    let bytes = storage::get(&value_key(key))?;
    match String::from_utf8(bytes) {
        Ok(value) => Some(value),
        Err(_) => abort(&format!("stored value of {key:?} is not UTF-8")),
    }
}

fn event_data(key: &str) -> Vec<u8> {
    serde_json::to_vec(&KeyEvent { key }).unwrap_or_default()
}

fn set() {
    let args: SetArgs = input_json();
    check_key(&args.key);
    if args.value.len() > MAX_VALUE_BYTES {
        abort(&format!(
            "value is {} bytes, the limit is {MAX_VALUE_BYTES}",
            args.value.len()
        ));
    }
    let storage_key = value_key(&args.key);
    if !storage::contains(&storage_key) {
        index::insert(&args.key);
    }
    storage::set(&storage_key, args.value.as_bytes());
    emit_event("set", &event_data(&args.key));
}

fn get() {
    let args: KeyArgs = input_json();
    check_key(&args.key);
    let value = read_value(&args.key);
    output_json(&Entry {
        key: &args.key,
        value,
    });
}

fn delete() {
    let args: KeyArgs = input_json();
    check_key(&args.key);
    let storage_key = value_key(&args.key);
    let existed = storage::contains(&storage_key);
    if existed {
        storage::remove(&storage_key);
        index::remove(&args.key);
        emit_event("delete", &event_data(&args.key));
    }
    output_json(&Deleted {
        key: &args.key,
        deleted: existed,
    });
}

fn list() {
    let args: ListArgs = input_json();
    if args.prefix.len() > MAX_KEY_BYTES {
        abort(&format!(
            "prefix is {} bytes, the limit is {MAX_KEY_BYTES}",
            args.prefix.len()
        ));
    }
    let limit = args.limit.unwrap_or(DEFAULT_LIST_LIMIT);
    if limit > MAX_LIST_LIMIT {
        abort(&format!("limit is {limit}, at most {MAX_LIST_LIMIT}"));
    }
    let keys = index::scan(&args.prefix, args.after.as_deref(), limit);
    let entries: Vec<Entry<'_>> = keys
        .iter()
        .map(|key| Entry {
            key,
            value: read_value(key),
        })
        .collect();
    output_json(&entries);
}

conclave_sdk::methods!(set, get, delete, list);
