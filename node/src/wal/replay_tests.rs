//! A one-member engine that crashes after each output it asked the node to
//! perform, restarts from its WAL and sign guard, and must decide the same
//! value without ever signing a conflicting message.

use std::collections::{BTreeMap, VecDeque};

use conclave_consensus::mal::{
    Input, LocallyProposedValue, Round, SignedConsensusMsg, Timeout, TimeoutKind,
};
use conclave_consensus::{
    ContextId, Engine, EngineConfig, Error as EngineError, Hash32, MemberId, Output, ValidatorSet,
};
use ed25519_dalek::SigningKey;

use super::*;
use crate::sign_guard::SignGuard;

const H: Height = Height(1);

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn validators() -> ValidatorSet {
    ValidatorSet::from_members(&[MemberId(key().verifying_key().to_bytes())]).unwrap()
}

/// The block each life of the node would build for a round: different per
/// life, so a re-proposal after a restart would conflict.
fn block(life: u8, round: Round) -> Hash32 {
    Hash32([life * 16 + round.as_i64() as u8; 32])
}

/// (kind, height, round) -> value of everything this member published.
type Signed = BTreeMap<(u8, u64, i64), Option<Hash32>>;

struct Life {
    engine: Engine,
    log: SharedLog,
    life: u8,
    timeouts: VecDeque<Timeout>,
    published: Vec<SignedConsensusMsg<conclave_consensus::ConclaveContext>>,
    decided: Option<Hash32>,
    refusals: usize,
    performed: usize,
}

impl Life {
    fn start(dir: &Path, life: u8, wal_file: &str) -> (Self, Vec<Output>) {
        let (mut wal, _) = Wal::open(dir.join(wal_file)).unwrap();
        let guard = SignGuard::open(dir.join("sign_state")).unwrap();
        wal.start_height(H).unwrap();
        let entries = wal.entries_for(H);
        let log = SharedLog::new(wal, guard);
        let mut engine = Engine::new(
            EngineConfig::new(ContextId([9; 32])),
            key(),
            H,
            validators(),
        )
        .with_sign_policy(log.sign_policy());
        let restart = life > 1;
        let mut out = engine.start_height(H, validators(), restart).unwrap();
        if restart {
            out.extend(engine.replay_wal(&entries).unwrap());
        }
        let me = Self {
            engine,
            log,
            life,
            timeouts: VecDeque::new(),
            published: Vec::new(),
            decided: None,
            refusals: 0,
            performed: 0,
        };
        (me, out)
    }

    fn feed(
        &mut self,
        input: Input<conclave_consensus::ConclaveContext>,
        work: &mut VecDeque<Output>,
    ) {
        match self.engine.handle(input) {
            Ok(out) => work.extend(out),
            Err(EngineError::SignRefused(_)) => self.refusals += 1,
            Err(e) => panic!("engine error: {e}"),
        }
    }

    /// Performs outputs as the context actor would, crashing (returning)
    /// after `crash_after` of them; fires the earliest timer when idle.
    fn run(&mut self, first: Vec<Output>, crash_after: usize) {
        let mut work: VecDeque<Output> = first.into();
        for _ in 0..500 {
            let Some(output) = work.pop_front() else {
                match self.timeouts.pop_front() {
                    Some(t) if self.decided.is_none() => {
                        self.feed(Input::TimeoutElapsed(t), &mut work);
                        continue;
                    }
                    _ => return,
                }
            };
            if self.performed == crash_after {
                return;
            }
            self.performed += 1;
            if std::env::var("WAL_TRACE").is_ok() {
                eprintln!("life {} performs {output:?}", self.life);
            }
            match output {
                Output::WalAppend(h, input) => self.log.lock().wal.append(h, &input).unwrap(),
                Output::Publish(msg) => self.published.push(msg),
                Output::GetValue { height, round, .. } => {
                    let value = self.own_logged_value(height, round);
                    let value = value.unwrap_or(block(self.life, round));
                    let input = Input::Propose(LocallyProposedValue::new(height, round, value));
                    self.feed(input, &mut work);
                }
                // Rebroadcasts re-arm forever and change nothing here.
                Output::ScheduleTimeout(t, _) if t.kind != TimeoutKind::Rebroadcast => {
                    self.timeouts.push_back(t)
                }
                Output::CancelTimeout(t) => self.timeouts.retain(|x| *x != t),
                Output::CancelAllTimeouts => self.timeouts.clear(),
                Output::Decide(cert) => self.decided = Some(cert.value_id),
                _ => {}
            }
        }
        panic!("no quiescence");
    }

