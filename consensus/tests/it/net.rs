//! A tiny in-memory network: every published message is delivered to every
//! engine (including the sender, which malachite ignores as a duplicate),
//! and every GetValue is answered at once with a block hash derived from
//! `(height, round, proposer)`.

use std::collections::VecDeque;

use conclave_consensus::mal::{
    Input, LocallyProposedValue, ProposedValue, SignedConsensusMsg, Validity, ValueOrigin,
};
use conclave_consensus::{ContextId, Engine, EngineConfig, Hash32, Height, MemberId, Output, ValidatorSet};
use ed25519_dalek::SigningKey;
use rand::SeedableRng;

pub struct Net {
    pub engines: Vec<Engine>,
    pub decided: Vec<Vec<(Height, Hash32)>>,
    queue: VecDeque<(usize, Input<conclave_consensus::ConclaveContext>)>,
    /// Engines that neither send nor receive.
    pub down: Vec<bool>,
}

pub fn keys(n: usize) -> Vec<SigningKey> {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(42);
    (0..n).map(|_| SigningKey::generate(&mut rng)).collect()
}

pub fn value_for(height: Height, round: i64, proposer: MemberId) -> Hash32 {
    conclave_consensus::types::sha256(&[&height.0.to_be_bytes(), &round.to_be_bytes(), proposer.as_bytes()])
}

impl Net {
    pub fn new(n: usize) -> Self {
        let keys = keys(n);
        let members: Vec<MemberId> = keys
            .iter()
            .map(|k| MemberId(k.verifying_key().to_bytes()))
            .collect();
        let vs = ValidatorSet::from_members(&members).unwrap();
        let ctx = ContextId([9; 32]);
        let engines = keys
            .into_iter()
            .map(|k| Engine::new(EngineConfig::new(ctx), k, Height(1), vs.clone()))
            .collect();
        Self {
            engines,
            decided: vec![Vec::new(); n],
            queue: VecDeque::new(),
            down: vec![false; n],
        }
    }

    pub fn start(&mut self, height: Height) {
        for i in 0..self.engines.len() {
            if self.down[i] {
                continue;
            }
            let vs = self.engines[i].validators().clone();
            let out = self.engines[i].start_height(height, vs, false).unwrap();
            self.perform(i, out);
        }
    }

    fn perform(&mut self, from: usize, outputs: Vec<Output>) {
        for o in outputs {
            match o {
                Output::Publish(msg) => {
                    for to in 0..self.engines.len() {
                        if to == from || self.down[to] || self.down[from] {
                            continue;
                        }
                        let input = match &msg {
                            SignedConsensusMsg::Vote(v) => Input::Vote(v.clone()),
                            SignedConsensusMsg::Proposal(p) => {
                                // The block "arrives" with the proposal and is valid.
                                self.queue.push_back((
                                    to,
                                    Input::ProposedValue(
                                        ProposedValue {
                                            height: p.height,
                                            round: p.round,
                                            valid_round: p.pol_round,
                                            proposer: p.proposer,
                                            value: p.value,
                                            validity: Validity::Valid,
                                        },
                                        ValueOrigin::Consensus,
                                    ),
                                ));
                                Input::Proposal(p.clone())
                            }
                        };
                        self.queue.push_back((to, input));
                    }
                }
                Output::GetValue { height, round, .. } => {
                    let me = self.engines[from].address();
                    let value = value_for(height, round.as_i64(), me);
                    self.queue.push_back((
                        from,
                        Input::Propose(LocallyProposedValue::new(height, round, value)),
                    ));
                }
                Output::Decide(cert) => self.decided[from].push((cert.height, cert.value_id)),
                Output::Finalize { certificate, .. } => {
                    let next = Height(certificate.height.0 + 1);
                    let vs = self.engines[from].validators().clone();
                    let out = self.engines[from].start_height(next, vs, false).unwrap();
                    self.perform(from, out);
                }
                _ => {}
            }
        }
    }

    /// Delivers queued messages until the queue drains or `max` steps pass.
    pub fn run(&mut self, max: usize) {
        let mut steps = 0;
        while let Some((to, input)) = self.queue.pop_front() {
            steps += 1;
            if steps > max {
                break;
            }
            if self.down[to] {
                continue;
            }
            let out = self.engines[to].handle(input).unwrap();
            self.perform(to, out);
        }
    }

    pub fn run_until_height(&mut self, target: u64, max: usize) {
        let mut steps = 0;
        while self.decided.iter().enumerate().any(|(i, d)| !self.down[i] && d.len() < target as usize) {
            let Some((to, input)) = self.queue.pop_front() else { break };
            steps += 1;
            assert!(steps < max, "no progress after {max} steps");
            if self.down[to] {
                continue;
            }
            let out = self.engines[to].handle(input).unwrap();
            self.perform(to, out);
        }
    }
}
