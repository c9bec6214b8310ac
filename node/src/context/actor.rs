use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use conclave_consensus::codec::StoredCertificate;
use std::collections::{BTreeMap, VecDeque};

use conclave_consensus::codec::{
    decode_polka, decode_proposal, decode_round_certificate, decode_vote, encode_polka,
    encode_proposal, encode_round_certificate, encode_vote,
};
use conclave_consensus::mal::LivenessMsg;
use conclave_consensus::mal::{
    Input, LocallyProposedValue, ProposedValue, SignedConsensusMsg, Timeout, Validity, ValueOrigin,
};
use conclave_consensus::{
    Block, BlockHeader, ContextId, Engine, EngineConfig, Hash32, Height, MemberId, Output,
    SignedTx, ValidatorSet, VerifiedTx,
};
use conclave_runtime::{App, Runtime};
use ed25519_dalek::SigningKey;
use malachitebft_core_types::LinearTimeouts;
use tokio::sync::{broadcast, mpsc};
use tracing::{debug, error, info, warn};

use super::ingress::{BlockEvent, ContextHandle, Message, SubmitError};
use super::wire::Wire;
use crate::config::Config;
use crate::exec::{self, check_tx_with, BlockEnv, Executed, Overlay};
use crate::members::{MemberSet, Membership};
use crate::mempool::{Mempool, MempoolError};
use crate::metrics::Metrics;
use crate::seal::{ContextKey, Purpose};
use crate::sign_guard::SignGuard;
use crate::store::{CommitBatch, ContextRecord, Store, TxStatus};
use crate::wal::{SharedLog, Wal};
use crate::{Error, Result};

/// What every context actor of a node shares.
#[derive(Clone)]
pub struct ContextDeps {
    pub store: Store,
    pub runtime: Runtime,
    pub key: SigningKey,
    /// The node's BLS key: it signs checkpoints.
    pub bls: conclave_checkpoint::SecretKey,
    pub config: Config,
    pub metrics: Arc<Metrics>,
    pub events: broadcast::Sender<BlockEvent>,
    /// Where completed checkpoints are announced.
    pub checkpoint_events: broadcast::Sender<crate::context::CheckpointEvent>,
    /// The node's peer-to-peer layer; contexts with other members use it.
    pub network: Option<conclave_network::NetworkHandle>,
    /// Where each context keeps its consensus WAL and sign guard.
    pub wal_dir: PathBuf,
}

/// Bytes of txs gossiped in one message, at most (well under the network's
/// message limit).
const MAX_TX_BATCH_BYTES: usize = 512 << 10;

/// A member whose gossip has not reached us for this long, while a height
/// is struggling, gets its connection re-established (the network limits
/// how often, whichever contexts ask).
const SILENT_AFTER: Duration = Duration::from_secs(5);

/// Bulk-lane messages (txs) handled between two looks at the consensus
/// lane.
const BULK_SLICE: usize = 256;

/// Pending txs re-gossiped when a member's node (re)connects, at most.
const MAX_REGOSSIP_TXS: usize = 1024;

/// Gossip kept for heights this node has not reached yet, at most.
const MAX_FUTURE_BYTES: usize = 32 << 20;

/// Heights above the next one whose gossip is kept; anything further is
/// left to catch-up (a member cannot make us hold gossip for far heights).
const FUTURE_WINDOW: u64 = 16;

fn frames_bytes(frames: &[(MemberId, Vec<u8>)]) -> usize {
    frames.iter().map(|(_, d)| d.len()).sum()
}

struct Proposed {
    block: Block,
    executed: Executed,
}

