//! The node: opens the store, starts one actor per context, serves RPC and
//! metrics.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use conclave_consensus::{ContextId, Height};
use conclave_runtime::Runtime;
use parking_lot::RwLock;
use tokio::sync::broadcast;
use tracing::{info, warn};

use crate::config::Config;
use crate::context::{
    create_context, install_genesis, BlockEvent, CheckpointOptions, ContextActor, ContextDeps,
    ContextHandle,
};
use crate::keys::NodeKeys;
use crate::metrics::Metrics;
use crate::store::{ContextRecord, Genesis, MemberInfo, Store};
use crate::{Error, Result};

/// A genesis as `conclave testnet` writes it: the genesis and its epoch-0
/// context key sealed to each member.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct GenesisFile {
    pub genesis: Genesis,
    pub sealed_keys: Vec<(conclave_consensus::MemberId, SealedKeyHex)>,
}

/// A sealed key, hex in JSON.
#[derive(Clone, Debug)]
pub struct SealedKeyHex(pub Vec<u8>);

impl std::ops::Deref for SealedKeyHex {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl serde::Serialize for SealedKeyHex {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(&self.0))
    }
}

impl<'de> serde::Deserialize<'de> for SealedKeyHex {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = <String as serde::Deserialize>::deserialize(d)?;
        hex::decode(s)
            .map(SealedKeyHex)
            .map_err(serde::de::Error::custom)
    }
}

/// What the network layer reports: messages, requests and connections.
pub type NetworkEvents = tokio::sync::mpsc::Receiver<conclave_network::NetworkEvent>;

pub struct Node {
    pub home: PathBuf,
    pub config: Config,
    pub keys: NodeKeys,
    pub store: Store,
    pub runtime: Runtime,
    pub metrics: Arc<Metrics>,
    pub events: broadcast::Sender<BlockEvent>,
    pub checkpoint_events: broadcast::Sender<crate::context::CheckpointEvent>,
    pub network: conclave_network::NetworkHandle,
    contexts: RwLock<HashMap<ContextId, ContextHandle>>,
    /// Loaded apps by hash, so read-only calls do not re-read and re-hash
    /// the wasm every time.
    apps: RwLock<HashMap<conclave_consensus::Hash32, conclave_runtime::App>>,
    started_at: std::time::Instant,
    /// Lossy or slow links injected for tests (`[debug] fault_injection`).
    pub link_faults: crate::link_faults::LinkFaults,
    /// How late proposals have lately arrived here, over all contexts.
    proposal_delays: Arc<crate::context::ProposalDelays>,
    /// How short of the CPU it may use this node is lately, for all contexts' pacing.
    cpu: Arc<crate::cpu::CpuShortage>,
    /// Held for the node's lifetime: no second node runs on this home.
    _home_lock: HomeLock,
}

/// A node's exclusive claim on its home (`home/node.lock`, an advisory
/// `flock`): a second process on the same home (or a second node in one
/// process) is refused with a clear error, instead of signing with the
/// same key from the same sign guard and WAL. The operating system drops
/// the lock when the process exits, however it exits.
pub(crate) struct HomeLock {
    _file: std::fs::File,
}

impl HomeLock {
    const FILE: &'static str = "node.lock";

