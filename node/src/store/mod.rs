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
//!
//! A decided block, its certificate, its receipts, its outbox, its state
//! changes and the new tip are written in one synced write batch: after a crash either
//! all of a height is there or none of it.

mod records;
mod tree;

use std::path::Path;
use std::sync::Arc;

use borsh::BorshDeserialize;
use conclave_consensus::codec::StoredCertificate;
use conclave_consensus::{Block, ContextId, Hash32, Height};
use jmt::storage::TreeUpdateBatch;
use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};
use thiserror::Error;

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
/// that seal the context's traffic (`crate::seal`).
pub(crate) const CF_CONTEXT_KEYS: &str = "context_keys";
const ALL_CFS: [&str; 12] = [
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
];

/// The node's database. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Arc<DB>,
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

/// Everything a decided height writes.
pub struct CommitBatch<'a> {
    pub record: &'a ContextRecord,
    pub block: &'a Block,
    pub certificate: &'a StoredCertificate,
    pub receipts: &'a [Receipt],
    /// The height's outbox, in order.
    pub actions: &'a [ActionRecord],
    pub tree: &'a TreeUpdateBatch,
}

impl Store {
    pub fn open(path: &Path) -> Result<Self> {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_open_files(512);
        opts.set_keep_log_file_num(4);
        let cfs = ALL_CFS
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, Options::default()));
        let db = DB::open_cf_descriptors(&opts, path, cfs)?;
        Ok(Self { db: Arc::new(db) })
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
        self.db
            .put_cf_opt(self.cf(CF_BLOBS)?, hash.as_bytes(), bytes, &Self::synced())?;
        Ok(())
    }

    pub fn blob(&self, hash: &Hash32) -> Result<Option<Vec<u8>>> {
        Ok(self.db.get_cf(self.cf(CF_BLOBS)?, hash.as_bytes())?)
    }

    /// Writes a new context's record and its genesis state (version 0).
    pub fn create_context(&self, record: &ContextRecord, tree: &TreeUpdateBatch) -> Result<()> {
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_CONTEXTS)?,
            record.id.as_bytes(),
            borsh::to_vec(record).map_err(|e| StoreError::Tree(e.to_string()))?,
        );
        tree::write_tree_batch(self, &mut batch, &record.id, tree)?;
        self.db.write_opt(batch, &Self::synced())?;
        Ok(())
    }

    pub fn context(&self, id: &ContextId) -> Result<Option<ContextRecord>> {
        self.db
            .get_cf(self.cf(CF_CONTEXTS)?, id.as_bytes())?
            .map(|b| decode(CF_CONTEXTS, &b))
            .transpose()
    }

    pub fn contexts(&self) -> Result<Vec<ContextRecord>> {
        let mut out = Vec::new();
        for item in self
            .db
            .iterator_cf(self.cf(CF_CONTEXTS)?, rocksdb::IteratorMode::Start)
        {
            let (_, v) = item?;
            out.push(decode(CF_CONTEXTS, &v)?);
        }
        Ok(out)
    }

    /// Commits one decided height atomically and durably.
    pub fn commit(&self, c: CommitBatch<'_>) -> Result<()> {
        let ctx = &c.record.id;
        let h = c.block.height();
        let enc = |v: &dyn Fn() -> std::io::Result<Vec<u8>>| {
            v().map_err(|e| StoreError::Tree(e.to_string()))
        };
        let mut batch = WriteBatch::default();
        batch.put_cf(
            self.cf(CF_BLOCKS)?,
            height_key(ctx, h),
            enc(&|| borsh::to_vec(c.block))?,
        );
        batch.put_cf(
            self.cf(CF_CERTS)?,
            height_key(ctx, h),
            enc(&|| borsh::to_vec(c.certificate))?,
        );
        let cf_txs = self.cf(CF_TXS)?;
        for (index, (tx, receipt)) in c.block.txs.iter().zip(c.receipts).enumerate() {
            let rec = TxRecord {
                context_id: *ctx,
                height: h,
                index: index as u32,
                receipt: receipt.clone(),
            };
            batch.put_cf(cf_txs, tx.hash().as_bytes(), enc(&|| borsh::to_vec(&rec))?);
        }
        let (cf_actions, cf_ids) = (self.cf(CF_ACTIONS)?, self.cf(CF_ACTION_IDS)?);
        for (index, action) in c.actions.iter().enumerate() {
            let key = action_key(ctx, h, index as u32);
            batch.put_cf(cf_actions, key, enc(&|| borsh::to_vec(action))?);
            batch.put_cf(cf_ids, action.id, key);
        }
        tree::write_tree_batch(self, &mut batch, ctx, c.tree)?;
        // Candidates of this height and below are no longer needed.
        batch.delete_range_cf(
            self.cf(CF_PENDING)?,
            pending_key(ctx, Height(0), &Hash32::default()),
            pending_key(ctx, Height(h.0 + 1), &Hash32::default()),
        );
        batch.put_cf(
            self.cf(CF_CONTEXTS)?,
            ctx.as_bytes(),
            enc(&|| borsh::to_vec(c.record))?,
        );
        self.db.write_opt(batch, &Self::synced())?;
        Ok(())
    }

    /// Keeps a candidate block of a height in progress. `sync` makes it
    /// durable before returning: a proposer must not sign a proposal for a
    /// block it could lose in a crash.
    pub fn put_pending_block(&self, block: &Block, sync: bool) -> Result<()> {
        let key = pending_key(&block.header.context_id, block.height(), &block.hash());
        let bytes = borsh::to_vec(block).map_err(|e| StoreError::Tree(e.to_string()))?;
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
            .iter()
            .map(|(_, v)| decode(CF_PENDING, v))
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
        for item in self.db.iterator_cf(self.cf(cf)?, mode) {
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
        self.db
            .put_cf_opt(self.cf(CF_CONTEXT_KEYS)?, k, key.secret(), &Self::synced())?;
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
                let key: [u8; 32] = v.as_ref().try_into().map_err(|_| bad())?;
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
        self.db
            .get_cf(self.cf(CF_BLOCKS)?, height_key(ctx, h))?
            .map(|b| decode(CF_BLOCKS, &b))
            .transpose()
    }

    pub fn certificate(&self, ctx: &ContextId, h: Height) -> Result<Option<StoredCertificate>> {
        self.db
            .get_cf(self.cf(CF_CERTS)?, height_key(ctx, h))?
            .map(|b| decode(CF_CERTS, &b))
            .transpose()
    }

    pub fn tx(&self, hash: &Hash32) -> Result<Option<TxRecord>> {
        self.db
            .get_cf(self.cf(CF_TXS)?, hash.as_bytes())?
            .map(|b| decode(CF_TXS, &b))
            .transpose()
    }

    /// The outbox of height `h`, in order.
    pub fn actions_at(&self, ctx: &ContextId, h: Height) -> Result<Vec<ActionRecord>> {
        let prefix = height_key(ctx, h);
        self.scan(CF_ACTIONS, &prefix, &prefix, usize::MAX)?
            .iter()
            .map(|(_, v)| decode(CF_ACTIONS, v))
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
            .iter()
            .map(|(k, v)| Ok((decode_action_key(k)?, decode(CF_ACTIONS, v)?)))
            .collect()
    }

    /// Where the action `id` sits, if this node committed it.
    pub fn action_position(&self, id: &[u8; 32]) -> Result<Option<ActionPosition>> {
        self.db
            .get_cf(self.cf(CF_ACTION_IDS)?, id)?
            .map(|k| decode_action_key(&k))
            .transpose()
    }

    /// Stores (or replaces, e.g. with more signers) a completed checkpoint.
    pub fn put_checkpoint(&self, ctx: &ContextId, c: &CheckpointRecord) -> Result<()> {
        let bytes = borsh::to_vec(c).map_err(|e| StoreError::Tree(e.to_string()))?;
        self.db.put_cf_opt(
            self.cf(CF_CHECKPOINTS)?,
            height_key(ctx, c.height),
            bytes,
            &Self::synced(),
        )?;
        Ok(())
    }

    pub fn checkpoint(&self, ctx: &ContextId, h: Height) -> Result<Option<CheckpointRecord>> {
        self.db
            .get_cf(self.cf(CF_CHECKPOINTS)?, height_key(ctx, h))?
            .map(|b| decode(CF_CHECKPOINTS, &b))
            .transpose()
    }

    /// Up to `limit` checkpoints of `ctx` from height `from` on, ascending.
    pub fn checkpoints_from(
        &self,
        ctx: &ContextId,
        from: Height,
        limit: usize,
    ) -> Result<Vec<CheckpointRecord>> {
        let start = height_key(ctx, from);
        self.scan(CF_CHECKPOINTS, &start, ctx.as_bytes(), limit)?
            .iter()
            .map(|(_, v)| decode(CF_CHECKPOINTS, v))
            .collect()
    }

    /// The highest checkpoint of `ctx`.
    pub fn latest_checkpoint(&self, ctx: &ContextId) -> Result<Option<CheckpointRecord>> {
        let end = height_key(ctx, Height(u64::MAX));
        let mut iter = self.db.iterator_cf(
            self.cf(CF_CHECKPOINTS)?,
            rocksdb::IteratorMode::From(&end, rocksdb::Direction::Reverse),
        );
        match iter.next() {
            Some(item) => {
                let (k, v) = item?;
                if k.starts_with(ctx.as_bytes()) {
                    Ok(Some(decode(CF_CHECKPOINTS, &v)?))
                } else {
                    Ok(None)
                }
            }
            None => Ok(None),
        }
    }

    /// A reader of `ctx`'s state tree.
    pub fn state(&self, ctx: ContextId) -> StateReader {
        StateReader::new(self.clone(), ctx)
    }

    pub(crate) fn db(&self) -> &DB {
        &self.db
    }
}
