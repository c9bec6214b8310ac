//! Encryption at rest through the store: what goes in comes out, nothing of
//! it is in clear in RocksDB, and tampered, moved or foreign records are
//! refused without a panic.

use conclave_consensus::{Block, BlockHeader, ContextId, Hash32, Height, MemberId, SignedTx, Tx};
use rocksdb::{ColumnFamilyDescriptor, Options, DB};

use super::*;

/// Markers planted in every kind of context content the store keeps.
const MARKERS: [&[u8]; 7] = [
    b"MARK-STATE-KEY",
    b"MARK-STATE-VALUE",
    b"MARK-TX-ARGS",
    b"MARK-OUTPUT",
    b"MARK-EVENT",
    b"MARK-ACTION",
    b"MARK-WASM-BLOB",
];

pub(super) struct Fixture {
    pub(super) ctx: ContextId,
    pub(super) record: ContextRecord,
    block: Block,
    pending: Block,
    receipt: Receipt,
    action: ActionRecord,
    blob_hash: Hash32,
}

pub(super) fn tx(ctx: ContextId, nonce: u64) -> SignedTx {
    let key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
    Tx {
        context_id: ctx,
        sender: MemberId(key.verifying_key().to_bytes()),
        nonce,
        method: "set".into(),
        args: b"{\"MARK-TX-ARGS\":1}".to_vec(),
    }
    .sign(&key)
}

pub(super) fn make_block(ctx: ContextId, h: u64, txs: Vec<SignedTx>) -> Block {
    Block {
        header: BlockHeader {
            context_id: ctx,
            height: Height(h),
            parent_hash: Hash32([1; 32]),
            time_ms: 1_000 + h,
            proposer: MemberId([2; 32]),
            txs_root: Hash32::default(),
            state_root: Hash32::default(),
            actions_root: Hash32::default(),
            members_hash: Hash32::default(),
        },
        txs,
    }
}

/// A certificate for `block` (its signatures are not what is tested here).
pub(super) fn certificate(block: &Block) -> StoredCertificate {
    StoredCertificate {
        height: block.height(),
        round: 0,
        block_hash: block.hash(),
        signatures: Vec::new(),
    }
}

/// Writes a context, one committed height, a pending block and a blob.
pub(super) fn populate(store: &Store) -> Fixture {
    let genesis = Genesis {
        app_hash: Hash32([4; 32]),
        members: vec![MemberInfo {
            id: MemberId([6; 32]),
            bls_public_key: vec![7; 48],
            bls_pop: vec![8; 96],
        }],
        created_at_ms: 1_000,
        salt: Hash32([9; 32]),
        anchors: Vec::new(),
        checkpoint_interval: 10,
    };
    let ctx = genesis.context_id();
    let state = store.state(ctx);
    let (root0, tree0) = state.compute_update(Vec::new(), 0).unwrap();
    let mut record = ContextRecord {
        id: ctx,
        genesis,
        height: Height(0),
        last_block_hash: Hash32::default(),
        state_root: root0,
        last_time_ms: 1_000,
    };
    store.create_context(&record, &tree0).unwrap();
    let blob_hash = Hash32([3; 32]);
    store.put_blob(&blob_hash, b"\0asm MARK-WASM-BLOB").unwrap();

    let block = make_block(ctx, 1, vec![tx(ctx, 1)]);
    let (root1, tree1) = state
        .compute_update(
            [(
                app_key(b"MARK-STATE-KEY"),
                Some(b"MARK-STATE-VALUE".to_vec()),
            )],
            1,
        )
        .unwrap();
    let receipt = Receipt {
        status: TxStatus::Ok,
        output: b"MARK-OUTPUT".to_vec(),
        error: None,
        events: vec![("set".into(), b"MARK-EVENT".to_vec())],
        actions: vec![b"MARK-ACTION".to_vec()],
        fuel_used: 10,
    };
    let action = ActionRecord {
        id: [0xaa; 32],
        request: b"MARK-ACTION".to_vec(),
        tx: block.txs[0].hash(),
    };
    record.height = Height(1);
    record.last_block_hash = block.hash();
    record.state_root = root1;
    let cert = certificate(&block);
    store
        .commit(CommitBatch {
            record: &record,
            block: &block,
            tx_hashes: &[block.txs[0].hash()],
            certificate: &cert,
            receipts: std::slice::from_ref(&receipt),
            actions: std::slice::from_ref(&action),
            tree: &tree1,
            forgotten: &[],
            // Written as catch-up writes a response's blocks: unsynced,
            // then one sync of the log.
            durable: false,
        })
        .unwrap();
    store.sync_log().unwrap();
    let pending = make_block(ctx, 2, vec![tx(ctx, 2)]);
    store.put_pending_block(&pending, true).unwrap();
    Fixture {
        ctx,
        record,
        block,
        pending,
        receipt,
        action,
        blob_hash,
    }
}

