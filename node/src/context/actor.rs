//! The context actor: its loop over the two lanes of its mailbox, the
//! height lifecycle, and the consensus engine's effects. The state lives
//! in the parts it dispatches to, each in its own file:
//! [`Admission`] (mempool, nonces), [`Blocks`] (build, validate, commit),
//! [`Gossip`] (keys, sealing, sending), [`LaterHeights`] (gossip held for
//! heights not reached), [`CatchUp`] (asking for decided blocks),
//! [`Roster`] (who validates and reads), [`Timers`]; and
//! `crate::checkpoint::Checkpoints` (checkpoint signatures). Messages
//! from the members are handled in `inbound.rs`, the height lifecycle and
//! the engine's effects in `height.rs`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use conclave_consensus::mal::{Input, TimeoutKind};
use conclave_consensus::{ContextId, Engine, EngineConfig, Height, MemberId, ValidatorSet};
use conclave_runtime::{App, Runtime};
use ed25519_dalek::SigningKey;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;
use tracing::{debug, error, info, warn};

use super::admission::Admission;
use super::blocks::{Blocks, Execution};
use super::catchup::CatchUp;
use super::fault::FaultStatus;
use super::gossip::Gossip;
use super::ingress::{BlockEvent, ContextHandle, Message};
use super::later::LaterHeights;
use super::pace::ProposalDelays;
use super::roster::Roster;
use super::seams::{Clock, Transport};
use super::submit::Intake;
use super::timers::Timers;
use super::wire::Wire;
use crate::checkpoint::Checkpoints;
use crate::config::Config;
use crate::metrics::Metrics;
use crate::sign_guard::{SignGuard, SignGuardError};
use crate::store::{ContextRecord, Store};
use crate::wal::{SharedLog, Wal, WalError};
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
    /// The wall clock (block times).
    pub clock: Arc<dyn Clock>,
    /// The node's peer-to-peer layer; contexts with other members use it.
    pub transport: Option<Arc<dyn Transport>>,
    /// Where each context keeps its consensus WAL and sign guard.
    pub wal_dir: PathBuf,
    /// How late proposals have lately arrived at this node, over all its
    /// contexts (one for the node): each context's propose wait follows it.
    pub proposal_delays: Arc<ProposalDelays>,
    /// How short of the CPU it may use the node is: how far a busy node's
    /// contexts hold their heights and pace their pushes (one for the node).
    pub cpu: Arc<crate::cpu::CpuShortage>,
}

/// Bulk-lane messages (txs) handled between two looks at the consensus
/// lane.
const BULK_SLICE: usize = 256;

/// Pending txs pushed again when a member's node (re)connects, at most.
const MAX_REPUSH_TXS: usize = 1024;

pub struct ContextActor {
    pub(super) deps: ContextDeps,
    pub(super) record: ContextRecord,
    pub(super) roster: Roster,
    pub(super) app: App,
    pub(super) engine: Engine,
    /// The WAL of the height in progress and the last-signed guard.
    pub(super) log: SharedLog,
    /// The mempool, shared with the RPC tasks that admit txs submitted
    /// here beside the actor.
    pub(super) intake: Arc<Intake>,
    pub(super) blocks: Blocks,
    pub(super) timers: Timers,
    pub(super) gossip: Gossip,
    pub(super) later: LaterHeights,
    /// What each member signed at recent heights (late equivocation).
    pub(super) witness: conclave_consensus::Witness,
    pub(super) catch_up: CatchUp,
    pub(super) checkpoints: Checkpoints,
    /// A height is in progress (no height runs while there is nothing to do).
    pub(super) running: bool,
    /// The tip, whether a height runs and the readers, for the node.
    pub(super) standing: super::Standing,
    /// Another process signed with this node's key (`sign_check`): this
    /// context follows the others and signs nothing.
    pub(super) signing_refused: bool,
    pub(super) last_commit: Option<Instant>,
    /// The sync that makes this node's own proposed block durable, under
    /// way while the proposal is signed; waited for before it leaves.
    pub(super) proposal_sync: Option<crate::store::LogSync>,
    /// When to start the next height on a busy node; while it holds one,
    /// counted in `conclave_heights_held`.
    pub(super) fill: super::pace::FillWait,
    /// When to push the txs admitted here on a busy node.
    pub(super) push_pace: super::pace::PushPace,
    /// Members' compact proposals being assembled, and this node's own.
    pub(super) compact: super::compact::Compact,
    /// A write of the context's own files failed: it waits, committing
    /// nothing (`storage.rs`); `status` shows it to the RPC layer.
    pub(super) fault: Option<super::fault::Fault>,
    pub(super) status: FaultStatus,
    pub(super) inbox: mpsc::Sender<Message>,
    pub(super) label: String,
}

