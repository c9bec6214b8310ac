//! The signature checks of txs submitted over RPC, in batches. Requests
//! that arrive while a batch is being checked are checked together next,
//! with ed25519's batch equation (a batch of 256 costs about a quarter of
//! checking its txs one by one, docs/PERFORMANCE.md); no wait is added to
//! gather them, so a lone request is checked at once, on its own (as are
//! batches too small to pay). The results are the ones a check one by one
//! gives: a batch that does not hold is checked again tx by tx.

use std::sync::Arc;

use conclave_consensus::{SignedTx, VerifiedTx};
use tokio::sync::{mpsc, oneshot};

use crate::sender_keys::SenderKeys;

/// Txs checked in one batch, at most, so that a batch holds the worker
/// that runs it for about a millisecond (a tx costs 17.0 us in a batch of
/// 32 and 13.4 in one of 256: little is lost by stopping at 64).
const MAX_BATCH: usize = 64;

/// Requests waiting for a check, at most; past it submitters wait.
const QUEUE: usize = 4096;

type Answer = conclave_consensus::Result<VerifiedTx>;
type Job = (SignedTx, oneshot::Sender<Answer>);

/// Why a tx was not checked.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CheckError {
    #[error("bad signature: {0}")]
    Rejected(String),
    #[error("the signature checker stopped")]
    Stopped,
}

/// A handle on the task that checks submitted txs; the task ends with the
/// last handle.
#[derive(Clone)]
pub struct TxChecker {
    jobs: mpsc::Sender<Job>,
}

impl TxChecker {
    /// Starts the checking task on the current runtime.
    pub fn start(keys: Arc<SenderKeys>) -> Self {
        let (jobs, queue) = mpsc::channel(QUEUE);
        tokio::spawn(run(queue, keys));
        Self { jobs }
    }

    /// `tx` with its signature checked.
    pub async fn verified(&self, tx: SignedTx) -> Result<VerifiedTx, CheckError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send((tx, reply))
            .await
            .map_err(|_| CheckError::Stopped)?;
        answer
            .await
            .map_err(|_| CheckError::Stopped)?
            .map_err(|e| CheckError::Rejected(e.to_string()))
    }
}

async fn run(mut queue: mpsc::Receiver<Job>, keys: Arc<SenderKeys>) {
    let mut jobs = Vec::with_capacity(MAX_BATCH);
    while queue.recv_many(&mut jobs, MAX_BATCH).await > 0 {
        let (txs, replies): (Vec<_>, Vec<_>) = jobs.drain(..).unzip();
        for (reply, answer) in replies.into_iter().zip(keys.verified_all(txs)) {
            // A submitter that went away no longer needs its answer.
            let _ = reply.send(answer);
        }
        // Let the submitters answered go on before the next batch.
        tokio::task::yield_now().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sender_keys::test_txs::{mixed, signed};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_submitters_each_get_their_own_answer() {
        let checker = TxChecker::start(Arc::default());
        let mut tasks = Vec::new();
        for (tx, good) in mixed(300) {
            let checker = checker.clone();
            tasks.push(tokio::spawn(async move {
                let hash = tx.hash();
                match checker.verified(tx).await {
                    Ok(v) => {
                        assert!(good);
                        assert_eq!(v.hash(), hash);
                    }
                    Err(CheckError::Rejected(_)) => assert!(!good),
                    Err(e) => panic!("{e}"),
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        // A lone request after the crowd.
        assert!(checker.verified(signed(4, 1)).await.is_ok());
    }
}
