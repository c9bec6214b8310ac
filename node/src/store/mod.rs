//! RocksDB storage. Column families:
//!
//! | cf | key | value |
//! |---|---|---|
//! | `contexts` | context id | [`ContextRecord`] (genesis + tip) |
//! | `blocks` | context id ‖ height (BE) | [`Block`] |
//! | `certs` | context id ‖ height (BE) | [`StoredCertificate`] |
//! | `txs` | tx hash | [`TxRecord`] (where it committed, its receipt) |
//! | `jmt_nodes` | context id ‖ borsh(NodeKey) | borsh(Node) |
//! | `jmt_values` | context id ‖ key hash ‖ version (BE) | borsh(Option<value>) |
//! | `blobs` | app hash | wasm bytes |
//! | `actions` | context id ‖ height (BE) ‖ index (u32 BE) | [`ActionRecord`] |
//! | `action_ids` | action id | context id ‖ height (BE) ‖ index (u32 BE) |
//! | `checkpoints` | context id ‖ height (BE) | [`CheckpointRecord`] |
//! | `meta` | name | the storage key check record |
//!
//! Encryption at rest (see [`crypt`]): the values that carry context
//! content are sealed under the node's [`StorageKey`]: `contexts` (the
//! genesis names the members' keys and the app), `blocks` and
//! `pending_blocks` (txs with their arguments), `txs` (receipts: outputs,
//! events, errors), `jmt_values` (the state), `blobs` (the app's wasm),
//! `actions` (the outbox's requests), `context_keys` (the keys that seal
//! the contexts' traffic) and the `meta` check record. Left in
//! clear, because they hold only hashes, signatures and positions that say
//! nothing of the content: `jmt_nodes` (tree nodes: child hashes, and in
//! leaves a key hash and a value hash), `certs` (commit signatures over a
//! block hash), `checkpoints` (roots and BLS aggregates, published to the
//! anchors anyway) and `action_ids` (id to position). A value hash in a
//! leaf does let someone holding the disk confirm a guess of a low-entropy
//! value, and a key hash a guess of an app key; the apps' data themselves
//! are not on disk in clear. RocksDB keys are never encrypted: they are
//! context ids, heights, tx hashes, key hashes and versions, never app data
//! (app keys reach the store only hashed, see [`tree`]).
//!
//! A database is bound to its key by the `meta` check record: [`Store::open`]
//! with another key fails with "storage key does not match this database"
//! and writes no record (RocksDB may still rotate its own log files).
//!
//! A decided block, its certificate, its receipts, its outbox, its state
//! changes and the new tip are written in one write batch: after a crash either
//! all of a height is there or none of it. A context writes it unsynced
//! and syncs the log alongside the next height (`Store::sync_log_alongside`,
//! waited for before anything of that height is durable in its WAL or sign
//! guard: `wal::LogParts`); the blocks of a catch-up answer are synced
//! together once after the last of them (`CommitBatch::durable`,
//! `Store::sync_log`).

mod check;
mod checkpoints;
mod commit;
mod crypt;
mod durability;
mod evidence;
mod latest;
mod overlay;
mod pending_txs;
mod records;
#[cfg(test)]
mod tests;
mod tree;

use std::path::Path;
use std::sync::Arc;

use borsh::{BorshDeserialize, BorshSerialize};
use conclave_consensus::codec::StoredCertificate;
use conclave_consensus::{Block, ContextId, Hash32, Height};
use jmt::storage::TreeUpdateBatch;
use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};
use thiserror::Error;