/// An engine for `next` that consults the context's sign guard.
pub(super) fn new_engine(
    deps: &ContextDeps,
    id: ContextId,
    next: Height,
    validators: &ValidatorSet,
    log: &SharedLog,
) -> Engine {
    let mut ecfg = EngineConfig::new(id);
    ecfg.timeouts = super::timers::consensus_timeouts(&deps.config);
    Engine::new(ecfg, deps.key.clone(), next, validators.clone())
        .with_sign_policy(log.sign_policy())
}

/// Opens a context's WAL and sign guard; damage in the WAL's tail (a torn
/// write) is cut and reported, anything else refuses to start the context.
pub(super) fn open_log(deps: &ContextDeps, id: &ContextId) -> Result<SharedLog> {
    std::fs::create_dir_all(&deps.wal_dir)?;
    let name = id.to_hex();
    // The home is the WAL directory's parent (`home/wal`).
    let home = deps.wal_dir.parent().unwrap_or(&deps.wal_dir);
    let (wal, recovered) =
        Wal::open(deps.wal_dir.join(format!("{name}.wal"))).map_err(|e| match e {
            WalError::BadHeader { .. }
            | WalError::CorruptMiddle { .. }
            | WalError::Undecodable { .. } => Error::damaged(home, e),
            e => e.into(),
        })?;
    if let Some(repair) = &recovered.repair {
        warn!(context = %id, damage = ?repair.damage, dropped_bytes = repair.dropped_bytes,
            backup = %repair.backup.display(), "cut a damaged WAL tail");
    }
    let damaged = |e| match e {
        SignGuardError::Corrupt { .. } => Error::damaged(home, e),
        e => e.into(),
    };
    let mut guard = SignGuard::open(deps.wal_dir.join(format!("{name}.sign"))).map_err(damaged)?;
    // The file's last overwrite may have been lost with the machine; the
    // WAL's synced guard record was not.
    guard.raise_to(wal.last_guard()).map_err(damaged)?;
    Ok(SharedLog::new(wal, guard))
}

/// Exports each member's equivocation counter at zero (a member never
/// caught shows 0, not an absent series).
pub(super) fn export_equivocations(metrics: &Metrics, label: &str, members: &[MemberId]) {
    for m in members {
        let _ = metrics
            .consensus_equivocations_total
            .with_label_values(&[label, &m.to_string()]);
    }
}

/// The execution setup of the next height, from the actor's fields (a
/// function, not a method, so the parts it does not borrow stay free).
pub(super) fn execution<'a>(
    deps: &'a ContextDeps,
    app: &'a App,
    record: &'a ContextRecord,
    roster: &'a Roster,
) -> Execution<'a> {
    Execution {
        runtime: &deps.runtime,
        app,
        store: &deps.store,
        record,
        members: &roster.members,
        max_tx_bytes: deps.config.mempool.max_tx_bytes,
        certified: false,
    }
}

/// A context stopped (or its node crashed in a test) mid-height, or while
/// it held the next height, no longer counts among the node's heights in
/// progress or held.
impl Drop for ContextActor {
    fn drop(&mut self) {
        if self.running {
            self.deps.metrics.heights_running.dec();
        }
        if self.fill.is_held() {
            self.deps.metrics.heights_held.dec();
        }
    }
}