    /// A value this node already proposed at `(height, round)`, per its WAL:
    /// the node must re-propose it rather than build a new block.
    fn own_logged_value(&self, height: Height, round: Round) -> Option<Hash32> {
        let me = self.engine.address();
        self.log.lock().wal.logged_proposal(height, round, &me)
    }

    fn signed(&self, into: &mut Signed) {
        for msg in &self.published {
            let (key, value) = match msg {
                SignedConsensusMsg::Vote(v) => (
                    (
                        v.message.typ as u8 + 1,
                        v.message.height.0,
                        v.message.round.as_i64(),
                    ),
                    match v.message.value {
                        conclave_consensus::mal::NilOrVal::Nil => None,
                        conclave_consensus::mal::NilOrVal::Val(h) => Some(h),
                    },
                ),
                SignedConsensusMsg::Proposal(p) => (
                    (0, p.message.height.0, p.message.round.as_i64()),
                    Some(p.message.value),
                ),
            };
            if let Some(old) = into.insert(key, value) {
                assert_eq!(old, value, "conflicting messages signed at {key:?}");
            }
        }
    }
}

#[test]
fn restart_after_each_output_decides_the_same_value() {
    // A run without a crash, to count the outputs of the height.
    let dir = tempfile::tempdir().unwrap();
    let (mut full, out) = Life::start(dir.path(), 1, "wal");
    full.run(out, usize::MAX);
    let decided = full.decided.expect("one member decides alone");
    assert_eq!(decided, block(1, Round::new(0)));
    let total = full.performed;
    assert!(total > 5, "a height has several outputs, got {total}");

    for crash_after in 0..total {
        let dir = tempfile::tempdir().unwrap();
        let (mut first, out) = Life::start(dir.path(), 1, "wal");
        first.run(out, crash_after);
        let mut signed = Signed::new();
        first.signed(&mut signed);
        drop(first);
        // Once the first life signed anything, the height is bound to its
        // block; before that, the second life may propose its own.
        let guard = SignGuard::open(dir.path().join("sign_state")).unwrap();
        let expected = match guard.last() {
            Some(_) => decided,
            None => block(2, Round::new(0)),
        };

        let (mut second, out) = Life::start(dir.path(), 2, "wal");
        second.run(out, usize::MAX);
        second.signed(&mut signed);
        assert_eq!(second.refusals, 0, "crash after {crash_after}");
        assert_eq!(
            second.decided,
            Some(expected),
            "crash after {crash_after}: decided another value"
        );
        let guard = SignGuard::open(dir.path().join("sign_state")).unwrap();
        assert_eq!(guard.last().unwrap().value, Some(expected));
    }
}

#[test]
fn with_its_wal_lost_the_guard_still_refuses_to_sign_a_conflict() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, out) = Life::start(dir.path(), 1, "wal");
    first.run(out, usize::MAX);
    // Not even the Decide was durable: the store would restart at this
    // height. The WAL is gone too (say, a repair dropped all of it).
    let mut signed = Signed::new();
    first.signed(&mut signed);
    assert_eq!(first.decided, Some(block(1, Round::new(0))));
    drop(first);

    let (mut second, out) = Life::start(dir.path(), 2, "wal-empty");
    second.run(out, usize::MAX);
    second.signed(&mut signed);
    assert!(second.refusals > 0, "the guard was consulted and refused");
    assert!(
        second.decided.is_none(),
        "round 0 was signed for another block; nothing may be decided here"
    );
    assert!(
        second.published.is_empty(),
        "nothing was published: {:?}",
        second.published
    );
}
