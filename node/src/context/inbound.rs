//! The context actor's handling of what other members send: gossip and
//! pushes (opened with the key ring, decoded, admitted or fed to the
//! engine at the current height, held for a later one) and the decided
//! blocks of a catch-up answer, and asking for them (a slow height, a
//! member connecting, gossip of a later height).

use conclave_consensus::codec::{
    decode_polka, decode_proposal, decode_round_certificate, decode_vote,
};
use conclave_consensus::mal::{Input, ProposedValue, Validity, ValueOrigin};
use std::sync::Arc;

use conclave_consensus::{Block, ConclaveContext, Height, MemberId};
use malachitebft_core_types::SignedProposal;
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::actor::{new_engine, ContextActor};
use super::catchup::{certificate_for, certificates_for};
use super::gossip::Opened;
use super::ingress::{Message, SubmitError};
use super::seams::Transport;
use super::wire::{SyncResponse, Wire, MAX_SYNC_BLOCKS};
use crate::seal::Purpose;
use crate::Result;

impl ContextActor {
    /// Opens a sealed payload from `from`; a payload under a key epoch newer
    /// than any this node holds means it missed a rotation: it catches up
    /// (the blocks carry its copy of the new key), if it still follows.
    fn open(&mut self, from: MemberId, purpose: Purpose, data: &[u8]) -> Option<Vec<u8>> {
        match self.gossip.open(from, purpose, data) {
            Opened::Plain(plain) => Some(plain),
            Opened::NewerKey => {
                if self.roster.following && purpose == Purpose::Gossip {
                    self.request_sync(from);
                }
                None
            }
            Opened::Dropped => None,
        }
    }

    /// A message from member `from`, gossiped or pushed (the lanes carry
    /// the same sealed `Wire` messages).
    pub(super) fn on_member_message(&mut self, from: MemberId, data: Vec<u8>) -> Result<()> {
        if !self.roster.readers.contains(&from) {
            return Ok(());
        }
        let Some(plain) = self.open(from, Purpose::Gossip, &data) else {
            return Ok(());
        };
        let wire = match Wire::decode(&plain) {
            Ok(w) => w,
            Err(e) => {
                warn!(context = %self.id(), member = %from, error = %e, "dropping gossip");
                self.gossip.penalise(from);
                return Ok(());
            }
        };
        let id = self.id();
        let gossip = &self.gossip;
        let malformed = |what: &str| {
            warn!(context = %id, member = %from, "dropping malformed {what}");
            gossip.penalise(from);
            Ok(())
        };
        match wire {
            Wire::Tx(tx) => self.queue_pushed(vec![tx]),
            Wire::Txs(txs) => self.queue_pushed(txs),
            Wire::Vote(bytes) => {
                let Ok(vote) = decode_vote(&bytes) else {
                    return malformed("vote");
                };
                if vote.message.height <= self.record.height {
                    self.late_vote(&vote);
                    return Ok(());
                }
                if self.at_current_height(vote.message.height, from, &data)? {
                    self.witness_vote(&vote);
                    self.feed(Input::Vote(vote))?;
                }
                Ok(())
            }
            Wire::Polka(bytes) => {
                let Ok(cert) = decode_polka(&bytes) else {
                    return malformed("certificate");
                };
                if self.at_current_height(cert.height, from, &data)? {
                    self.feed(Input::PolkaCertificate(cert))?;
                }
                Ok(())
            }
            Wire::RoundCertificate(bytes) => {
                let Ok(cert) = decode_round_certificate(&bytes) else {
                    return malformed("certificate");
                };
                if self.at_current_height(cert.height, from, &data)? {
                    self.feed(Input::RoundCertificate(cert))?;
                }
                Ok(())
            }
            Wire::Proposal { proposal, block } => {
                let Ok(p) = decode_proposal(&proposal) else {
                    return malformed("proposal");
                };
                self.on_proposal(from, p, block, &data)
            }
            Wire::CompactProposal {
                proposal,
                header,
                txs,
            } => {
                let Ok(p) = decode_proposal(&proposal) else {
                    return malformed("proposal");
                };
                self.on_compact_proposal(from, p, header, txs, &data)
            }
            Wire::TxsWanted { height, value, txs } => {
                self.send_wanted_txs(from, Height(height), value, &txs);
                Ok(())
            }
            Wire::WantedTxs(txs) => self.queue_pushed(txs),
            Wire::CheckpointSig {
                height,
                signer,
                sigs,
            } => {
                let share = crate::checkpoint::Share {
                    height,
                    signer,
                    sigs,
                };
                if let Some(answer) = self.checkpoints.on_share(from, self.record.height, share) {
                    self.gossip.broadcast(&Wire::from(answer));
                }
                Ok(())
            }
        }
    }