pub struct ContextActor {
    deps: ContextDeps,
    record: ContextRecord,
    /// The member sets as of the committed tip.
    membership: Membership,
    /// The anchors added after creation, as of the committed tip.
    anchors: crate::anchors::Anchors,
    /// The domains the next height's checkpoints are signed for.
    anchors_in_force: Vec<crate::store::AnchorDomain>,
    /// The members that validate the next height.
    members: Vec<MemberId>,
    validators: ValidatorSet,
    /// Who may talk on the context's topic: the next height's members and
    /// those admitted after it.
    readers: Vec<MemberId>,
    /// This node's context keys by key epoch.
    keys: BTreeMap<u64, ContextKey>,
    /// This node follows the context's blocks: false once its member was
    /// removed (a node that joined follows before its own admission shows
    /// in the blocks it has).
    following: bool,
    app: App,
    engine: Engine,
    /// The WAL of the height in progress and the last-signed guard.
    log: SharedLog,
    mempool: Mempool,
    proposals: HashMap<Hash32, Proposed>,
    timers: HashMap<Timeout, u64>,
    timer_seq: u64,
    /// A height is in progress (no height runs while there is nothing to do).
    running: bool,
    last_commit: Option<Instant>,
    inbox: mpsc::Sender<Message>,
    label: String,
    /// Messages to gossip to the other members, in order.
    outbound: Option<mpsc::Sender<Outbound>>,
    /// Gossip for heights above the next one, replayed when it is reached.
    future: BTreeMap<Height, Vec<(MemberId, Vec<u8>)>>,
    /// Admitted txs not gossiped yet, and their encoded size.
    gossip_txs: Vec<conclave_consensus::SignedTx>,
    gossip_txs_bytes: usize,
    /// Bytes held in `future`.
    future_len: usize,
    /// Sync requests that failed in a row; the next one goes to another
    /// member (a member that never answers cannot keep us asking it).
    sync_failures: usize,
    /// The member the last sync request went to.
    sync_peer: Option<MemberId>,
    /// When each member's gossip last reached us.
    last_heard: HashMap<MemberId, Instant>,
    replay: VecDeque<(MemberId, Vec<u8>)>,
    /// A sync request is in flight.
    syncing: bool,
    /// Sequence number of the next gossip frame (starts at the clock, so a
    /// restarted node does not repeat its earlier frames).
    gossip_seq: u64,
    /// Checkpoint signature collection (`crate::checkpoint`).
    checkpoints: crate::checkpoint::Checkpoints,
    /// A checkpoint resend tick is scheduled.
    checkpoint_tick_armed: bool,
    /// Senders' public keys, decompressed (only members' txs get as far
    /// as a signature check, so this holds at most the members ever seen).
    sender_keys: HashMap<MemberId, ed25519_dalek::VerifyingKey>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn engine_err(e: conclave_consensus::Error) -> Error {
    Error::Other(e.to_string())
}

fn wal_err(e: crate::wal::WalError) -> Error {
    Error::Other(format!("wal: {e}"))
}

/// An engine for `next` that consults the context's sign guard.
fn new_engine(
    deps: &ContextDeps,
    id: ContextId,
    next: Height,
    validators: &ValidatorSet,
    log: &SharedLog,
) -> Engine {
    let mut ecfg = EngineConfig::new(id);
    ecfg.timeouts = timeouts(&deps.config);
    Engine::new(ecfg, deps.key.clone(), next, validators.clone())
        .with_sign_policy(log.sign_policy())
}

/// Opens a context's WAL and sign guard; damage in the WAL's tail (a torn
/// write) is cut and reported, anything else refuses to start the context.
fn open_log(deps: &ContextDeps, id: &ContextId) -> Result<SharedLog> {
    std::fs::create_dir_all(&deps.wal_dir)?;
    let name = id.to_hex();
    let (wal, recovered) = Wal::open(deps.wal_dir.join(format!("{name}.wal"))).map_err(wal_err)?;
    if let Some(repair) = &recovered.repair {
        warn!(context = %id, damage = ?repair.damage, dropped_bytes = repair.dropped_bytes,
            backup = %repair.backup.display(), "cut a damaged WAL tail");
    }
    let guard = SignGuard::open(deps.wal_dir.join(format!("{name}.sign")))
        .map_err(|e| Error::Other(format!("sign guard: {e}")))?;
    Ok(SharedLog::new(wal, guard))
}

fn timeouts(cfg: &Config) -> LinearTimeouts {
    let c = &cfg.consensus;
    let delta = Duration::from_millis(c.timeout_delta_ms);
    let propose = Duration::from_millis(c.timeout_propose_ms);
    let prevote = Duration::from_millis(c.timeout_prevote_ms);
    let precommit = Duration::from_millis(c.timeout_precommit_ms);
    LinearTimeouts {
        propose,
        propose_delta: delta,
        prevote,
        prevote_delta: delta,
        precommit,
        precommit_delta: delta,
        rebroadcast: propose + prevote + precommit,
        max_timeout: Duration::from_secs(30),
    }
}

impl ContextActor {
    /// Loads the context and spawns its actor; returns its mailbox.
    pub fn spawn(deps: ContextDeps, record: ContextRecord) -> Result<ContextHandle> {
        let wasm = deps
            .store
            .blob(&record.genesis.app_hash)?
            .ok_or_else(|| Error::Other(format!("app {} missing", record.genesis.app_hash)))?;
        let app = deps.runtime.load(&wasm)?;
        let state = deps.store.state(record.id);
        let membership = Overlay::new(&state, record.height).membership(&record.genesis)?;
        let anchors = Overlay::new(&state, record.height).anchors()?;
        let next = Height(record.height.0 + 1);
        let anchors_in_force = anchors.at(&record.genesis, next);
        let set = membership.at(next).clone();
        let members = set.ids();
        let validators = ValidatorSet::from_members(&members)
            .map_err(|e| Error::Other(format!("validator set: {e}")))?;
        let readers = membership.readers(record.height);
        let keys = deps
            .store
            .context_keys(&record.id)?
            .into_iter()
            .map(|k| (k.epoch, k))
            .collect();
        let log = open_log(&deps, &record.id)?;
        let engine = new_engine(&deps, record.id, next, &validators, &log);
        let (tx, rx) = mpsc::channel(4096);
        let (bulk_tx, bulk_rx) = mpsc::channel(4096);
        let label = record.id.to_hex();
        let outbound = match (&deps.network, readers.len() > 1) {
            (Some(net), true) => Some(spawn_publisher(net.clone(), record.id, readers.clone())),
            _ => None,
        };
        deps.metrics
            .consensus_height
            .with_label_values(&[&label])
            .set(record.height.0 as i64);
        deps.metrics
            .consensus_validators
            .with_label_values(&[&label])
            .set(members.len() as i64);
        // Exported at zero from the start: a healthy context shows 0, not
        // an absent series.
        for kind in ["sync", "reconnect"] {
            let _ = deps
                .metrics
                .consensus_fallbacks_total
                .with_label_values(&[&label, kind]);
        }
        let checkpoints = crate::checkpoint::Checkpoints::new(
            deps.store.clone(),
            deps.metrics.clone(),
            &record,
            membership.clone(),
            anchors.clone(),
            MemberId(deps.key.verifying_key().to_bytes()),
            deps.bls.clone(),
            deps.config.checkpoint.max_resends,
        )?
        .announcing_to(deps.checkpoint_events.clone());
        let actor = Self {
            checkpoints,
            checkpoint_tick_armed: false,
            mempool: Mempool::new(deps.config.mempool.clone()),
            deps,
            record,
            membership,
            anchors,
            anchors_in_force,
            members,
            validators,
            readers,
            keys,
            following: true,
            app,
            engine,
            log,
            proposals: HashMap::new(),
            timers: HashMap::new(),
            timer_seq: 0,
            running: false,
            last_commit: None,
            inbox: tx.clone(),
            label,
            outbound,
            future: BTreeMap::new(),
            future_len: 0,
            gossip_txs: Vec::new(),
            gossip_txs_bytes: 0,
            sync_failures: 0,
            sync_peer: None,
            last_heard: HashMap::new(),
            replay: VecDeque::new(),
            syncing: false,
            gossip_seq: now_ms().saturating_mul(1_000),
            sender_keys: HashMap::new(),
        };
        let id = actor.record.id;
        let mut actor = actor;
        // Keys handed over in blocks this node committed before it held
        // them (a joiner's first run).
        if let Err(e) = actor.pick_up_keys() {
            warn!(context = %id, error = %e, "cannot pick up context keys");
        }
        tokio::spawn(actor.run(rx, bulk_rx));
        Ok(ContextHandle::new(id, tx, bulk_tx))
    }

    fn id(&self) -> ContextId {
        self.record.id
    }

    /// The actor's loop over its two lanes (see [`ContextHandle`]):
    /// everything queued on the consensus lane is handled before each slice
    /// of the bulk lane, and the next height starts once both are worked
    /// through (or after each slice while the bulk lane keeps filling).
    async fn run(mut self, mut rx: mpsc::Receiver<Message>, mut bulk: mpsc::Receiver<Message>) {
        info!(context = %self.id(), height = self.record.height.0, "context started");
        // A crash in the middle of a height: resume it from the WAL at once,
        // whatever the mempool holds (this node may have voted already).
        if self.is_validator() && self.wal_holds_next_height() {
            if let Err(e) = self.begin_height() {
                error!(context = %self.id(), error = %e, "cannot resume the height in the WAL");
            }
        }
        // Checkpoints resumed from the store may still need our share.
        self.arm_checkpoint_tick();
        loop {
            let msg = tokio::select! {
                biased;
                msg = rx.recv() => match msg {
                    Some(msg) => msg,
                    None => break,
                },
                Some(msg) = bulk.recv() => msg,
            };
            self.handle(msg);
            loop {
                while let Ok(msg) = rx.try_recv() {
                    self.handle(msg);
                }
                while let Some((from, data)) = self.replay.pop_front() {
                    self.handle(Message::Pushed(from, data));
                }
                // Txs queued meanwhile go into the next block: under load
                // blocks batch up instead of carrying one tx each.
                let mut more = false;
                for _ in 0..BULK_SLICE {
                    if !rx.is_empty() {
                        more = true;
                        break;
                    }
                    match bulk.try_recv() {
                        Ok(msg) => self.handle(msg),
                        Err(_) => break,
                    }
                }
                more = more || !bulk.is_empty();
                self.flush_tx_gossip();
                match self.maybe_start_height() {
                    Ok(true) if !self.running => continue,
                    Ok(_) if more => continue,
                    Ok(_) => break,
                    Err(e) => {
                        error!(context = %self.id(), error = %e, "cannot start height");
                        if !more {
                            break;
                        }
                    }
                }
            }
        }
        debug!(context = %self.id(), "context stopped");
    }