pub use check::{is_damage, repair_files, Depth, Scanned};
pub use commit::CommitBatch;
pub use crypt::StorageKey;
pub use durability::LogSync;
pub use overlay::Overlay;
use records::TxRecordRef;
pub use records::{
    ActionRecord, AnchorDomain, CheckpointRecord, ContextRecord, DomainCertificate, Genesis,
    MemberInfo, Receipt, TxRecord, TxStatus, DEFAULT_CHECKPOINT_INTERVAL,
};
pub use tree::{app_key, key_hash, nonce_key, verify_proof, Proof, StateReader};

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("rocksdb: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("corrupt record in {cf}: {msg}")]
    Corrupt { cf: &'static str, msg: String },
    #[error("state tree: {0}")]
    Tree(String),
    /// A sync of the log run on another thread did not complete (it
    /// panicked, or the runtime shut down first): the writes before it may
    /// not be durable.
    #[error("the log sync did not complete")]
    SyncLost,
    /// A commit's sync failed: nothing of a later height may be durable.
    #[error("a commit could not be made durable: {0}")]
    CommitNotDurable(String),
    #[error("cannot encode a record for {cf}: {msg}")]
    Encode { cf: &'static str, msg: String },
    #[error("storage key does not match this database (home/keys/storage.key is not the key it was written under, or the check record is damaged)")]
    WrongKey,
    #[error("the database holds data but no storage key check record: it was written before encryption at rest (or is damaged), and this version cannot read it; move the data directory away and let the node start afresh")]
    NotEncrypted,
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

pub(crate) const CF_CONTEXTS: &str = "contexts";
pub(crate) const CF_BLOCKS: &str = "blocks";
pub(crate) const CF_CERTS: &str = "certs";
pub(crate) const CF_TXS: &str = "txs";
pub(crate) const CF_JMT_NODES: &str = "jmt_nodes";
pub(crate) const CF_JMT_VALUES: &str = "jmt_values";
pub(crate) const CF_BLOBS: &str = "blobs";
/// Blocks proposed or received for heights not decided yet, kept so that a
/// restarted node can re-propose (or commit) the block its WAL refers to.
pub(crate) const CF_PENDING: &str = "pending_blocks";
pub(crate) const CF_ACTIONS: &str = "actions";
pub(crate) const CF_ACTION_IDS: &str = "action_ids";
pub(crate) const CF_CHECKPOINTS: &str = "checkpoints";
/// This node's context keys by (context, key epoch): the symmetric keys
/// that seal the context's traffic (`crate::seal`). Sealed at rest.
pub(crate) const CF_CONTEXT_KEYS: &str = "context_keys";
/// The storage key check record.
pub(crate) const CF_META: &str = "meta";
/// Evidence of equivocation (`store/evidence.rs`).
pub(crate) const CF_EVIDENCE: &str = "evidence";
/// Txs acknowledged and not committed yet (`store/pending_txs.rs`).
pub(crate) const CF_PENDING_TXS: &str = "pending_txs";
/// RocksDB's own write-ahead logs, all column families together, at most
/// (about): what a restart replays.
const MAX_TOTAL_WAL_BYTES: u64 = 128 << 20;
/// Memtables of all column families together, at most.
const MAX_MEMTABLE_BYTES: usize = 128 << 20;

const ALL_CFS: [&str; 15] = [
    CF_CONTEXT_KEYS,
    CF_CONTEXTS,
    CF_BLOCKS,
    CF_CERTS,
    CF_TXS,
    CF_JMT_NODES,
    CF_JMT_VALUES,
    CF_BLOBS,
    CF_PENDING,
    CF_ACTIONS,
    CF_ACTION_IDS,
    CF_CHECKPOINTS,
    CF_META,
    CF_EVIDENCE,
    CF_PENDING_TXS,
];

/// Key in `meta` of a record sealed under the storage key, so that a wrong
/// key is found at open rather than at the first read.
const CHECK_KEY: &[u8] = b"storage_key_check";
const CHECK_PLAINTEXT: &[u8] = b"conclave/storage-key-check/v1";

/// The node's database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<DB>,
    key: StorageKey,
    latest: Arc<latest::LatestValues>,
    /// Submitted txs queued for one write ([`Store::keep_pending_tx`]).
    keeping: Arc<parking_lot::Mutex<pending_txs::Keeping>>,
}

fn decode<T: BorshDeserialize>(cf: &'static str, bytes: &[u8]) -> Result<T> {
    borsh::from_slice(bytes).map_err(|e| StoreError::Corrupt {
        cf,
        msg: e.to_string(),
    })
}

fn height_key(ctx: &ContextId, h: Height) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(ctx.as_bytes());
    k[32..].copy_from_slice(&h.0.to_be_bytes());
    k
}

/// A raw key and value read from a column family.
type KeyValue = (Box<[u8]>, Box<[u8]>);

fn pending_key(ctx: &ContextId, h: Height, hash: &Hash32) -> [u8; 72] {
    let mut k = [0u8; 72];
    k[..40].copy_from_slice(&height_key(ctx, h));
    k[40..].copy_from_slice(hash.as_bytes());
    k
}

fn action_key(ctx: &ContextId, h: Height, index: u32) -> [u8; 44] {
    let mut k = [0u8; 44];
    k[..40].copy_from_slice(&height_key(ctx, h));
    k[40..].copy_from_slice(&index.to_be_bytes());
    k
}

/// Where an action sits: its context, height and outbox index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ActionPosition {
    pub context: ContextId,
    pub height: Height,
    pub index: u32,
}

