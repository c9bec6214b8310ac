//! Writing a decided height: its block, certificate, tx records,
//! outbox, state changes, the new tip and the end of its kept txs, in one
//! write batch.

use conclave_consensus::Height;
use jmt::storage::TreeUpdateBatch;
use rocksdb::{WriteBatch, WriteOptions};

use super::{
    action_key, height_key, pending_key, pending_txs, tree, ActionRecord, Block, ContextRecord,
    Hash32, Receipt, Result, Store, StoreError, StoredCertificate, TxRecordRef, CF_ACTIONS,
    CF_ACTION_IDS, CF_BLOCKS, CF_CERTS, CF_CONTEXTS, CF_PENDING, CF_PENDING_TXS, CF_TXS,
};

/// Everything a decided height writes.
pub struct CommitBatch<'a> {
    pub record: &'a ContextRecord,
    pub block: &'a Block,
    /// The hashes of `block`'s txs, in order.
    pub tx_hashes: &'a [Hash32],
    pub certificate: &'a StoredCertificate,
    pub receipts: &'a [Receipt],
    /// The height's outbox, in order.
    pub actions: &'a [ActionRecord],
    pub tree: &'a TreeUpdateBatch,
    /// The txs of `block` that this node acknowledged and kept
    /// (`pending_txs.rs`): no longer kept once the block is, deleted in
    /// the same write. A separate write for them after each commit cost
    /// a RocksDB write a height.
    pub forgotten: &'a [Hash32],
    /// Synced before `commit` returns. A batch written without it is in
    /// RocksDB's log but may not survive a power loss until
    /// [`Store::sync_log`]: catch-up applies a response's blocks so and
    /// syncs once (a lost tail is fetched again; RocksDB recovers a prefix
    /// of its log, so the tip never runs ahead of its blocks).
    pub durable: bool,
}

impl Store {
    /// Commits one decided height atomically and durably.
    pub fn commit(&self, c: CommitBatch<'_>) -> Result<()> {
        let ctx = &c.record.id;
        let h = c.block.height();
        let mut batch = WriteBatch::default();
        let key = height_key(ctx, h);
        batch.put_cf(
            self.cf(CF_BLOCKS)?,
            key,
            self.seal(CF_BLOCKS, &key, c.block)?,
        );
        batch.put_cf(
            self.cf(CF_CERTS)?,
            key,
            borsh::to_vec(c.certificate).map_err(|e| StoreError::Encode {
                cf: CF_CERTS,
                msg: e.to_string(),
            })?,
        );
        let cf_txs = self.cf(CF_TXS)?;
        debug_assert_eq!(c.tx_hashes.len(), c.block.txs.len());
        for (index, (hash, receipt)) in c.tx_hashes.iter().zip(c.receipts).enumerate() {
            let rec = TxRecordRef {
                context_id: ctx,
                height: h,
                index: index as u32,
                receipt,
            };
            batch.put_cf(
                cf_txs,
                hash.as_bytes(),
                self.seal(CF_TXS, hash.as_bytes(), &rec)?,
            );
        }
        let (cf_actions, cf_ids) = (self.cf(CF_ACTIONS)?, self.cf(CF_ACTION_IDS)?);
        for (index, action) in c.actions.iter().enumerate() {
            let key = action_key(ctx, h, index as u32);
            batch.put_cf(cf_actions, key, self.seal(CF_ACTIONS, &key, action)?);
            batch.put_cf(cf_ids, action.id, key);
        }
        tree::write_tree_batch(self, &mut batch, ctx, c.tree)?;
        if !c.forgotten.is_empty() {
            let cf_kept = self.cf(CF_PENDING_TXS)?;
            for hash in c.forgotten {
                batch.delete_cf(cf_kept, pending_txs::key(ctx, hash));
            }
        }
        // Candidates of this height and below are no longer needed.
        batch.delete_range_cf(
            self.cf(CF_PENDING)?,
            pending_key(ctx, Height(0), &Hash32::default()),
            pending_key(ctx, Height(h.0 + 1), &Hash32::default()),
        );
        batch.put_cf(
            self.cf(CF_CONTEXTS)?,
            ctx.as_bytes(),
            self.seal(CF_CONTEXTS, ctx.as_bytes(), c.record)?,
        );
        let mut opts = WriteOptions::default();
        opts.set_sync(c.durable);
        crate::fsx::timed_sync("store_commit", || self.db.write_opt(batch, &opts))?;
        self.latest.committed(ctx, h.0, tree::written(c.tree, h.0));
        Ok(())
    }
}

#[cfg(test)]
#[path = "commit_tests.rs"]
mod tests;
