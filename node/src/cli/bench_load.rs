//! The load of `conclave bench`: each member's txs to each context, signed
//! ahead, and which client sends to which validator and context.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use conclave_consensus::{ContextId, SignedTx, Tx};
use ed25519_dalek::SigningKey;

use super::bench::BenchArgs;
use super::bench_validators::Target;

/// One member's `kv` txs to one context, in nonce order: the clients
/// sharing it each take the next. The first ones are signed before the
/// load starts, as clients on machines of their own would have signed
/// them before sending: signed here during the load, they took a share of
/// the cores the measured validators run on (about 9 % of the machine at
/// one validator's pace). Past those, each is signed when taken.
pub(super) struct TxSequence {
    context: ContextId,
    key: SigningKey,
    /// Keys the txs cycle through (`--keys`).
    keys: u64,
    next: AtomicU64,
    presigned: Vec<SignedTx>,
}

/// At most this many txs signed ahead over all sequences (about 300 bytes
/// each in memory).
const MAX_PRESIGNED: u64 = 1_000_000;

impl TxSequence {
    /// A sequence per target and context (`[target][context]`), each with
    /// its clients' share of the load the run will likely offer signed
    /// ahead, and a quarter more: validators take it at different paces.
    /// `assigned`: each client's target and context ([`assign_clients`];
    /// every client offers about as much as any other).
    pub(super) fn all(
        args: &BenchArgs,
        targets: &[Target],
        contexts: &[ContextId],
        assigned: &[(usize, usize)],
    ) -> Vec<Vec<Arc<Self>>> {
        let clients = sharing(assigned, targets.len(), contexts.len());
        let expected = match args.duration {
            Some(secs) => args.rate.saturating_mul(secs),
            None => args.txs,
        };
        let total_clients: u64 = clients.iter().flatten().sum();
        let ahead = |n| signed_ahead(expected, n, total_clients);
        let mut all: Vec<Vec<(Self, u64)>> = targets
            .iter()
            .zip(&clients)
            .map(|(t, counts)| {
                contexts
                    .iter()
                    .zip(counts)
                    .map(|(c, n)| (Self::new(*c, t.key.clone(), args.keys), ahead(*n)))
                    .collect()
            })
            .collect();
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let mut jobs: Vec<&mut (Self, u64)> = all.iter_mut().flatten().collect();
        let per_thread = jobs.len().div_ceil(threads).max(1);
        std::thread::scope(|scope| {
            for chunk in jobs.chunks_mut(per_thread) {
                scope.spawn(move || {
                    for (seq, count) in chunk.iter_mut() {
                        seq.sign_ahead(*count);
                    }
                });
            }
        });
        all.into_iter()
            .map(|seqs| seqs.into_iter().map(|(s, _)| Arc::new(s)).collect())
            .collect()
    }

    fn new(context: ContextId, key: SigningKey, keys: u64) -> Self {
        Self {
            context,
            key,
            keys: keys.max(1),
            next: AtomicU64::new(1),
            presigned: Vec::new(),
        }
    }

    /// Signs the first `count` txs now.
    fn sign_ahead(&mut self, count: u64) {
        self.presigned = (1..=count).map(|n| self.sign(n)).collect();
    }