fn decode_action_key(k: &[u8]) -> Result<ActionPosition> {
    let bad = || StoreError::Corrupt {
        cf: CF_ACTION_IDS,
        msg: format!("action key of {} bytes", k.len()),
    };
    if k.len() != 44 {
        return Err(bad());
    }
    let mut ctx = [0u8; 32];
    ctx.copy_from_slice(&k[..32]);
    let mut h = [0u8; 8];
    h.copy_from_slice(&k[32..40]);
    let mut i = [0u8; 4];
    i.copy_from_slice(&k[40..]);
    Ok(ActionPosition {
        context: ContextId(ctx),
        height: Height(u64::from_be_bytes(h)),
        index: u32::from_be_bytes(i),
    })
}

/// The options of column family `name`. The tx records and the kept txs
/// are keyed by tx hash (after the context, for kept txs) and read by key,
/// not in order: their memtables hash a key's first bytes to a bucket (a
/// short sorted list) instead of keeping one skip list of all keys, where
/// each insert of a key hashed at random searched the list from its top, a
/// cache miss a level (about 7 % of a saturated validator's CPU). Reading
/// them in key order (a kept-tx scan at start, a checksum check) needs
/// `ReadOptions::set_total_order_seek` ([`total_order`]).
fn cf_options(name: &str) -> Options {
    let hashed = match name {
        CF_TXS => Some((8, 1 << 18)),
        CF_PENDING_TXS => Some((32 + 8, 1 << 16)),
        _ => None,
    };
    let mut opts = Options::default();
    if let Some((prefix, buckets)) = hashed {
        opts.set_prefix_extractor(rocksdb::SliceTransform::create_fixed_prefix(prefix));
        opts.set_memtable_factory(rocksdb::MemtableFactory::HashLinkList {
            bucket_count: buckets,
        });
    }
    opts
}

/// Read options for reading a column family in key order, whatever its
/// memtable ([`cf_options`]).
pub(super) fn total_order() -> rocksdb::ReadOptions {
    let mut opts = rocksdb::ReadOptions::default();
    opts.set_total_order_seek(true);
    opts
}

