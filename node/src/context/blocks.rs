//! Blocks of the height in progress: building this node's proposal from
//! the mempool, re-executing the members' proposals to validate them, and
//! writing the decided one to the store. It owns the candidate blocks with
//! their execution results; all three paths execute through one
//! [`Execution`] setup.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use conclave_consensus::codec::StoredCertificate;
use conclave_consensus::mal::Validity;
use conclave_consensus::{Block, BlockHeader, Hash32, Height, MemberId, SignedTx};
use conclave_runtime::{App, Runtime};
use tracing::{debug, warn};

use super::catchup::Certificate;
use super::submit::Intake;
use crate::config::BlockConfig;
use crate::exec::{self, BlockEnv, Executed, TxRejection};
use crate::metrics::Metrics;
use crate::store::{CommitBatch, ContextRecord, Store};
use crate::Result;

/// How far ahead of a validator's clock a proposed block's time may be.
pub(super) const MAX_CLOCK_AHEAD_MS: u64 = 10_000;

/// A block with what executing it produced, and its txs' hashes (in
/// order, computed once: the commit, the pool and the block event use
/// them).
pub(super) struct Proposed {
    pub(super) block: Block,
    pub(super) executed: Executed,
    pub(super) tx_hashes: Vec<Hash32>,
}

/// What executing a block of the next height needs: the app, the parent
/// state and the members who may send txs.
pub(super) struct Execution<'a> {
    pub(super) runtime: &'a Runtime,
    pub(super) app: &'a App,
    pub(super) store: &'a Store,
    pub(super) record: &'a ContextRecord,
    pub(super) members: &'a [MemberId],
    pub(super) max_tx_bytes: usize,
    /// The block to execute comes with a commit certificate checked
    /// already (catch-up): more than 2/3 of its height's validators
    /// precommitted it, so at least one honest member checked its txs'
    /// signatures, and they are not checked again.
    pub(super) certified: bool,
}

impl Execution<'_> {
    /// Executes `txs` at `height`, trusting the signatures of txs the
    /// mempool holds (verified when admitted), or of every tx of a
    /// certified block. `budget`: building, which stops adding txs once
    /// execution has run that long (the wait for a core not counted) and
    /// skips invalid txs into `rejected`; without it every tx must be valid.
    fn run(
        &self,
        intake: &Intake,
        height: Height,
        time_ms: u64,
        txs: Vec<SignedTx>,
        budget: Option<Duration>,
        rejected: &mut Vec<(SignedTx, TxRejection)>,
    ) -> std::result::Result<(Vec<SignedTx>, Executed), exec::ExecError> {
        // The pool's lock is taken a tx at a time: submissions go on
        // while the block executes.
        let verified = |tx: &SignedTx| self.certified || intake.admission().pool().holds(tx);
        let env = BlockEnv {
            context_id: self.record.id,
            genesis: &self.record.genesis,
            members: self.members,
            height,
            time_ms,
            max_tx_bytes: self.max_tx_bytes,
            verified: Some(&verified),
            budget,
        };
        let state = self.store.state(self.record.id);
        let strict = budget.is_none();
        // One block per core at a time across the node's contexts.
        crate::gate::execute_block(txs.len(), || {
            exec::execute(self.runtime, self.app, &state, &env, txs, strict, rejected)
        })
    }
}

pub(super) struct Blocks {
    proposals: HashMap<Hash32, Proposed>,
    metrics: Arc<Metrics>,
}

