//! The signature checks of txs submitted over RPC, in batches. Requests
//! that arrive while a batch is being checked are checked together next,
//! with ed25519's batch equation (a batch of 256 costs about a quarter of
//! checking its txs one by one, docs/PERFORMANCE.md); no wait is added to
//! gather them, so a lone request is checked at once, on its own (as are
//! batches too small to pay). The results are the ones a check one by one
//! gives: a batch that does not hold is checked again tx by tx.

use std::sync::Arc;

use conclave_consensus::{verified_batch, SignedTx, VerifiedTx};
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
        for (reply, answer) in replies.into_iter().zip(check(&keys, txs)) {
            // A submitter that went away no longer needs its answer.
            let _ = reply.send(answer);
        }
        // Let the submitters answered go on before the next batch.
        tokio::task::yield_now().await;
    }
}

/// Checks `txs`, answering for each in order.
fn check(keys: &SenderKeys, txs: Vec<SignedTx>) -> Vec<Answer> {
    let mut answers: Vec<Option<Answer>> = Vec::with_capacity(txs.len());
    let mut batch = Vec::with_capacity(txs.len());
    let mut places = Vec::with_capacity(txs.len());
    for tx in txs {
        match keys.key(&tx.tx.sender) {
            Ok(key) => {
                places.push(answers.len());
                answers.push(None);
                batch.push((tx, key));
            }
            Err(e) => answers.push(Some(Err(e))),
        }
    }
    for (at, answer) in places.into_iter().zip(verified_batch(batch)) {
        answers[at] = Some(answer);
    }
    answers
        .into_iter()
        .map(|a| a.unwrap_or(Err(conclave_consensus::Error::BadSignature)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_consensus::{ContextId, MemberId, Tx};
    use ed25519_dalek::SigningKey;

    fn signed(seed: u8, nonce: u64) -> SignedTx {
        let key = SigningKey::from_bytes(&[seed; 32]);
        Tx {
            context_id: ContextId([7; 32]),
            sender: MemberId(key.verifying_key().to_bytes()),
            nonce,
            method: "set".into(),
            args: b"{}".to_vec(),
        }
        .sign(&key)
    }

    /// Good txs, forged signatures, a signature by another key and a key
    /// that is no key, mixed.
    fn mixed(n: u64) -> Vec<(SignedTx, bool)> {
        (0..n)
            .map(|i| {
                let mut tx = signed(1 + (i % 3) as u8, i);
                let good = match i % 5 {
                    1 => {
                        tx.signature[i as usize % 64] ^= 1;
                        false
                    }
                    3 => {
                        tx.tx.sender = signed(9, i).tx.sender;
                        false
                    }
                    4 if i % 2 == 0 => {
                        let mut identity = [0u8; 32];
                        identity[0] = 1;
                        tx.tx.sender = MemberId(identity);
                        false
                    }
                    _ => true,
                };
                (tx, good)
            })
            .collect()
    }

    #[test]
    fn a_batch_answers_each_tx_as_a_check_one_by_one_would() {
        let keys = SenderKeys::default();
        let txs = mixed(40);
        let answers = check(&keys, txs.iter().map(|(tx, _)| tx.clone()).collect());
        assert_eq!(answers.len(), txs.len());
        for ((tx, good), answer) in txs.into_iter().zip(answers) {
            let alone = tx.clone().verified();
            assert_eq!(answer.is_ok(), good, "nonce {}", tx.tx.nonce);
            assert_eq!(answer.is_ok(), alone.is_ok());
            if let (Ok(a), Ok(b)) = (answer, alone) {
                assert_eq!(a, b);
            }
        }
    }

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
