//! Txs this node acknowledged (`tx_submit`) and has not seen committed yet,
//! kept per context (column family `pending_txs`, key `context ‖ tx hash`,
//! sealed at rest), so that a node killed after acknowledging a tx still
//! has it when it restarts: the pool itself is memory. Written without a
//! sync, as RocksDB's own log makes it survive the process (a crash, a
//! `kill -9`), not a power cut; removed once the tx commits or can never
//! commit.

use conclave_consensus::{ContextId, Hash32, SignedTx};
use rocksdb::WriteBatch;

use super::{in_key_order, Result, Store, CF_PENDING_TXS};

fn key(ctx: &ContextId, hash: &Hash32) -> [u8; 64] {
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(ctx.as_bytes());
    key[32..].copy_from_slice(hash.as_bytes());
    key
}

impl Store {
    /// Keeps `txs` (each with its hash) until [`Store::forget_pending_txs`],
    /// in one write: all of them or none.
    pub fn put_pending_txs(&self, ctx: &ContextId, txs: &[(Hash32, SignedTx)]) -> Result<()> {
        if txs.is_empty() {
            return Ok(());
        }
        let cf = self.cf(CF_PENDING_TXS)?;
        let mut batch = WriteBatch::default();
        for index in in_key_order(txs.len(), |i| txs[i].0.as_bytes()) {
            let (hash, tx) = &txs[index];
            let key = key(ctx, hash);
            batch.put_cf(cf, key, self.seal(CF_PENDING_TXS, &key, tx)?);
        }
        crate::fsx::timed_sync("store_write", || self.db.write(batch))?;
        Ok(())
    }

    /// Forgets the txs `hashes` (committed, or never to be).
    pub fn forget_pending_txs(&self, ctx: &ContextId, hashes: &[Hash32]) -> Result<()> {
        if hashes.is_empty() {
            return Ok(());
        }
        let cf = self.cf(CF_PENDING_TXS)?;
        let mut batch = WriteBatch::default();
        for index in in_key_order(hashes.len(), |i| hashes[i].as_bytes()) {
            batch.delete_cf(cf, key(ctx, &hashes[index]));
        }
        self.db.write(batch)?;
        Ok(())
    }

    /// Every tx kept for `ctx`.
    pub fn pending_txs(&self, ctx: &ContextId) -> Result<Vec<SignedTx>> {
        self.scan(CF_PENDING_TXS, ctx.as_bytes(), ctx.as_bytes(), usize::MAX)?
            .into_iter()
            .map(|(k, v)| self.unseal(CF_PENDING_TXS, &k, v))
            .collect()
    }
}