    fn handle(&mut self, msg: Message) {
        if let Err(e) = self.on_message(msg) {
            error!(context = %self.id(), error = %e, "context actor error");
        }
        self.arm_checkpoint_tick();
    }

    /// Schedules one resend tick while a checkpoint of ours is below
    /// quorum; an idle context has no timer at all.
    fn arm_checkpoint_tick(&mut self) {
        if self.checkpoint_tick_armed || !self.checkpoints.wants_tick() {
            return;
        }
        self.checkpoint_tick_armed = true;
        let inbox = self.inbox.clone();
        let after = Duration::from_millis(self.deps.config.checkpoint.resend_ms.max(100));
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = inbox.send(Message::CheckpointTick).await;
        });
    }

    fn on_message(&mut self, msg: Message) -> Result<()> {
        match msg {
            Message::SubmitTx(tx, reply) => {
                let copy = self.outbound.is_some().then(|| tx.tx().clone());
                let result = self.admit(tx);
                if let (Ok(_), Some(tx)) = (&result, copy) {
                    self.queue_tx_gossip(tx);
                }
                let status = if result.is_ok() {
                    "accepted"
                } else {
                    "rejected"
                };
                self.deps
                    .metrics
                    .txs_total
                    .with_label_values(&[&self.label, status])
                    .inc();
                let _ = reply.send(result);
                self.update_mempool_gauge();
            }
            Message::NextNonce(member, reply) => {
                let _ = reply.send(self.next_nonce(&member));
            }
            Message::PendingCount(reply) => {
                let _ = reply.send(self.mempool.len());
            }
            Message::IsPending(hash, reply) => {
                let _ = reply.send(self.mempool.contains(&hash));
            }
            Message::Gossip(from, data) => {
                // What the safety net watches: the consensus lane.
                if self.readers.contains(&from) {
                    self.last_heard.insert(from, Instant::now());
                }
                self.on_gossip(from, data)?
            }
            Message::Pushed(from, data) => self.on_gossip(from, data)?,
            Message::CheckpointTick => {
                self.checkpoint_tick_armed = false;
                for wire in self.checkpoints.on_tick() {
                    self.broadcast(&wire);
                }
            }
            Message::Synced(result) => {
                self.syncing = false;
                match result {
                    Ok(bytes) => {
                        self.sync_failures = 0;
                        self.on_synced(&bytes)?
                    }
                    Err(e) => {
                        self.sync_failures += 1;
                        debug!(context = %self.id(), error = %e, "sync request failed");
                    }
                }
            }
            Message::PeerConnected(member) => {
                if member != self.engine.address()
                    && self.readers.contains(&member)
                    && self.following
                {
                    self.request_sync(member);
                    // Txs admitted while that member was unreachable (say,
                    // across a partition) reach it now; bounded.
                    for tx in self.mempool.pending(MAX_REGOSSIP_TXS) {
                        self.queue_tx_gossip(tx);
                    }
                    self.flush_tx_gossip();
                }
            }
            Message::TimeoutElapsed(timeout, seq) => {
                if self.timers.get(&timeout) == Some(&seq) {
                    self.timers.remove(&timeout);
                    if timeout.kind == conclave_consensus::mal::TimeoutKind::Rebroadcast {
                        // Stuck in a step long enough to rebroadcast.
                        self.on_slow_height(timeout.round.as_i64().max(0));
                    }
                    self.feed(Input::TimeoutElapsed(timeout))?;
                }
            }
        }
        Ok(())
    }

    fn committed_nonce(&self, member: &MemberId) -> Result<u64, SubmitError> {
        let state = self.deps.store.state(self.id());
        Overlay::new(&state, self.record.height)
            .nonce(member)
            .map_err(|e| SubmitError::Internal(e.to_string()))
    }

    fn next_nonce(&self, member: &MemberId) -> Result<u64, SubmitError> {
        let committed = self.committed_nonce(member)?;
        let pending = self.mempool.highest_nonce(member).unwrap_or(0);
        Ok(committed.max(pending) + 1)
    }

    /// Admits a tx whose signature was checked where it entered the node.
    fn admit(&mut self, tx: VerifiedTx) -> Result<Hash32, SubmitError> {
        self.precheck(tx.tx())?;
        Ok(self.mempool.insert(tx.into_inner())?)
    }

    /// Admits a tx gossiped by another member: the cheap checks first, so
    /// that a duplicate or stale tx costs no signature check; then the
    /// signature, with the sender's key decompressed once per member.
    fn admit_gossiped(&mut self, tx: SignedTx) -> Result<Hash32, SubmitError> {
        self.precheck(&tx)?;
        if self.mempool.holds(&tx) {
            return Err(MempoolError::Duplicate(tx.hash()).into());
        }
        let sender = tx.tx.sender;
        let key = match self.sender_keys.get(&sender) {
            Some(key) => *key,
            None => {
                let key = tx
                    .sender_key()
                    .map_err(|_| exec::TxRejection::BadSignature)?;
                self.sender_keys.insert(sender, key);
                key
            }
        };
        let tx = tx
            .verified_with(&key)
            .map_err(|_| exec::TxRejection::BadSignature)?;
        Ok(self.mempool.insert(tx.into_inner())?)
    }

    /// Every check of admission but the signature's: the static ones, then
    /// the nonce against the committed one.
    fn precheck(&self, tx: &SignedTx) -> Result<(), SubmitError> {
        check_tx_with(
            tx,
            &self.record.id,
            &self.members,
            self.deps.config.mempool.max_tx_bytes,
            true,
        )?;
        let last = self.committed_nonce(&tx.tx.sender)?;
        if tx.tx.nonce <= last {
            return Err(exec::TxRejection::StaleNonce {
                got: tx.tx.nonce,
                last,
            }
            .into());
        }
        // Txs may arrive out of order (concurrent clients); they wait in the
        // pool until the gap before them fills, within a bounded window.
        let window = self.deps.config.mempool.max_nonce_gap;
        if tx.tx.nonce - last > window {
            return Err(exec::TxRejection::NonceTooFar {
                got: tx.tx.nonce,
                last,
                window,
            }
            .into());
        }
        Ok(())
    }

    fn update_mempool_gauge(&self) {
        self.deps
            .metrics
            .mempool_size
            .with_label_values(&[&self.label])
            .set(self.mempool.len() as i64);
    }

    /// Starts the next height if there is work (no empty blocks while
    /// idle); says whether it started one.
    fn maybe_start_height(&mut self) -> Result<bool> {
        if self.running || !self.is_validator() || !self.has_ready_tx() {
            return Ok(false);
        }
        self.begin_height()?;
        Ok(true)
    }

    fn wal_holds_next_height(&self) -> bool {
        let next = Height(self.record.height.0 + 1);
        let parts = self.log.lock();
        parts.wal.height() == next && !parts.wal.entries_for(next).is_empty()
    }

    /// Starts consensus on the next height. If the WAL already holds inputs
    /// of it, this is a restart: the candidate blocks kept in the store are
    /// re-validated and the engine replays the WAL, re-publishing what this
    /// node signed instead of signing anything new.
    fn begin_height(&mut self) -> Result<()> {
        let next = Height(self.record.height.0 + 1);
        self.running = true;
        let entries = {
            let mut parts = self.log.lock();
            if parts.wal.height() == next {
                parts.wal.entries_for(next)
            } else {
                // The previous height is committed: rotate the log.
                parts.wal.start_height(next).map_err(wal_err)?;
                Vec::new()
            }
        };
        let restart = !entries.is_empty();
        if restart {
            let candidates = self.deps.store.pending_blocks(&self.id(), next)?;
            info!(context = %self.id(), height = next.0, entries = entries.len(),
                candidates = candidates.len(), "resuming the height from the WAL");
            for block in candidates {
                let proposer = block.header.proposer;
                self.validate_block(block, proposer);
            }
        }
        let mut outputs = self
            .engine
            .start_height(next, self.validators.clone(), restart)
            .map_err(engine_err)?;
        if restart {
            outputs.extend(self.engine.replay_wal(&entries).map_err(engine_err)?);
        }
        self.perform(outputs)
    }

    /// The value this node proposed at `(height, round)` before a restart,
    /// per its WAL: it must propose that again, never a new block.
    fn own_logged_value(
        &self,
        height: Height,
        round: conclave_consensus::mal::Round,
    ) -> Option<Hash32> {
        let me = self.engine.address();
        self.log.lock().wal.logged_proposal(height, round, &me)
    }

    /// Makes the WAL entries written so far durable: every output after a
    /// `WalAppend` (a publish, a decision) must not outrun it.
    fn sync_wal(&self) -> Result<()> {
        self.log.lock().wal.sync().map_err(wal_err)
    }

    /// Whether some pending tx can go into the next block (txs waiting
    /// behind a nonce gap cannot).
    fn has_ready_tx(&self) -> bool {
        if self.mempool.is_empty() {
            return false;
        }
        let state = self.deps.store.state(self.id());
        let overlay = Overlay::new(&state, self.record.height);
        !self
            .mempool
            .select(1, usize::MAX, |s| overlay.nonce(s).unwrap_or(u64::MAX))
            .is_empty()
    }

    fn feed(&mut self, input: Input<conclave_consensus::ConclaveContext>) -> Result<()> {
        let outputs = self
            .engine
            .handle(input)
            .map_err(|e| Error::Other(e.to_string()))?;
        self.perform(outputs)
    }

    fn perform(&mut self, outputs: Vec<Output>) -> Result<()> {
        for output in outputs {
            if let Output::WalAppend(height, input) = &output {
                // Group commit: written now, synced before the next output
                // that leaves the node or depends on it.
                self.log.lock().wal.write(*height, input).map_err(wal_err)?;
                crate::failpoint::hit("wal_write");
                continue;
            }
            self.sync_wal()?;
            let publishes = matches!(output, Output::Publish(_));
            if publishes {
                crate::failpoint::hit("before_publish");
            }
            self.perform_one(output)?;
            if publishes {
                crate::failpoint::hit("after_publish");
            }
        }
        Ok(())
    }

    fn perform_one(&mut self, output: Output) -> Result<()> {
        match output {
            Output::ScheduleTimeout(timeout, after) => self.schedule(timeout, after),
            Output::CancelTimeout(timeout) => {
                self.timers.remove(&timeout);
            }
            Output::CancelAllTimeouts => self.timers.clear(),
            Output::StartRound { height, round, .. } => {
                self.deps
                    .metrics
                    .consensus_rounds
                    .with_label_values(&[&self.label])
                    .set(round.as_i64());
                debug!(context = %self.id(), height = height.0, round = %round, "round started");
                if round.as_i64() >= 2 {
                    self.on_slow_height(round.as_i64());
                }
            }
            Output::GetValue { height, round, .. } => {
                let hash = match self.own_logged_value(height, round) {
                    Some(hash) if self.proposals.contains_key(&hash) => hash,
                    Some(hash) => {
                        // Its block is lost; proposing another would be
                        // equivocation (the sign guard would refuse).
                        warn!(context = %self.id(), height = height.0, %round, block = %hash,
                            "the block proposed before the restart is gone; not proposing");
                        return Ok(());
                    }
                    None => {
                        let hash = self.build_block(height)?;
                        crate::failpoint::hit("proposal_persisted");
                        hash
                    }
                };
                self.feed(Input::Propose(LocallyProposedValue::new(
                    height, round, hash,
                )))?;
            }
            Output::Decide(cert) => self.commit(&cert)?,
            Output::Finalize { equivocators, .. } => {
                for m in equivocators {
                    warn!(context = %self.id(), member = %m, "equivocation evidence");
                }
                // The run loop starts the next height if txs wait.
                self.running = false;
                self.proposals.clear();
                self.timers.clear();
                let next = Height(self.record.height.0 + 1);
                let due: Vec<Height> = self.future.range(..=next).map(|(h, _)| *h).collect();
                for h in due {
                    let msgs = self.future.remove(&h).unwrap_or_default();
                    self.future_len = self.future_len.saturating_sub(frames_bytes(&msgs));
                    if h == next {
                        self.replay.extend(msgs);
                    }
                }
            }
            Output::Publish(SignedConsensusMsg::Vote(v))
            | Output::PublishLiveness(LivenessMsg::Vote(v)) => {
                self.broadcast(&Wire::Vote(encode_vote(&v)));
            }
            Output::Publish(SignedConsensusMsg::Proposal(p)) => {
                if let Some(proposed) = self.proposals.get(&p.value) {
                    let wire = Wire::Proposal {
                        proposal: encode_proposal(&p),
                        block: proposed.block.clone(),
                    };
                    self.broadcast(&wire);
                }
            }
            Output::PublishLiveness(LivenessMsg::PolkaCertificate(c)) => {
                self.broadcast(&Wire::Polka(encode_polka(&c)));
            }
            Output::PublishLiveness(LivenessMsg::SkipRoundCertificate(c)) => {
                self.broadcast(&Wire::RoundCertificate(encode_round_certificate(&c)));
            }
            // The proposal output carries its block, so a restream needs
            // nothing more.
            Output::RestreamProposal { .. }
            | Output::WalAppend(..)
            | Output::SyncValue(..)
            | Output::SyncRejected(..) => {}
        }
        Ok(())
    }

    fn schedule(&mut self, timeout: Timeout, after: Duration) {
        self.timer_seq += 1;
        let seq = self.timer_seq;
        self.timers.insert(timeout, seq);
        let inbox = self.inbox.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = inbox.send(Message::TimeoutElapsed(timeout, seq)).await;
        });
    }

    /// Queues an admitted tx for the other members; sent in batches by
    /// [`Self::flush_tx_gossip`] (at the latest when the actor goes idle).
    fn queue_tx_gossip(&mut self, tx: conclave_consensus::SignedTx) {
        self.gossip_txs_bytes += tx.encoded_len();
        self.gossip_txs.push(tx);
        if self.gossip_txs_bytes >= MAX_TX_BATCH_BYTES {
            self.flush_tx_gossip();
        }
    }

    /// Sends the queued txs to the other members on the push lane (straight
    /// to each, never ahead of consensus gossip).
    fn flush_tx_gossip(&mut self) {
        if self.gossip_txs.is_empty() {
            return;
        }
        let txs = std::mem::take(&mut self.gossip_txs);
        self.gossip_txs_bytes = 0;
        self.send(&Wire::Txs(txs), Outbound::Push);
    }

    /// Gossips a consensus message to the other members.
    fn broadcast(&mut self, wire: &Wire) {
        self.send(wire, Outbound::Publish);
    }

    fn send(&mut self, wire: &Wire, lane: fn(Vec<u8>) -> Outbound) {
        self.gossip_seq = self.gossip_seq.wrapping_add(1);
        let Some(out) = &self.outbound else {
            return;
        };
        let Some(key) = self.sealing_key() else {
            warn!(context = %self.id(), "no context key; gossip not sent");
            return;
        };
        let sealed = key.seal(
            &self.record.id,
            Purpose::Gossip,
            &wire.encode(self.gossip_seq),
        );
        if out.try_send(lane(sealed)).is_err() {
            warn!(context = %self.id(), "outbound gossip queue full; message dropped");
        }
    }

    /// Whether gossip for `height` is for the height in progress (starting
    /// it if needed). Later heights are kept for later; earlier ones dropped.
    fn at_current_height(&mut self, height: Height, from: MemberId, data: &[u8]) -> Result<bool> {
        let next = Height(self.record.height.0 + 1);
        if height < next {
            return Ok(false);
        }
        if height > next {
            // Members are past our next height: we missed decisions.
            self.request_sync(from);
            let fits = self.future_len.saturating_add(data.len()) <= MAX_FUTURE_BYTES;
            if height.0 - next.0 <= FUTURE_WINDOW && fits {
                self.future
                    .entry(height)
                    .or_default()
                    .push((from, data.to_vec()));
                self.future_len += data.len();
            }
            return Ok(false);
        }
        if !self.is_validator() {
            // Not validating this height (admitted for a later one, or
            // removed): follow the decided blocks instead.
            if self.following {
                self.request_sync(from);
            }
            return Ok(false);
        }
        if !self.running {
            self.begin_height()?;
        }
        Ok(true)
    }

    fn is_validator(&self) -> bool {
        self.members.contains(&self.engine.address())
    }

    fn count_unopened(&self, reason: &str) {
        self.deps
            .metrics
            .sealed_rejected_total
            .with_label_values(&[&self.label, reason])
            .inc();
    }

    /// Opens a sealed payload from `from`; `None` (counted, logged) if it
    /// does not open. A payload under a key epoch newer than any this node
    /// holds means it missed a rotation: it catches up (the blocks carry
    /// its copy of the new key), if it is still a member.
    fn unseal(&mut self, from: MemberId, purpose: Purpose, data: &[u8]) -> Option<Vec<u8>> {
        let epoch = match crate::seal::envelope_epoch(data) {
            Ok(e) => e,
            Err(e) => {
                self.count_unopened("malformed");
                warn!(context = %self.id(), member = %from, error = %e, "dropping unsealed payload");
                return None;
            }
        };
        let Some(key) = self.keys.get(&epoch) else {
            self.count_unopened("unknown_key");
            debug!(context = %self.id(), member = %from, epoch, "payload under a key this node does not hold");
            let newest = self.keys.keys().next_back().copied().unwrap_or(0);
            if epoch > newest && self.following && purpose == Purpose::Gossip {
                self.request_sync(from);
            }
            return None;
        };
        match key.open(&self.record.id, purpose, data) {
            Ok(plain) => Some(plain),
            Err(e) => {
                self.count_unopened("tag");
                warn!(context = %self.id(), member = %from, error = %e, "dropping a payload that does not open");
                None
            }
        }
    }

    /// The key this node seals with: the key epoch of the next height, or
    /// the newest it holds.
    fn sealing_key(&self) -> Option<&ContextKey> {
        let want = self
            .membership
            .at(Height(self.record.height.0 + 1))
            .key_epoch;
        self.keys
            .get(&want)
            .or_else(|| self.keys.values().next_back())
    }

    /// A message from member `from`, gossiped or pushed (the lanes carry
    /// the same sealed `Wire` messages).
    fn on_gossip(&mut self, from: MemberId, data: Vec<u8>) -> Result<()> {
        if !self.readers.contains(&from) {
            return Ok(());
        }
        let Some(plain) = self.unseal(from, Purpose::Gossip, &data) else {
            return Ok(());
        };
        let wire = match Wire::decode(&plain) {
            Ok(w) => w,
            Err(e) => {
                warn!(context = %self.id(), member = %from, error = %e, "dropping gossip");
                return Ok(());
            }
        };
        match wire {
            Wire::Tx(tx) => {
                if let Err(e) = self.admit_gossiped(tx) {
                    debug!(context = %self.id(), error = %e, "gossiped tx not admitted");
                }
                self.update_mempool_gauge();
                Ok(())
            }
            Wire::Txs(txs) => {
                for tx in txs {
                    if let Err(e) = self.admit_gossiped(tx) {
                        debug!(context = %self.id(), error = %e, "gossiped tx not admitted");
                    }
                }
                self.update_mempool_gauge();
                Ok(())
            }
            Wire::Vote(bytes) => {
                let Ok(vote) = decode_vote(&bytes) else {
                    warn!(context = %self.id(), member = %from, "dropping malformed vote");
                    return Ok(());
                };
                if self.at_current_height(vote.message.height, from, &data)? {
                    self.feed(Input::Vote(vote))?;
                }
                Ok(())
            }
            Wire::Polka(bytes) => {
                let Ok(cert) = decode_polka(&bytes) else {
                    warn!(context = %self.id(), member = %from, "dropping malformed certificate");
                    return Ok(());
                };
                if self.at_current_height(cert.height, from, &data)? {
                    self.feed(Input::PolkaCertificate(cert))?;
                }
                Ok(())
            }
            Wire::RoundCertificate(bytes) => {
                let Ok(cert) = decode_round_certificate(&bytes) else {
                    warn!(context = %self.id(), member = %from, "dropping malformed certificate");
                    return Ok(());
                };
                if self.at_current_height(cert.height, from, &data)? {
                    self.feed(Input::RoundCertificate(cert))?;
                }
                Ok(())
            }
            Wire::Proposal { proposal, block } => {
                let Ok(p) = decode_proposal(&proposal) else {
                    warn!(context = %self.id(), member = %from, "dropping malformed proposal");
                    return Ok(());
                };
                if block.hash() != p.message.value || block.height() != p.message.height {
                    warn!(context = %self.id(), member = %from, "proposal does not match its block");
                    return Ok(());
                }
                if !self.at_current_height(p.message.height, from, &data)? {
                    return Ok(());
                }
                let validity = self.validate_block(block, p.message.proposer);
                let value = ProposedValue {
                    height: p.message.height,
                    round: p.message.round,
                    valid_round: p.message.pol_round,
                    proposer: p.message.proposer,
                    value: p.message.value,
                    validity,
                };
                self.feed(Input::Proposal(p))?;
                self.feed(Input::ProposedValue(value, ValueOrigin::Consensus))
            }
            Wire::CheckpointSig {
                height,
                signer,
                sigs,
            } => {
                let share = crate::checkpoint::share_of(height, signer, sigs);
                if let Some(answer) = self.checkpoints.on_share(from, self.record.height, share) {
                    self.broadcast(&answer);
                }
                Ok(())
            }
        }
    }

    /// A height that needs a third round: maybe the others decided it and we
    /// did not hear (a gossip path can die while its connection stays up).
    /// Ask a member for decided blocks (request-response does not depend on
    /// gossip), and reconnect members silent for a while.
    fn on_slow_height(&mut self, round: i64) {
        let me = self.engine.address();
        let others: Vec<MemberId> = self.members.iter().copied().filter(|m| *m != me).collect();
        if others.is_empty() {
            return;
        }
        let peer = others[round as usize % others.len()];
        let fallbacks = &self.deps.metrics.consensus_fallbacks_total;
        fallbacks.with_label_values(&[&self.label, "sync"]).inc();
        self.request_sync(peer);
        let Some(net) = self.deps.network.clone() else {
            return;
        };
        let now = Instant::now();
        for m in others {
            let silent = self
                .last_heard
                .get(&m)
                .is_none_or(|t| now.duration_since(*t) > SILENT_AFTER);
            if silent {
                debug!(context = %self.id(), member = %m, round, "no gossip from a member");
                self.deps
                    .metrics
                    .consensus_fallbacks_total
                    .with_label_values(&[&self.label, "reconnect"])
                    .inc();
                net.reconnect(m);
            }
        }
    }

    /// Asks `peer` for the decided blocks after our tip (one request at a
    /// time); the answer comes back as `Message::Synced`.
    fn request_sync(&mut self, peer: MemberId) {
        let Some(net) = self.deps.network.clone() else {
            return;
        };
        if self.syncing {
            return;
        }
        let me = self.engine.address();
        let others: Vec<MemberId> = self.readers.iter().copied().filter(|m| *m != me).collect();
        if others.is_empty() {
            return;
        }
        let peer = match others.iter().position(|m| *m == peer) {
            Some(i) if self.sync_failures > 0 => others[(i + self.sync_failures) % others.len()],
            _ => peer,
        };
        self.sync_peer = Some(peer);
        self.syncing = true;
        let (ctx, inbox) = (self.id(), self.inbox.clone());
        let req = super::wire::SyncRequest {
            from: self.record.height.0 + 1,
            key_epoch: self.keys.keys().next_back().copied().unwrap_or(0),
        };
        let data = borsh::to_vec(&req).unwrap_or_default();
        tokio::spawn(async move {
            let result = net
                .request(peer, ctx, data)
                .await
                .map_err(|e| e.to_string());
            let _ = inbox.send(Message::Synced(result)).await;
        });
    }

    /// Applies synced blocks: each must extend our tip, carry a commit
    /// certificate of more than 2/3 of the members for its hash, and
    /// re-execute to its header's roots. Then consensus restarts at the new
    /// tip.
    fn on_synced(&mut self, bytes: &[u8]) -> Result<()> {
        let from = self.sync_peer.unwrap_or_default();
        let Some(bytes) = self.unseal(from, Purpose::SyncResponse, bytes) else {
            return Ok(());
        };
        let resp: super::wire::SyncResponse = match borsh::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                warn!(context = %self.id(), error = %e, "malformed sync response");
                return Ok(());
            }
        };
        let full = resp.blocks.len() >= super::wire::MAX_SYNC_BLOCKS;
        let mut applied = 0u64;
        for (block, stored) in resp.blocks {
            if block.height().0 != self.record.height.0 + 1 {
                break;
            }
            let Ok(cert) = stored.to_cert() else { break };
            let ok_cert = cert.value_id == block.hash()
                && cert.height == block.height()
                && conclave_consensus::engine::verify_commit_certificate(
                    &self.record.id,
                    &cert,
                    &self.validators,
                    Default::default(),
                )
                .is_ok();
            if !ok_cert {
                warn!(context = %self.id(), height = block.height().0, "synced block without a valid certificate");
                break;
            }
            let proposer = block.header.proposer;
            self.proposals.clear();
            if self.validate_block(block, proposer) != Validity::Valid {
                break;
            }
            self.commit(&cert)?;
            applied += 1;
        }
        if applied == 0 {
            return Ok(());
        }
        self.deps.metrics.sync_blocks_total.inc_by(applied);
        info!(context = %self.id(), blocks = applied, height = self.record.height.0, "caught up");
        // Restart consensus at the new tip with a fresh engine: the height
        // it was in is decided.
        let next = Height(self.record.height.0 + 1);
        self.engine = new_engine(
            &self.deps,
            self.record.id,
            next,
            &self.validators,
            &self.log,
        );
        self.running = false;
        self.proposals.clear();
        self.timers.clear();
        let stale: Vec<Height> = self.future.range(..next).map(|(h, _)| *h).collect();
        for h in stale {
            let n = self.future.remove(&h).map_or(0, |v| frames_bytes(&v));
            self.future_len = self.future_len.saturating_sub(n);
        }
        if let Some(msgs) = self.future.remove(&next) {
            self.future_len = self.future_len.saturating_sub(frames_bytes(&msgs));
            self.replay.extend(msgs);
        }
        if full {
            // More where that came from: ask the same member again.
            if let Some(peer) = self.sync_peer {
                self.request_sync(peer);
            }
        }
        Ok(())
    }

    /// Re-executes a proposed block on the committed parent state; valid
    /// only if every header field is what this member computes.
    fn validate_block(&mut self, block: Block, proposer: MemberId) -> Validity {
        let hash = block.hash();
        if self.proposals.contains_key(&hash) {
            return Validity::Valid;
        }
        let h = &block.header;
        let structural = h.context_id == self.id()
            && h.height.0 == self.record.height.0 + 1
            && h.parent_hash == self.record.last_block_hash
            && h.time_ms > self.record.last_time_ms
            && h.time_ms <= now_ms().saturating_add(10_000)
            && h.proposer == proposer
            && h.members_hash == self.members_hash_after(h.height)
            && block.compute_txs_root() == h.txs_root;
        if !structural {
            warn!(context = %self.id(), height = h.height.0, "invalid block header");
            return Validity::Invalid;
        }
        let mempool = &self.mempool;
        let verified = |tx: &conclave_consensus::SignedTx| mempool.holds(tx);
        let env = BlockEnv {
            context_id: self.id(),
            genesis: &self.record.genesis,
            members: &self.members,
            height: h.height,
            time_ms: h.time_ms,
            max_tx_bytes: self.deps.config.mempool.max_tx_bytes,
            verified: Some(&verified),
            deadline: None,
        };
        let t0 = Instant::now();
        let state = self.deps.store.state(self.id());
        let txs = block.txs.clone();
        let executed = match exec::execute(
            &self.deps.runtime,
            &self.app,
            &state,
            &env,
            txs,
            true,
            &mut Vec::new(),
        ) {
            Ok((_, ex)) => ex,
            Err(e) => {
                warn!(context = %self.id(), height = h.height.0, error = %e, "invalid block");
                return Validity::Invalid;
            }
        };
        if let Err(e) = exec::header_matches(h, h.txs_root, &executed) {
            warn!(context = %self.id(), height = h.height.0, error = %e, "block roots do not match");
            return Validity::Invalid;
        }
        let t_exec = t0.elapsed();
        // Kept (unsynced: survives a process crash) in case this node votes
        // for it, crashes and must commit it after replaying its WAL.
        if let Err(e) = self.deps.store.put_pending_block(&block, false) {
            warn!(context = %self.id(), error = %e, "cannot keep a candidate block");
        }
        self.deps
            .metrics
            .block_execution_seconds
            .with_label_values(&["validate"])
            .observe(t_exec.as_secs_f64());
        debug!(context = %self.id(), height = h.height.0, txs = block.txs.len(),
            execute_ms = t_exec.as_millis() as u64, "proposal validated");
        self.proposals.insert(hash, Proposed { block, executed });
        Validity::Valid
    }

    /// The `members_hash` of the block at `height`: the set that validates
    /// the height after it (known from the parent state, as changes take
    /// effect two heights after their commit).
    fn members_hash_after(&self, height: Height) -> Hash32 {
        self.membership.at(Height(height.0 + 1)).hash()
    }

    /// Re-reads the member sets after a commit; a new set for the next
    /// height changes the validators, the topic's allowed members, and the
    /// checkpoint signers.
    fn refresh_membership(&mut self, reload: bool) -> Result<()> {
        if reload {
            let state = self.deps.store.state(self.id());
            let overlay = Overlay::new(&state, self.record.height);
            self.membership = overlay.membership(&self.record.genesis)?;
            self.anchors = overlay.anchors()?;
            self.checkpoints.update(&self.membership, &self.anchors);
        }
        let next = Height(self.record.height.0 + 1);
        let me = self.engine.address();
        let anchors_in_force = self.anchors.at(&self.record.genesis, next);
        let anchors_changed = anchors_in_force != self.anchors_in_force;
        let set_changed = self.membership.at(next).ids() != self.members;
        if anchors_changed {
            self.anchors_in_force = anchors_in_force;
            info!(context = %self.id(), height = next.0, anchors = self.anchors_in_force.len(),
                "checkpoints are signed for a new anchor from here");
        }
        if set_changed {
            let set: MemberSet = self.membership.at(next).clone();
            let was_validator = self.is_validator();
            self.members = set.ids();
            self.validators = ValidatorSet::from_members(&self.members)
                .map_err(|e| Error::Other(format!("validator set: {e}")))?;
            self.deps
                .metrics
                .consensus_validators
                .with_label_values(&[&self.label])
                .set(self.members.len() as i64);
            info!(context = %self.id(), height = next.0, members = self.members.len(),
                epoch = set.epoch, key_epoch = set.key_epoch, "member set in force");
            match (was_validator, self.is_validator()) {
                (false, true) => {
                    info!(context = %self.id(), height = next.0, "this node validates from here")
                }
                (true, false) => {
                    warn!(context = %self.id(), height = next.0, "this node is no longer a member")
                }
                _ => {}
            }
        }
        let readers = self.membership.readers(self.record.height);
        if readers != self.readers {
            if self.readers.contains(&me) && !readers.contains(&me) {
                warn!(context = %self.id(), height = self.record.height.0,
                    "this node's member was removed; it stops following the context");
                self.following = false;
            }
            self.readers = readers;
            match (&self.outbound, &self.deps.network) {
                (Some(out), _) => {
                    let _ = out.try_send(Outbound::Members(self.readers.clone()));
                }
                (None, Some(net)) if self.readers.len() > 1 => {
                    self.outbound = Some(spawn_publisher(
                        net.clone(),
                        self.id(),
                        self.readers.clone(),
                    ));
                }
                _ => {}
            }
        }
        self.pick_up_keys()
    }

    /// Opens and keeps this node's copies of context keys handed over in
    /// committed blocks (at its invitation, and at each rotation).
    fn pick_up_keys(&mut self) -> Result<()> {
        let me = self.engine.address();
        let epochs: Vec<u64> = self
            .membership
            .key_epochs_of(&me)
            .into_iter()
            .filter(|e| !self.keys.contains_key(e))
            .collect();
        if epochs.is_empty() {
            return Ok(());
        }
        let state = self.deps.store.state(self.id());
        let overlay = Overlay::new(&state, self.record.height);
        for epoch in epochs {
            let Some(sealed) = overlay.get(&crate::members::sealed_key_key(epoch, &me))? else {
                continue;
            };
            match crate::seal::open_key(&self.deps.key, &self.record.id, epoch, &sealed) {
                Ok(key) => {
                    self.deps.store.put_context_key(&self.record.id, &key)?;
                    info!(context = %self.id(), epoch, "received the context key");
                    self.keys.insert(epoch, key);
                }
                Err(e) => {
                    warn!(context = %self.id(), epoch, error = %e, "the context key sealed to this node does not open")
                }
            }
        }
        Ok(())
    }

    /// After a member left (without handing out a new key), the remaining
    /// member with the lowest id rotates the key so the leaver cannot read
    /// what follows.
    fn rotate_after_leave(&mut self, changes: &[conclave_consensus::SignedTx]) {
        let left = changes.iter().any(|tx| {
            tx.tx.method == crate::members::METHOD_REMOVE
                && borsh::from_slice::<crate::members::RemoveArgs>(&tx.tx.args)
                    .is_ok_and(|a| a.member == tx.tx.sender && a.rotation.is_none())
        });
        let me = self.engine.address();
        let latest = self.membership.latest().clone();
        if !left || latest.members.first().map(|m| m.info.id) != Some(me) {
            return;
        }
        let result = (|| -> Result<Hash32> {
            let key = ContextKey::generate(latest.key_epoch + 1);
            let rotation = crate::members::rotation_for(&self.record.id, &latest, &key)
                .map_err(|e| Error::Other(e.to_string()))?;
            let nonce = self
                .next_nonce(&me)
                .map_err(|e| Error::Other(e.to_string()))?;
            let tx = conclave_consensus::Tx {
                context_id: self.id(),
                sender: me,
                nonce,
                method: crate::members::METHOD_ROTATE.into(),
                args: borsh::to_vec(&rotation).map_err(|e| Error::Other(e.to_string()))?,
            }
            .sign(&self.deps.key)
            .verified()
            .map_err(|e| Error::Other(e.to_string()))?;
            let copy = tx.tx().clone();
            let hash = self.admit(tx).map_err(|e| Error::Other(e.to_string()))?;
            self.queue_tx_gossip(copy);
            Ok(hash)
        })();
        match result {
            Ok(tx) => info!(context = %self.id(), %tx, "a member left: rotating the context key"),
            Err(e) => {
                warn!(context = %self.id(), error = %e, "cannot rotate the key after a leave")
            }
        }
    }

    /// Builds this node's proposal for `height` from its mempool.
    fn build_block(&mut self, height: Height) -> Result<Hash32> {
        let t0 = Instant::now();
        let cfg = &self.deps.config.block;
        let state = self.deps.store.state(self.id());
        let overlay = Overlay::new(&state, self.record.height);
        let txs = self.mempool.select(cfg.max_txs, cfg.max_bytes, |sender| {
            overlay.nonce(sender).unwrap_or(u64::MAX)
        });
        let t_select = t0.elapsed();
        let selected = txs.len();
        let time_ms = now_ms().max(self.record.last_time_ms + 1);
        let mempool = &self.mempool;
        let verified = |tx: &conclave_consensus::SignedTx| mempool.holds(tx);
        let env = BlockEnv {
            context_id: self.id(),
            genesis: &self.record.genesis,
            members: &self.members,
            height,
            time_ms,
            max_tx_bytes: self.deps.config.mempool.max_tx_bytes,
            verified: Some(&verified),
            deadline: Some(Instant::now() + Duration::from_millis(cfg.max_build_ms)),
        };
        let mut rejected = Vec::new();
        let (txs, executed) = exec::execute(
            &self.deps.runtime,
            &self.app,
            &state,
            &env,
            txs,
            false,
            &mut rejected,
        )
        .map_err(|e| Error::Other(e.to_string()))?;
        let t_exec = t0.elapsed();
        for (tx, reason) in rejected {
            if matches!(reason, exec::TxRejection::NonceGap { .. }) {
                continue;
            }
            debug!(context = %self.id(), tx = %tx.hash(), %reason, "dropping tx at block building");
            self.mempool.remove(&tx.hash());
        }
        let txs_root =
            conclave_consensus::merkle_root(&txs.iter().map(|t| t.hash()).collect::<Vec<_>>());
        let block = Block {
            header: BlockHeader {
                context_id: self.id(),
                height,
                parent_hash: self.record.last_block_hash,
                time_ms,
                proposer: self.engine.address(),
                txs_root,
                state_root: executed.state_root,
                actions_root: executed.actions_root,
                members_hash: self.members_hash_after(height),
            },
            txs,
        };
        let hash = block.hash();
        // Durable before the proposal is signed: after a crash this node
        // must re-propose this very block.
        self.deps.store.put_pending_block(&block, true)?;
        self.deps
            .metrics
            .block_execution_seconds
            .with_label_values(&["build"])
            .observe((t_exec - t_select).as_secs_f64());
        debug!(context = %self.id(), height = height.0, selected, txs = block.txs.len(),
            pending = self.mempool.len(), select_ms = t_select.as_millis() as u64,
            execute_ms = (t_exec - t_select).as_millis() as u64,
            total_ms = t0.elapsed().as_millis() as u64, "block built");
        self.proposals.insert(hash, Proposed { block, executed });
        Ok(hash)
    }

    /// Commits a decided height: block, certificate, receipts, state and the
    /// new tip in one synced batch; then the mempool, metrics and subscribers.
    fn commit(
        &mut self,
        cert: &malachitebft_core_types::CommitCertificate<conclave_consensus::ConclaveContext>,
    ) -> Result<()> {
        let Some(Proposed { block, executed }) = self.proposals.remove(&cert.value_id) else {
            return Err(Error::Other(format!(
                "decided block {} at height {} is unknown",
                cert.value_id, cert.height
            )));
        };
        let mut record = self.record.clone();
        record.height = block.height();
        record.last_block_hash = block.hash();
        record.state_root = executed.state_root;
        record.last_time_ms = block.header.time_ms;
        crate::failpoint::hit("before_commit");
        self.deps.store.commit(CommitBatch {
            record: &record,
            block: &block,
            certificate: &StoredCertificate::from_cert(cert),
            receipts: &executed.receipts,
            actions: &executed.actions,
            tree: &executed.tree,
        })?;
        self.record = record;
        crate::failpoint::hit("after_commit");
        if let Some(share) = self
            .checkpoints
            .on_commit(&block.header, executed.actions.len())
        {
            self.broadcast(&share);
        }
        let changes = block
            .txs
            .iter()
            .zip(&executed.receipts)
            .filter(|(tx, r)| {
                r.status == TxStatus::Ok && crate::members::is_membership_method(&tx.tx.method)
            })
            .map(|(tx, _)| tx.clone())
            .collect::<Vec<_>>();
        let anchor_pending = self
            .anchors
            .entries
            .iter()
            .any(|e| e.from.0 > self.record.height.0);
        if !changes.is_empty() || self.membership.sets.len() > 1 || anchor_pending {
            self.refresh_membership(!changes.is_empty())?;
            self.rotate_after_leave(&changes);
        }

        let m = &self.deps.metrics;
        for member in &self.members {
            if !cert.commit_signatures.iter().any(|s| s.address == *member) {
                m.consensus_missed_blocks
                    .with_label_values(&[&self.label, &member.to_string()])
                    .inc();
            }
        }
        for (tx, receipt) in block.txs.iter().zip(&executed.receipts) {
            self.mempool.remove(&tx.hash());
            let status = match receipt.status {
                TxStatus::Ok => "committed",
                TxStatus::Failed => "failed",
            };
            m.txs_total.with_label_values(&[&self.label, status]).inc();
        }
        let mut last_nonce: HashMap<MemberId, u64> = HashMap::new();
        for tx in &block.txs {
            let n = last_nonce.entry(tx.tx.sender).or_default();
            *n = (*n).max(tx.tx.nonce);
        }
        for (sender, nonce) in last_nonce {
            self.mempool.prune_stale(&sender, nonce);
        }
        m.wasm_fuel_used_total.inc_by(executed.fuel_used);
        m.consensus_height
            .with_label_values(&[&self.label])
            .set(block.height().0 as i64);
        let now = Instant::now();
        if let Some(prev) = self.last_commit.replace(now) {
            m.block_interval_seconds
                .observe(now.duration_since(prev).as_secs_f64());
        }
        self.update_mempool_gauge();
        info!(
            context = %self.id(),
            height = block.height().0,
            txs = block.txs.len(),
            state_root = %executed.state_root,
            "committed"
        );
        let _ = self.deps.events.send(BlockEvent {
            context_id: self.id(),
            height: block.height(),
            hash: block.hash(),
            state_root: executed.state_root,
            time_ms: block.header.time_ms,
            txs: block.txs.iter().map(|t| t.hash()).collect(),
            round: cert.round.as_u32().unwrap_or(0),
        });
        Ok(())
    }
}

/// What goes to the context's publisher task, in order.
enum Outbound {
    /// A sealed consensus message, gossiped.
    Publish(Vec<u8>),
    /// Sealed txs, pushed straight to each member.
    Push(Vec<u8>),
    /// The members allowed on the topic changed.
    Members(Vec<MemberId>),
}

/// Joins the context's topic and publishes its outbound gossip in order.
fn spawn_publisher(
    net: conclave_network::NetworkHandle,
    context: ContextId,
    members: Vec<MemberId>,
) -> mpsc::Sender<Outbound> {
    let (tx, mut rx) = mpsc::channel::<Outbound>(4096);
    tokio::spawn(async move {
        if let Err(e) = net.join(context, members).await {
            error!(%context, error = %e, "cannot join the context's topic");
            return;
        }
        while let Some(out) = rx.recv().await {
            let result = match out {
                Outbound::Publish(data) => net.publish(context, data).await,
                Outbound::Push(data) => net.push(context, data).await.map(|_| ()),
                Outbound::Members(members) => net.join(context, members).await,
            };
            match result {
                Ok(()) | Err(conclave_network::Error::NoPeers(_)) => {}
                Err(e) => debug!(%context, error = %e, "publish failed"),
            }
        }
    });
    tx
}