    pub(crate) fn acquire(home: &Path) -> Result<Self> {
        use std::io::Write;
        let path = home.join(Self::FILE);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Config(format!(
                    "home {} is in use by another conclave process \
                     (it holds {}); stop that node first",
                    home.display(),
                    path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        // For the operator: which process holds it.
        file.set_len(0)?;
        writeln!(file, "{}", std::process::id())?;
        Ok(Self { _file: file })
    }
}

/// Addresses the node's servers actually bound (ports may be 0 in config).
#[derive(Clone, Copy, Debug)]
pub struct Bound {
    pub rpc: SocketAddr,
    pub metrics: SocketAddr,
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Node {
    /// Opens the node at `home` and starts an actor for every context in
    /// its store; returns it with the network's events, which
    /// [`crate::launch`] routes. Must run inside a tokio runtime.
    pub fn open(home: &Path, config: Config) -> Result<(Arc<Self>, NetworkEvents)> {
        // Each context keeps its WAL open, beside RocksDB's files and the
        // peers' sockets: a node with many contexts needs more than the
        // usual soft limit of 1024 descriptors.
        match rlimit::increase_nofile_limit(65_536) {
            Ok(n) if n < 4_096 => warn!(limit = n, "open file limit is low for many contexts"),
            Ok(_) => {}
            Err(e) => warn!(error = %e, "cannot raise the open file limit"),
        }
        let home_lock = HomeLock::acquire(home)?;
        let keys = NodeKeys::load(home)?;
        let data_dir = Config::data_dir(home);
        let storage_key = crate::keys::storage_key(home, &data_dir)?;
        let store = Store::open(&data_dir, &storage_key).map_err(|e| {
            if crate::store::is_damage(&e) {
                Error::damaged(home, format!("database {}: {e}", data_dir.display()))
            } else {
                e.into()
            }
        })?;
        let runtime = Runtime::new(config.runtime.limits())?;
        let metrics = Arc::new(Metrics::new().map_err(|e| Error::Setup(e.to_string()))?);
        let (events, _) = broadcast::channel(1024);
        let (checkpoint_events, _) = broadcast::channel(1024);
        let (network, net_events) = spawn_network(&config, &keys)?;
        let cpu = crate::cpu::CpuShortage::of_this_machine(Some(crate::cpu::Gauges {
            shortage: metrics.cpu_shortage.clone(),
            cores: metrics.cpu_cores.clone(),
        }));
        let cpu = Arc::new(cpu);
        let node = Arc::new(Self {
            home: home.to_path_buf(),
            config,
            keys,
            store,
            runtime,
            metrics,
            events,
            checkpoint_events,
            network,
            contexts: RwLock::new(HashMap::new()),
            apps: RwLock::new(HashMap::new()),
            started_at: std::time::Instant::now(),
            link_faults: Default::default(),
            proposal_delays: Arc::default(),
            cpu,
            _home_lock: home_lock,
        });
        node.install_genesis_files()?;
        for record in node.store.contexts()? {
            // Never serve or sign from a state that differs from its block.
            node.store
                .check_context(&record, crate::store::Depth::Tip)
                .map_err(|what| Error::damaged(home, format!("context {}: {what}", record.id)))?;
            node.spawn_context(record)?;
        }
        Ok((node, net_events))
    }

    /// Installs the geneses under `home/genesis/*.json` this node is a
    /// member of and does not have yet (written by `conclave testnet`).
    fn install_genesis_files(&self) -> Result<()> {
        let dir = Config::genesis_dir(&self.home);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            return Ok(());
        };
        let me = self.keys.member_id();
        for entry in entries {
            let path = entry?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read_to_string(&path)?;
            let file: GenesisFile = serde_json::from_str(&text)
                .map_err(|e| Error::Config(format!("{}: {e}", path.display())))?;
            let genesis = file.genesis;
            if !genesis.member_ids().contains(&me)
                || self.store.context(&genesis.context_id())?.is_some()
            {
                continue;
            }
            let wasm = match self.store.blob(&genesis.app_hash)? {
                Some(w) => w,
                None => conclave_apps::ALL
                    .iter()
                    .map(|(_, w)| *w)
                    .find(|w| conclave_runtime::app_hash(w) == genesis.app_hash.0)
                    .ok_or_else(|| {
                        Error::Config(format!(
                            "{}: app {} is not available",
                            path.display(),
                            genesis.app_hash
                        ))
                    })?
                    .to_vec(),
            };
            let id = genesis.context_id();
            let sealed = file
                .sealed_keys
                .iter()
                .find(|(m, _)| *m == me)
                .map(|(_, k)| k)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "{}: no context key sealed to this member",
                        path.display()
                    ))
                })?;
            let key = self.open_key(&id, 0, sealed)?;
            self.store.put_context_key(&id, &key)?;
            let record = install_genesis(&self.store, &self.runtime, &wasm, genesis)?;
            info!(context = %record.id, "installed context from genesis file");
        }
        Ok(())
    }

    fn deps(&self) -> ContextDeps {
        ContextDeps {
            store: self.store.clone(),
            runtime: self.runtime.clone(),
            key: self.keys.member.clone(),
            bls: self.keys.bls.clone(),
            config: self.config.clone(),
            metrics: self.metrics.clone(),
            events: self.events.clone(),
            checkpoint_events: self.checkpoint_events.clone(),
            clock: Arc::new(crate::context::SystemClock),
            transport: Some(Arc::new(self.network.clone())),
            wal_dir: Config::wal_dir(&self.home),
            proposal_delays: self.proposal_delays.clone(),
            cpu: self.cpu.clone(),
        }
    }

    /// Installs a context another member created (its genesis checked by
    /// `install_genesis`) with this node's copy of its key, and starts it.
    pub fn install_context(
        &self,
        wasm: &[u8],
        genesis: Genesis,
        key: &crate::seal::ContextKey,
    ) -> Result<ContextRecord> {
        self.store.put_context_key(&genesis.context_id(), key)?;
        let record = install_genesis(&self.store, &self.runtime, wasm, genesis)?;
        self.spawn_context(record.clone())?;
        Ok(record)
    }

    /// Opens a context key sealed to this node's member key.
    pub fn open_key(
        &self,
        context: &ContextId,
        epoch: u64,
        sealed: &[u8],
    ) -> Result<crate::seal::ContextKey> {
        crate::seal::open_key(&self.keys.member, context, epoch, sealed).map_err(|e| {
            Error::Keys(format!(
                "the key of context {context} sealed to this node does not open: {e}"
            ))
        })
    }

    fn spawn_context(&self, record: ContextRecord) -> Result<ContextHandle> {
        let id = record.id;
        let handle = ContextActor::spawn(self.deps(), record)?;
        self.contexts.write().insert(id, handle.clone());
        Ok(handle)
    }

    /// This node as a member: ids and BLS key with its proof of possession.
    pub fn member_info(&self) -> MemberInfo {
        MemberInfo::of(&self.keys.member, &self.keys.bls)
    }

    /// Creates a context running `wasm` whose members are this node and
    /// `others`, and starts it.
    pub fn create_context(&self, wasm: &[u8], others: Vec<MemberInfo>) -> Result<ContextRecord> {
        self.create_context_with(wasm, others, Vec::new(), None)
    }

    /// [`Self::create_context`] with anchors and a checkpoint interval
    /// (default: the config's `[checkpoint] interval`).
    pub fn create_context_with(
        &self,
        wasm: &[u8],
        others: Vec<MemberInfo>,
        anchors: Vec<crate::store::AnchorDomain>,
        checkpoint_interval: Option<u64>,
    ) -> Result<ContextRecord> {
        let mut members = vec![self.member_info()];
        members.extend(others);
        let checkpoint = CheckpointOptions {
            anchors,
            interval: checkpoint_interval.unwrap_or(self.config.checkpoint.interval),
        };
        let record = create_context(
            &self.store,
            &self.runtime,
            wasm,
            members,
            now_ms(),
            checkpoint,
        )?;
        // Epoch 0 of the context key: the creator's to hand to the others.
        self.store
            .put_context_key(&record.id, &crate::seal::ContextKey::generate(0))?;
        self.spawn_context(record.clone())?;
        info!(context = %record.id, app = %record.genesis.app_hash, "context created");
        Ok(record)
    }

    /// Whether `who` may read context `id` through this node: a member of
    /// its current set (or one invited into the next). Unknown contexts
    /// have no members.
    pub fn may_read(&self, id: &ContextId, who: &conclave_consensus::MemberId) -> Result<bool> {
        Ok(self.members_of(id)?.contains(who))
    }

    /// Whether `who` was a member of the set that decided `height` of
    /// context `id`: it held that block then, so it may still read what the
    /// block says about its own txs after it left (the receipt of its own
    /// leave, for one).
    pub fn was_member_at(
        &self,
        id: &ContextId,
        height: Height,
        who: &conclave_consensus::MemberId,
    ) -> Result<bool> {
        Ok(match self.membership_at(id, Some(height))? {
            Some((_, m)) => m.at(height).ids().contains(who),
            None => false,
        })
    }

    /// The members of context `id` as of its committed tip, including those
    /// whose admission is committed but not active yet. Empty if unknown.
    pub fn members_of(&self, id: &ContextId) -> Result<Vec<conclave_consensus::MemberId>> {
        Ok(match self.member_sets(id)? {
            Some((record, m)) => m.readers(record.height),
            None => Vec::new(),
        })
    }

    /// A context's record and member sets as of its committed tip.
    pub fn member_sets(
        &self,
        id: &ContextId,
    ) -> Result<Option<(ContextRecord, crate::members::Membership)>> {
        self.membership_at(id, None)
    }

    /// The member sets as of committed height `at` (default: the newest);
    /// a height above the newest is an error.
    pub fn membership_at(
        &self,
        id: &ContextId,
        at: Option<Height>,
    ) -> Result<Option<(ContextRecord, crate::members::Membership)>> {
        let Some(record) = self.store.context(id)? else {
            return Ok(None);
        };
        let height = at.unwrap_or(record.height);
        if height > record.height {
            return Err(Error::Invalid(format!(
                "height {} is above the committed height {}",
                height.0, record.height.0
            )));
        }
        let state = self.store.state(*id);
        let m = crate::members::read(&crate::store::Overlay::new(&state, height), &record.genesis)?;
        Ok(Some((record, m)))
    }

    pub fn context(&self, id: &ContextId) -> Result<ContextHandle> {
        self.contexts
            .read()
            .get(id)
            .cloned()
            .ok_or(Error::UnknownContext(*id))
    }

    /// The app with this hash, loaded once from the store.
    pub fn app(&self, hash: &conclave_consensus::Hash32) -> Result<conclave_runtime::App> {
        if let Some(app) = self.apps.read().get(hash) {
            return Ok(app.clone());
        }
        let wasm = self
            .store
            .blob(hash)?
            .ok_or_else(|| Error::Missing(format!("app {hash}")))?;
        let app = self.runtime.load(&wasm)?;
        self.apps.write().insert(*hash, app.clone());
        Ok(app)
    }

    /// The mailboxes of the contexts running.
    pub fn context_handles(&self) -> Vec<ContextHandle> {
        self.contexts.read().values().cloned().collect()
    }

    /// Calls `f` with each running context's mailbox, without copying
    /// them (`f` must not reach for the node's contexts).
    pub fn each_context(&self, mut f: impl FnMut(&ContextHandle)) {
        for handle in self.contexts.read().values() {
            f(handle);
        }
    }

    pub fn uptime_secs(&self) -> u64 {
        self.started_at.elapsed().as_secs()
    }
}

fn spawn_network(
    config: &Config,
    keys: &NodeKeys,
) -> Result<(
    conclave_network::NetworkHandle,
    tokio::sync::mpsc::Receiver<conclave_network::NetworkEvent>,
)> {
    let bad = |what: &str, e: String| Error::Config(format!("[p2p] {what}: {e}"));
    let listen = config
        .p2p
        .listen
        .parse::<conclave_network::Multiaddr>()
        .map_err(|e| bad("listen", e.to_string()))?;
    let mut net = conclave_network::NetworkConfig::new(listen);
    for peer in &config.p2p.persistent_peers {
        net.static_peers.push(
            peer.parse::<conclave_network::Multiaddr>()
                .map_err(|e| bad("persistent_peers", e.to_string()))?,
        );
    }
    conclave_network::spawn(net, keys.member.to_bytes()).map_err(|e| Error::Network(e.to_string()))
}
