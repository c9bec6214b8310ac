//! The context actor's height lifecycle and the consensus engine's
//! effects: starting a height (or resuming it from the WAL), performing
//! what the engine outputs (WAL group commit, timers, proposals, votes),
//! and what follows a decision: the commit, the roster refresh, metrics
//! and subscribers.

use conclave_consensus::codec::{encode_polka, encode_round_certificate, encode_vote};
use conclave_consensus::mal::{
    Input, LivenessMsg, LocallyProposedValue, Round, SignedConsensusMsg, Validity,
};
use conclave_consensus::{Block, Hash32, Height, MemberId, Output, SignedTx};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::actor::{execution, ContextActor};
use super::blocks::{Execution, Proposed};
use super::catchup::Certificate;
use super::ingress::{BlockEvent, SubmitError};
use super::wire::Wire;
use crate::store::TxStatus;
use crate::{Error, Result};

impl ContextActor {
    /// Starts the next height if there is work (no empty blocks while
    /// idle); says whether it started one.
    pub(super) fn maybe_start_height(&mut self) -> Result<bool> {
        if self.running {
            return Ok(false);
        }
        if self.is_faulted() || !self.is_validator() || !self.admission().has_ready_tx() {
            self.release_hold();
            return Ok(false);
        }
        if self.hold_for_a_fuller_block() {
            return Ok(false);
        }
        self.begin_height()?;
        Ok(true)
    }

    /// Whether the next height waits for more txs, or for its proposal
    /// (`pace::FillWait`: a busy node, slow heights, few txs): the actor is
    /// woken when the hold ends, by each tx meanwhile, and by the height's
    /// first message (which starts it, `inbound`).
    fn hold_for_a_fuller_block(&mut self) -> bool {
        let next = self.next_height();
        let proposer = self
            .roster
            .validators
            .proposer(&self.id(), next, Round::new(0))
            .address;
        let proposing = proposer == self.engine.address();
        let now = Instant::now();
        let load = self.load();
        let waiting = self.intake.pending();
        let was_held = self.fill.is_held();
        let Some(hold) = self.fill.hold(now, load, waiting, proposing) else {
            return false;
        };
        if !was_held {
            self.standing.set_under_way(self.height_under_way());
            self.deps.metrics.heights_held.inc();
            self.deps.metrics.heights_held_total.inc();
            debug!(context = %self.id(), height = next.0, waiting, busy = load.heights,
                cpu_shortage = load.cpu.share(), proposing, "holding the height for a fuller block");
        }
        if hold.wake {
            self.timers
                .after(hold.until - now, super::ingress::Message::Paced);
        }
        true
    }

    /// The next height is no longer held (it starts, or has nothing to
    /// start with).
    fn release_hold(&mut self) {
        if self.fill.is_held() {
            self.deps.metrics.heights_held.dec();
            self.fill.release();
            self.standing.set_under_way(self.height_under_way());
        }
    }

    /// Whether this context's height runs, or the next is held for a
    /// fuller block: either way txs pushed or admitted now go into a
    /// later block, so they may wait for a batch.
    pub(super) fn height_under_way(&self) -> bool {
        self.running || self.fill.is_held()
    }

    /// Heights in progress or held over all of the node's contexts: what
    /// makes the node busy for `pace`.
    pub(super) fn busy_heights(&self) -> i64 {
        let metrics = &self.deps.metrics;
        metrics.heights_running.get() + metrics.heights_held.get()
    }

    /// What `pace` holds heights and paces pushes by: the node's busy
    /// heights and its machine's CPU shortage.
    pub(super) fn load(&self) -> super::pace::Load {
        super::pace::Load::new(self.busy_heights(), || self.deps.cpu.now())
    }

    pub(super) fn wal_holds_next_height(&self) -> bool {
        let next = self.next_height();
        let parts = self.log.lock();
        parts.wal.height() == next && !parts.wal.entries_for(next).is_empty()
    }

