//! The host side of each simulated node: it feeds events to its engine and
//! performs the engine's outputs, as the real node's consensus actor does.

use std::collections::VecDeque;

use conclave_consensus::codec;
use conclave_consensus::mal::{
    Input, LocallyProposedValue, ProposedValue, SignedConsensusMsg, Validity, ValueOrigin,
};
use conclave_consensus::{ConclaveContext, Engine, Height, MemberId, Output, Result};
use malachitebft_core_consensus::LivenessMsg;
use malachitebft_core_types::VoteType;

use super::event::Event;
use super::link::Msg;
use super::{value_for, Behaviour, Decision, Sim};

type In = Input<ConclaveContext>;

impl Sim {
    pub(super) fn on_event(&mut self, event: Event) {
        match event {
            Event::Deliver {
                to,
                from,
                sent,
                msg,
            } => {
                if self.nodes[to].is_up() {
                    self.stats.delivered += 1;
                    self.note_delivery(from, to, sent);
                    self.on_message(to, from, msg);
                }
            }
            Event::Timer { node, id, timeout } => {
                if self.nodes[node].timers.get(&timeout) == Some(&id) {
                    self.nodes[node].timers.remove(&timeout);
                    self.stats.timeouts_fired += 1;
                    self.feed(node, In::TimeoutElapsed(timeout));
                }
            }
            Event::StartHeight { node, life, height } => {
                if self.nodes[node].life == life
                    && self.position(node).map(|p| p.0 .0) == Some(height.0 - 1)
                {
                    self.start_height(node, height, false);
                    if std::mem::take(&mut self.nodes[node].synced_last) {
                        let peer = self.nodes[node].sync_peer;
                        self.send(node, peer, Msg::SyncRequest(height.0));
                    }
                }
            }
            Event::Propose {
                node,
                life,
                height,
                round,
            } => {
                if self.nodes[node].life == life && self.position(node) == Some((height, round)) {
                    let value = value_for(height, round.as_i64(), self.nodes[node].id);
                    if self.nodes[node].behaviour == Behaviour::InvalidBlock {
                        self.invalid_values.insert(value);
                    }
                    self.feed(
                        node,
                        In::Propose(LocallyProposedValue::new(height, round, value)),
                    );
                }
            }
            Event::SyncTick { node } => {
                let at = self.now + self.cfg.sync_interval_ms;
                self.queue.push(at, Event::SyncTick { node });
                self.maybe_request_sync(node);
            }
        }
    }

    fn on_message(&mut self, to: usize, from: usize, msg: Msg) {
        match msg {
            Msg::Vote(bytes) => match codec::decode_vote(&bytes) {
                Ok(vote) => self.feed(to, In::Vote(vote)),
                Err(e) => panic!("seed {}: an honest vote failed to decode: {e}", self.seed),
            },
            Msg::Junk(bytes) => match codec::decode_vote(&bytes) {
                Ok(vote) => {
                    self.stats.junk_accepted += 1;
                    self.feed(to, In::Vote(vote));
                }
                Err(_) => self.stats.junk_rejected += 1,
            },
            Msg::Proposal(bytes) => {
                let Ok(p) = codec::decode_proposal(&bytes) else {
                    panic!("seed {}: a proposal failed to decode", self.seed);
                };
                // The block arrives with its proposal; the receiver
                // re-executes it to judge it.
                let validity = if self.invalid_values.contains(&p.value) {
                    Validity::Invalid
                } else {
                    Validity::Valid
                };
                let value = ProposedValue {
                    height: p.height,
                    round: p.round,
                    valid_round: p.pol_round,
                    proposer: p.proposer,
                    value: p.value,
                    validity,
                };
                self.feed(to, In::Proposal(p));
                self.feed(to, In::ProposedValue(value, ValueOrigin::Consensus));
            }
            Msg::Polka(c) => self.feed(to, In::PolkaCertificate(c)),
            Msg::RoundCert(c) => self.feed(to, In::RoundCertificate(c)),
            Msg::SyncRequest(h) => self.serve_sync(to, from, h),
            Msg::SyncResponse(resp) => self.on_sync_response(to, *resp),
        }
    }

    pub(super) fn start_height(&mut self, i: usize, h: Height, restart: bool) {
        self.nodes[i].height_since = self.now;
        let vs = self.validators.clone();
        self.drive(i, |e| e.start_height(h, vs, restart));
    }

    /// Feeds one input to node `i` and performs what follows.
    pub(super) fn feed(&mut self, i: usize, input: In) {
        self.drive(i, |e| e.handle(input));
    }