impl Blocks {
    pub(super) fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            proposals: HashMap::new(),
            metrics,
        }
    }

    pub(super) fn block(&self, hash: &Hash32) -> Option<&Block> {
        self.proposals.get(hash).map(|p| &p.block)
    }

    /// Candidate block `hash` with its txs' hashes.
    pub(super) fn block_with_hashes(&self, hash: &Hash32) -> Option<(&Block, &[Hash32])> {
        self.proposals
            .get(hash)
            .map(|p| (&p.block, p.tx_hashes.as_slice()))
    }

    pub(super) fn contains(&self, hash: &Hash32) -> bool {
        self.proposals.contains_key(hash)
    }

    /// The decided block `hash`, taken out for commit.
    pub(super) fn take(&mut self, hash: &Hash32) -> Option<Proposed> {
        self.proposals.remove(hash)
    }

    /// The height is over (decided, or skipped by catch-up).
    pub(super) fn clear(&mut self) {
        self.proposals.clear();
    }

    /// Builds this node's proposal for `height` from the mempool; kept
    /// durably before it is proposed.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn build(
        &mut self,
        ex: &Execution<'_>,
        intake: &Intake,
        cfg: &BlockConfig,
        height: Height,
        proposer: MemberId,
        members_hash: Hash32,
        now_ms: u64,
    ) -> Result<Hash32> {
        let t0 = Instant::now();
        let txs = intake.admission().select(cfg.max_txs, cfg.max_bytes);
        let t_select = t0.elapsed();
        let selected = txs.len();
        let time_ms = now_ms.max(ex.record.last_time_ms + 1);
        let budget = Duration::from_millis(cfg.max_build_ms);
        let mut rejected = Vec::new();
        let (txs, executed) = ex.run(intake, height, time_ms, txs, Some(budget), &mut rejected)?;
        let t_exec = t0.elapsed();
        for (tx, reason) in rejected {
            if matches!(reason, TxRejection::NonceGap { .. }) {
                continue;
            }
            let hash = tx.hash();
            debug!(context = %ex.record.id, tx = %hash, %reason, "dropping tx at block building");
            intake.admission().drop_tx(&hash);
        }
        let tx_hashes: Vec<Hash32> = txs.iter().map(|t| t.hash()).collect();
        let txs_root = conclave_consensus::merkle_root(&tx_hashes);
        let block = Block {
            header: BlockHeader {
                context_id: ex.record.id,
                height,
                parent_hash: ex.record.last_block_hash,
                time_ms,
                proposer,
                txs_root,
                state_root: executed.state_root,
                actions_root: executed.actions_root,
                members_hash,
            },
            txs,
        };
        let hash = block.hash();
        // Made durable before its proposal leaves the node (after a crash
        // this node must propose this very block again), by a sync of the
        // store's log that overlaps the WAL's: `ContextActor::perform`.
        ex.store.put_pending_block(&block, false)?;
        self.metrics
            .block_execution_seconds
            .with_label_values(&["build"])
            .observe((t_exec - t_select).as_secs_f64());
        debug!(context = %ex.record.id, height = height.0, selected, txs = block.txs.len(),
            pending = intake.pending(), select_ms = t_select.as_millis() as u64,
            execute_ms = (t_exec - t_select).as_millis() as u64,
            total_ms = t0.elapsed().as_millis() as u64, "block built");
        let proposed = Proposed {
            block,
            executed,
            tx_hashes,
        };
        self.proposals.insert(hash, proposed);
        Ok(hash)
    }

    /// Re-executes a proposed block on the committed parent state; valid
    /// only if every header field is what this member computes, and (with
    /// `now_ms`, for a proposal) its time is at most 10 s ahead of it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn validate(
        &mut self,
        ex: &Execution<'_>,
        intake: &Intake,
        block: Block,
        proposer: MemberId,
        members_hash: Hash32,
        now_ms: Option<u64>,
    ) -> Validity {
        let hash = block.hash();
        if self.proposals.contains_key(&hash) {
            return Validity::Valid;
        }
        let (record, h) = (ex.record, &block.header);
        let tx_hashes: Vec<Hash32> = block.txs.iter().map(|t| t.hash()).collect();
        let structural = h.context_id == record.id
            && h.height.0 == record.height.0 + 1
            && h.parent_hash == record.last_block_hash
            && h.time_ms > record.last_time_ms
            && now_ms.is_none_or(|now| h.time_ms <= now.saturating_add(MAX_CLOCK_AHEAD_MS))
            && h.proposer == proposer
            && h.members_hash == members_hash
            && conclave_consensus::merkle_root(&tx_hashes) == h.txs_root;
        if !structural {
            warn!(context = %record.id, height = h.height.0, "invalid block header");
            return Validity::Invalid;
        }
        let t0 = Instant::now();
        let txs = block.txs.clone();
        let executed = match ex.run(intake, h.height, h.time_ms, txs, None, &mut Vec::new()) {
            Ok((_, executed)) => executed,
            Err(e) => {
                warn!(context = %record.id, height = h.height.0, error = %e, "invalid block");
                return Validity::Invalid;
            }
        };
        if let Err(e) = exec::roots_match(h, &executed) {
            warn!(context = %record.id, height = h.height.0, error = %e, "block roots do not match");
            return Validity::Invalid;
        }
        let t_exec = t0.elapsed();
        // Kept (unsynced: survives a process crash) in case this node votes
        // for it, crashes and must commit it after replaying its WAL.
        if let Err(e) = ex.store.put_pending_block(&block, false) {
            warn!(context = %record.id, error = %e, "cannot keep a candidate block");
        }
        self.metrics
            .block_execution_seconds
            .with_label_values(&["validate"])
            .observe(t_exec.as_secs_f64());
        debug!(context = %record.id, height = h.height.0, txs = block.txs.len(),
            execute_ms = t_exec.as_millis() as u64, "proposal validated");
        let proposed = Proposed {
            block,
            executed,
            tx_hashes,
        };
        self.proposals.insert(hash, proposed);
        Validity::Valid
    }
}

/// Writes a decided block with its certificate, receipts, actions, state
/// and the new tip in one batch, unsynced (the caller makes it durable:
/// see [`CommitBatch::durable`]), and forgets the kept txs `forgotten`
/// (its own, acknowledged here) in it; returns the new tip's record.
pub(super) fn write_commit(
    store: &Store,
    record: &ContextRecord,
    decided: &Proposed,
    cert: &Certificate,
    forgotten: &[Hash32],
) -> Result<ContextRecord> {
    let (block, executed) = (&decided.block, &decided.executed);
    let mut next = record.clone();
    next.height = block.height();
    next.last_block_hash = block.hash();
    next.state_root = executed.state_root;
    next.last_time_ms = block.header.time_ms;
    crate::failpoint::hit("before_commit");
    store.commit(CommitBatch {
        record: &next,
        block,
        tx_hashes: &decided.tx_hashes,
        certificate: &StoredCertificate::from_cert(cert),
        receipts: &executed.receipts,
        actions: &executed.actions,
        tree: &executed.tree,
        forgotten,
        durable: false,
    })?;
    crate::failpoint::hit("after_commit");
    Ok(next)
}

#[cfg(test)]
#[path = "blocks_tests.rs"]
mod tests;