    fn sign(&self, nonce: u64) -> SignedTx {
        Tx {
            context_id: self.context,
            sender: conclave_consensus::MemberId(self.key.verifying_key().to_bytes()),
            nonce,
            method: "set".into(),
            args: format!(r#"{{"key":"k{}","value":"v{nonce}"}}"#, nonce % self.keys).into_bytes(),
        }
        .sign(&self.key)
    }

    /// The tx with the next nonce.
    pub(super) fn next(&self) -> SignedTx {
        let nonce = self.next.fetch_add(1, Ordering::Relaxed);
        let signed = usize::try_from(nonce - 1)
            .ok()
            .and_then(|i| self.presigned.get(i));
        match signed {
            Some(tx) => tx.clone(),
            None => self.sign(nonce),
        }
    }
}

/// How many of the `assigned` clients share each sequence
/// (`[target][context]`).
fn sharing(assigned: &[(usize, usize)], targets: usize, contexts: usize) -> Vec<Vec<u64>> {
    let mut counts = vec![vec![0u64; contexts]; targets];
    for &(target, context) in assigned {
        counts[target][context] += 1;
    }
    counts
}

/// How many txs to sign ahead for a sequence that `clients` of
/// `total_clients` share, when the run will likely offer `expected`: their
/// share and a quarter more, within the sequence's share of
/// [`MAX_PRESIGNED`].
fn signed_ahead(expected: u64, clients: u64, total_clients: u64) -> u64 {
    let total = total_clients.max(1);
    let share = expected.saturating_mul(clients).div_ceil(total);
    (share.saturating_mul(5) / 4).min(MAX_PRESIGNED.saturating_mul(clients) / total)
}

/// The bench's own RPC connections to a validator besides its clients'
/// (the block subscription, the operator's calls).
const OWN_CONNECTIONS: u32 = 8;

/// The `[rpc] max_connections` a validator needs for `clients` spread over
/// `targets`: one connection per client (each keeps one request in
/// flight) and the bench's own. Past the limit a node closes new
/// connections at once, and the clients over it measured their
/// reconnections instead of the node (`--validators 1 --clients 512`
/// against the default 256: a third of the CPU in connects and accepts).
pub(super) fn rpc_connections(clients: u64, targets: usize) -> u32 {
    let per_target = clients.max(1).div_ceil(targets.max(1) as u64);
    u32::try_from(per_target)
        .unwrap_or(u32::MAX)
        .saturating_add(OWN_CONNECTIONS)
}

/// Which target and context each client sends to (`(target, context)`):
/// `clients` (at least one a target) spread evenly over the targets, and
/// each target's over the contexts, so that with more clients than contexts
/// every context gets some from every target when counts allow.
pub(super) fn assign_clients(clients: u64, targets: usize, contexts: usize) -> Vec<(usize, usize)> {
    let per_target = (clients.max(1) as usize).div_ceil(targets);
    let mut assigned = Vec::with_capacity(per_target * targets);
    let mut client_no = 0usize;
    for target in 0..targets {
        for _ in 0..per_target {
            assigned.push((target, client_no % contexts));
            client_no += 1;
        }
    }
    assigned
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 512 clients on 4 validators and 100 contexts: some sequences have
    /// two clients, most one. Each is signed ahead for its own clients'
    /// share (signing the rest during the load took the validators' cores).
    #[test]
    fn each_sequence_is_signed_ahead_for_the_clients_that_share_it() {
        let assigned = assign_clients(512, 4, 100);
        assert_eq!(assigned.len(), 512);
        let counts = sharing(&assigned, 4, 100);
        for per_target in &counts {
            assert_eq!(per_target.iter().sum::<u64>(), 128);
            assert!(per_target.iter().all(|&n| n == 1 || n == 2));
        }
        let expected = 40_000;
        let mut signed = 0;
        for &n in counts.iter().flatten() {
            let ahead = signed_ahead(expected, n, 512);
            // A client offers expected / 512 txs: a quarter more each.
            assert!(ahead * 512 >= expected * n * 5 / 4, "{n} clients: {ahead}");
            signed += ahead;
        }
        assert!(signed < expected * 2);
        assert_eq!(signed_ahead(expected, 0, 512), 0);
        // Never past the bound, however long the run.
        let bounded: u64 = counts
            .iter()
            .flatten()
            .map(|&n| signed_ahead(u64::MAX / 2, n, 512))
            .sum();
        assert!(bounded <= MAX_PRESIGNED);
    }

    #[test]
    fn each_validator_takes_a_connection_for_each_of_its_clients() {
        for (clients, targets) in [(512, 1), (512, 4), (513, 4), (1, 4), (0, 1)] {
            let most = assign_clients(clients, targets, 100)
                .iter()
                .fold(vec![0u32; targets], |mut n, &(t, _)| {
                    n[t] += 1;
                    n
                })
                .into_iter()
                .max()
                .unwrap();
            assert!(rpc_connections(clients, targets) >= most + OWN_CONNECTIONS);
        }
        assert_eq!(rpc_connections(512, 1), 520);
    }

    #[test]
    fn txs_cycle_through_the_keys_asked_for() {
        let seq = TxSequence::new(ContextId([3; 32]), SigningKey::from_bytes(&[7; 32]), 3);
        let keys: Vec<String> = (0..6)
            .map(|_| {
                let args: serde_json::Value = serde_json::from_slice(&seq.next().tx.args).unwrap();
                args["key"].as_str().unwrap().to_string()
            })
            .collect();
        assert_eq!(keys, ["k1", "k2", "k0", "k1", "k2", "k0"]);
    }

    #[test]
    fn a_sequence_hands_out_each_nonce_once_signed_ahead_or_not() {
        let key = SigningKey::from_bytes(&[7; 32]);
        let context = ContextId([3; 32]);
        let mut seq = TxSequence::new(context, key.clone(), 1000);
        seq.sign_ahead(3);
        let seq = Arc::new(seq);
        // Clients on several threads share it.
        let taken: Vec<SignedTx> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..4)
                .map(|_| scope.spawn(|| (0..5).map(|_| seq.next()).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap())
                .collect()
        });
        let mut nonces: Vec<u64> = taken.iter().map(|t| t.tx.nonce).collect();
        nonces.sort_unstable();
        assert_eq!(nonces, (1..=20).collect::<Vec<_>>());
        for tx in &taken {
            assert_eq!(tx.tx.context_id, context);
            tx.verify().expect("signed by the member's key");
            assert_eq!(tx.tx.sender.0, key.verifying_key().to_bytes());
        }
    }
}
