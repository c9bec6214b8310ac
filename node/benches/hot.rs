//! The per-tx and per-signature pieces a validator repeats on every height:
//! a tx's signature check (alone and in a pushed batch), sealing and opening what members send each
//! other, a block's state tree update, its commit batch, and making a signature durable (the WAL and
//! the sign guard, with their fsyncs overlapped, as the node does, and one after the other).
//! `cargo bench -p conclave-node --bench hot`. The durable cases measure
//! this machine's disk as much as the code.

use conclave_checkpoint::{PublicKey, SecretKey, Signature};
use conclave_consensus::mal::{Input, Round, Timeout};
use conclave_consensus::sign_policy::{SignPosition, SignRequest, SignStep};
use conclave_consensus::{
    verify_batch, ContextId, Hash32, Height, MemberId, SenderKey, SignedTx, Tx,
};
use conclave_node::seal::{ContextKey, Purpose};
use conclave_node::sign_guard::SignGuard;
use conclave_node::wal::Wal;
use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_dalek::SigningKey;

fn signed_tx(key: &SigningKey, nonce: u64) -> SignedTx {
    Tx {
        context_id: ContextId([9; 32]),
        sender: MemberId(key.verifying_key().to_bytes()),
        nonce,
        method: "set".into(),
        args: br#"{"key":"bench","value":"0123456789abcdef"}"#.to_vec(),
    }
    .sign(key)
}

/// One tx alone (with and without its key at hand), and a pushed batch of
/// 256 from 4 senders as admission checks it: per tx, divide by 256.
fn tx_verify(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let tx = signed_tx(&key, 1);
    c.bench_function("tx verify", |b| b.iter(|| tx.verify().unwrap()));
    let sender = tx.sender_key().unwrap();
    c.bench_function("tx verify, key at hand", |b| {
        b.iter(|| tx.verify_with(&sender).unwrap())
    });
    let senders: Vec<SigningKey> = (1..=4u8)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .collect();
    let txs: Vec<SignedTx> = (0..256u64)
        .map(|n| signed_tx(&senders[(n % 4) as usize], n + 1))
        .collect();
    let keys: Vec<SenderKey> = txs.iter().map(|t| t.sender_key().unwrap()).collect();
    let pairs: Vec<(&SignedTx, &SenderKey)> = txs.iter().zip(&keys).collect();
    c.bench_function("tx verify, batch of 256 from 4 senders", |b| {
        b.iter(|| assert!(verify_batch(&pairs).iter().all(Result::is_ok)))
    });
    // Where a batch starts to pay (tx_submit's checks gather only what
    // arrived during the previous batch): per tx, divide by the size.
    for n in [2usize, 4, 8, 16, 32] {
        c.bench_function(&format!("tx verify, batch of {n}"), |b| {
            b.iter(|| assert!(verify_batch(&pairs[..n]).iter().all(Result::is_ok)))
        });
    }
}

fn seal_open(c: &mut Criterion) {
    let key = ContextKey::generate(0);
    let ctx = ContextId([9; 32]);
    for (name, len) in [("512 B", 512), ("64 KiB", 64 << 10)] {
        let plain = vec![0x5a; len];
        let sealed = key.seal(&ctx, Purpose::Gossip, &plain);
        c.bench_function(&format!("seal {name}"), |b| {
            b.iter(|| key.seal(&ctx, Purpose::Gossip, &plain))
        });
        c.bench_function(&format!("open {name}"), |b| {
            b.iter(|| key.open(&ctx, Purpose::Gossip, &sealed).unwrap())
        });
    }
}

fn durable_signature(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path().join("bench.wal")).unwrap();
    let mut guard = SignGuard::open(dir.path().join("bench.sign")).unwrap();
    wal.start_height(Height(1)).unwrap();
    let mut round = 0u32;
    let mut next = |wal: &mut Wal| {
        round += 1;
        // One entry ahead of each signature, as a received vote would be.
        let input = Input::TimeoutElapsed(Timeout::propose(Round::new(round)));
        wal.write(Height(1), &input).unwrap();
        SignRequest {
            position: SignPosition {
                height: Height(1),
                round,
                step: SignStep::Prevote,
            },
            value: None,
            digest: Hash32([round as u8; 32]),
        }
    };
    let mut overlapped = |name: &str, wal: &mut Wal, guard: &mut SignGuard| {
        c.bench_function(name, |b| {
            b.iter(|| {
                let request = next(wal);
                guard
                    .check_and_record_alongside(&request, || {
                        wal.sync().map_err(|e| {
                            conclave_consensus::sign_policy::SignRefusal::Persist(e.to_string())
                        })
                    })
                    .unwrap()
            })
        });
    };
    // As the node does: the guard's flush on the runtime's blocking pool.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let entered = runtime.enter();
    overlapped(
        "signature made durable, flushes overlapped",
        &mut wal,
        &mut guard,
    );
    drop(entered);
    // Outside a runtime: a thread spawned per flush, as the node did before.
    overlapped(
        "signature made durable, flushes overlapped, a thread per flush",
        &mut wal,
        &mut guard,
    );
    c.bench_function("signature made durable, one flush after the other", |b| {
        b.iter(|| {
            let request = next(&mut wal);
            wal.sync().unwrap();
            guard.check_and_record(&request).unwrap()
        })
    });
}

