//! A context's state as a Jellyfish Merkle Tree over RocksDB. Version `h`
//! is the state after the block at height `h` (version 0 is genesis).
//!
//! Keys are namespaced: app storage under `0x01 ‖ key`, node-kept system
//! entries (sender nonces) under `0x00 ‖ …`, so a guest can never touch
//! them. The tree is keyed by SHA-256 of the namespaced key: app keys
//! never reach RocksDB in clear, only their hashes do (in `jmt_nodes` leaves
//! and `jmt_values` keys).
//!
//! Values (`jmt_values`) are sealed under the storage key like all context
//! content (see `store/crypt.rs`); tree nodes (`jmt_nodes`) hold only
//! hashes and stay in clear, so that walking the tree costs no decryption.

use conclave_consensus::{ContextId, Hash32, MemberId};
use jmt::storage::{LeafNode, Node, NodeKey, TreeReader, TreeUpdateBatch};
use jmt::{JellyfishMerkleTree, KeyHash, OwnedValue, RootHash, Version};
use rocksdb::WriteBatch;
use sha2::Sha256;

use super::{decode, Store, StoreError, CF_JMT_NODES, CF_JMT_VALUES};

pub type Proof = jmt::proof::SparseMerkleProof<Sha256>;

pub fn app_key(key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(key.len() + 1);
    k.push(1);
    k.extend_from_slice(key);
    k
}

pub fn nonce_key(member: &MemberId) -> Vec<u8> {
    let mut k = b"\x00nonce/".to_vec();
    k.extend_from_slice(member.as_bytes());
    k
}

pub fn key_hash(namespaced: &[u8]) -> KeyHash {
    KeyHash::with::<Sha256>(namespaced)
}

fn node_key_bytes(ctx: &ContextId, key: &NodeKey) -> Result<Vec<u8>, StoreError> {
    let mut out = ctx.as_bytes().to_vec();
    borsh::to_writer(&mut out, key).map_err(|e| StoreError::Tree(e.to_string()))?;
    Ok(out)
}

fn value_key(ctx: &ContextId, kh: &KeyHash, version: Version) -> [u8; 72] {
    let mut k = [0u8; 72];
    k[..32].copy_from_slice(ctx.as_bytes());
    k[32..64].copy_from_slice(&kh.0);
    k[64..].copy_from_slice(&version.to_be_bytes());
    k
}

pub(super) fn write_tree_batch(
    store: &Store,
    batch: &mut WriteBatch,
    ctx: &ContextId,
    update: &TreeUpdateBatch,
) -> Result<(), StoreError> {
    let nodes = store.cf(CF_JMT_NODES)?;
    for (key, node) in update.node_batch.nodes() {
        let value = borsh::to_vec(node).map_err(|e| StoreError::Tree(e.to_string()))?;
        batch.put_cf(nodes, node_key_bytes(ctx, key)?, value);
    }
    let values = store.cf(CF_JMT_VALUES)?;
    let sealer = store.storage_key();
    for ((version, kh), value) in update.node_batch.values() {
        let key = value_key(ctx, kh, *version);
        let sealed = sealer.seal_with(CF_JMT_VALUES, &key, |buf| borsh::to_writer(buf, value))?;
        batch.put_cf(values, key, sealed);
    }
    Ok(())
}

/// The values `update` writes at `version` (`None`: removed).
pub(super) fn written(
    update: &TreeUpdateBatch,
    version: Version,
) -> impl Iterator<Item = (&KeyHash, &Option<OwnedValue>)> {
    update
        .node_batch
        .values()
        .iter()
        .filter(move |((v, _), _)| *v == version)
        .map(|((_, kh), value)| (kh, value))
}

/// Reads one context's state tree.
#[derive(Clone)]
pub struct StateReader {
    store: Store,
    ctx: ContextId,
}

impl StateReader {
    pub(super) fn new(store: Store, ctx: ContextId) -> Self {
        Self { store, ctx }
    }

    /// [`Self::value_at`] through the values kept in memory for the
    /// latest version (`store/latest.rs`), for execution's reads; proofs,
    /// walks and checks read the disk.
    pub fn kept_value_at(
        &self,
        kh: KeyHash,
        version: Version,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(value) = self.store.latest.get(&self.ctx, &kh, version) {
            return Ok(value);
        }
        let value = self.value_at(kh, version)?;
        self.store.latest.fill(&self.ctx, kh, version, &value);
        Ok(value)
    }

    /// The value of `key_hash` as of `version` (latest write at or below it).
    pub fn value_at(&self, kh: KeyHash, version: Version) -> Result<Option<Vec<u8>>, StoreError> {
        let cf = self.store.cf(CF_JMT_VALUES)?;
        let target = value_key(&self.ctx, &kh, version);
        let mut it = self.store.db().raw_iterator_cf(cf);
        it.seek_for_prev(target);
        it.status()?;
        match (it.key(), it.value()) {
            (Some(k), Some(v)) if k.len() == 72 && k[..64] == target[..64] => {
                let mut sealed = v.to_vec();
                let plain = self
                    .store
                    .storage_key()
                    .open(CF_JMT_VALUES, k, &mut sealed)?;
                decode::<Option<Vec<u8>>>(CF_JMT_VALUES, plain)
            }
            _ => Ok(None),
        }
    }

