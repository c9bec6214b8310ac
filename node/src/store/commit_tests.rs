//! A height's writes: each tx's record and each action's id, read back by
//! hash (the tx records through their hashed memtable), name their own
//! place in the block.

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

/// Commits `block` as height 2 of `f`'s context (no state change), with
/// `receipts`, `actions` and the kept txs `forgotten`, durably.
fn commit_height_2(
    store: &Store,
    f: &Fixture,
    block: &Block,
    receipts: &[Receipt],
    actions: &[ActionRecord],
    forgotten: &[Hash32],
) {
    let hashes: Vec<Hash32> = block.txs.iter().map(|t| t.hash()).collect();
    let (root, tree) = store.state(f.ctx).compute_update(Vec::new(), 2).unwrap();
    let mut record = f.record.clone();
    record.height = Height(2);
    record.last_block_hash = block.hash();
    record.state_root = root;
    store
        .commit(CommitBatch {
            record: &record,
            block,
            tx_hashes: &hashes,
            certificate: &certificate(block),
            receipts,
            actions,
            tree: &tree,
            forgotten,
            durable: true,
        })
        .unwrap();
}

#[test]
fn records_and_action_ids_read_back_by_hash_name_their_block_positions() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StorageKey::random()).unwrap();
    let f = populate(&store);
    let block = make_block(f.ctx, 2, (10..18).map(|n| tx(f.ctx, n)).collect());
    let hashes: Vec<Hash32> = block.txs.iter().map(|t| t.hash()).collect();
    let receipts: Vec<Receipt> = (0..hashes.len()).map(receipt).collect();
    // Action ids as random as tx hashes.
    let actions: Vec<ActionRecord> = hashes
        .iter()
        .map(|h| ActionRecord {
            id: h.0,
            request: vec![h.0[0]],
            tx: *h,
        })
        .collect();
    commit_height_2(&store, &f, &block, &receipts, &actions, &[]);

    for (index, hash) in hashes.iter().enumerate() {
        let rec = store.tx(hash).unwrap().expect("recorded");
        assert_eq!((rec.height, rec.index), (Height(2), index as u32));
        assert_eq!(rec.receipt, receipts[index]);
        let at = store.action_position(&hash.0).unwrap().expect("placed");
        assert_eq!((at.height, at.index), (Height(2), index as u32));
    }
    assert_eq!(store.actions_at(&f.ctx, Height(2)).unwrap(), actions);
}

#[test]
fn a_commit_deletes_the_kept_txs_it_forgets_and_no_others() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StorageKey::random()).unwrap();
    let f = populate(&store);
    let block = make_block(f.ctx, 2, (10..13).map(|n| tx(f.ctx, n)).collect());
    let hashes: Vec<Hash32> = block.txs.iter().map(|t| t.hash()).collect();
    let waiting = tx(f.ctx, 20);
    let mut kept: Vec<(Hash32, _)> = block.txs.iter().map(|t| (t.hash(), t.clone())).collect();
    kept.push((waiting.hash(), waiting.clone()));
    store.put_pending_txs(&f.ctx, &kept).unwrap();
    let receipts: Vec<Receipt> = (0..hashes.len()).map(receipt).collect();
    // Two of the block's txs were acknowledged here; the third was not.
    commit_height_2(&store, &f, &block, &receipts, &[], &hashes[..2]);
    let mut left: Vec<Hash32> = store
        .pending_txs(&f.ctx)
        .unwrap()
        .iter()
        .map(|t| t.hash())
        .collect();
    left.sort();
    let mut expected = vec![hashes[2], waiting.hash()];
    expected.sort();
    assert_eq!(left, expected);
}