/// A checkpoint share (one domain): signing it, checking one member's
/// alone, and checking a quorum's worth (two members besides the node
/// itself, as with 4 members) as one aggregate.
fn checkpoint_share(c: &mut Criterion) {
    let keys: Vec<SecretKey> = (1..=3u8)
        .map(|i| SecretKey::from_seed(&[i; 32]).unwrap())
        .collect();
    let digest = [0x42u8; 32];
    let sigs: Vec<[u8; 96]> = keys
        .iter()
        .map(|k| k.sign(&digest).to_compressed())
        .collect();
    let pks: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
    c.bench_function("checkpoint share sign", |b| {
        b.iter(|| keys[0].sign(&digest))
    });
    c.bench_function("checkpoint share decode and verify", |b| {
        b.iter(|| {
            let sig = Signature::from_compressed(&sigs[0]).unwrap();
            assert!(sig.verify(&digest, &pks[0]));
        })
    });
    c.bench_function("checkpoint shares, 2 decoded and verified as one", |b| {
        b.iter(|| {
            let two = [
                Signature::from_compressed(&sigs[1]).unwrap(),
                Signature::from_compressed(&sigs[2]).unwrap(),
            ];
            let sum = Signature::aggregate(&two).unwrap();
            assert!(sum.fast_aggregate_verify(&digest, &[&pks[1], &pks[2]]));
        })
    });
}

/// A store holding one context whose state is 10,000 keys, `key 0` to
/// `key 9999`, at height 0.
fn context_of_10k_keys(
    dir: &std::path::Path,
) -> (
    conclave_node::store::Store,
    conclave_node::store::ContextRecord,
) {
    use conclave_node::store::{app_key, ContextRecord, Genesis, StorageKey, Store};
    let store = Store::open(dir, &StorageKey::random()).unwrap();
    let genesis = Genesis {
        app_hash: Hash32([4; 32]),
        members: Vec::new(),
        created_at_ms: 0,
        salt: Hash32([9; 32]),
        anchors: Vec::new(),
        checkpoint_interval: 10,
    };
    let held = (0..10_000u32).map(|i| {
        let value = format!("value {i}").into_bytes();
        (app_key(format!("key {i}").as_bytes()), Some(value))
    });
    let (state_root, tree) = store
        .state(genesis.context_id())
        .compute_update(held.collect::<Vec<_>>(), 0)
        .unwrap();
    let record = ContextRecord {
        id: genesis.context_id(),
        genesis,
        height: Height(0),
        last_block_hash: Hash32::default(),
        state_root,
        last_time_ms: 0,
    };
    store.create_context(&record, &tree).unwrap();
    (store, record)
}

/// A block's state tree update (the JMT part of execution, nothing
/// written): 300 `set`s, 100 of them over held keys, into a context of
/// 10,000 keys; in one pass (only sets) and key by key (a removal among
/// them takes that path).
fn state_tree_update(c: &mut Criterion) {
    use conclave_node::store::app_key;
    let dir = tempfile::tempdir().unwrap();
    let (store, record) = context_of_10k_keys(dir.path());
    let state = store.state(record.id);
    let sets: Vec<(Vec<u8>, Option<Vec<u8>>)> = (0..300u32)
        .map(|i| {
            let key = if i < 100 { i * 97 } else { 20_000 + i };
            (
                app_key(format!("key {key}").as_bytes()),
                Some(format!("value {}", i + 1).into_bytes()),
            )
        })
        .collect();
    c.bench_function(
        "state tree update, 300 sets into 10,000 keys (one pass)",
        |b| b.iter(|| state.compute_update(sets.clone(), 1).unwrap()),
    );
    let mut with_removal = sets.clone();
    with_removal.push((app_key(b"key 5"), None));
    c.bench_function(
        "state tree update, 300 sets and a removal into 10,000 keys (key by key)",
        |b| b.iter(|| state.compute_update(with_removal.clone(), 1).unwrap()),
    );
}