/// Checks that everything `populate` wrote reads back.
fn assert_reads_back(store: &Store, f: &Fixture) {
    assert_eq!(store.context(&f.ctx).unwrap().as_ref(), Some(&f.record));
    assert_eq!(store.contexts().unwrap(), vec![f.record.clone()]);
    assert_eq!(
        store.block(&f.ctx, Height(1)).unwrap().as_ref(),
        Some(&f.block)
    );
    let rec = store.tx(&f.block.txs[0].hash()).unwrap().unwrap();
    assert_eq!(
        (rec.context_id, rec.height, rec.index),
        (f.ctx, Height(1), 0)
    );
    assert_eq!(rec.receipt, f.receipt);
    assert_eq!(
        store.actions_at(&f.ctx, Height(1)).unwrap(),
        vec![f.action.clone()]
    );
    let from = store.actions_from(&f.ctx, Height(0), 10).unwrap();
    assert_eq!(from.len(), 1);
    assert_eq!(from[0].1, f.action);
    assert_eq!(
        store.pending_blocks(&f.ctx, Height(2)).unwrap(),
        vec![f.pending.clone()]
    );
    assert_eq!(
        store.blob(&f.blob_hash).unwrap().as_deref(),
        Some(&b"\0asm MARK-WASM-BLOB"[..])
    );
    let state = store.state(f.ctx);
    let kh = key_hash(&app_key(b"MARK-STATE-KEY"));
    assert_eq!(
        state.value_at(kh, 1).unwrap().as_deref(),
        Some(&b"MARK-STATE-VALUE"[..])
    );
    assert_eq!(state.value_at(kh, 0).unwrap(), None);
    let (value, proof) = state
        .get_with_proof(&app_key(b"MARK-STATE-KEY"), 1)
        .unwrap();
    assert_eq!(value.as_deref(), Some(&b"MARK-STATE-VALUE"[..]));
    verify_proof(
        &proof,
        f.record.state_root,
        &app_key(b"MARK-STATE-KEY"),
        value.as_deref(),
    )
    .unwrap();
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A column family with a raw key and value.
type RawEntry = (&'static str, Box<[u8]>, Box<[u8]>);

/// Every raw key and value of every column family.
fn raw_entries(store: &Store) -> Vec<RawEntry> {
    let mut out = Vec::new();
    for cf in ALL_CFS {
        for item in store
            .db()
            .iterator_cf(store.cf(cf).unwrap(), rocksdb::IteratorMode::Start)
        {
            let (k, v) = item.unwrap();
            out.push((cf, k, v));
        }
    }
    out
}

fn raw_get(store: &Store, cf: &'static str, key: &[u8]) -> Vec<u8> {
    store
        .db()
        .get_cf(store.cf(cf).unwrap(), key)
        .unwrap()
        .unwrap()
}

fn raw_put(store: &Store, cf: &'static str, key: &[u8], value: &[u8]) {
    store
        .db()
        .put_cf(store.cf(cf).unwrap(), key, value)
        .unwrap();
}

fn assert_corrupt<T: std::fmt::Debug>(r: Result<T>, cf: &str) {
    match r {
        Err(StoreError::Corrupt { cf: got, msg }) => {
            assert_eq!(got, cf, "{msg}");
        }
        other => panic!("expected a corrupt record in {cf}, got {other:?}"),
    }
}

#[test]
fn roundtrip_and_nothing_in_clear() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::random();
    let store = Store::open(dir.path(), &key).unwrap();
    let f = populate(&store);
    assert_reads_back(&store, &f);
    // And after the store is opened again.
    drop(store);
    let store = Store::open(dir.path(), &key).unwrap();
    assert_reads_back(&store, &f);

    let entries = raw_entries(&store);
    for cf in [
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
        CF_META,
    ] {
        assert!(entries.iter().any(|(c, ..)| *c == cf), "{cf} was written");
    }
    for (cf, k, v) in &entries {
        for m in MARKERS {
            assert!(
                !contains(k, m) && !contains(v, m),
                "{} in clear in {cf}",
                String::from_utf8_lossy(m)
            );
        }
    }
    // Control: the same scan does see what is meant to be in clear, and
    // would see a marker: the member's BLS key is in the genesis, sealed,
    // but the certificate is not.
    assert!(entries
        .iter()
        .any(|(cf, k, _)| *cf == CF_CERTS && contains(k, f.ctx.as_bytes())));
    assert!(entries
        .iter()
        .any(|(cf, _, v)| *cf == CF_CERTS && contains(v, f.block.hash().as_bytes())));
    assert!(!entries.iter().any(|(_, _, v)| contains(v, &[7; 48])));

    // A reopened store reads all of it back with the same key.
    drop(store);
    let store = Store::open(dir.path(), &key).unwrap();
    assert_reads_back(&store, &f);
}

#[test]
fn tampered_records_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StorageKey::random()).unwrap();
    let f = populate(&store);
    let bkey = height_key(&f.ctx, Height(1));
    let mut sealed = raw_get(&store, CF_BLOCKS, &bkey);
    let middle = sealed.len() / 2;
    sealed[middle] ^= 1; // the ciphertext
    raw_put(&store, CF_BLOCKS, &bkey, &sealed);
    assert_corrupt(store.block(&f.ctx, Height(1)), CF_BLOCKS);

    let hash = f.block.txs[0].hash();
    let mut sealed = raw_get(&store, CF_TXS, hash.as_bytes());
    let last = sealed.len() - 1;
    sealed[last] ^= 0x80; // the tag
    raw_put(&store, CF_TXS, hash.as_bytes(), &sealed);
    assert_corrupt(store.tx(&hash), CF_TXS);

    // A state value: reads of it fail, and so does the tree walk needing it.
    let kh = key_hash(&app_key(b"MARK-STATE-KEY"));
    let vkey = {
        let mut k = f.ctx.as_bytes().to_vec();
        k.extend_from_slice(&kh.0);
        k.extend_from_slice(&1u64.to_be_bytes());
        k
    };
    let mut sealed = raw_get(&store, CF_JMT_VALUES, &vkey);
    sealed[1] ^= 1; // the nonce
    raw_put(&store, CF_JMT_VALUES, &vkey, &sealed);
    assert_corrupt(store.state(f.ctx).value_at(kh, 1), CF_JMT_VALUES);
    assert!(store
        .state(f.ctx)
        .get_with_proof(&app_key(b"MARK-STATE-KEY"), 1)
        .is_err());

    // Plaintext where a sealed record belongs (e.g. an old database).
    raw_put(
        &store,
        CF_CONTEXTS,
        f.ctx.as_bytes(),
        &borsh::to_vec(&f.record).unwrap(),
    );
    assert_corrupt(store.context(&f.ctx), CF_CONTEXTS);
    assert!(store.contexts().is_err());
    // Truncated below the overhead.
    raw_put(&store, CF_BLOBS, f.blob_hash.as_bytes(), &[1; 10]);
    assert_corrupt(store.blob(&f.blob_hash), CF_BLOBS);
}

