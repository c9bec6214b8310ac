//! Txs submitted here (`tx_submit`), admitted beside the context actor:
//! the RPC task that took a tx checks it against the pool, keeps it in the
//! store and puts it in the pool itself, under the pool's lock, and answers
//! at once. It never waits for the actor's turn, which on a node running
//! many contexts may come only after every other context's work on the
//! same worker (a block executed, a vote's syncs). The store writes of
//! concurrent submissions, of all contexts, are grouped
//! ([`Store::keep_pending_tx`]): one submitter writes what the others
//! queued meanwhile, in one batch. The actor takes the
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
use crate::mempool::MempoolError;
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
        metrics: Arc<Metrics>,
        wake: mpsc::Sender<Message>,
        fault: FaultStatus,
    ) -> Self {
        let context = admission.context();
        Self {
            context,
            label: context.to_hex(),
            store: admission.store().clone(),
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
    pub async fn submit(&self, tx: VerifiedTx) -> Result<Hash32, SubmitError> {
        let result = self.admit(tx).await.map_err(|e| self.with_wait(e));
        self.count(&result);
        result
    }

    /// A refusal for lack of room, told how long to wait
    /// ([`SubmitError::Full`]); other refusals as they are. Takes the
    /// pool's lock: never call it while holding it.
    fn with_wait(&self, e: SubmitError) -> SubmitError {
        match e {
            SubmitError::Mempool(
                refused @ (MempoolError::Full(_)
                | MempoolError::FullBytes(_)
                | MempoolError::SenderFull(_)),
            ) => SubmitError::Full {
                refused,
                retry_after: self.admission().retry_after(),
            },
            other => other,
        }
    }

    /// Counts a submission's outcome in `conclave_txs_total`.
    fn count<T>(&self, result: &Result<T, SubmitError>) {
        let status = if result.is_ok() {
            "accepted"
        } else {
            "rejected"
        };
        self.metrics
            .txs_total
            .with_label_values(&[&self.label, status])
            .inc();
    }

    /// The pool's cheap refusals of a tx whose signature is not checked
    /// yet (a stale or taken nonce, a duplicate, a non-member, a full
    /// pool), asked before the check: a node at its limits refuses for
    /// the price of a lookup, not of a signature check. Changes nothing;
    /// [`Self::submit`] asks again of the checked tx.
    pub fn refuses(&self, tx: &SignedTx) -> Result<(), SubmitError> {
        let refused = self.admission().check_new(tx, &tx.hash());
        let refused = refused.map_err(|e| self.with_wait(e));
        if refused.is_err() {
            self.count(&refused);
        }
        refused
    }

    async fn admit(&self, tx: VerifiedTx) -> Result<Hash32, SubmitError> {
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
        self.keep(hash, copy.clone()).await?;
        self.admission().admit_written(tx)?;
        self.show_pending();
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

    /// Keeps `tx` in the store, in a write shared with the node's other
    /// submissions of the moment ([`Store::keep_pending_tx`]).
    async fn keep(&self, hash: Hash32, tx: SignedTx) -> Result<(), SubmitError> {
        self.store
            .keep_pending_tx(self.context, hash, tx)
            .await
            .map_err(SubmitError::Storage)
    }

    /// Sets the pool's gauge to what it holds now.
    pub(super) fn show_pending(&self) {
        let pending = self.pending();
        self.metrics
            .mempool_size
            .with_label_values(&[&self.label])
            .set(pending as i64);
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

    /// Pushes the txs queued for the other members, now or once
    /// [`super::pace::PushPace`] says so (a wake-up armed meanwhile).
    pub(super) fn push_when_due(&mut self) {
        let waiting = self.gossip.unpushed();
        if waiting == 0 {
            return;
        }
        let load = self.load();
        let now = tokio::time::Instant::now();
        // A held height is under way as far as pushes go: the proposer
        // builds from them when it ends.
        match self
            .push_pace
            .push(now, load, self.height_under_way(), waiting)
        {
            super::pace::Push::Now => self.gossip.flush_txs(),
            super::pace::Push::WakeAt(at) => {
                self.timers.after(at - now, super::ingress::Message::Paced)
            }
            super::pace::Push::Later => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_consensus::Height;

    use crate::context::admission::tests::{setup, Setup};
    use crate::exec::TxRejection;

    fn intake(s: &Setup) -> (Intake, mpsc::Receiver<Message>, FaultStatus) {
        intake_of(s.admission())
    }

    fn intake_of(admission: Admission) -> (Intake, mpsc::Receiver<Message>, FaultStatus) {
        let (wake, woken) = mpsc::channel(16);
        let fault = FaultStatus::default();
        let metrics = Arc::new(Metrics::new().unwrap());
        let intake = Intake::new(admission, metrics, wake, fault.clone());
        (intake, woken, fault)
    }

    fn submit(intake: &Intake, tx: SignedTx) -> Result<Hash32, SubmitError> {
        futures::executor::block_on(intake.submit(tx.verified().unwrap()))
    }

    fn wakes(woken: &mut mpsc::Receiver<Message>) -> usize {
        let mut n = 0;
        while let Ok(msg) = woken.try_recv() {
            assert!(matches!(msg, Message::Acknowledged));
            n += 1;
        }
        n
    }

    #[test]
    fn submissions_are_kept_pooled_answered_and_wake_the_actor_once() {
        let s = setup();
        let (intake, mut woken, _) = intake(&s);
        let hashes: Vec<Hash32> = (1..=3).map(|n| submit(&intake, s.tx(n)).unwrap()).collect();
        assert_eq!(intake.pending(), 3);
        assert!(hashes.iter().all(|h| intake.is_pending(h)));
        let mut sorted = hashes.clone();
        sorted.sort();
        assert_eq!(s.kept(), sorted, "acknowledged means kept");
        assert_eq!(wakes(&mut woken), 1, "one wake for the batch");
        let unpushed: Vec<Hash32> = intake.take_unpushed().iter().map(|t| t.hash()).collect();
        assert_eq!(unpushed, hashes);
        assert_eq!(intake.next_nonce(&s.members[0]).unwrap(), 4);
        // Once taken, the next submission wakes the actor again.
        submit(&intake, s.tx(4)).unwrap();
        assert_eq!(wakes(&mut woken), 1);
    }

    /// Submissions at once from many tasks: each kept and answered, the
    /// writes grouped by whichever submitter found none under way.
    #[test]
    fn concurrent_submissions_are_all_kept_and_answered() {
        let s = setup();
        let (intake, _woken, _) = intake(&s);
        let intake = Arc::new(intake);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        let answers = runtime.block_on(async {
            let tasks: Vec<_> = (1..=64)
                .map(|n| {
                    let (intake, tx) = (intake.clone(), s.tx(n).verified().unwrap());
                    tokio::spawn(async move { intake.submit(tx).await })
                })
                .collect();
            let mut answers = Vec::new();
            for task in tasks {
                answers.push(task.await.unwrap());
            }
            answers
        });
        let mut hashes: Vec<Hash32> = answers.into_iter().map(Result::unwrap).collect();
        hashes.sort();
        assert_eq!(s.kept(), hashes);
        assert_eq!(intake.pending(), 64);
        assert!(!s.store.keeps_writing(), "a writer left behind");
    }

    #[test]
    fn a_refused_submission_changes_nothing() {
        let s = setup();
        let (intake, mut woken, _) = intake(&s);
        submit(&intake, s.tx(1)).unwrap();
        intake.take_unpushed();
        wakes(&mut woken);
        let kept = s.kept();
        let again = submit(&intake, s.tx(1));
        assert!(matches!(
            again,
            Err(SubmitError::Mempool(MempoolError::Duplicate(_)))
        ));
        let far = submit(&intake, s.tx(1_000_000));
        assert!(matches!(
            far,
            Err(SubmitError::Rejected(TxRejection::NonceTooFar { .. }))
        ));
        assert_eq!(s.kept(), kept);
        assert_eq!(intake.pending(), 1);
        assert!(intake.take_unpushed().is_empty());
        assert_eq!(wakes(&mut woken), 0);
    }

    /// A refusal for lack of room says how long to wait, at both of the
    /// pool's checks (before the signature check and at admission), and
    /// changes nothing.
    #[test]
    fn a_full_pool_refuses_with_a_wait() {
        let s = setup();
        let admission = Admission::new(
            s.store.clone(),
            s.context,
            Height(0),
            crate::config::MempoolConfig {
                max_txs_per_sender: 2,
                ..Default::default()
            },
            s.members.clone(),
        );
        let (intake, _woken, _) = intake_of(admission);
        for n in 1..=2 {
            submit(&intake, s.tx(n)).unwrap();
        }
        let full = |r: Result<(), SubmitError>| match r {
            Err(SubmitError::Full {
                refused: MempoolError::SenderFull(2),
                retry_after,
            }) => retry_after,
            other => panic!("{other:?}"),
        };
        // No commit seen yet: the wait for an unknown pace.
        assert_eq!(
            full(intake.refuses(&s.tx(3))),
            crate::context::room::RETRY_UNKNOWN
        );
        assert_eq!(
            full(submit(&intake, s.tx(3)).map(drop)),
            crate::context::room::RETRY_UNKNOWN
        );
        assert_eq!(intake.pending(), 2);
        assert_eq!(s.kept().len(), 2);
        // Once blocks commit, the wait follows their pace (bounded).
        for height in 1..=2 {
            intake.admission().committed(Height(height), &[], &[], &[]);
        }
        let wait = full(intake.refuses(&s.tx(3)));
        assert!(
            (crate::context::room::RETRY_MIN..=crate::context::room::RETRY_MAX).contains(&wait),
            "{wait:?}"
        );
    }

    #[test]
    fn a_faulted_or_stopped_context_takes_no_tx() {
        let s = setup();
        let (intake, woken, fault) = intake(&s);
        fault.set(Some("No space left on device".into()));
        assert!(matches!(
            submit(&intake, s.tx(1)),
            Err(SubmitError::Storage(reason)) if reason.contains("No space")
        ));
        fault.set(None);
        drop(woken);
        assert!(matches!(submit(&intake, s.tx(1)), Err(SubmitError::Closed)));
        assert!(s.kept().is_empty());
        assert_eq!(intake.pending(), 0);
    }

    /// A commit that got in between a submission's write and its turn at
    /// the pool made it stale: refused, and its written copy forgotten;
    /// a duplicate's refusal keeps the copy the pool's tx needs.
    #[test]
    fn a_write_that_lost_a_race_is_forgotten_unless_its_tx_is_kept() {
        let s = setup();
        let mut a = s.admission();
        let tx = s.tx(1);
        let hash = tx.hash();
        a.check_new(&tx, &hash).unwrap();
        s.store
            .put_pending_txs(&s.context, &[(hash, tx.clone())])
            .unwrap();
        // Committed meanwhile (by another member's copy of it).
        a.committed(Height(1), std::slice::from_ref(&tx), &[hash], &[]);
        assert!(matches!(
            a.admit_written(tx.clone().verified().unwrap()),
            Err(SubmitError::Rejected(TxRejection::StaleNonce { .. }))
        ));
        assert!(s.kept().is_empty());

        let tx = s.tx(2);
        let hash = tx.hash();
        s.store
            .put_pending_txs(&s.context, &[(hash, tx.clone())])
            .unwrap();
        a.admit_written(tx.clone().verified().unwrap()).unwrap();
        // The same tx submitted twice at once: the second write lands on
        // the first's key, and its refusal leaves it.
        s.store
            .put_pending_txs(&s.context, &[(hash, tx.clone())])
            .unwrap();
        assert!(a.admit_written(tx.verified().unwrap()).is_err());
        assert_eq!(s.kept(), vec![hash]);
    }
}
