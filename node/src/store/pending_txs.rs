//! Txs this node acknowledged (`tx_submit`) and has not seen committed yet,
//! kept per context (column family `pending_txs`, key `context ‖ tx hash`,
//! sealed at rest), so that a node killed after acknowledging a tx still
//! has it when it restarts: the pool itself is memory. Written without a
//! sync, as RocksDB's own log makes it survive the process (a crash, a
//! `kill -9`), not a power cut; removed once the tx commits or can never
//! commit.

use conclave_consensus::{ContextId, Hash32, SignedTx};
use rocksdb::WriteBatch;

use super::{Result, Store, CF_PENDING_TXS};

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
        for (hash, tx) in txs {
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
        for hash in hashes {
            batch.delete_cf(cf, key(ctx, hash));
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

#[cfg(test)]
mod tests {
    use super::super::{tests::tx, StorageKey};
    use super::*;

    fn kept(store: &Store, ctx: &ContextId) -> Vec<u64> {
        let mut nonces: Vec<u64> = store
            .pending_txs(ctx)
            .unwrap()
            .iter()
            .map(|t| t.tx.nonce)
            .collect();
        nonces.sort_unstable();
        nonces
    }

    /// The kept txs' memtable hashes keys to buckets (`cf_options`): a
    /// context's scan still finds each of its txs and none of another
    /// context's (whose keys sort on either side of it), in the memtable
    /// and once flushed to table files, and forgetting takes them out.
    #[test]
    fn each_context_reads_back_exactly_its_kept_txs() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StorageKey::random()).unwrap();
        let contexts = [ContextId([1; 32]), ContextId([2; 32]), ContextId([3; 32])];
        for (i, ctx) in contexts.iter().enumerate() {
            let txs: Vec<(Hash32, SignedTx)> = (1..=300u64)
                .filter(|n| n % 3 == i as u64)
                .map(|n| tx(*ctx, n))
                .map(|t| (t.hash(), t))
                .collect();
            store.put_pending_txs(ctx, &txs).unwrap();
        }
        let own = |i: u64| (1..=300u64).filter(|n| n % 3 == i).collect::<Vec<_>>();
        for flushed in [false, true] {
            if flushed {
                store.flush().unwrap();
            }
            for (i, ctx) in contexts.iter().enumerate() {
                assert_eq!(kept(&store, ctx), own(i as u64), "flushed: {flushed}");
            }
        }
        let middle = &contexts[1];
        let gone: Vec<Hash32> = (1..=150u64)
            .filter(|n| n % 3 == 1)
            .map(|n| tx(*middle, n).hash())
            .collect();
        store.forget_pending_txs(middle, &gone).unwrap();
        let left: Vec<u64> = own(1).into_iter().filter(|n| *n > 150).collect();
        assert_eq!(kept(&store, middle), left);
        assert_eq!(kept(&store, &contexts[0]), own(0));
        assert_eq!(kept(&store, &ContextId([9; 32])), Vec::<u64>::new());
        // Every record, in the memtables and in table files alike.
        let before = store.verify_checksums().unwrap().records;
        store
            .put_pending_txs(middle, &[(tx(*middle, 999).hash(), tx(*middle, 999))])
            .unwrap();
        assert_eq!(store.verify_checksums().unwrap().records, before + 1);
    }
}
