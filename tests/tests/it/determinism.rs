//! Two runs of the same blocks reach the same state roots and receipts: a
//! node's committed blocks, re-executed from genesis in a fresh store, give
//! identical roots at every height; a tampered block does not pass.

use conclave_consensus::Height;
use conclave_node::config::MempoolConfig;
use conclave_node::context::install_genesis;
use conclave_node::exec::{execute, roots_match, BlockEnv};
use conclave_node::rpc::ConclaveApiClient;
use conclave_node::store::{CommitBatch, StorageKey, Store};
use conclave_runtime::{Limits, Runtime};
use conclave_tests::{signed, wait_committed};

use crate::{node_with_context, COMMIT_TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replaying_blocks_reaches_the_same_roots() {
    let (mut node, ctx) = node_with_context("kv").await;
    let keys = node.keys();
    let c = node.client();
    let mut nonce = 0;
    for round in 0..4 {
        let mut last = None;
        for i in 0..25 {
            nonce += 1;
            let (method, args) = if i % 5 == 4 {
                ("delete", format!(r#"{{"key":"k{}"}}"#, i - 1))
            } else if i % 7 == 6 {
                ("set", "not json".to_string())
            } else {
                ("set", format!(r#"{{"key":"k{i}","value":"r{round}"}}"#))
            };
            last = Some(
                c.tx_submit(signed(&keys, ctx, nonce, method, &args))
                    .await
                    .unwrap()
                    .tx_hash,
            );
        }
        wait_committed(&c, last.unwrap(), COMMIT_TIMEOUT).await;
    }
    node.kill9();

    let a = Store::open(&node.data_dir(), &node.storage_key()).unwrap();
    let rec = a.context(&ctx).unwrap().unwrap();
    assert!(rec.height.0 >= 4, "several blocks were made");
    let wasm = a.blob(&rec.genesis.app_hash).unwrap().unwrap();
    let dir_b = tempfile::tempdir().unwrap();
    let b = Store::open(dir_b.path(), &StorageKey::random()).unwrap();
    let runtime = Runtime::new(Limits::default()).unwrap();
    let mut rec_b = install_genesis(&b, &runtime, &wasm, rec.genesis.clone()).unwrap();
    assert_eq!(rec_b.id, ctx, "same genesis, same context id");
    let app = runtime.load(&wasm).unwrap();
    let members = rec.genesis.member_ids();
    let mut failed = 0;
    for h in 1..=rec.height.0 {
        let block = a.block(&ctx, Height(h)).unwrap().unwrap();
        let cert = a.certificate(&ctx, Height(h)).unwrap().unwrap();
        let env = BlockEnv {
            context_id: ctx,
            genesis: &rec.genesis,
            members: &members,
            height: Height(h),
            time_ms: block.header.time_ms,
            max_tx_bytes: MempoolConfig::default().max_tx_bytes,
            verified: None,
            budget: None,
        };
        let (txs, ex) = execute(
            &runtime,
            &app,
            &b.state(ctx),
            &env,
            block.txs.clone(),
            true,
            &mut Vec::new(),
        )
        .unwrap();
        assert_eq!(txs.len(), block.txs.len());
        assert_eq!(block.compute_txs_root(), block.header.txs_root);
        roots_match(&block.header, &ex).unwrap();
        for (tx, receipt) in block.txs.iter().zip(&ex.receipts) {
            assert_eq!(&a.tx(&tx.hash()).unwrap().unwrap().receipt, receipt);
            failed += usize::from(receipt.error.is_some());
        }
        if h == 1 {
            // A tampered tx makes the block invalid.
            let mut bad = block.txs.clone();
            bad[0].tx.args = b"{}".to_vec();
            assert!(execute(
                &runtime,
                &app,
                &b.state(ctx),
                &env,
                bad,
                true,
                &mut Vec::new()
            )
            .is_err());
        }
        rec_b.height = Height(h);
        rec_b.last_block_hash = block.hash();
        rec_b.state_root = ex.state_root;
        rec_b.last_time_ms = block.header.time_ms;
        b.commit(CommitBatch {
            record: &rec_b,
            block: &block,
            tx_hashes: &block.txs.iter().map(|t| t.hash()).collect::<Vec<_>>(),
            certificate: &cert,
            receipts: &ex.receipts,
            actions: &ex.actions,
            tree: &ex.tree,
            forgotten: &[],
            durable: true,
        })
        .unwrap();
        assert_eq!(
            b.state(ctx).root(h).unwrap(),
            a.state(ctx).root(h).unwrap(),
            "height {h}"
        );
    }
    assert!(failed > 0, "failing txs were part of the replay too");
}
