//! A seeded simulation of one context among several real context actors in
//! one process: real stores (RocksDB), real WASM execution, real WALs and
//! sign guards, real consensus; only the network is the in-memory
//! [`Bus`]. Each node runs on a tokio runtime of its own, so a crash is its
//! runtime dropped mid-flight, and a restart reopens its store and WAL.
//!
//! A scenario is replayable: `CONCLAVE_SIM_SEED=<n>` reruns it with the
//! keys, the load and the message losses of a failed run (every failure
//! message names its seed).

mod bus;
mod byzantine_tests;
mod forge;
mod pace_tests;
mod tests;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_consensus::codec::StoredCertificate;
use conclave_consensus::sign_policy::SignPosition;
use conclave_consensus::{Block, ContextId, Hash32, Height, MemberId, Tx, ValidatorSet};
use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tokio::sync::broadcast;

use self::bus::Bus;
use super::{create_context, install_genesis, CheckpointOptions, ContextActor, ContextDeps};
use super::{Clock, ContextHandle, SystemClock};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::seal::ContextKey;
use crate::store::{ContextRecord, Genesis, MemberInfo, StorageKey, Store};

/// The seed of this run: `CONCLAVE_SIM_SEED`, or one derived from `name`.
fn seed(name: &str) -> u64 {
    std::env::var("CONCLAVE_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
            })
        })
}

/// One member's node: its home on disk, and while it runs, its runtime
/// and the actor's mailbox.
struct SimNode {
    home: tempfile::TempDir,
    key: SigningKey,
    bls: conclave_checkpoint::SecretKey,
    storage_key: StorageKey,
    clock: Arc<dyn Clock>,
    running: Option<Running>,
}

struct Running {
    rt: tokio::runtime::Runtime,
    handle: ContextHandle,
    store: Store,
    metrics: Arc<Metrics>,
}

impl SimNode {
    fn id(&self) -> MemberId {
        MemberId(self.key.verifying_key().to_bytes())
    }

    fn info(&self) -> MemberInfo {
        MemberInfo::of(&self.key, &self.bls)
    }

    fn data_dir(&self) -> PathBuf {
        self.home.path().join("data")
    }

    fn open_store(&self) -> Store {
        Store::open(&self.data_dir(), &self.storage_key).expect("open the store")
    }
}

pub(crate) struct Sim {
    pub(crate) seed: u64,
    bus: Arc<Bus>,
    nodes: Vec<SimNode>,
    context: ContextId,
    config: Config,
    rng: ChaCha8Rng,
    /// Every tx a node acknowledged.
    pub(crate) acknowledged: Vec<Hash32>,
    /// The context key (epoch 0) all members hold.
    key: ContextKey,
    /// The last sign-guard position seen of each node (invariant: it only
    /// moves forward, unless its home is restored from a backup).
    guards: std::sync::Mutex<HashMap<usize, SignPosition>>,
    /// How short of CPU the nodes' machine is (from their next start).
    pub(crate) cpu: crate::cpu::Shortage,
}

impl Sim {
    /// `n` members of a `kv` context, each node set up but not started.
    pub(crate) fn new(name: &str, n: usize) -> Self {
        Self::with_app(name, n, conclave_apps::KV)
    }

    /// `n` members of a context running `wasm`.
    pub(crate) fn with_app(name: &str, n: usize, wasm: &[u8]) -> Self {
        let seed = seed(name);
        // RUST_LOG=debug shows the actors' logs under the test's output.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let nodes: Vec<SimNode> = (0..n)
            .map(|_| SimNode {
                home: tempfile::tempdir().expect("tempdir"),
                key: SigningKey::from_bytes(&rng.gen()),
                bls: conclave_checkpoint::SecretKey::from_seed(&rng.gen()).expect("bls key"),
                storage_key: StorageKey::random(),
                clock: Arc::new(SystemClock),
                running: None,
            })
            .collect();
        let mut config = Config::default();
        // Short timeouts (a lost proposal or a crashed proposer costs a
        // round); blocks here are small: compact from the first tx.
        config.consensus.timeout_propose_ms = 300;
        config.block.compact_from_txs = 1;
        config.consensus.timeout_prevote_ms = 150;
        config.consensus.timeout_precommit_ms = 150;
        let runtime = conclave_runtime::Runtime::new(config.runtime.limits()).expect("runtime");
        let members: Vec<MemberInfo> = nodes.iter().map(SimNode::info).collect();
        let key = ContextKey::generate(0);
        let mut genesis: Option<Genesis> = None;
        for node in &nodes {
            let store = node.open_store();
            let record = match &genesis {
                None => create_context(
                    &store,
                    &runtime,
                    wasm,
                    members.clone(),
                    SystemClock.unix_ms(),
                    CheckpointOptions {
                        anchors: Vec::new(),
                        interval: config.checkpoint.interval,
                    },
                ),
                Some(g) => install_genesis(&store, &runtime, wasm, g.clone()),
            }
            .expect("install the genesis");
            store
                .put_context_key(&record.id, &key)
                .expect("context key");
            genesis = Some(record.genesis);
        }
        let context = genesis.expect("a member").context_id();
        eprintln!("sim {name}: seed {seed} (rerun with CONCLAVE_SIM_SEED={seed})");
        Self {
            seed,
            bus: Bus::new(seed),
            nodes,
            context,
            config,
            rng,
            acknowledged: Vec::new(),
            key,
            guards: std::sync::Mutex::new(HashMap::new()),
            cpu: crate::cpu::Shortage::FULL,
        }
    }

