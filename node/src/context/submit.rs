//! Txs submitted here (`tx_submit`), admitted beside the context actor:
//! the RPC task that took a tx checks it against the pool, keeps it in the
//! store and puts it in the pool itself, under the pool's lock, and answers
//! at once. It never waits for the actor's turn, which on a node running
//! many contexts may come only after every other context's work on the
//! same worker (a block executed, a vote's syncs). The actor takes the
//! acknowledged txs from [`Intake`] to push them to the other members, at
//! the end of each turn and before it builds a block; a submission wakes
//! it only when none was waiting, so that one wake serves a batch.
//!
//! The pool's questions (`tx_nonce`, pending counts) are answered the same
//! way, from the pool under its lock.

use std::sync::Arc;

use conclave_consensus::{ContextId, Hash32, MemberId, SignedTx, VerifiedTx};
use parking_lot::{Mutex, MutexGuard};
use tokio::sync::mpsc;

use super::actor::ContextActor;
use super::admission::Admission;
use super::fault::FaultStatus;
use super::ingress::{Message, SubmitError};
use crate::metrics::Metrics;
use crate::store::Store;

/// A context's pool, shared by its actor and the node's RPC tasks.
pub struct Intake {
    context: ContextId,
    label: String,
    store: Store,
    metrics: Arc<Metrics>,
    admission: Mutex<Admission>,
    /// Acknowledged txs the actor has not pushed to the members yet.
    unpushed: Mutex<Vec<SignedTx>>,
    /// The actor's bulk lane: woken when txs wait to be pushed (and
    /// closed once the actor stopped).
    wake: mpsc::Sender<Message>,
    fault: FaultStatus,
}

impl std::fmt::Debug for Intake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Intake")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

impl Intake {
    pub(super) fn new(
        admission: Admission,
        store: Store,
        metrics: Arc<Metrics>,
        wake: mpsc::Sender<Message>,
        fault: FaultStatus,
    ) -> Self {
        let context = admission.context();
        Self {
            context,
            label: context.to_hex(),
            store,
            metrics,
            admission: Mutex::new(admission),
            unpushed: Mutex::new(Vec::new()),
            wake,
            fault,
        }
    }

    /// The pool and its admission rules. Held briefly: every submission
    /// to this context waits for it.
    pub(super) fn admission(&self) -> MutexGuard<'_, Admission> {
        self.admission.lock()
    }

    /// Admits a tx whose signature the caller checked: answered once it
    /// is kept in the store and in the pool (acknowledged means kept: a
    /// node killed before it commits puts it back in its pool when it
    /// restarts), or refused with nothing changed.
    pub fn submit(&self, tx: VerifiedTx) -> Result<Hash32, SubmitError> {
        let result = self.admit(tx);
        let status = if result.is_ok() {
            "accepted"
        } else {
            "rejected"
        };
        self.metrics
            .txs_total
            .with_label_values(&[&self.label, status])
            .inc();
        result
    }

    fn admit(&self, tx: VerifiedTx) -> Result<Hash32, SubmitError> {
        if self.wake.is_closed() {
            return Err(SubmitError::Closed);
        }
        if let Some(reason) = self.fault.get() {
            // The context cannot write now: it takes no tx it could not keep.
            return Err(SubmitError::Storage(reason));
        }
        let (hash, copy) = (tx.hash(), tx.tx().clone());
        // The cheap refusals first, so that a duplicate or a stale tx
        // costs no write.
        self.admission().check_new(&copy, &hash)?;
        // Written outside the lock: the actor and the other submitters go
        // on meanwhile; `admit_written` settles a race with either.
        self.store
            .put_pending_txs(&self.context, &[(hash, copy.clone())])
            .map_err(|e| SubmitError::Storage(e.to_string()))?;
        let pending = {
            let mut admission = self.admission();
            admission.admit_written(tx)?;
            admission.pool().len()
        };
        self.metrics
            .mempool_size
            .with_label_values(&[&self.label])
            .set(pending as i64);
        let first = {
            let mut unpushed = self.unpushed.lock();
            unpushed.push(copy);
            unpushed.len() == 1
        };
        if first {
            // A full lane means the actor has a turn coming, which takes
            // these too.
            let _ = self.wake.try_send(Message::Acknowledged);
        }
        Ok(hash)
    }

    /// The txs acknowledged since the last call, to push to the members.
    pub(super) fn take_unpushed(&self) -> Vec<SignedTx> {
        std::mem::take(&mut *self.unpushed.lock())
    }

    /// The nonce `member` should use next: above committed and pending.
    pub fn next_nonce(&self, member: &MemberId) -> Result<u64, SubmitError> {
        self.admission().next_nonce(member)
    }

    /// How many txs the pool holds.
    pub fn pending(&self) -> usize {
        self.admission().pool().len()
    }

    /// Whether the pool holds the tx `hash`.
    pub fn is_pending(&self, hash: &Hash32) -> bool {
        self.admission().pool().contains(hash)
    }
}

impl ContextActor {
    /// Queues the txs acknowledged beside the actor for the other members.
    /// Called before this node builds a block and at the end of each turn
    /// of the loop.
    pub(super) fn push_acknowledged(&mut self) {
        let txs = self.intake.take_unpushed();
        if txs.is_empty() || !self.gossip.has_peers() {
            return;
        }
        for tx in txs {
            self.gossip.queue_tx(tx);
        }
    }
}