#[test]
fn records_moved_to_another_key_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StorageKey::random()).unwrap();
    let f = populate(&store);
    // Height 1's block replayed as height 5.
    let sealed = raw_get(&store, CF_BLOCKS, &height_key(&f.ctx, Height(1)));
    raw_put(&store, CF_BLOCKS, &height_key(&f.ctx, Height(5)), &sealed);
    assert_corrupt(store.block(&f.ctx, Height(5)), CF_BLOCKS);
    assert!(store.block(&f.ctx, Height(1)).unwrap().is_some());
    // A tx record under another tx's hash.
    let sealed = raw_get(&store, CF_TXS, f.block.txs[0].hash().as_bytes());
    raw_put(&store, CF_TXS, &[0x11; 32], &sealed);
    assert_corrupt(store.tx(&Hash32([0x11; 32])), CF_TXS);
    // A context record under another context's id.
    let sealed = raw_get(&store, CF_CONTEXTS, f.ctx.as_bytes());
    raw_put(&store, CF_CONTEXTS, &[0x22; 32], &sealed);
    assert_corrupt(store.context(&ContextId([0x22; 32])), CF_CONTEXTS);
    // The same key in another column family: a block as a pending block.
    let pkey = pending_key(&f.ctx, Height(1), &f.block.hash());
    let sealed = raw_get(&store, CF_BLOCKS, &height_key(&f.ctx, Height(1)));
    raw_put(&store, CF_PENDING, &pkey, &sealed);
    assert_corrupt(store.pending_blocks(&f.ctx, Height(1)), CF_PENDING);
}