    /// A copy of stopped node `i`'s home (store, WAL, sign guard).
    pub(crate) fn backup(&self, i: usize) -> tempfile::TempDir {
        assert!(self.nodes[i].running.is_none(), "back up a stopped node");
        let copy = tempfile::tempdir().expect("tempdir");
        copy_dir(self.nodes[i].home.path(), copy.path());
        copy
    }

    /// Puts `backup` back as stopped node `i`'s home.
    pub(crate) fn restore(&self, i: usize, backup: &tempfile::TempDir) {
        assert!(self.nodes[i].running.is_none(), "restore a stopped node");
        let home = self.nodes[i].home.path();
        for dir in ["data", "wal"] {
            let _ = std::fs::remove_dir_all(home.join(dir));
        }
        copy_dir(backup.path(), home);
        // Restoring a backup is what moves a guard back; the node itself
        // must then find its later signatures (`sign_check`).
        self.guards_seen().remove(&i);
    }

    fn guards_seen(&self) -> std::sync::MutexGuard<'_, HashMap<usize, SignPosition>> {
        self.guards.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Node `i`'s sign-guard position: the highest of its guards (one per
    /// context), read without disturbing it.
    fn guard_position(&self, i: usize) -> Option<SignPosition> {
        let dir = self.nodes[i].home.path().join("wal");
        let entries = std::fs::read_dir(dir).ok()?;
        entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sign"))
            // A record read mid-rewrite may be torn: skipped this time.
            .filter_map(|p| crate::sign_guard::SignGuard::peek(&p).ok().flatten())
            .map(|last| last.position)
            .max()
    }

    /// Whether node `j`'s precommit is in the commit certificate of height
    /// `h`, as node `i` stored it.
    pub(crate) fn signed(&self, i: usize, h: u64, j: usize) -> bool {
        let running = self.nodes[i].running.as_ref().expect("node runs");
        let cert = running
            .store
            .certificate(&self.context, Height(h))
            .expect("read");
        cert.is_some_and(|c| c.signatures.iter().any(|(m, _)| *m == self.member(j)))
    }

    /// Node `i` reads the time from `clock` (from its next start).
    pub(crate) fn set_clock(&mut self, i: usize, clock: Arc<dyn Clock>) {
        self.nodes[i].clock = clock;
    }

    /// Node `i`'s committed block at `h`.
    pub(crate) fn block(&self, i: usize, h: u64) -> Option<Block> {
        let running = self.nodes[i].running.as_ref()?;
        running.store.block(&self.context, Height(h)).ok()?
    }

    /// The context's genesis time.
    pub(crate) fn genesis_ms(&self) -> u64 {
        let store = &self.nodes[0].running.as_ref().expect("node 0 runs").store;
        let record = store
            .context(&self.context)
            .ok()
            .flatten()
            .expect("context");
        record.genesis.created_at_ms
    }

    pub(crate) fn context(&self) -> ContextId {
        self.context
    }

    pub(crate) fn member(&self, i: usize) -> MemberId {
        self.nodes[i].id()
    }

    /// Starts node `i` (again, after a crash: from its store and WAL).
    pub(crate) fn start(&mut self, i: usize) {
        let node = &self.nodes[i];
        assert!(node.running.is_none(), "node {i} runs already");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let store = node.open_store();
        let record: ContextRecord = store
            .context(&self.context)
            .expect("read the context")
            .expect("the context is installed");
        let metrics = Arc::new(Metrics::new().expect("metrics"));
        let deps = ContextDeps {
            store: store.clone(),
            runtime: conclave_runtime::Runtime::new(self.config.runtime.limits()).expect("runtime"),
            key: node.key.clone(),
            bls: node.bls.clone(),
            config: self.config.clone(),
            metrics: metrics.clone(),
            events: broadcast::channel(1024).0,
            checkpoint_events: broadcast::channel(1024).0,
            clock: node.clock.clone(),
            transport: Some(self.bus.port(node.id())),
            wal_dir: node.home.path().join("wal"),
            proposal_delays: Arc::default(),
            cpu: Arc::new(crate::cpu::CpuShortage::fixed(self.cpu)),
        };
        let handle = {
            let _entered = rt.enter();
            ContextActor::spawn(deps, record).expect("spawn the actor")
        };
        self.bus.attach(node.id(), handle.clone(), store.clone());
        self.nodes[i].running = Some(Running {
            rt,
            handle,
            store,
            metrics,
        });
    }

