//! What a byzantine member sends, forged with its key: votes and
//! proposals signed at positions of the test's choosing, raw or sealed
//! bytes, handed to chosen nodes as gossip from it; and what the nodes made
//! of it: the penalties they gave, the evidence they kept, the gossip lost,
//! and the propose wait they settled on.

use conclave_consensus::mal::VoteType;
use conclave_consensus::{Hash32, Height, MemberId};

use super::Sim;
use crate::context::wire::Wire;

/// What a loss rule sees of a gossiped message.
pub(crate) enum Seen {
    Proposal {
        height: u64,
        round: i64,
    },
    Vote {
        typ: VoteType,
        height: u64,
        round: i64,
    },
    /// Txs pushed.
    Txs,
    /// Certificates, checkpoint shares, requests for whole proposals.
    Other,
}

impl Sim {
    /// Node `from`'s key signs a prevote for `value` at `(height, 0)`, and
    /// it is handed to the running nodes among `to` as gossip from it: what
    /// a byzantine member (or a second process with its key) sends.
    pub(crate) fn forge_prevote(&self, from: usize, to: &[usize], height: u64, value: Hash32) {
        let prevote = conclave_consensus::mal::VoteType::Prevote;
        self.forge_vote(from, to, prevote, (height, 0), value);
    }

    /// Node `from`'s key signs a vote of `typ` for `value` at `(height,
    /// round)`, handed to the running nodes among `to` as gossip from it.
    pub(crate) fn forge_vote(
        &self,
        from: usize,
        to: &[usize],
        typ: conclave_consensus::mal::VoteType,
        (height, round): (u64, u32),
        value: Hash32,
    ) {
        use conclave_consensus::codec::{encode_vote, sign, vote_sign_bytes};
        use conclave_consensus::mal::{NilOrVal, Round, SignedMessage};
        let vote = conclave_consensus::Vote {
            typ,
            height: Height(height),
            round: Round::new(round),
            value: NilOrVal::Val(value),
            validator: self.member(from),
            extension: None,
        };
        let sig = sign(
            &self.nodes[from].key,
            &vote_sign_bytes(&self.context, &vote),
        );
        let wire = Wire::Vote(encode_vote(&SignedMessage::new(vote, sig)));
        let frame = wire.encode(u64::from(value.0[0]) << 32 | height);
        self.gossip_raw(from, to, &self.sealed(&frame));
    }

    /// Node `from`'s key signs a proposal of `block` at its height and
    /// `round`, handed to the running nodes among `to` as gossip from it.
    pub(crate) fn forge_proposal(
        &self,
        from: usize,
        to: &[usize],
        round: u32,
        block: conclave_consensus::Block,
    ) {
        let named = (block.height(), block.hash());
        self.forge_proposal_carrying(from, to, round, named, block);
    }

    /// As [`Self::forge_proposal`], but the proposal names `named` (height
    /// and block hash) whatever block it carries.
    pub(crate) fn forge_proposal_carrying(
        &self,
        from: usize,
        to: &[usize],
        round: u32,
        named: (Height, Hash32),
        block: conclave_consensus::Block,
    ) {
        use conclave_consensus::codec::{encode_proposal, proposal_sign_bytes, sign};
        use conclave_consensus::mal::{Round, SignedMessage};
        let proposal = conclave_consensus::Proposal {
            height: named.0,
            round: Round::new(round),
            value: named.1,
            pol_round: Round::Nil,
            proposer: self.member(from),
        };
        let sig = sign(
            &self.nodes[from].key,
            &proposal_sign_bytes(&self.context, &proposal),
        );
        let proposal = encode_proposal(&SignedMessage::new(proposal, sig));
        let seq = u64::from(block.hash().0[0]) << 32 | block.height().0;
        let frame = Wire::Proposal { proposal, block }.encode(seq);
        self.gossip_raw(from, to, &self.sealed(&frame));
    }

    /// The evidence node `i` kept.
    pub(crate) fn evidence(&self, i: usize) -> Vec<conclave_consensus::Evidence> {
        let running = self.nodes[i].running.as_ref().expect("node runs");
        running
            .store
            .evidence(&self.context, 100)
            .expect("read evidence")
    }

    pub(crate) fn fail_requests(&self, n: u32) {
        self.bus.fail_requests(n);
    }

    pub(crate) fn dropped(&self) -> u64 {
        self.bus.dropped()
    }