    fn drive(&mut self, i: usize, first: impl FnOnce(&mut Engine) -> Result<Vec<Output>>) {
        let Some(engine) = self.nodes[i].engine.as_mut() else {
            return;
        };
        let mut work = VecDeque::new();
        let mut result = first(engine);
        loop {
            match result {
                Ok(outputs) => {
                    for o in outputs {
                        if let Some(next) = self.perform(i, o) {
                            work.push_back(next);
                        }
                    }
                }
                Err(e) => self
                    .stats
                    .engine_errors
                    .push(format!("node {i} t={}ms: {e}", self.now)),
            }
            let Some(input) = work.pop_front() else {
                return;
            };
            let Some(engine) = self.nodes[i].engine.as_mut() else {
                return;
            };
            result = engine.handle(input);
        }
    }

    /// Performs one output; returns an input to feed back at once, if any.
    fn perform(&mut self, i: usize, output: Output) -> Option<In> {
        let behaviour = self.nodes[i].behaviour;
        match output {
            Output::Publish(SignedConsensusMsg::Vote(v))
            | Output::PublishLiveness(LivenessMsg::Vote(v)) => {
                if behaviour == Behaviour::EquivocateWithoutVotes {
                    return None;
                }
                if behaviour == Behaviour::GarbagePrecommits && v.message.typ == VoteType::Precommit
                {
                    self.garbage_precommit(i, &v.message);
                } else {
                    let bytes = codec::encode_vote(&v);
                    self.broadcast(i, || Msg::Vote(bytes.clone()));
                }
            }
            Output::Publish(SignedConsensusMsg::Proposal(p)) => {
                if matches!(
                    behaviour,
                    Behaviour::Equivocate | Behaviour::EquivocateWithoutVotes
                ) {
                    self.equivocate(i, p);
                } else {
                    let bytes = codec::encode_proposal(&p);
                    self.broadcast(i, || Msg::Proposal(bytes.clone()));
                }
            }
            Output::PublishLiveness(LivenessMsg::PolkaCertificate(c)) => {
                self.broadcast(i, || Msg::Polka(c.clone()));
            }
            Output::PublishLiveness(LivenessMsg::SkipRoundCertificate(c)) => {
                self.broadcast(i, || Msg::RoundCert(c.clone()));
            }
            Output::ScheduleTimeout(timeout, d) => {
                self.timer_ids += 1;
                let id = self.timer_ids;
                self.nodes[i].timers.insert(timeout, id);
                let at = self.now + d.as_millis() as u64;
                self.queue.push(
                    at,
                    Event::Timer {
                        node: i,
                        id,
                        timeout,
                    },
                );
            }
            Output::CancelTimeout(t) => {
                self.nodes[i].timers.remove(&t);
            }
            Output::CancelAllTimeouts => self.nodes[i].timers.clear(),
            Output::StartRound {
                height,
                round,
                proposer,
                ..
            } => {
                self.nodes[i].rounds.push((height, round, proposer));
            }
            Output::GetValue { height, round, .. } => {
                if behaviour != Behaviour::Silent {
                    let life = self.nodes[i].life;
                    let at = self.now + 1;
                    self.queue.push(
                        at,
                        Event::Propose {
                            node: i,
                            life,
                            height,
                            round,
                        },
                    );
                }
            }
            // The `Publish` of the re-proposal that follows carries the value.
            Output::RestreamProposal { .. } | Output::WalAppend(..) => {}
            Output::Decide(cert) => {
                let node = &mut self.nodes[i];
                if cert.height.0 != node.tip() + 1 {
                    let msg = format!("node {i} decided {} after {}", cert.height, node.tip());
                    self.stats.double_decides.push(msg);
                }
                node.decided.push(Decision {
                    height: cert.height,
                    value: cert.value_id,
                    round: cert.round,
                    at: self.now,
                });
                node.certs.insert(cert.height.0, cert);
            }
            Output::Finalize {
                certificate,
                equivocators,
                evidence,
            } => {
                // Every report comes with proof anyone holding the member
                // set can check.
                let members: Vec<MemberId> = self
                    .validators
                    .validators()
                    .iter()
                    .map(|v| v.address)
                    .collect();
                let mut proven = std::collections::BTreeSet::new();
                for e in &evidence {
                    e.verify(&super::CTX_ID, &members)
                        .unwrap_or_else(|err| panic!("evidence against {}: {err}", e.offender));
                    proven.insert(e.offender);
                }
                assert_eq!(
                    proven,
                    equivocators.iter().copied().collect(),
                    "every equivocator reported comes with its evidence"
                );
                let node = &mut self.nodes[i];
                node.equivocators.extend(equivocators);
                let (life, height) = (node.life, Height(certificate.height.0 + 1));
                let at = self.now + self.cfg.next_height_ms;
                self.queue.push(
                    at,
                    Event::StartHeight {
                        node: i,
                        life,
                        height,
                    },
                );
            }
            Output::SyncValue(resp, proposer) => return self.on_sync_value(i, resp, proposer),
            Output::SyncRejected(..) => self.stats.sync_rejected += 1,
        }
        None
    }
}