    pub(crate) fn start_all(&mut self) {
        for i in 0..self.nodes.len() {
            self.start(i);
        }
    }

    /// Node `i` crashes: its runtime, with the actor and every task of it,
    /// is dropped wherever it was.
    pub(crate) fn crash(&mut self, i: usize) {
        self.bus.detach(&self.member(i));
        let running = self.nodes[i].running.take().expect("node runs");
        // Waits until the tasks are dropped: the store closes, and the
        // restart can open it again.
        running.rt.shutdown_timeout(Duration::from_secs(30));
    }

    /// Cuts every link between the nodes in `side` and the others (both
    /// ways), or only from `side` to the others with `one_way`.
    pub(crate) fn partition(&self, side: &[usize], one_way: bool) {
        for &a in side {
            for b in (0..self.nodes.len()).filter(|b| !side.contains(b)) {
                self.bus.cut(self.member(a), self.member(b));
                if !one_way {
                    self.bus.cut(self.member(b), self.member(a));
                }
            }
        }
    }

    pub(crate) fn heal(&self) {
        self.bus.heal();
    }

    pub(crate) fn set_drop_rate(&self, rate: f64) {
        self.bus.set_drop_rate(rate);
    }

    /// The commit certificate node `i` stored for `height`.
    pub(crate) fn certificate(&self, i: usize, height: u64) -> StoredCertificate {
        let running = self.nodes[i].running.as_ref().expect("node runs");
        running
            .store
            .certificate(&self.context, Height(height))
            .expect("read certificate")
            .expect("a certificate")
    }

    /// The context and its validators (the members it started with).
    pub(crate) fn validators(&self) -> (ContextId, ValidatorSet) {
        let ids: Vec<MemberId> = self.nodes.iter().map(SimNode::id).collect();
        (
            self.context,
            ValidatorSet::from_members(&ids).expect("members"),
        )
    }

    /// Node `i` submits a call of `method` as itself, at the nonce its node
    /// says is next (as a client does: the node may sign txs of its own,
    /// such as a key rotation); the tx's hash.
    pub(crate) fn submit(&mut self, i: usize, method: &str, args: &[u8]) -> Hash32 {
        let running = self.nodes[i].running.as_ref().expect("node runs");
        let nonce = running
            .rt
            .block_on(running.handle.next_nonce(self.member(i)))
            .unwrap_or_else(|e| panic!("seed {}: node {i}: next nonce: {e}", self.seed));
        let tx = Tx {
            context_id: self.context,
            sender: self.member(i),
            nonce,
            method: method.into(),
            args: args.to_vec(),
        }
        .sign(&self.nodes[i].key)
        .verified()
        .expect("a fresh signature verifies");
        let hash = running
            .rt
            .block_on(running.handle.submit(tx))
            .unwrap_or_else(|e| panic!("seed {}: node {i} refused a tx: {e}", self.seed));
        self.acknowledged.push(hash);
        hash
    }

    /// The receipt of tx `hash` as node `i` committed it.
    pub(crate) fn receipt(&self, i: usize, hash: &Hash32) -> Option<crate::store::Receipt> {
        let running = self.nodes[i].running.as_ref()?;
        Some(running.store.tx(hash).ok()??.receipt)
    }

    /// Submits `count` kv writes, each by a random running node as itself;
    /// keeps the acknowledged ones.
    pub(crate) fn load(&mut self, count: usize) {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.load_on(&all, count)
    }

