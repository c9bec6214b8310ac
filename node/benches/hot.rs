//! The per-tx and per-signature pieces a validator repeats on every height:
//! a tx's signature check, sealing and opening what members send each
//! other, and making a signature durable (the WAL and the sign guard, with
//! their fsyncs overlapped, as the node does, and one after the other).
//! `cargo bench -p conclave-node --bench hot`. The durable cases measure
//! this machine's disk as much as the code.

use conclave_consensus::mal::{Input, Round, Timeout};
use conclave_consensus::sign_policy::{SignPosition, SignRequest, SignStep};
use conclave_consensus::{ContextId, Hash32, Height, MemberId, Tx};
use conclave_node::seal::{ContextKey, Purpose};
use conclave_node::sign_guard::SignGuard;
use conclave_node::wal::Wal;
use criterion::{criterion_group, criterion_main, Criterion};
use ed25519_dalek::SigningKey;

fn tx_verify(c: &mut Criterion) {
    let key = SigningKey::from_bytes(&[7; 32]);
    let tx = Tx {
        context_id: ContextId([9; 32]),
        sender: MemberId(key.verifying_key().to_bytes()),
        nonce: 1,
        method: "set".into(),
        args: br#"{"key":"bench","value":"0123456789abcdef"}"#.to_vec(),
    }
    .sign(&key);
    c.bench_function("tx verify", |b| b.iter(|| tx.verify().unwrap()));
}

fn seal_open(c: &mut Criterion) {
    let key = ContextKey::generate(0);
    let ctx = ContextId([9; 32]);
    for (name, len) in [("512 B", 512), ("64 KiB", 64 << 10)] {
        let plain = vec![0x5a; len];
        let sealed = key.seal(&ctx, Purpose::Gossip, &plain);
        c.bench_function(&format!("seal {name}"), |b| {
            b.iter(|| key.seal(&ctx, Purpose::Gossip, &plain))
        });
        c.bench_function(&format!("open {name}"), |b| {
            b.iter(|| key.open(&ctx, Purpose::Gossip, &sealed).unwrap())
        });
    }
}

fn durable_signature(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let (mut wal, _) = Wal::open(dir.path().join("bench.wal")).unwrap();
    let mut guard = SignGuard::open(dir.path().join("bench.sign")).unwrap();
    wal.start_height(Height(1)).unwrap();
    let mut round = 0u32;
    let mut next = |wal: &mut Wal| {
        round += 1;
        // One entry ahead of each signature, as a received vote would be.
        let input = Input::TimeoutElapsed(Timeout::propose(Round::new(round)));
        wal.write(Height(1), &input).unwrap();
        SignRequest {
            position: SignPosition {
                height: Height(1),
                round,
                step: SignStep::Prevote,
            },
            value: None,
            digest: Hash32([round as u8; 32]),
        }
    };
    c.bench_function("signature made durable, flushes overlapped", |b| {
        b.iter(|| {
            let request = next(&mut wal);
            guard
                .check_and_record_alongside(&request, || {
                    wal.sync().map_err(|e| {
                        conclave_consensus::sign_policy::SignRefusal::Persist(e.to_string())
                    })
                })
                .unwrap()
        })
    });
    c.bench_function("signature made durable, one flush after the other", |b| {
        b.iter(|| {
            let request = next(&mut wal);
            wal.sync().unwrap();
            guard.check_and_record(&request).unwrap()
        })
    });
}

criterion_group! {
    name = hot;
    config = Criterion::default().sample_size(30);
    targets = tx_verify, seal_open, durable_signature
}
criterion_main!(hot);