impl ContextActor {
    /// Loads the context and spawns its actor; returns its mailbox.
    pub fn spawn(deps: ContextDeps, record: ContextRecord) -> Result<ContextHandle> {
        let wasm = deps
            .store
            .blob(&record.genesis.app_hash)?
            .ok_or_else(|| Error::Missing(format!("app {}", record.genesis.app_hash)))?;
        let app = deps.runtime.load(&wasm)?;
        let me = MemberId(deps.key.verifying_key().to_bytes());
        let roster = Roster::load(&deps.store, &record, me)?;
        let next = Height(record.height.0 + 1);
        let log = open_log(&deps, &record.id)?;
        let engine = new_engine(&deps, record.id, next, &roster.validators, &log);
        let (tx, rx) = mpsc::channel(4096);
        let (bulk_tx, bulk_rx) = mpsc::channel(4096);
        let label = record.id.to_hex();
        let status = FaultStatus::default();
        let metrics = &deps.metrics;
        metrics
            .consensus_height
            .with_label_values(&[&label])
            .set(record.height.0 as i64);
        metrics
            .consensus_validators
            .with_label_values(&[&label])
            .set(roster.members.len() as i64);
        // Exported at zero from the start: a healthy context shows 0, not
        // an absent series.
        for outcome in ["admitted", "known", "full", "refused"] {
            let _ = metrics
                .txs_pushed_total
                .with_label_values(&[&label, outcome]);
        }
        for kind in ["sync", "reconnect", "idle"] {
            let _ = metrics
                .consensus_fallbacks_total
                .with_label_values(&[&label, kind]);
        }
        metrics
            .consensus_signing_refused
            .with_label_values(&[&label])
            .set(0);
        // Exported from the start, so that dashboards and alerts see 0.
        metrics.storage_fault.with_label_values(&[&label]).set(0);
        metrics
            .consensus_propose_wait_seconds
            .with_label_values(&[&label])
            .set(deps.config.consensus.timeout_propose_ms as f64 / 1000.0);
        export_equivocations(metrics, &label, &roster.members);
        let checkpoints = Checkpoints::new(
            deps.store.clone(),
            deps.metrics.clone(),
            &record,
            roster.membership.clone(),
            roster.anchors.clone(),
            me,
            deps.bls.clone(),
            deps.config.checkpoint.max_resends,
        )?
        .announcing_to(deps.checkpoint_events.clone());
        let gossip = Gossip::new(
            record.id,
            deps.metrics.clone(),
            deps.transport.clone(),
            deps.store.context_keys(&record.id)?,
            roster.key_epoch_at(next),
            &roster.readers,
            deps.clock.unix_ms(),
        );
        let standing = super::Standing::new(record.height, &roster.readers);
        let mut actor = Self {
            intake: Arc::new(Intake::new(
                Admission::new(
                    deps.store.clone(),
                    record.id,
                    record.height,
                    deps.config.mempool.clone(),
                    roster.members.clone(),
                ),
                deps.metrics.clone(),
                bulk_tx.clone(),
                status.clone(),
            )),
            blocks: Blocks::new(deps.metrics.clone()),
            timers: Timers::new(
                tx.clone(),
                Duration::from_millis(deps.config.consensus.timeout_propose_ms),
                deps.proposal_delays.clone(),
            ),
            later: LaterHeights::default(),
            witness: conclave_consensus::Witness::new(record.id),
            catch_up: CatchUp::default(),
            checkpoints,
            gossip,
            deps,
            record,
            roster,
            app,
            engine,
            log,
            running: false,
            standing,
            signing_refused: false,
            last_commit: None,
            proposal_sync: None,
            fill: Default::default(),
            push_pace: Default::default(),
            compact: Default::default(),
            fault: None,
            status,
            inbox: tx.clone(),
            label,
        };
        let id = actor.record.id;
        // Txs acknowledged before the node stopped, not committed since.
        let restored = actor.admission().restore();
        match restored {
            Ok(0) => {}
            Ok(n) => info!(context = %id, txs = n, "acknowledged txs back in the pool"),
            Err(e) => warn!(context = %id, error = %e, "cannot read the acknowledged txs kept"),
        }
        actor.update_mempool_gauge();
        actor.check_recent_commits();
        // Keys handed over in blocks this node committed before it held
        // them (a joiner's first run).
        if let Err(e) = actor.pick_up_keys() {
            warn!(context = %id, error = %e, "cannot pick up context keys");
        }
        let status = actor.status.clone();
        let standing = actor.standing.clone();
        let intake = Arc::downgrade(&actor.intake);
        tokio::spawn(actor.run(rx, bulk_rx));
        Ok(ContextHandle::new(
            id, tx, bulk_tx, status, standing, intake,
        ))
    }

    pub(super) fn id(&self) -> ContextId {
        self.record.id
    }

    /// Whether this node validates the next height: a member of its set
    /// that may sign.
    pub(super) fn is_validator(&self) -> bool {
        self.roster.is_validator() && !self.signing_refused
    }

    /// At start: the last `double_sign_check_height` commits must hold no
    /// precommit of ours that the sign guard did not record.
    fn check_recent_commits(&mut self) {
        let n = self.deps.config.consensus.double_sign_check_height;
        if n == 0 || self.record.height.0 == 0 {
            return;
        }
        let from = self.record.height.0.saturating_sub(n - 1).max(1);
        let certs: Vec<_> = (from..=self.record.height.0)
            .filter_map(|h| {
                self.deps
                    .store
                    .certificate(&self.id(), Height(h))
                    .ok()
                    .flatten()
            })
            .collect();
        self.check_own_signatures(&certs);
    }

    /// Stops signing if `certs` hold a precommit of ours the sign guard did
    /// not record (unless the check is off).
    pub(super) fn check_own_signatures(
        &mut self,
        certs: &[conclave_consensus::codec::StoredCertificate],
    ) {
        if self.signing_refused || self.deps.config.consensus.double_sign_check_height == 0 {
            return;
        }
        let me = self.engine.address();
        let found = {
            let parts = self.log.lock();
            super::sign_check::foreign_precommit(&me, parts.guard.last(), certs)
        };
        let Some(height) = found else { return };
        error!(context = %self.id(), height = height.0,
            "this node's key signed a precommit at height {} that its sign guard never recorded: \
             another process holds this key; refusing to sign (following only) until it is stopped \
             and this node restarted with --skip-double-sign-check", height.0);
        self.signing_refused = true;
        self.deps
            .metrics
            .consensus_signing_refused
            .with_label_values(&[&self.label])
            .set(1);
        self.end_height();
    }