#[test]
fn wrong_key_is_refused_at_open_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let key = StorageKey::random();
    let f = {
        let store = Store::open(dir.path(), &key).unwrap();
        populate(&store)
    };
    let meta_before = {
        let store = Store::open(dir.path(), &key).unwrap();
        raw_get(&store, CF_META, CHECK_KEY)
    };
    let err = Store::open(dir.path(), &StorageKey::random())
        .err()
        .expect("a wrong key is refused");
    assert!(matches!(err, StoreError::WrongKey), "{err:?}");
    assert!(
        err.to_string()
            .contains("storage key does not match this database"),
        "{err}"
    );
    let store = Store::open(dir.path(), &key).unwrap();
    assert_eq!(raw_get(&store, CF_META, CHECK_KEY), meta_before);
    assert_reads_back(&store, &f);
}

#[test]
fn a_database_written_in_clear_is_refused_an_empty_one_is_adopted() {
    // A database as a version before encryption at rest left it: the old
    // column families, a plaintext record, no `meta`.
    let dir = tempfile::tempdir().unwrap();
    {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let cfs = ALL_CFS[..11]
            .iter()
            .map(|n| ColumnFamilyDescriptor::new(*n, Options::default()));
        let db = DB::open_cf_descriptors(&opts, dir.path(), cfs).unwrap();
        db.put_cf(db.cf_handle(CF_BLOBS).unwrap(), [3; 32], b"wasm")
            .unwrap();
    }
    let err = Store::open(dir.path(), &StorageKey::random())
        .err()
        .expect("refused");
    assert!(matches!(err, StoreError::NotEncrypted), "{err:?}");

    let empty = tempfile::tempdir().unwrap();
    {
        let mut opts = Options::default();
        opts.create_if_missing(true);
        DB::open(&opts, empty.path()).unwrap();
    }
    let key = StorageKey::random();
    drop(Store::open(empty.path(), &key).unwrap());
    assert!(matches!(
        Store::open(empty.path(), &StorageKey::random()).err(),
        Some(StoreError::WrongKey)
    ));
    Store::open(empty.path(), &key).unwrap();
}