impl Store {
    /// Opens (or creates) the database at `path`, whose context data is
    /// sealed under `key`. A new database is bound to `key`; an existing one
    /// opens only with the key it was written under
    /// ([`StoreError::WrongKey`] otherwise, and no record is written).
    pub fn open(path: &Path, key: &StorageKey) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_open_files(512);
        opts.set_keep_log_file_num(4);
        // RocksDB keeps a log file until every column family has flushed
        // what it holds, and by default lets them add up to 4 times all
        // memtables (3.5 GB here): a rarely written family pinned old logs,
        // and a restart replayed a gigabyte of them (over a minute). These
        // bound both the logs and the memtables.
        opts.set_max_total_wal_size(MAX_TOTAL_WAL_BYTES);
        opts.set_db_write_buffer_size(MAX_MEMTABLE_BYTES);
        // The hashed memtables (`cf_options`) take one writer at a time; a
        // node's writes are one batch per height or acknowledgement anyway.
        opts.set_allow_concurrent_memtable_write(false);
        let cfs = ALL_CFS
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, cf_options(name)));
        let db = DB::open_cf_descriptors(&opts, path, cfs)?;
        let store = Self {
            db: Arc::new(db),
            key: key.clone(),
            latest: Arc::default(),
            keeping: Arc::default(),
        };
        store.check_key()?;
        Ok(store)
    }

    /// Checks the `meta` check record against the key, or writes it into a
    /// database that is still empty.
    fn check_key(&self) -> Result<()> {
        let meta = self.cf(CF_META)?;
        match self.db.get_cf(meta, CHECK_KEY)? {
            Some(mut sealed) => match self.key.open(CF_META, CHECK_KEY, &mut sealed) {
                Ok(plain) if plain == CHECK_PLAINTEXT => Ok(()),
                _ => Err(StoreError::WrongKey),
            },
            None => {
                for cf in ALL_CFS {
                    let mut it = self.db.raw_iterator_cf_opt(self.cf(cf)?, total_order());
                    it.seek_to_first();
                    it.status()?;
                    if it.valid() {
                        return Err(StoreError::NotEncrypted);
                    }
                }
                let sealed = self.key.seal(CF_META, CHECK_KEY, CHECK_PLAINTEXT)?;
                self.db
                    .put_cf_opt(meta, CHECK_KEY, sealed, &Self::synced())?;
                Ok(())
            }
        }
    }

    /// Seals `value` for key `key` of the encrypted column family `cf`.
    fn seal<T: BorshSerialize + ?Sized>(
        &self,
        cf: &'static str,
        key: &[u8],
        value: &T,
    ) -> Result<Vec<u8>> {
        self.key
            .seal_with(cf, key, |buf| borsh::to_writer(buf, value))
    }

    /// Opens and decodes a value read from key `key` of the encrypted
    /// column family `cf`.
    fn unseal<T: BorshDeserialize>(
        &self,
        cf: &'static str,
        key: &[u8],
        mut sealed: impl AsMut<[u8]>,
    ) -> Result<T> {
        decode(cf, self.key.open(cf, key, sealed.as_mut())?)
    }

    /// Reads and opens key `key` of the encrypted column family `cf`.
    fn get_sealed<T: BorshDeserialize>(&self, cf: &'static str, key: &[u8]) -> Result<Option<T>> {
        self.db
            .get_cf(self.cf(cf)?, key)?
            .map(|v| self.unseal(cf, key, v))
            .transpose()
    }

    fn cf(&self, name: &'static str) -> Result<&rocksdb::ColumnFamily> {
        self.db.cf_handle(name).ok_or(StoreError::Corrupt {
            cf: name,
            msg: "missing column family".into(),
        })
    }

    fn synced() -> WriteOptions {
        let mut w = WriteOptions::default();
        w.set_sync(true);
        w
    }

    pub fn put_blob(&self, hash: &Hash32, bytes: &[u8]) -> Result<()> {
        let sealed = self.key.seal(CF_BLOBS, hash.as_bytes(), bytes)?;
        self.db
            .put_cf_opt(self.cf(CF_BLOBS)?, hash.as_bytes(), sealed, &Self::synced())?;
        Ok(())
    }

    pub fn blob(&self, hash: &Hash32) -> Result<Option<Vec<u8>>> {
        self.db
            .get_cf(self.cf(CF_BLOBS)?, hash.as_bytes())?
            .map(|v| self.key.open_vec(CF_BLOBS, hash.as_bytes(), v))
            .transpose()
    }

    /// Writes a new context's record and its genesis state (version 0).
    pub fn create_context(&self, record: &ContextRecord, tree: &TreeUpdateBatch) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_CONTEXTS)?,
            record.id.as_bytes(),
            self.seal(CF_CONTEXTS, record.id.as_bytes(), record)?,
        );
        tree::write_tree_batch(self, &mut batch, &record.id, tree)?;
        self.db.write_opt(batch, &Self::synced())?;
        self.latest.committed(&record.id, 0, tree::written(tree, 0));
        Ok(())
    }

    pub fn context(&self, id: &ContextId) -> Result<Option<ContextRecord>> {
        self.get_sealed(CF_CONTEXTS, id.as_bytes())
    }

    pub fn contexts(&self) -> Result<Vec<ContextRecord>> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_CONTEXTS)?, rocksdb::IteratorMode::Start)
        {
            let (k, v) = item?;
            out.push(self.unseal(CF_CONTEXTS, &k, v)?);
        }
        Ok(out)
    }

    /// Keeps a candidate block of a height in progress. `sync` makes it
    /// durable before returning: a proposer must not let a proposal leave
    /// for a block it could lose in a crash (or must sync the log before
    /// it does).
    pub fn put_pending_block(&self, block: &Block, sync: bool) -> Result<()> {
        let key = pending_key(&block.header.context_id, block.height(), &block.hash());
        let bytes = self.seal(CF_PENDING, &key, block)?;
        let mut opts = WriteOptions::default();
        opts.set_sync(sync);
        self.db
            .put_cf_opt(self.cf(CF_PENDING)?, key, bytes, &opts)?;
        Ok(())
    }

    /// The candidate blocks kept for `ctx` at height `h`.
    pub fn pending_blocks(&self, ctx: &ContextId, h: Height) -> Result<Vec<Block>> {
        let prefix = height_key(ctx, h);
        self.scan(CF_PENDING, &prefix, &prefix, usize::MAX)?
            .into_iter()
            .map(|(k, v)| self.unseal(CF_PENDING, &k, v))
            .collect()
    }

    /// Up to `limit` entries of `cf` from key `start` on, while their keys
    /// start with `prefix`.
    fn scan(
        &self,
        cf: &'static str,
        start: &[u8],
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<KeyValue>> {
        let mode = rocksdb::IteratorMode::From(start, rocksdb::Direction::Forward);
        let mut out = Vec::new();
        for item in self.db.iterator_cf_opt(self.cf(cf)?, total_order(), mode) {
            let (k, v) = item?;
            if out.len() >= limit || !k.starts_with(prefix) {
                break;
            }
            out.push((k, v));
        }
        Ok(out)
    }

    /// Keeps this node's key of `ctx` for one key epoch (synced: traffic
    /// sealed under it may be acknowledged right after).
    pub fn put_context_key(&self, ctx: &ContextId, key: &crate::seal::ContextKey) -> Result<()> {
        let mut k = ctx.as_bytes().to_vec();
        k.extend_from_slice(&key.epoch.to_be_bytes());
        let sealed = self.key.seal(CF_CONTEXT_KEYS, &k, key.secret())?;
        self.db
            .put_cf_opt(self.cf(CF_CONTEXT_KEYS)?, &k, sealed, &Self::synced())?;
        Ok(())
    }

    /// This node's keys of `ctx`, by ascending epoch.
    pub fn context_keys(&self, ctx: &ContextId) -> Result<Vec<crate::seal::ContextKey>> {
        let rows = self.scan(CF_CONTEXT_KEYS, ctx.as_bytes(), ctx.as_bytes(), usize::MAX)?;
        rows.into_iter()
            .map(|(k, v)| {
                let bad = || StoreError::Corrupt {
                    cf: CF_CONTEXT_KEYS,
                    msg: "malformed key record".into(),
                };
                let epoch: [u8; 8] = k
                    .get(32..40)
                    .ok_or_else(bad)?
                    .try_into()
                    .map_err(|_| bad())?;
                let v = self.key.open_vec(CF_CONTEXT_KEYS, &k, v.into_vec())?;
                let key: [u8; 32] = v.as_slice().try_into().map_err(|_| bad())?;
                Ok(crate::seal::ContextKey::from_bytes(
                    u64::from_be_bytes(epoch),
                    key,
                ))
            })
            .collect()
    }

    /// This node's key of `ctx` for `epoch`.
    pub fn context_key(
        &self,
        ctx: &ContextId,
        epoch: u64,
    ) -> Result<Option<crate::seal::ContextKey>> {
        Ok(self
            .context_keys(ctx)?
            .into_iter()
            .find(|k| k.epoch == epoch))
    }

    pub fn block(&self, ctx: &ContextId, h: Height) -> Result<Option<Block>> {
        self.get_sealed(CF_BLOCKS, &height_key(ctx, h))
    }

    pub fn certificate(&self, ctx: &ContextId, h: Height) -> Result<Option<StoredCertificate>> {
        self.db
            .get_cf(self.cf(CF_CERTS)?, height_key(ctx, h))?
            .map(|b| decode(CF_CERTS, &b))
            .transpose()
    }

    pub fn tx(&self, hash: &Hash32) -> Result<Option<TxRecord>> {
        self.get_sealed(CF_TXS, hash.as_bytes())
    }

    /// The outbox of height `h`, in order.
    pub fn actions_at(&self, ctx: &ContextId, h: Height) -> Result<Vec<ActionRecord>> {
        let prefix = height_key(ctx, h);
        self.scan(CF_ACTIONS, &prefix, &prefix, usize::MAX)?
            .into_iter()
            .map(|(k, v)| self.unseal(CF_ACTIONS, &k, v))
            .collect()
    }

    /// Up to `limit` actions of `ctx` from height `from` on, in outbox
    /// order, each with its position.
    pub fn actions_from(
        &self,
        ctx: &ContextId,
        from: Height,
        limit: usize,
    ) -> Result<Vec<(ActionPosition, ActionRecord)>> {
        let start = height_key(ctx, from);
        self.scan(CF_ACTIONS, &start, ctx.as_bytes(), limit)?
            .into_iter()
            .map(|(k, v)| Ok((decode_action_key(&k)?, self.unseal(CF_ACTIONS, &k, v)?)))
            .collect()
    }

    /// Where the action `id` sits, if this node committed it.
    pub fn action_position(&self, id: &[u8; 32]) -> Result<Option<ActionPosition>> {
        self.db
            .get_cf(self.cf(CF_ACTION_IDS)?, id)?
            .map(|k| decode_action_key(&k))
            .transpose()
    }

    /// A reader of `ctx`'s state tree.
    pub fn state(&self, ctx: ContextId) -> StateReader {
        StateReader::new(self.clone(), ctx)
    }

    pub(crate) fn db(&self) -> &DB {
        &self.db
    }

    pub(crate) fn storage_key(&self) -> &StorageKey {
        &self.key
    }
}
