//! A height's writes: each tx's record and each action's id, read back by
//! hash (the tx records through their hashed memtable), name their own
//! place in the block; and a commit deletes the kept txs it is told to
//! forget, no others.

use conclave_consensus::Height;

use super::super::tests::{certificate, make_block, populate, tx, Fixture};
use super::*;
use crate::store::{StorageKey, TxStatus};

/// A receipt whose output and fuel name its place `i` in the block.
fn receipt(i: usize) -> Receipt {
    Receipt {
        status: TxStatus::Ok,
        output: vec![i as u8],
        error: None,
        events: Vec::new(),
        actions: Vec::new(),
        fuel_used: i as u64,
    }
}

/// A populated store and a block for its height 2 of the txs of
/// `nonces`, with their hashes and receipts.
struct Height2 {
    /// Where the store lives, kept while it is open.
    _dir: tempfile::TempDir,
    store: Store,
    f: Fixture,
    block: Block,
    hashes: Vec<Hash32>,
    receipts: Vec<Receipt>,
}

impl Height2 {
    fn new(nonces: std::ops::Range<u64>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path(), &StorageKey::random()).unwrap();
        let f = populate(&store);
        let block = make_block(f.ctx, 2, nonces.map(|n| tx(f.ctx, n)).collect());
        let hashes: Vec<Hash32> = block.txs.iter().map(|t| t.hash()).collect();
        let receipts = (0..hashes.len()).map(receipt).collect();
        Self {
            _dir: dir,
            store,
            f,
            block,
            hashes,
            receipts,
        }
    }

    /// Commits the block as height 2 (no state change), with `actions`
    /// and the kept txs `forgotten`, durably.
    fn commit(&self, actions: &[ActionRecord], forgotten: &[Hash32]) {
        let (root, tree) = self
            .store
            .state(self.f.ctx)
            .compute_update(Vec::new(), 2)
            .unwrap();
        let mut record = self.f.record.clone();
        record.height = Height(2);
        record.last_block_hash = self.block.hash();
        record.state_root = root;
        self.store
            .commit(CommitBatch {
                record: &record,
                block: &self.block,
                tx_hashes: &self.hashes,
                certificate: &certificate(&self.block),
                receipts: &self.receipts,
                actions,
                tree: &tree,
                forgotten,
                durable: true,
            })
            .unwrap();
    }
}

#[test]
fn records_and_action_ids_read_back_by_hash_name_their_block_positions() {
    let h = Height2::new(10..18);
    // Action ids as random as tx hashes.
    let actions: Vec<ActionRecord> = h
        .hashes
        .iter()
        .map(|hash| ActionRecord {
            id: hash.0,
            request: vec![hash.0[0]],
            tx: *hash,
        })
        .collect();
    h.commit(&actions, &[]);

    for (index, hash) in h.hashes.iter().enumerate() {
        let rec = h.store.tx(hash).unwrap().expect("recorded");
        assert_eq!((rec.height, rec.index), (Height(2), index as u32));
        assert_eq!(rec.receipt, h.receipts[index]);
        let at = h.store.action_position(&hash.0).unwrap().expect("placed");
        assert_eq!((at.height, at.index), (Height(2), index as u32));
    }
    assert_eq!(h.store.actions_at(&h.f.ctx, Height(2)).unwrap(), actions);
}

#[test]
fn a_commit_deletes_the_kept_txs_it_forgets_and_no_others() {
    let h = Height2::new(10..13);
    let waiting = tx(h.f.ctx, 20);
    let mut kept: Vec<(Hash32, _)> = h.block.txs.iter().map(|t| (t.hash(), t.clone())).collect();
    kept.push((waiting.hash(), waiting.clone()));
    h.store.put_pending_txs(&h.f.ctx, &kept).unwrap();
    // Two of the block's txs were acknowledged here; the third was not.
    h.commit(&[], &h.hashes[..2]);
    let mut left: Vec<Hash32> = h
        .store
        .pending_txs(&h.f.ctx)
        .unwrap()
        .iter()
        .map(|t| t.hash())
        .collect();
    left.sort();
    let mut expected = vec![h.hashes[2], waiting.hash()];
    expected.sort();
    assert_eq!(left, expected);
}