    /// [`Self::load`] through the running nodes among `nodes` only.
    pub(crate) fn load_on(&mut self, nodes: &[usize], count: usize) {
        let live: Vec<usize> = nodes
            .iter()
            .copied()
            .filter(|i| self.nodes[*i].running.is_some())
            .collect();
        for _ in 0..count {
            let i = live[self.rng.gen_range(0..live.len())];
            let value: u32 = self.rng.gen();
            let args = format!(r#"{{"key":"k{i}","value":"{value}"}}"#);
            self.submit(i, "set", args.as_bytes());
        }
    }

    /// Node `i`'s committed tip, if it runs.
    pub(crate) fn height(&self, i: usize) -> Option<Height> {
        let running = self.nodes[i].running.as_ref()?;
        Some(running.store.context(&self.context).ok()??.height)
    }

    /// Waits until every running node's tip is at least `h`; panics with
    /// the tips after `timeout`.
    pub(crate) fn wait_height(&self, h: u64, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let tips: Vec<Option<u64>> = (0..self.nodes.len())
                .map(|i| self.height(i).map(|h| h.0))
                .collect();
            if tips.iter().flatten().all(|t| *t >= h) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "seed {}: tips {tips:?} after {timeout:?}, wanted {h}",
                self.seed
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until every acknowledged tx is committed on every running
    /// node; panics after `timeout`.
    pub(crate) fn wait_all_committed(&self, timeout: Duration) {
        let all: Vec<usize> = (0..self.nodes.len()).collect();
        self.wait_committed_on(&all, timeout)
    }

    /// Waits until every acknowledged tx is committed on the running nodes
    /// among `nodes`; panics after `timeout`.
    pub(crate) fn wait_committed_on(&self, nodes: &[usize], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            // Per node: (index, txs missing, tip).
            let missing: Vec<(usize, usize, Option<u64>)> = nodes
                .iter()
                .filter_map(|i| self.nodes[*i].running.as_ref().map(|r| (*i, r)))
                .map(|(i, r)| {
                    let n = self
                        .acknowledged
                        .iter()
                        .filter(|h| r.store.tx(h).ok().flatten().is_none())
                        .count();
                    (i, n, self.height(i).map(|h| h.0))
                })
                .filter(|(_, n, _)| *n > 0)
                .collect();
            if missing.is_empty() {
                self.check_guards();
                return;
            }
            assert!(
                Instant::now() < deadline,
                "seed {}: acknowledged txs not committed after {timeout:?} (node, missing, tip): {missing:?}",
                self.seed
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The invariants every scenario ends with, over the running nodes:
    /// the same block hash (so the same state root) at every height they
    /// share, every acknowledged tx included at most once (the waits check
    /// at least once), each sender's nonces increasing along the chain, and
    /// no sign guard moved back.
    pub(crate) fn check_invariants(&self) {
        let running: Vec<&Running> = self
            .nodes
            .iter()
            .filter_map(|n| n.running.as_ref())
            .collect();
        let tips: Vec<u64> = (0..self.nodes.len())
            .filter_map(|i| self.height(i))
            .map(|h| h.0)
            .collect();
        let shared = tips.iter().copied().min().unwrap_or(0);
        let mut included: HashMap<Hash32, usize> = HashMap::new();
        let mut nonces: HashMap<MemberId, u64> = HashMap::new();
        for h in 1..=shared {
            let blocks: Vec<_> = running
                .iter()
                .map(|r| {
                    r.store
                        .block(&self.context, Height(h))
                        .expect("read")
                        .expect("block below the tip")
                })
                .collect();
            for b in &blocks[1..] {
                assert_eq!(
                    b.hash(),
                    blocks[0].hash(),
                    "seed {}: nodes disagree at height {h}",
                    self.seed
                );
            }
            for tx in &blocks[0].txs {
                *included.entry(tx.hash()).or_default() += 1;
                let last = nonces.insert(tx.tx.sender, tx.tx.nonce);
                assert!(
                    last.is_none_or(|last| tx.tx.nonce > last),
                    "seed {}: sender {}'s nonce {} at height {h} after {last:?}",
                    self.seed,
                    tx.tx.sender,
                    tx.tx.nonce
                );
            }
        }
        for hash in &self.acknowledged {
            let n = included.get(hash).copied().unwrap_or(0);
            assert!(n <= 1, "seed {}: tx {hash} included {n} times", self.seed);
        }
        self.check_guards();
    }

    /// Each node's sign guard is where it was last seen or further on (a
    /// crash, a restart, a catch-up never move it back). Checked after
    /// every wait for commits and at the end.
    fn check_guards(&self) {
        for i in 0..self.nodes.len() {
            let Some(now) = self.guard_position(i) else {
                continue;
            };
            let mut seen = self.guards_seen();
            if let Some(before) = seen.get(&i) {
                assert!(
                    now >= *before,
                    "seed {}: node {i}'s sign guard went back from {before} to {now}",
                    self.seed
                );
            }
            seen.insert(i, now);
        }
    }
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

/// A clock the test sets.
#[derive(Debug, Default)]
pub(crate) struct ManualClock(std::sync::atomic::AtomicU64);

impl ManualClock {
    pub(crate) fn at(ms: u64) -> Arc<Self> {
        Arc::new(Self(ms.into()))
    }

    pub(crate) fn set(&self, ms: u64) {
        self.0.store(ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn unix_ms(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        // Waits for every task to be dropped, so no RocksDB handle outlives
        // the test (a process exiting under a live one aborts).
        for node in &mut self.nodes {
            if let Some(r) = node.running.take() {
                r.rt.shutdown_timeout(Duration::from_secs(30));
            }
        }
    }
}