#[test]
fn execution_reads_through_the_kept_values_match_the_disk_at_every_tip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StorageKey::random()).unwrap();
    let f = populate(&store);
    let state = store.state(f.ctx);
    let keys: Vec<Vec<u8>> = (0..6u8).map(|i| app_key(&[b'k', i])).collect();
    let mut record = f.record.clone();
    for h in 2..=8u64 {
        // Execution at the tip reads every key (kept from now on), then
        // the next height writes some, removes others.
        let parent = Height(h - 1);
        let reads = Overlay::new(&state, parent);
        for k in &keys {
            assert_eq!(
                reads.get(k).unwrap(),
                state.value_at(key_hash(k), parent.0).unwrap(),
                "key {k:?} at {parent:?}"
            );
        }
        let writes = keys.iter().enumerate().filter_map(|(i, k)| {
            let i = i as u64;
            match (i + h) % 3 {
                0 => Some((k.clone(), Some(vec![i as u8; (h + i) as usize]))),
                1 if h > 3 => Some((k.clone(), None)),
                _ => None,
            }
        });
        let (root, tree) = state.compute_update(writes.collect::<Vec<_>>(), h).unwrap();
        let block = make_block(f.ctx, h, Vec::new());
        record.height = Height(h);
        record.state_root = root;
        record.last_block_hash = block.hash();
        let cert = certificate(&block);
        store
            .commit(CommitBatch {
                record: &record,
                block: &block,
                tx_hashes: &[],
                certificate: &cert,
                receipts: &[],
                actions: &[],
                tree: &tree,
                forgotten: &[],
                durable: false,
            })
            .unwrap();
        let tip = Overlay::new(&state, Height(h));
        for k in &keys {
            let on_disk = state.value_at(key_hash(k), h).unwrap();
            assert_eq!(tip.get(k).unwrap(), on_disk, "key {k:?} at {h}");
            // Older versions are read from the disk, as they were.
            assert_eq!(
                Overlay::new(&state, parent).get(k).unwrap(),
                state.value_at(key_hash(k), parent.0).unwrap()
            );
        }
    }
}

/// Key hashes that share long prefixes (a few first bytes from a tiny
/// alphabet), so the tree gets deep chains and splits, not just a wide top.
fn clustered_key(rng: &mut impl rand::Rng) -> jmt::KeyHash {
    let mut kh = [0u8; 32];
    rng.fill(&mut kh[..]);
    for b in kh.iter_mut().take(rng.gen_range(0..4)) {
        *b = rng.gen_range(0..2);
    }
    jmt::KeyHash(kh)
}

#[test]
fn values_inserted_in_one_pass_build_the_tree_key_by_key_insertion_builds() {
    use rand::{Rng, SeedableRng};
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), &StorageKey::random()).unwrap();
    let ctx = ContextId([3; 32]);
    let state = store.state(ctx);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let (_, genesis) = state.compute_update(Vec::new(), 0).unwrap();
    let mut batch = rocksdb::WriteBatch::default();
    tree::write_tree_batch(&store, &mut batch, &ctx, &genesis).unwrap();
    store.db().write(batch).unwrap();
    let mut held: Vec<jmt::KeyHash> = Vec::new();
    for version in 1..=12u64 {
        // New keys (one alone at first: a tree of one leaf), and values
        // over some held ones.
        let fresh = if version == 1 {
            1
        } else {
            rng.gen_range(1..300)
        };
        let mut values: Vec<(jmt::KeyHash, Vec<u8>)> = (0..fresh)
            .map(|_| (clustered_key(&mut rng), vec![rng.gen(); 8]))
            .collect();
        for _ in 0..rng.gen_range(0..=held.len().min(40)) {
            let kh = held[rng.gen_range(0..held.len())];
            values.push((kh, vec![rng.gen(); 3]));
        }
        held.extend(values.iter().map(|(kh, _)| *kh));
        let by_key = values
            .iter()
            .map(|(kh, v)| (*kh, Some(v.clone())))
            .collect();
        let (root, one_pass) = state.inserted(values.clone(), version).unwrap();
        let (expected_root, key_by_key) = state.put_one_by_one(by_key, version).unwrap();
        assert_eq!(root, expected_root, "root at version {version}");
        assert_eq!(
            one_pass.node_batch, key_by_key.node_batch,
            "nodes at {version}"
        );
        assert_eq!(
            one_pass.stale_node_index_batch, key_by_key.stale_node_index_batch,
            "stale nodes at {version}"
        );
        let mut batch = rocksdb::WriteBatch::default();
        tree::write_tree_batch(&store, &mut batch, &ctx, &one_pass).unwrap();
        store.db().write(batch).unwrap();
        assert_eq!(state.root(version).unwrap(), root);
    }
}