    /// Computes the root and the tree changes of applying `writes` on top of
    /// `version - 1`, without writing anything.
    ///
    /// A block's writes usually only set values: those go into the tree in
    /// one pass over the keys sorted ([`Self::inserted`]), each touched node
    /// read, rebuilt and hashed once. A set that removes a key, or writes
    /// nothing, goes in key by key ([`Self::put_one_by_one`]), as the
    /// one-pass insertion cannot remove. Both give the same tree: its shape
    /// depends only on the keys it holds.
    pub fn compute_update(
        &self,
        writes: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
        version: Version,
    ) -> Result<(Hash32, TreeUpdateBatch), StoreError> {
        let set: Vec<(KeyHash, Option<OwnedValue>)> =
            writes.into_iter().map(|(k, v)| (key_hash(&k), v)).collect();
        if set.is_empty() || set.iter().any(|(_, v)| v.is_none()) {
            return self.put_one_by_one(set, version);
        }
        let values = set.into_iter().filter_map(|(k, v)| Some((k, v?)));
        self.inserted(values.collect(), version)
    }

    /// `values` (at least one) put into the tree in one pass.
    pub(super) fn inserted(
        &self,
        values: Vec<(KeyHash, OwnedValue)>,
        version: Version,
    ) -> Result<(Hash32, TreeUpdateBatch), StoreError> {
        let tree = JellyfishMerkleTree::<_, Sha256>::new(self);
        let (roots, batch) = tree
            .batch_put_value_sets(vec![values], None, version)
            .map_err(|e| StoreError::Tree(e.to_string()))?;
        let root = roots
            .first()
            .ok_or_else(|| StoreError::Tree("no root for the inserted values".into()))?;
        Ok((Hash32(root.0), batch))
    }

    /// `set` put into the tree one key after the other.
    pub(super) fn put_one_by_one(
        &self,
        set: Vec<(KeyHash, Option<OwnedValue>)>,
        version: Version,
    ) -> Result<(Hash32, TreeUpdateBatch), StoreError> {
        let tree = JellyfishMerkleTree::<_, Sha256>::new(self);
        let (root, batch) = tree
            .put_value_set(set, version)
            .map_err(|e| StoreError::Tree(e.to_string()))?;
        Ok((Hash32(root.0), batch))
    }

    /// Reads every leaf of the tree at `version`, and its value: the
    /// number of keys, or the first node or value that is missing or
    /// unreadable.
    pub fn walk(&self, version: Version) -> Result<u64, StoreError> {
        let leaves = jmt::JellyfishMerkleIterator::new(
            std::sync::Arc::new(self.clone()),
            version,
            KeyHash([0; 32]),
        )
        .map_err(|e| StoreError::Tree(e.to_string()))?;
        let mut keys = 0;
        for leaf in leaves {
            leaf.map_err(|e| StoreError::Tree(e.to_string()))?;
            keys += 1;
        }
        Ok(keys)
    }

    pub fn root(&self, version: Version) -> Result<Hash32, StoreError> {
        let tree = JellyfishMerkleTree::<_, Sha256>::new(self);
        tree.get_root_hash(version)
            .map(|r| Hash32(r.0))
            .map_err(|e| StoreError::Tree(e.to_string()))
    }

    /// The value of a namespaced key at `version` with a proof against that
    /// version's root.
    pub fn get_with_proof(
        &self,
        namespaced: &[u8],
        version: Version,
    ) -> Result<(Option<OwnedValue>, Proof), StoreError> {
        let tree = JellyfishMerkleTree::<_, Sha256>::new(self);
        tree.get_with_proof(key_hash(namespaced), version)
            .map_err(|e| StoreError::Tree(e.to_string()))
    }
}

/// Checks a `state_get` proof: `value` (or its absence) under the namespaced
/// key, against `root`.
pub fn verify_proof(
    proof: &Proof,
    root: Hash32,
    namespaced: &[u8],
    value: Option<&[u8]>,
) -> Result<(), String> {
    proof
        .verify(RootHash(root.0), key_hash(namespaced), value)
        .map_err(|e| e.to_string())
}

impl TreeReader for StateReader {
    fn get_node_option(&self, node_key: &NodeKey) -> anyhow::Result<Option<Node>> {
        let cf = self.store.cf(CF_JMT_NODES)?;
        let key = node_key_bytes(&self.ctx, node_key)?;
        match self.store.db().get_cf(cf, key)? {
            Some(bytes) => Ok(Some(decode(CF_JMT_NODES, &bytes)?)),
            None => Ok(None),
        }
    }

    fn get_value_option(
        &self,
        max_version: Version,
        key_hash: KeyHash,
    ) -> anyhow::Result<Option<OwnedValue>> {
        Ok(self.value_at(key_hash, max_version)?)
    }

    fn get_rightmost_leaf(&self) -> anyhow::Result<Option<(NodeKey, LeafNode)>> {
        // Only tree restoration (state sync from a snapshot) needs this, and
        // Conclave syncs by replaying blocks instead.
        anyhow::bail!("state tree restoration is not supported; sync by replaying blocks")
    }
}