    pub(super) fn next_height(&self) -> Height {
        Height(self.record.height.0 + 1)
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
                self.on_error(e, "cannot resume the height in the WAL");
            }
        }
        // Checkpoints resumed from the store may still need our share.
        self.arm_checkpoint_tick();
        // Txs back in the pool from before a restart.
        if let Err(e) = self.maybe_start_height() {
            self.on_error(e, "cannot start a height");
        }
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
                while let Some((from, data)) = self.later.next_replay() {
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
                self.push_acknowledged();
                self.admit_queued_when_due();
                self.push_when_due();
                match self.maybe_start_height() {
                    Ok(true) if !self.running => continue,
                    Ok(_) if more => continue,
                    Ok(_) => break,
                    Err(e) => {
                        self.on_error(e, "cannot start height");
                        if !more {
                            break;
                        }
                    }
                }
            }
        }
        debug!(context = %self.id(), "context stopped");
    }

    pub(super) fn handle(&mut self, msg: Message) {
        if self.is_faulted() {
            return self.while_faulted(msg);
        }
        if let Err(e) = self.on_message(msg) {
            self.on_error(e, "context actor error");
        }
        self.arm_checkpoint_tick();
    }

    /// Schedules one resend tick while a checkpoint of ours is below
    /// quorum; an idle context has no timer at all.
    fn arm_checkpoint_tick(&mut self) {
        if self.checkpoints.wants_tick() {
            let resend_ms = self.deps.config.checkpoint.resend_ms.max(100);
            self.timers.arm_tick(Duration::from_millis(resend_ms));
        }
    }

    fn on_message(&mut self, msg: Message) -> Result<()> {
        match msg {
            // Taken at the end of this turn, with any acknowledged since.
            Message::Acknowledged => {}
            // The run loop starts the held height, or pushes the held
            // txs, after this turn.
            Message::Paced => {}
            Message::Gossip(from, data) => {
                // What the safety net watches: the consensus lane.
                if self.roster.readers.contains(&from) {
                    self.catch_up.heard(from);
                }
                self.on_member_message(from, data)?
            }
            Message::Pushed(from, data) => self.on_member_message(from, data)?,
            Message::CheckpointTick => {
                self.timers.ticked();
                for share in self.checkpoints.on_tick() {
                    self.gossip.broadcast(&Wire::from(share));
                }
            }
            Message::Synced(result) => {
                let peer = self.catch_up.answered(result.is_ok());
                match result {
                    Ok(bytes) => {
                        let applied = self.on_synced(peer, &bytes)?;
                        if let Some(after) = self.catch_up.poll_again(applied) {
                            self.timers.after(after, Message::RetrySync);
                        }
                    }
                    Err(e) => {
                        debug!(context = %self.id(), member = %peer, error = %e, "sync request failed");
                        // Nothing else may ever ask again (a restarted node
                        // with no load around it): retry, another member
                        // each time, with backoff, a bounded number of times.
                        if let Some(after) = self.catch_up.retry_after() {
                            self.timers.after(after, Message::RetrySync);
                        }
                    }
                }
            }
            Message::TipSeen(member, height) => self.on_tip_seen(member, height),
            Message::RetrySync => {
                if let Some(peer) = self.catch_up.peer() {
                    if self.roster.following {
                        self.request_sync(peer);
                    }
                }
            }
            Message::PeerConnected(member) => {
                let me = self.engine.address();
                if member != me && self.roster.readers.contains(&member) && self.roster.following {
                    self.request_sync(member);
                    // Txs admitted while that member was unreachable (say,
                    // across a partition) reach it now; bounded.
                    let txs = self.admission().pool().pending(MAX_REPUSH_TXS);
                    for tx in txs {
                        self.gossip.queue_tx(tx);
                    }
                    self.gossip.flush_txs();
                }
            }
            // A retry armed by a fault that has cleared.
            Message::RetryStorage => {}
            Message::TimeoutElapsed(timeout, seq) => {
                if self.timers.fired(&timeout, seq) {
                    if timeout.kind == TimeoutKind::Rebroadcast {
                        // Stuck in a step long enough to rebroadcast.
                        self.on_slow_height(timeout.round.as_i64().max(0));
                    }
                    self.feed(Input::TimeoutElapsed(timeout))?;
                }
            }
        }
        Ok(())
    }

    /// The mempool and its admission rules (shared with the RPC tasks:
    /// hold it briefly).
    pub(super) fn admission(&self) -> parking_lot::MutexGuard<'_, Admission> {
        self.intake.admission()
    }

    pub(super) fn update_mempool_gauge(&self) {
        self.intake.show_pending();
    }
}
