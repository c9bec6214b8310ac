//! The read-at-a-height view of a context's state: the committed state at
//! a parent height under the pending writes of a block in progress. Block
//! execution writes into it; every other reader (admission, the roster,
//! RPC views) uses it with no writes.

use std::collections::BTreeMap;

use borsh::BorshDeserialize;
use conclave_consensus::{Height, MemberId};

use super::{key_hash, nonce_key, StateReader, StoreError};

/// Pending writes of a block in progress over the parent state.
pub struct Overlay<'a> {
    base: &'a StateReader,
    parent: u64,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl<'a> Overlay<'a> {
    pub fn new(base: &'a StateReader, parent: Height) -> Self {
        Self {
            base,
            parent: parent.0,
            writes: BTreeMap::new(),
        }
    }

    /// A value by its namespaced key (node or app namespace), as of the
    /// writes so far.
    pub fn get(&self, namespaced: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.writes.get(namespaced) {
            return Ok(v.clone());
        }
        self.base.kept_value_at(key_hash(namespaced), self.parent)
    }

    /// Writes (`None`: removes) a value by its namespaced key.
    pub fn put(&mut self, namespaced: Vec<u8>, value: Option<Vec<u8>>) {
        self.writes.insert(namespaced, value);
    }

    /// Writes many values.
    pub fn extend(&mut self, writes: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>) {
        self.writes.extend(writes);
    }

    /// The writes so far, sorted by key.
    pub fn into_writes(self) -> BTreeMap<Vec<u8>, Option<Vec<u8>>> {
        self.writes
    }

    /// `member`'s last nonce as of the writes so far (0: none yet).
    pub fn nonce(&self, member: &MemberId) -> Result<u64, StoreError> {
        Ok(match self.get(&nonce_key(member))? {
            Some(bytes) => u64::try_from_slice(&bytes).map_err(|e| StoreError::Corrupt {
                cf: "state",
                msg: format!("nonce: {e}"),
            })?,
            None => 0,
        })
    }
}
