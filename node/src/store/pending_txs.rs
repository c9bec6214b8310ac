//! Txs this node acknowledged (`tx_submit`) and has not seen committed yet,
//! kept per context (column family `pending_txs`, key `context ‖ tx hash`,
//! sealed at rest), so that a node killed after acknowledging a tx still
//! has it when it restarts: the pool itself is memory. Written without a
//! sync, as RocksDB's own log makes it survive the process (a crash, a
//! `kill -9`), not a power cut; removed once the tx commits or can never
//! commit.

use conclave_consensus::{ContextId, Hash32, SignedTx};
use rocksdb::WriteBatch;
use tokio::sync::oneshot;

use super::{Result, Store, CF_PENDING_TXS};

pub(super) fn key(ctx: &ContextId, hash: &Hash32) -> [u8; 64] {
    let mut key = [0u8; 64];
    key[..32].copy_from_slice(ctx.as_bytes());
    key[32..].copy_from_slice(hash.as_bytes());
    key
}

/// Submitted txs waiting for their write ([`Store::keep_pending_tx`]).
#[derive(Default)]
pub(super) struct Keeping {
    /// Whether a submitter is writing (and will write what is queued).
    writing: bool,
    queued: Vec<Queued>,
    /// Writes made so far.
    writes: u64,
}

struct Queued {
    ctx: ContextId,
    hash: Hash32,
    tx: SignedTx,
    done: oneshot::Sender<std::result::Result<(), String>>,
}

/// The writing submitter's duty: done when it is dropped, whether after
/// its wait or with it (its future dropped).
struct Writer<'s>(&'s Store);

impl Drop for Writer<'_> {
    fn drop(&mut self) {
        self.0.write_queued();
    }
}

impl Store {
    /// Keeps `txs` (each with its hash) until [`Store::forget_pending_txs`]
    /// or the commit that carries them ([`super::CommitBatch::forgotten`]),
    /// in one write: all of them or none.
    pub fn put_pending_txs(&self, ctx: &ContextId, txs: &[(Hash32, SignedTx)]) -> Result<()> {
        self.put_kept(txs.iter().map(|(hash, tx)| (ctx, hash, tx)))
    }

    /// Keeps txs of any contexts in one write: all of them or none.
    fn put_kept<'t>(
        &self,
        txs: impl IntoIterator<Item = (&'t ContextId, &'t Hash32, &'t SignedTx)>,
    ) -> Result<()> {
        let cf = self.cf(CF_PENDING_TXS)?;
        let mut batch = WriteBatch::default();
        for (ctx, hash, tx) in txs {
            let key = key(ctx, hash);
            batch.put_cf(cf, key, self.seal(CF_PENDING_TXS, &key, tx)?);
        }
        if batch.is_empty() {
            return Ok(());
        }
        crate::fsx::timed_sync("store_write", || self.db.write(batch))?;
        Ok(())
    }

    /// Keeps one submitted tx, like [`Store::put_pending_txs`], in a write
    /// shared with the other submissions of the moment, of any context
    /// (group commit): the first to find no write under way lets the
    /// submissions woken with it (a batch of signature checks answered at
    /// once) queue theirs, then writes them all, and again whatever was
    /// queued meanwhile, until none is; the others wait for its answer.
    /// A write was one tx at a time without it (a node's submissions run
    /// on one worker, one after another): a write's fixed part (RocksDB's
    /// writer, a system call) cost more than the tx's own. If the first is
    /// dropped while it waits (its client went away), it writes the queue
    /// as it goes, so that no other is left unwritten.
    pub async fn keep_pending_tx(
        &self,
        ctx: ContextId,
        hash: Hash32,
        tx: SignedTx,
    ) -> std::result::Result<(), String> {
        let (done, answer) = oneshot::channel();
        let lead = {
            let mut keeping = self.keeping.lock();
            keeping.queued.push(Queued {
                ctx,
                hash,
                tx,
                done,
            });
            !std::mem::replace(&mut keeping.writing, true)
        };
        if lead {
            let writer = Writer(self);
            tokio::task::yield_now().await;
            drop(writer);
        }
        answer
            .await
            .unwrap_or_else(|_| Err("the write of kept txs was lost".into()))
    }

    /// Writes what is queued, until nothing is.
    fn write_queued(&self) {
        loop {
            let queued = {
                let mut keeping = self.keeping.lock();
                if keeping.queued.is_empty() {
                    keeping.writing = false;
                    return;
                }
                keeping.writes += 1;
                std::mem::take(&mut keeping.queued)
            };
            let written = self
                .put_kept(queued.iter().map(|q| (&q.ctx, &q.hash, &q.tx)))
                .map_err(|e| e.to_string());
            for q in queued {
                // A submitter that went away no longer needs its answer.
                let _ = q.done.send(written.clone());
            }
        }
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

    /// How many writes [`Store::keep_pending_tx`] made.
    #[cfg(test)]
    pub(crate) fn kept_writes(&self) -> u64 {
        self.keeping.lock().writes
    }

    /// Whether a submitter is still to write the queue.
    #[cfg(test)]
    pub(crate) fn keeps_writing(&self) -> bool {
        self.keeping.lock().writing
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

    /// Submissions of several contexts made at once are kept in one
    /// write, and each is answered.
    #[tokio::test(flavor = "current_thread")]
    async fn submissions_at_once_share_one_write_across_contexts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StorageKey::random()).unwrap();
        let contexts = [ContextId([1; 32]), ContextId([2; 32]), ContextId([3; 32])];
        let tasks: Vec<_> = (1..=60u64)
            .map(|n| {
                let (store, ctx) = (store.clone(), contexts[n as usize % 3]);
                let t = tx(ctx, n);
                tokio::spawn(async move { store.keep_pending_tx(ctx, t.hash(), t).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        assert_eq!(store.kept_writes(), 1);
        for (i, ctx) in contexts.iter().enumerate() {
            let own: Vec<u64> = (1..=60u64).filter(|n| *n % 3 == i as u64).collect();
            assert_eq!(kept(&store, ctx), own);
        }
        // A lone submission later is written at once, on its own.
        let t = tx(contexts[0], 61);
        store
            .keep_pending_tx(contexts[0], t.hash(), t)
            .await
            .unwrap();
        assert_eq!(store.kept_writes(), 2);
        assert!(!store.keeps_writing());
    }

    /// The submitter that was to write is dropped while it waits for the
    /// others (its client went away): the one queued behind it is still
    /// written and answered.
    #[test]
    fn a_dropped_writer_still_writes_the_queue() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StorageKey::random()).unwrap();
        let ctx = ContextId([1; 32]);
        let (first, second) = (tx(ctx, 1), tx(ctx, 2));
        futures::executor::block_on(async {
            let mut writer = Box::pin(store.keep_pending_tx(ctx, first.hash(), first));
            let mut queued = Box::pin(store.keep_pending_tx(ctx, second.hash(), second));
            assert!(futures::poll!(writer.as_mut()).is_pending());
            assert!(futures::poll!(queued.as_mut()).is_pending());
            assert!(kept(&store, &ctx).is_empty());
            drop(writer);
            queued.await.unwrap();
        });
        assert_eq!(kept(&store, &ctx), vec![1, 2]);
    }
}