    /// Starts consensus on the next height. If the WAL already holds inputs
    /// of it, this is a restart: the candidate blocks kept in the store are
    /// re-validated and the engine replays the WAL, re-publishing what this
    /// node signed instead of signing anything new.
    pub(super) fn begin_height(&mut self) -> Result<()> {
        let next = self.next_height();
        self.release_hold();
        self.check_disk()?;
        if !self.running {
            let hold = self.fill.proposer_may_hold(self.busy_heights());
            self.timers.proposer_may_hold(hold);
            self.deps.metrics.heights_running.inc();
        }
        self.running = true;
        self.standing.set_under_way(self.height_under_way());
        // Entries of `next` mean a restart. Otherwise the previous height
        // is committed, and the first record of `next` moves the log to
        // it, once that commit is durable (`LogParts::write`).
        let entries = self.log.lock().wal.entries_for(next);
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
        let mut outputs =
            self.engine
                .start_height(next, self.roster.validators.clone(), restart)?;
        if restart {
            outputs.extend(self.engine.replay_wal(&entries)?);
        }
        self.perform(outputs)
    }

    /// The value this node proposed at `(height, round)` before a restart,
    /// per its WAL: it must propose that again, never a new block.
    fn own_logged_value(&self, height: Height, round: Round) -> Option<Hash32> {
        let me = self.engine.address();
        self.log.lock().wal.logged_proposal(height, round, &me)
    }

    pub(super) fn feed(&mut self, input: Input<conclave_consensus::ConclaveContext>) -> Result<()> {
        let outputs = self.engine.handle(input)?;
        self.perform(outputs)
    }