/// A decided block's commit batch (`Store::commit`): 300 txs with their
/// records, receipts and one action each, the certificate of four members,
/// and the block's state tree update of 300 `set`s over a context of
/// 10,000 keys; written unsynced, as a validator commits (its sync runs
/// alongside the next height), and synced. Each iteration commits the
/// next height; building the batch is not measured.
fn commit_batch(c: &mut Criterion) {
    use conclave_consensus::codec::StoredCertificate;
    use conclave_consensus::context::Sig;
    use conclave_consensus::{Block, BlockHeader};
    use conclave_node::store::{
        app_key, ActionRecord, CommitBatch, ContextRecord, Receipt, TxStatus,
    };
    use criterion::BatchSize;
    use jmt::storage::TreeUpdateBatch;

    let dir = tempfile::tempdir().unwrap();
    let (store, mut record) = context_of_10k_keys(dir.path());
    let ctx = record.id;
    let state = store.state(ctx);
    let sender = MemberId([3; 32]);
    struct Batch {
        record: ContextRecord,
        block: Block,
        hashes: Vec<Hash32>,
        certificate: StoredCertificate,
        receipts: Vec<Receipt>,
        actions: Vec<ActionRecord>,
        tree: TreeUpdateBatch,
    }
    // The next height's batch, on the committed state.
    let next = |record: &mut ContextRecord| {
        let h = record.height.0 + 1;
        let txs: Vec<SignedTx> = (0..300u64)
            .map(|i| SignedTx {
                tx: Tx {
                    context_id: ctx,
                    sender,
                    nonce: h * 300 + i,
                    method: "set".into(),
                    args: format!("{{\"key\":\"k{i}\",\"value\":\"v{h}\"}}").into_bytes(),
                },
                signature: [7; 64],
            })
            .collect();
        let sets = (0..300u64).map(|i| {
            let key = app_key(format!("key {}", (h * 7 + i) % 10_000).as_bytes());
            (key, Some(format!("v{h}").into_bytes()))
        });
        let (state_root, tree) = state.compute_update(sets.collect::<Vec<_>>(), h).unwrap();
        let block = Block {
            header: BlockHeader {
                context_id: ctx,
                height: Height(h),
                parent_hash: record.last_block_hash,
                time_ms: h,
                proposer: sender,
                txs_root: Hash32::default(),
                state_root,
                actions_root: Hash32::default(),
                members_hash: Hash32::default(),
            },
            txs,
        };
        let hashes: Vec<Hash32> = block.txs.iter().map(|t| t.hash()).collect();
        let receipts = hashes
            .iter()
            .map(|_| Receipt {
                status: TxStatus::Ok,
                output: b"ok".to_vec(),
                error: None,
                events: vec![("set".into(), b"k".to_vec())],
                actions: vec![b"pay".to_vec()],
                fuel_used: 1_000,
            })
            .collect();
        let actions = hashes
            .iter()
            .map(|tx| ActionRecord {
                id: tx.0,
                request: b"pay".to_vec(),
                tx: *tx,
            })
            .collect();
        let certificate = StoredCertificate {
            height: Height(h),
            round: 0,
            block_hash: block.hash(),
            signatures: (0..4u8)
                .map(|m| (MemberId([m; 32]), Sig([m; 64])))
                .collect(),
        };
        record.height = Height(h);
        record.last_block_hash = block.hash();
        record.state_root = state_root;
        Batch {
            record: record.clone(),
            block,
            hashes,
            certificate,
            receipts,
            actions,
            tree,
        }
    };
    let mut bench = |name: &str, durable: bool| {
        c.bench_function(name, |b| {
            b.iter_batched(
                || next(&mut record),
                |batch| {
                    store
                        .commit(CommitBatch {
                            record: &batch.record,
                            block: &batch.block,
                            tx_hashes: &batch.hashes,
                            certificate: &batch.certificate,
                            receipts: &batch.receipts,
                            actions: &batch.actions,
                            tree: &batch.tree,
                            forgotten: &[],
                            durable,
                        })
                        .unwrap()
                },
                BatchSize::PerIteration,
            )
        });
    };
    bench(
        "commit batch, 300 txs (unsynced, as a validator commits)",
        false,
    );
    bench("commit batch, 300 txs (synced)", true);
}

criterion_group! {
    name = hot;
    config = Criterion::default().sample_size(30);
    targets = tx_verify, seal_open, durable_signature, checkpoint_share, state_tree_update,
        commit_batch
}
criterion_main!(hot);