    /// A member's proposal with its block (sent whole, or assembled from a
    /// compact one): checked against each other, witnessed, validated and
    /// fed to the engine at the current height.
    pub(super) fn on_proposal(
        &mut self,
        from: MemberId,
        p: SignedProposal<ConclaveContext>,
        block: Block,
        data: &[u8],
    ) -> Result<()> {
        if block.hash() != p.message.value || block.height() != p.message.height {
            warn!(context = %self.id(), member = %from, "proposal does not match its block");
            self.gossip.penalise(from);
            return Ok(());
        }
        if p.message.height <= self.record.height {
            // Late: only compared with what the proposer proposed
            // there before.
            self.witness_proposal(&p);
            return Ok(());
        }
        if !self.at_current_height(p.message.height, from, data)? {
            return Ok(());
        }
        // Only the round's proposer's own proposal says how late
        // proposals come (another member's, forged, would not).
        let (height, round) = (p.message.height, p.message.round);
        let proposer = self
            .roster
            .validators
            .proposer(&self.id(), height, round)
            .address;
        if from == proposer && p.message.proposer == proposer {
            let wait = self.timers.proposal_arrived(height, round);
            self.deps
                .metrics
                .consensus_propose_wait_seconds
                .with_label_values(&[&self.label])
                .set(wait.as_secs_f64());
        }
        self.witness_proposal(&p);
        debug!(context = %self.id(), height = p.message.height.0, round = %p.message.round,
            txs = block.txs.len(), "proposal received");
        // A block proposed again in a later round, with the polka of
        // an earlier one, keeps the header it was built with: its
        // proposer is the member that built it (maybe down by now),
        // not this round's. Only a new block must be this round's.
        let built_by = match p.message.pol_round.is_defined() {
            true if self.roster.validators.contains(&block.header.proposer) => {
                block.header.proposer
            }
            _ => p.message.proposer,
        };
        let validity = self.validate_block(block, built_by);
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

    /// Compares a proposal with what its proposer proposed before at its
    /// height and round; a conflict is kept as evidence.
    pub(super) fn witness_proposal(&mut self, p: &SignedProposal<ConclaveContext>) {
        if let Some(evidence) = self.witness.proposal(p) {
            self.keep_evidence(vec![evidence]);
        }
    }

    /// A vote for a height already decided here: one that conflicts with
    /// what its signer signed there before (seen by the witness, or, for a
    /// precommit, held in this node's certificate of that height) is kept
    /// as evidence; any other is just late.
    fn late_vote(
        &mut self,
        vote: &malachitebft_core_types::SignedVote<conclave_consensus::ConclaveContext>,
    ) {
        if self.witness_vote(vote) {
            return;
        }
        if vote.message.typ != conclave_consensus::mal::VoteType::Precommit {
            return;
        }
        // The usual late precommit, the slowest member's for the block
        // decided here, conflicts with nothing this node stored: no need
        // to read the certificate back.
        let decided = conclave_consensus::mal::NilOrVal::Val(self.record.last_block_hash);
        if vote.message.height == self.record.height && vote.message.value == decided {
            return;
        }
        // A precommit the witness never saw (it decided before that one
        // reached it, or the height is older than its window) is compared
        // with the certificate this node stored.
        let Ok(Some(cert)) = self.deps.store.certificate(&self.id(), vote.message.height) else {
            return;
        };
        if let Some(evidence) = conclave_consensus::Evidence::late_precommit(&cert, vote) {
            self.keep_evidence(vec![evidence]);
        }
    }

    /// Records a member's vote with the witness; whether it conflicted
    /// with one seen before (the evidence is then kept).
    fn witness_vote(
        &mut self,
        vote: &malachitebft_core_types::SignedVote<conclave_consensus::ConclaveContext>,
    ) -> bool {
        let Some(evidence) = self.witness.vote(vote) else {
            return false;
        };
        self.keep_evidence(vec![evidence]);
        true
    }

    /// Gathers pushed txs to be admitted together
    /// ([`Self::admit_queued_when_due`]), so their signatures are checked
    /// in one batch.
    fn queue_pushed(&mut self, txs: Vec<conclave_consensus::SignedTx>) -> Result<()> {
        self.offer_to_assembling(&txs)?;
        if self.admission().queue_pushed(txs) {
            self.admit_queued();
        }
        Ok(())
    }

    /// Admits the pushed txs gathered so far once the actor has drained
    /// what waits, if it is idle (they may start a height) or enough have
    /// gathered for a cheap batch. While a height runs or is held the
    /// others wait: a block that carries them checks them with its own,
    /// and this node admits them all before it builds one (`build_block`).
    ///
    /// A held height waits as a running one does. Admitted at every turn
    /// of a held context's actor, on a node running a hundred loaded
    /// contexts, the pushes' signature checks came in smaller batches and
    /// took about a fifth of the node's CPU; held back until a batch, they
    /// take a quarter less (docs/PERFORMANCE.md, thirty-third session).
    pub(super) fn admit_queued_when_due(&mut self) {
        if self.admission().pushed_due(self.height_under_way()) {
            self.admit_queued();
        }
    }

    /// Admits the pushed txs gathered so far, in one batch of signature
    /// checks.
    pub(super) fn admit_queued(&mut self) {
        use crate::exec::TxRejection;
        use crate::mempool::MempoolError;
        if self.is_faulted() {
            return self.admission().drop_queued();
        }
        // The signatures are checked outside the pool's lock: submissions
        // to this context go on meanwhile.
        let (mut batch, keys) = {
            let mut admission = self.admission();
            (admission.take_queued(), admission.sender_keys())
        };
        let verified = keys.verified_all(std::mem::take(&mut batch.unsigned));
        let answers = self.admission().insert_pushed(batch, verified);
        if answers.is_empty() {
            return;
        }
        for answer in answers {
            let outcome = match answer {
                Ok(_) => "admitted",
                Err(SubmitError::Mempool(
                    MempoolError::Duplicate(_) | MempoolError::NonceTaken(_),
                ))
                | Err(SubmitError::Rejected(TxRejection::StaleNonce { .. })) => "known",
                Err(SubmitError::Mempool(_)) => "full",
                Err(e) => {
                    debug!(context = %self.id(), error = %e, "pushed tx refused");
                    "refused"
                }
            };
            self.deps
                .metrics
                .txs_pushed_total
                .with_label_values(&[&self.label, outcome])
                .inc();
        }
        self.update_mempool_gauge();
    }

    /// Whether gossip for `height` is for the height in progress (starting
    /// it if needed). Later heights are kept for later; earlier ones dropped.
    pub(super) fn at_current_height(
        &mut self,
        height: Height,
        from: MemberId,
        data: &[u8],
    ) -> Result<bool> {
        let next = self.next_height();
        if height < next {
            return Ok(false);
        }
        if height > next {
            // Members are past our next height: we missed decisions.
            self.request_sync(from);
            self.later.hold(next, height, from, data);
            return Ok(false);
        }
        if !self.is_validator() {
            // Not validating this height (admitted for a later one, removed,
            // or not signing): follow the decided blocks instead, and keep
            // asking a little while, as the others are about to decide it.
            if self.roster.following {
                self.catch_up.follow_height();
                self.request_sync(from);
            }
            return Ok(false);
        }
        if !self.running {
            self.begin_height()?;
        }
        Ok(true)
    }

    /// Applies synced blocks from `from` (says how many): each must extend our tip, carry a
    /// commit certificate of more than 2/3 of the members of its height for
    /// its hash, and re-execute to its header's roots. They are written
    /// unsynced and made durable together, with one sync of the store's
    /// log. Then consensus restarts at the new tip.
    pub(super) fn on_synced(&mut self, from: MemberId, bytes: &[u8]) -> Result<u64> {
        let Some(bytes) = self.open(from, Purpose::SyncResponse, bytes) else {
            return Ok(0);
        };
        let resp: SyncResponse = match borsh::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                warn!(context = %self.id(), error = %e, "malformed sync response");
                return Ok(0);
            }
        };
        let full = resp.blocks.len() >= MAX_SYNC_BLOCKS;
        let extends = resp
            .blocks
            .first()
            .is_some_and(|(b, _)| b.height() == self.next_height());
        if let (true, true, Some((last, _))) = (full, extends, resp.blocks.last()) {
            // More where that came from: ask the same member for what
            // follows these now, so that it reads and sends them while we
            // apply these. Should these fail to apply, that answer will not
            // extend our tip and is dropped.
            self.request_sync_after(from, last.height());
        }
        let mut applied = 0u64;
        // Every certificate checked up front against today's validators
        // (on two threads); a block after a member-set change in this
        // answer is checked again against its own.
        let checked_with = self.roster.validators.clone();
        let mut checked = if extends {
            certificates_for(&self.record.id, &checked_with, &resp.blocks)
        } else {
            Vec::new()
        }
        .into_iter();
        for (block, stored) in resp.blocks {
            if block.height() != self.next_height() {
                break;
            }
            let pre = checked.next().flatten();
            // The validators as of this block: a synced member-set change
            // takes effect between two blocks of one answer.
            let validators = &self.roster.validators;
            let cert = if *validators == checked_with {
                pre
            } else {
                certificate_for(&self.record.id, validators, &block, &stored)
            };
            let Some(cert) = cert else {
                warn!(context = %self.id(), height = block.height().0, "synced block without a valid certificate");
                break;
            };
            let proposer = block.header.proposer;
            self.blocks.clear();
            if self.validate_decided(block, proposer) != Validity::Valid {
                break;
            }
            self.commit(&cert, super::height::CommitSync::ByCaller)?;
            self.check_own_signatures(std::slice::from_ref(&stored));
            applied += 1;
        }
        if applied == 0 {
            return Ok(0);
        }
        self.deps.store.sync_log()?;
        self.deps.metrics.sync_blocks_total.inc_by(applied);
        info!(context = %self.id(), blocks = applied, height = self.record.height.0, "caught up");
        // Restart consensus at the new tip with a fresh engine: the height
        // it was in is decided.
        self.engine = new_engine(
            &self.deps,
            self.record.id,
            self.next_height(),
            &self.roster.validators,
            &self.log,
        );
        self.end_height();
        Ok(applied)
    }

    /// A height that needs a third round: maybe the others decided it and we
    /// did not hear (a gossip path can die while its connection stays up).
    /// Ask a member for decided blocks (request-response does not depend on
    /// gossip), and reconnect members silent for a while.
    pub(super) fn on_slow_height(&mut self, round: i64) {
        let others = self.roster.other_members();
        if others.is_empty() {
            return;
        }
        let metrics = self.deps.metrics.clone();
        let fallbacks = &metrics.consensus_fallbacks_total;
        fallbacks.with_label_values(&[&self.label, "sync"]).inc();
        let Some(net) = self.deps.transport.clone() else {
            return;
        };
        let readers = self.roster.other_readers();
        let epoch = self.gossip.newest_epoch();
        let asked = self.catch_up.ask_slow(&readers, self.record.height, epoch);
        self.send_sync(net.clone(), asked);
        for m in self.catch_up.silent(&others, Instant::now()) {
            debug!(context = %self.id(), member = %m, round, "no gossip from a member");
            fallbacks
                .with_label_values(&[&self.label, "reconnect"])
                .inc();
            net.reconnect(m);
        }
    }

    /// The node's tip watch heard that `member` decided this context up
    /// to `height` (gossip of the last heights may have been lost with no
    /// later message to reveal it): ask that member for the blocks, if
    /// still behind it and idle. A height under way by now (its first
    /// message was queued before this answer: an actor behind on its
    /// inbox) is the engine's, with its own safety net.
    pub(super) fn on_tip_seen(&mut self, member: MemberId, height: Height) {
        let me = self.engine.address();
        if height > self.record.height
            && !self.height_under_way()
            && member != me
            && self.roster.following
            && self.roster.readers.contains(&member)
        {
            let fallbacks = &self.deps.metrics.consensus_fallbacks_total;
            fallbacks.with_label_values(&[&self.label, "idle"]).inc();
            self.request_sync(member);
        }
    }

    /// Asks `peer` (or another member, after failures) for the decided
    /// blocks after our tip, one request at a time; the answer comes back
    /// as `Message::Synced`.
    pub(super) fn request_sync(&mut self, peer: MemberId) {
        self.request_sync_after(peer, self.record.height);
    }

    /// [`Self::request_sync`] for the blocks after `tip`.
    fn request_sync_after(&mut self, peer: MemberId, tip: Height) {
        let Some(net) = self.deps.transport.clone() else {
            return;
        };
        let others = self.roster.other_readers();
        let epoch = self.gossip.newest_epoch();
        let asked = self.catch_up.ask(peer, &others, tip, epoch);
        self.send_sync(net, asked);
    }

    /// Sends a catch-up request made by [`CatchUp`], if it made one.
    fn send_sync(&self, net: Arc<dyn Transport>, asked: Option<(MemberId, Vec<u8>)>) {
        let Some((peer, data)) = asked else {
            return;
        };
        let (ctx, inbox) = (self.id(), self.inbox.clone());
        tokio::spawn(async move {
            let result = net
                .request(peer, ctx, data)
                .await
                .map_err(|e| e.to_string());
            let _ = inbox.send(Message::Synced(result)).await;
        });
    }
}