    fn perform(&mut self, outputs: Vec<Output>) -> Result<()> {
        for output in outputs {
            if let Output::WalAppend(height, input) = &output {
                // Group commit: written now, synced before the next output
                // that leaves the node.
                self.log.lock().write(*height, input)?;
                crate::failpoint::hit("wal_write");
                continue;
            }
            // The log is synced before every signature (`SharedLog`, the
            // sign policy): the inputs that led to a vote are durable before
            // the vote exists, and the sign guard durably holds what was
            // signed. So after a crash the engine re-derives the same vote
            // from the log and the guard lets it sign it again (never
            // another); a vote's own entry, a received message, a timer or
            // a decision need no sync of their own (a received message lost
            // in a crash is heard again). A proposal does: after a restart
            // the proposer finds its value in the log to propose the same
            // block again (`own_logged_value`), where a new block would be
            // refused by the guard and the round lost. Syncing before every
            // output cost five fsyncs per height and member where three do.
            if needs_durable_log(&output) {
                self.log.lock().sync()?;
                if let Some(sync) = self.proposal_sync.take() {
                    sync.wait()?;
                }
            }
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
            Output::ScheduleTimeout(timeout, after) => self.timers.schedule(timeout, after),
            Output::CancelTimeout(timeout) => self.timers.cancel(&timeout),
            Output::CancelAllTimeouts => self.timers.cancel_all(),
            Output::StartRound { height, round, .. } => {
                self.deps
                    .metrics
                    .consensus_rounds
                    .with_label_values(&[&self.label])
                    .set(round.as_i64());
                debug!(context = %self.id(), height = height.0, round = %round, "round started");
                self.timers.round_started(height, round);
                if round.as_i64() >= 2 {
                    self.on_slow_height(round.as_i64());
                }
            }
            Output::GetValue { height, round, .. } => {
                let hash = match self.own_logged_value(height, round) {
                    Some(hash) if self.blocks.contains(&hash) => hash,
                    Some(hash) => {
                        // Its block is lost; proposing another would be
                        // equivocation (the sign guard would refuse).
                        warn!(context = %self.id(), height = height.0, %round, block = %hash,
                            "the block proposed before the restart is gone; not proposing");
                        return Ok(());
                    }
                    None => {
                        let hash = self.build_block(height)?;
                        // The block is synced while the WAL and the sign
                        // guard are, for the proposal's signature.
                        if let Some(earlier) = self.proposal_sync.take() {
                            earlier.wait()?;
                        }
                        self.proposal_sync = Some(self.deps.store.sync_log_alongside());
                        crate::failpoint::hit("proposal_persisted");
                        hash
                    }
                };
                self.feed(Input::Propose(LocallyProposedValue::new(
                    height, round, hash,
                )))?;
            }
            Output::Decide(cert) => {
                debug!(context = %self.id(), height = cert.height.0, round = %cert.round, "decided");
                self.commit(&cert, CommitSync::Alongside)?
            }
            Output::Finalize { evidence, .. } => {
                self.keep_evidence(evidence);
                // The run loop starts the next height if txs wait.
                self.end_height();
            }
            Output::Publish(SignedConsensusMsg::Vote(v))
            | Output::PublishLiveness(LivenessMsg::Vote(v)) => {
                debug!(context = %self.id(), height = v.message.height.0, round = %v.message.round,
                    kind = ?v.message.typ, "vote sent");
                self.gossip.broadcast(&Wire::Vote(encode_vote(&v)));
            }
            Output::Publish(SignedConsensusMsg::Proposal(p)) => self.publish_proposal(&p),
            Output::PublishLiveness(LivenessMsg::PolkaCertificate(c)) => {
                self.gossip.broadcast(&Wire::Polka(encode_polka(&c)));
            }
            Output::PublishLiveness(LivenessMsg::SkipRoundCertificate(c)) => {
                self.gossip
                    .broadcast(&Wire::RoundCertificate(encode_round_certificate(&c)));
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

    /// Evidence of equivocation found at the height just finalized: each
    /// checked against that height's members, stored, counted and logged.
    pub(super) fn keep_evidence(&mut self, evidence: Vec<conclave_consensus::Evidence>) {
        for e in evidence {
            let members = self.roster.membership.at(e.height).ids();
            if let Err(why) = e.verify(&self.id(), &members) {
                warn!(context = %self.id(), member = %e.offender, %why, "evidence does not verify; not kept");
                continue;
            }
            match self.deps.store.put_evidence(&self.id(), &e) {
                Ok(true) => {
                    warn!(context = %self.id(), member = %e.offender, height = e.height.0,
                        round = e.round, kind = ?e.kind, "equivocation evidence");
                    self.deps
                        .metrics
                        .consensus_equivocations_total
                        .with_label_values(&[&self.label, &e.offender.to_string()])
                        .inc();
                }
                Ok(false) => {}
                Err(e) => warn!(context = %self.id(), error = %e, "cannot keep evidence"),
            }
        }
    }

    /// The height in progress is over (finalized, or passed by catch-up):
    /// its candidates and timers go, and gossip held for the next height is
    /// replayed.
    pub(super) fn end_height(&mut self) {
        if self.running {
            self.deps.metrics.heights_running.dec();
        }
        self.running = false;
        self.standing.set_under_way(self.height_under_way());
        self.blocks.clear();
        self.compact.clear();
        self.witness.decided(self.record.height);
        self.timers.height_ended();
        self.later.reached(self.next_height());
    }

    /// Builds this node's proposal for `height` from its mempool.
    fn build_block(&mut self, height: Height) -> Result<Hash32> {
        // Pushed txs held while the height ran go in too; submitted ones
        // are in the pool once acknowledged, and leave for the members now.
        self.push_acknowledged();
        self.admit_queued();
        let proposer = self.engine.address();
        let members_hash = self.roster.members_hash_after(height);
        let now_ms = self.deps.clock.unix_ms();
        let ex = execution(&self.deps, &self.app, &self.record, &self.roster);
        let cfg = &self.deps.config.block;
        self.blocks.build(
            &ex,
            &self.intake,
            cfg,
            height,
            proposer,
            members_hash,
            now_ms,
        )
    }

    /// Re-executes a proposed block on the committed parent state; its
    /// time must not be ahead of this node's clock by more than the bound.
    pub(super) fn validate_block(&mut self, block: Block, proposer: MemberId) -> Validity {
        let now_ms = self.deps.clock.unix_ms();
        self.validate_against(block, proposer, Some(now_ms), false)
    }

    /// Re-executes a decided block (it carries its certificate) on the
    /// committed parent state. Its time is not held to this node's clock:
    /// the members who decided it judged that, and a node whose clock is
    /// behind would otherwise refuse every block until its clock caught up.
    /// Nor are its txs' signatures checked again (the certificate's
    /// honest signers checked them): call it only once the certificate
    /// has been verified.
    pub(super) fn validate_decided(&mut self, block: Block, proposer: MemberId) -> Validity {
        self.validate_against(block, proposer, None, true)
    }

    /// Validates `block` by executing it; `certified`: see
    /// [`Execution::certified`].
    fn validate_against(
        &mut self,
        block: Block,
        proposer: MemberId,
        now_ms: Option<u64>,
        certified: bool,
    ) -> Validity {
        let members_hash = self.roster.members_hash_after(block.height());
        let ex = Execution {
            certified,
            ..execution(&self.deps, &self.app, &self.record, &self.roster)
        };
        self.blocks
            .validate(&ex, &self.intake, block, proposer, members_hash, now_ms)
    }

    /// Commits a decided height, made durable as `sync` says; then the
    /// mempool, checkpoints, the roster, metrics and subscribers follow.
    pub(super) fn commit(&mut self, cert: &Certificate, sync: CommitSync) -> Result<()> {
        self.check_disk()?;
        // The previous commit's sync, if still unobserved, has to have
        // succeeded before this one is written.
        self.log.lock().settle()?;
        let Some(decided) = self.blocks.take(&cert.value_id) else {
            return Err(Error::Missing(format!(
                "the decided block {} of height {}",
                cert.value_id, cert.height
            )));
        };
        let hashes = &decided.tx_hashes;
        let forgotten = self.admission().acknowledged_among(hashes);
        self.record = super::blocks::write_commit(
            &self.deps.store,
            &self.record,
            &decided,
            cert,
            &forgotten,
        )?;
        if let CommitSync::Alongside = sync {
            let sync = self.deps.store.sync_log_alongside();
            self.log.lock().commit_syncing(sync)?;
        }
        let (block, executed) = (&decided.block, &decided.executed);
        self.admission()
            .committed(self.record.height, &block.txs, hashes, &forgotten);
        if let Some(share) = self
            .checkpoints
            .on_commit(&block.header, executed.actions.len())
        {
            self.gossip.broadcast(&Wire::from(share));
        }
        let changes: Vec<_> = block
            .txs
            .iter()
            .zip(&executed.receipts)
            .filter(|(tx, r)| {
                r.status == TxStatus::Ok && crate::members::is_membership_method(&tx.tx.method)
            })
            .map(|(tx, _)| tx.clone())
            .collect();
        if self
            .roster
            .may_change(self.record.height, !changes.is_empty())
        {
            self.refresh_roster(!changes.is_empty())?;
            self.rotate_after_leave(&changes);
        }
        self.standing.set_tip(self.record.height);
        self.report_commit(cert, &decided);
        Ok(())
    }

    /// Metrics, the log line and the event of a commit.
    fn report_commit(&mut self, cert: &Certificate, decided: &Proposed) {
        let (block, executed) = (&decided.block, &decided.executed);
        let m = &self.deps.metrics;
        for member in &self.roster.members {
            if !cert.commit_signatures.iter().any(|s| s.address == *member) {
                m.consensus_missed_blocks
                    .with_label_values(&[&self.label, &member.to_string()])
                    .inc();
            }
        }
        let ok = executed
            .receipts
            .iter()
            .filter(|r| r.status == TxStatus::Ok)
            .count();
        let failed = executed.receipts.len() - ok;
        for (status, n) in [("committed", ok), ("failed", failed)] {
            if n > 0 {
                m.txs_total
                    .with_label_values(&[&self.label, status])
                    .inc_by(n as u64);
            }
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
        self.fill.committed(block.txs.len());
        info!(context = %self.id(), height = block.height().0, txs = block.txs.len(),
            state_root = %executed.state_root, "committed");
        let _ = self.deps.events.send(BlockEvent {
            context_id: self.id(),
            height: block.height(),
            hash: block.hash(),
            state_root: executed.state_root,
            time_ms: block.header.time_ms,
            txs: decided.tx_hashes.clone(),
            round: cert.round.as_u32().unwrap_or(0),
        });
    }

    /// Applies a roster refresh after a commit: validators, who may talk
    /// on the topic, the checkpoint signers, the sealing key, new keys.
    fn refresh_roster(&mut self, reload: bool) -> Result<()> {
        let changed = self
            .roster
            .refresh(&self.deps.store, &self.record, reload)?;
        if reload {
            self.checkpoints
                .update(&self.roster.membership, &self.roster.anchors);
        }
        if changed.validators {
            self.deps
                .metrics
                .consensus_validators
                .with_label_values(&[&self.label])
                .set(self.roster.members.len() as i64);
            let members = &self.roster.members;
            self.intake.admission().set_members(members);
            super::actor::export_equivocations(&self.deps.metrics, &self.label, members);
        }
        if changed.readers {
            self.gossip.readers_changed(&self.roster.readers);
            self.standing
                .set_readers(&self.roster.readers, self.roster.following);
        }
        let epoch = self.roster.key_epoch_at(self.next_height());
        self.gossip.set_seal_epoch(epoch);
        self.pick_up_keys()
    }

    pub(super) fn pick_up_keys(&mut self) -> Result<()> {
        let membership = &self.roster.membership;
        self.gossip
            .pick_up_keys(&self.deps.store, &self.record, membership, &self.deps.key)
    }

    /// After a member left on its own, the remaining member with the lowest
    /// id submits a key rotation so the leaver cannot read what follows.
    fn rotate_after_leave(&mut self, changes: &[SignedTx]) {
        let Some(latest) = self.roster.rotation_after_leave(changes) else {
            return;
        };
        let me = self.engine.address();
        let result = (|| -> Result<Hash32> {
            let key = crate::seal::ContextKey::generate(latest.key_epoch + 1);
            let rotation = crate::members::rotation_for(&self.record.id, &latest, &key)?;
            let refused = |e: SubmitError| Error::TxRefused(e.to_string());
            let tx = conclave_consensus::Tx {
                context_id: self.id(),
                sender: me,
                nonce: self.admission().next_nonce(&me).map_err(refused)?,
                method: crate::members::METHOD_ROTATE.into(),
                args: Error::encode(&rotation)?,
            }
            .sign(&self.deps.key)
            .verified()
            .map_err(|e| Error::TxRefused(format!("own key rotation: {e}")))?;
            let copy = tx.tx().clone();
            let hash = self.admission().admit(tx).map_err(refused)?;
            self.gossip.queue_tx(copy);
            Ok(hash)
        })();
        match result {
            Ok(tx) => info!(context = %self.id(), %tx, "a member left: rotating the context key"),
            Err(e) => {
                warn!(context = %self.id(), error = %e, "cannot rotate the key after a leave")
            }
        }
    }
}

/// Whether the log must be durable before `output` is performed: only
/// before this node's proposal leaves it (see `ContextActor::perform`).
fn needs_durable_log(output: &Output) -> bool {
    matches!(output, Output::Publish(SignedConsensusMsg::Proposal(_)))
}

/// How a commit, written unsynced, becomes durable.
pub(super) enum CommitSync {
    /// Its sync starts at once, on another thread, and completes before
    /// anything of the next height becomes durable in the WAL or the sign
    /// guard ([`crate::wal::LogParts::commit_syncing`]): off the path of a
    /// height, with the same states on disk after a crash.
    Alongside,
    /// The caller syncs the store once after several commits (catch-up).
    ByCaller,
}
