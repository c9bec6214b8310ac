//! The context actor's handling of txs submitted here (`tx_submit`): each
//! is admitted to the pool as it arrives, and the ones admitted in one
//! turn of the actor's loop are kept in the store in one write before any
//! is acknowledged or passed on to the other members. One write a turn
//! instead of one a tx: under load a turn takes a few submissions at once.

use conclave_consensus::{Hash32, SignedTx, VerifiedTx};
use tokio::sync::oneshot;

use super::actor::ContextActor;
use super::ingress::SubmitError;

/// Submitted txs in the pool, not kept in the store yet, and whom to
/// answer for each.
#[derive(Default)]
pub(super) struct Submitted {
    txs: Vec<(Hash32, SignedTx)>,
    replies: Vec<oneshot::Sender<Result<Hash32, SubmitError>>>,
}

impl ContextActor {
    /// Admits a submitted tx to the pool; it is answered (and gossiped)
    /// once kept, by [`Self::acknowledge_submitted`], or now if refused.
    pub(super) fn on_submit(
        &mut self,
        tx: VerifiedTx,
        reply: oneshot::Sender<Result<Hash32, SubmitError>>,
    ) {
        let copy = tx.tx().clone();
        match self.admission.admit_unkept(tx, &self.roster.members) {
            Ok(hash) => {
                self.submitted.txs.push((hash, copy));
                self.submitted.replies.push(reply);
            }
            Err(e) => {
                self.count_submitted("rejected", 1);
                let _ = reply.send(Err(e));
            }
        }
    }

    /// Keeps the txs submitted since the last call in one write, then
    /// answers their clients and queues them for the other members; if the
    /// write fails they leave the pool and each client gets the error.
    /// Called before this node builds a block and at the end of each turn
    /// of the loop, so that no tx waits unanswered for the next message.
    pub(super) fn acknowledge_submitted(&mut self) {
        if self.submitted.txs.is_empty() {
            return;
        }
        let Submitted { txs, replies } = std::mem::take(&mut self.submitted);
        match self.admission.keep(&txs) {
            Ok(()) => {
                self.count_submitted("accepted", txs.len());
                let gossip = self.gossip.has_peers();
                for ((hash, tx), reply) in txs.into_iter().zip(replies) {
                    if gossip {
                        self.gossip.queue_tx(tx);
                    }
                    let _ = reply.send(Ok(hash));
                }
            }
            Err(e) => {
                self.count_submitted("rejected", txs.len());
                for reply in replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
        self.update_mempool_gauge();
    }

    fn count_submitted(&self, status: &str, n: usize) {
        self.deps
            .metrics
            .txs_total
            .with_label_values(&[&self.label, status])
            .inc_by(n as u64);
    }
}