    /// Re-checks `holds` until it does; panics naming `what` (and the
    /// seed) after the sim's usual wait.
    pub(crate) fn wait_for(&self, what: &str, mut holds: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + super::tests::WAIT;
        while !holds() {
            assert!(
                std::time::Instant::now() < deadline,
                "seed {}: {what}",
                self.seed
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// How long node `i` waits for a round's proposal now, in seconds
    /// (its `conclave_consensus_propose_wait_seconds`).
    pub(crate) fn propose_wait(&self, i: usize) -> f64 {
        let running = self.nodes[i].running.as_ref().expect("node runs");
        running
            .metrics
            .consensus_propose_wait_seconds
            .with_label_values(&[&self.context.to_hex()])
            .get()
    }

    /// `bytes` handed to the running nodes among `to` as gossip from node
    /// `from`, as they are.
    pub(crate) fn gossip_raw(&self, from: usize, to: &[usize], bytes: &[u8]) {
        for &i in to {
            if let Some(r) = &self.nodes[i].running {
                r.handle.gossip(self.member(from), bytes.to_vec());
            }
        }
    }

    /// `frame` sealed under the context key, as a member sends it.
    pub(crate) fn sealed(&self, frame: &[u8]) -> Vec<u8> {
        self.key
            .seal(&self.context, crate::seal::Purpose::Gossip, frame)
    }

    /// From now on, the precommits the nodes in `from` gossip are lost on
    /// their way to the nodes in `to`; everything else arrives.
    pub(crate) fn lose_precommits(&self, from: &[usize], to: &[usize]) {
        let (from, to) = (from.to_vec(), to.to_vec());
        self.lose(move |a, b, seen| {
            from.contains(&a)
                && to.contains(&b)
                && matches!(
                    seen,
                    Seen::Vote {
                        typ: VoteType::Precommit,
                        ..
                    }
                )
        });
    }

    /// From now on, the gossip from node `a` to node `b` for which `lost`
    /// says so is lost; the rest arrives.
    pub(crate) fn lose(&self, lost: impl Fn(usize, usize, &Seen) -> bool + Send + 'static) {
        self.bus.set_loss(Some(self.choose(lost)));
    }

    /// From now on, the gossip from node `a` to node `b` for which `late`
    /// says so arrives `by` late.
    pub(crate) fn delay(
        &self,
        late: impl Fn(usize, usize, &Seen) -> bool + Send + 'static,
        by: std::time::Duration,
    ) {
        self.bus.set_delay(Some((self.choose(late), by)));
    }

    /// The bus's choice of messages, made by `chosen` on what each is.
    fn choose(
        &self,
        chosen: impl Fn(usize, usize, &Seen) -> bool + Send + 'static,
    ) -> super::bus::Loss {
        let members: Vec<MemberId> = (0..self.nodes.len()).map(|i| self.member(i)).collect();
        let (key, context) = (self.key.clone(), self.context);
        let seen = move |data: &[u8]| {
            let Ok(plain) = key.open(&context, crate::seal::Purpose::Gossip, data) else {
                return Seen::Other;
            };
            match Wire::decode(&plain) {
                Ok(Wire::Vote(bytes)) => match conclave_consensus::codec::decode_vote(&bytes) {
                    Ok(v) => Seen::Vote {
                        typ: v.message.typ,
                        height: v.message.height.0,
                        round: v.message.round.as_i64(),
                    },
                    Err(_) => Seen::Other,
                },
                Ok(Wire::Proposal { proposal, .. } | Wire::CompactProposal { proposal, .. }) => {
                    match conclave_consensus::codec::decode_proposal(&proposal) {
                        Ok(p) => Seen::Proposal {
                            height: p.message.height.0,
                            round: p.message.round.as_i64(),
                        },
                        Err(_) => Seen::Other,
                    }
                }
                Ok(Wire::Tx(_) | Wire::Txs(_)) => Seen::Txs,
                _ => Seen::Other,
            }
        };
        Box::new(move |a, b, data| {
            let index = |m: MemberId| members.iter().position(|x| *x == m);
            match (index(a), index(b)) {
                (Some(a), Some(b)) => chosen(a, b, &seen(data)),
                _ => false,
            }
        })
    }

    /// Gossip is lost again only by the drop rate.
    pub(crate) fn stop_losing(&self) {
        self.bus.set_loss(None);
    }

    /// Every penalty a node gave another member: (by, to).
    pub(crate) fn penalised(&self) -> Vec<(MemberId, MemberId)> {
        self.bus.penalised()
    }
}
