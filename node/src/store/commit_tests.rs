//! A height's writes go into the batch in key order, not block order: each
//! tx's record and each action's id still name their own place.

use conclave_consensus::Height;

use super::super::tests::{certificate, make_block, populate, tx};
use super::*;
use crate::store::{StorageKey, TxStatus};

#[test]
fn records_keep_their_block_positions_whatever_order_they_are_written_in() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StorageKey::random()).unwrap();
    let f = populate(&store);
    let mut record = f.record.clone();
    let block = make_block(f.ctx, 2, (10..18).map(|n| tx(f.ctx, n)).collect());
    let hashes: Vec<Hash32> = block.txs.iter().map(|t| t.hash()).collect();
    let mut sorted = hashes.clone();
    sorted.sort();
    assert_ne!(
        sorted, hashes,
        "the block's txs are not already in key order"
    );
    let receipts: Vec<Receipt> = (0..hashes.len())
        .map(|i| Receipt {
            status: TxStatus::Ok,
            output: vec![i as u8],
            error: None,
            events: Vec::new(),
            actions: Vec::new(),
            fuel_used: i as u64,
        })
        .collect();
    // Action ids out of key order too (as hashes are).
    let actions: Vec<ActionRecord> = hashes
        .iter()
        .map(|h| ActionRecord {
            id: h.0,
            request: vec![h.0[0]],
            tx: *h,
        })
        .collect();
    let (root, tree) = store.state(f.ctx).compute_update(Vec::new(), 2).unwrap();
    record.height = Height(2);
    record.last_block_hash = block.hash();
    record.state_root = root;
    store
        .commit(CommitBatch {
            record: &record,
            block: &block,
            tx_hashes: &hashes,
            certificate: &certificate(&block),
            receipts: &receipts,
            actions: &actions,
            tree: &tree,
            durable: true,
        })
        .unwrap();

    for (index, hash) in hashes.iter().enumerate() {
        let rec = store.tx(hash).unwrap().expect("recorded");
        assert_eq!((rec.height, rec.index), (Height(2), index as u32));
        assert_eq!(rec.receipt, receipts[index]);
        let at = store.action_position(&hash.0).unwrap().expect("placed");
        assert_eq!((at.height, at.index), (Height(2), index as u32));
    }
    assert_eq!(store.actions_at(&f.ctx, Height(2)).unwrap(), actions);
}
