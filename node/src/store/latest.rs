//! The values of each context's state at its latest committed version, as
//! far as they have been read or written since, kept in memory: executing
//! a block reads its txs' keys and senders' nonces at the parent version,
//! which is that one, and a read from RocksDB (an iterator's seek, then
//! opening the sealed value) costs more than the rest of a small tx.
//!
//! A value at a committed version never changes, so an entry is right for
//! as long as its context's `version` stays; a commit of the next version
//! moves the context on with the values it wrote, any other commit starts
//! it over with them. Reads at other versions go to RocksDB.

use std::collections::HashMap;

use conclave_consensus::ContextId;
use jmt::{KeyHash, OwnedValue, Version};
use parking_lot::Mutex;

/// Bytes of values kept over all contexts, at most; past it the cache
/// starts over.
const MAX_BYTES: usize = 64 << 20;

/// What a value costs the bound beyond its bytes.
const ENTRY_BYTES: usize = 64;

#[derive(Default)]
pub(super) struct LatestValues(Mutex<Inner>);

#[derive(Default)]
struct Inner {
    contexts: HashMap<ContextId, Latest>,
    bytes: usize,
}

struct Latest {
    version: Version,
    values: HashMap<KeyHash, Option<OwnedValue>>,
}

fn cost(value: &Option<OwnedValue>) -> usize {
    ENTRY_BYTES + value.as_ref().map_or(0, Vec::len)
}

impl Inner {
    fn put(&mut self, ctx: ContextId, version: Version, kh: KeyHash, value: Option<OwnedValue>) {
        let added = cost(&value);
        if self.bytes + added > MAX_BYTES {
            self.contexts.clear();
            self.bytes = 0;
        }
        let latest = self.contexts.entry(ctx).or_insert_with(|| Latest {
            version,
            values: HashMap::new(),
        });
        if latest.version != version {
            return;
        }
        self.bytes += added;
        if let Some(old) = latest.values.insert(kh, value) {
            self.bytes -= cost(&old);
        }
    }

    fn forget(&mut self, ctx: &ContextId) {
        if let Some(old) = self.contexts.remove(ctx) {
            self.bytes -= old.values.values().map(cost).sum::<usize>();
        }
    }
}

impl LatestValues {
    /// The value of `kh` at `version`, if kept.
    pub(super) fn get(
        &self,
        ctx: &ContextId,
        kh: &KeyHash,
        version: Version,
    ) -> Option<Option<OwnedValue>> {
        let inner = self.0.lock();
        let latest = inner.contexts.get(ctx)?;
        if latest.version != version {
            return None;
        }
        latest.values.get(kh).cloned()
    }

    /// Keeps a value read at `version` from RocksDB, if `version` is the
    /// one kept for `ctx` (or none is).
    pub(super) fn fill(
        &self,
        ctx: &ContextId,
        kh: KeyHash,
        version: Version,
        value: &Option<OwnedValue>,
    ) {
        self.0.lock().put(*ctx, version, kh, value.clone());
    }

    /// `version` of `ctx` is committed with `written` (every value it
    /// wrote, `None` for a removal).
    pub(super) fn committed<'a>(
        &self,
        ctx: &ContextId,
        version: Version,
        written: impl IntoIterator<Item = (&'a KeyHash, &'a Option<OwnedValue>)>,
    ) {
        let mut inner = self.0.lock();
        match inner.contexts.get_mut(ctx) {
            Some(latest) if latest.version + 1 == version => latest.version = version,
            // Kept from further back (or never): start over at `version`.
            _ => inner.forget(ctx),
        }
        for (kh, value) in written {
            inner.put(*ctx, version, *kh, value.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kh(i: u8) -> KeyHash {
        KeyHash([i; 32])
    }

    const CTX: ContextId = ContextId([1; 32]);

    #[test]
    fn a_value_is_kept_for_its_version_only() {
        let cache = LatestValues::default();
        assert_eq!(cache.get(&CTX, &kh(1), 3), None);
        cache.fill(&CTX, kh(1), 3, &Some(b"a".to_vec()));
        cache.fill(&CTX, kh(2), 3, &None);
        assert_eq!(cache.get(&CTX, &kh(1), 3), Some(Some(b"a".to_vec())));
        assert_eq!(cache.get(&CTX, &kh(2), 3), Some(None));
        assert_eq!(cache.get(&CTX, &kh(1), 2), None);
        // A read at another version is not kept.
        cache.fill(&CTX, kh(3), 2, &Some(b"old".to_vec()));
        assert_eq!(cache.get(&CTX, &kh(3), 2), None);
        assert_eq!(cache.get(&ContextId([2; 32]), &kh(1), 3), None);
    }

    #[test]
    fn the_next_commit_moves_on_with_its_writes_and_any_other_starts_over() {
        let cache = LatestValues::default();
        cache.fill(&CTX, kh(1), 3, &Some(b"a".to_vec()));
        cache.fill(&CTX, kh(2), 3, &Some(b"b".to_vec()));
        let written = [(kh(2), Some(b"B".to_vec())), (kh(4), None)];
        cache.committed(&CTX, 4, written.iter().map(|(k, v)| (k, v)));
        assert_eq!(cache.get(&CTX, &kh(1), 4), Some(Some(b"a".to_vec())));
        assert_eq!(cache.get(&CTX, &kh(2), 4), Some(Some(b"B".to_vec())));
        assert_eq!(cache.get(&CTX, &kh(4), 4), Some(None));
        assert_eq!(cache.get(&CTX, &kh(1), 3), None);
        // A gap: what was kept may have changed in between.
        let written = [(kh(5), Some(b"e".to_vec()))];
        cache.committed(&CTX, 9, written.iter().map(|(k, v)| (k, v)));
        assert_eq!(cache.get(&CTX, &kh(1), 9), None);
        assert_eq!(cache.get(&CTX, &kh(5), 9), Some(Some(b"e".to_vec())));
        // A version read before it was committed is dropped by the commit.
        cache.fill(&CTX, kh(6), 10, &None);
        let written = [(kh(6), Some(b"f".to_vec()))];
        cache.committed(&CTX, 10, written.iter().map(|(k, v)| (k, v)));
        assert_eq!(cache.get(&CTX, &kh(6), 10), Some(Some(b"f".to_vec())));
    }

    #[test]
    fn the_cache_stays_bounded() {
        let cache = LatestValues::default();
        let big = Some(vec![0u8; 1 << 20]);
        for i in 0..200u8 {
            cache.fill(&ContextId([i; 32]), kh(i), 1, &big);
            assert!(cache.0.lock().bytes <= MAX_BYTES);
        }
        let inner = cache.0.lock();
        let counted: usize = inner
            .contexts
            .values()
            .flat_map(|l| l.values.values())
            .map(cost)
            .sum();
        assert_eq!(counted, inner.bytes);
    }
}
