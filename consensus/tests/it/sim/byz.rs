//! Byzantine behaviours, performed by the host of a faulty node in place of
//! the message its (honest) engine asked it to send.

use conclave_consensus::codec::{self, proposal_sign_bytes, vote_sign_bytes};
use conclave_consensus::mal::{NilOrVal, SignedMessage, VoteType};
use conclave_consensus::{ConclaveContext, Hash32, Height, Vote};
use malachitebft_core_types::SignedProposal;
use rand::seq::SliceRandom;
use rand::Rng;

use super::link::Msg;
use super::{Sim, CTX_ID};

impl Sim {
    /// Sends the real proposal to a random half of the others and a
    /// conflicting one, properly signed, to the rest and to one member of
    /// the first half (the witness, who sees both).
    pub(super) fn equivocate(&mut self, i: usize, p: SignedProposal<ConclaveContext>) {
        let mut others: Vec<usize> = (0..self.nodes.len()).filter(|&j| j != i).collect();
        others.shuffle(&mut self.rng);
        let split = self.rng.gen_range(1..others.len().max(2));
        let mut twin = p.message.clone();
        twin.value = conclave_consensus::types::sha256(&[b"twin", &p.message.value.0]);
        let sig = codec::sign(&self.nodes[i].key, &proposal_sign_bytes(&CTX_ID, &twin));
        let a = codec::encode_proposal(&p);
        let b = codec::encode_proposal(&SignedMessage::new(twin, sig));
        for (k, &to) in others.iter().enumerate() {
            let bytes = if k < split { a.clone() } else { b.clone() };
            self.send(i, to, Msg::Proposal(bytes));
        }
        self.send(i, others[0], Msg::Proposal(b));
    }

    /// Sends, instead of `real`, four kinds of garbage to every other member:
    /// a signed precommit for a random value, a signed precommit at a wrong
    /// height, a precommit with a forged signature in the name of a random
    /// member, and bytes that are not a vote at all.
    pub(super) fn garbage_precommit(&mut self, i: usize, real: &Vote) {
        let key = self.nodes[i].key.clone();
        let random_value = |rng: &mut rand_chacha::ChaCha8Rng| NilOrVal::Val(Hash32(rng.gen()));
        let wrong_value = Vote {
            value: random_value(&mut self.rng),
            ..real.clone()
        };
        let off: u64 = self.rng.gen_range(1..1_000);
        let wrong_height = Vote {
            height: Height(if self.rng.gen_bool(0.5) {
                real.height.0 + off
            } else {
                real.height.0.saturating_sub(off)
            }),
            value: random_value(&mut self.rng),
            ..real.clone()
        };
        let victim = self.rng.gen_range(0..self.nodes.len());
        let forged = Vote {
            typ: VoteType::Precommit,
            value: random_value(&mut self.rng),
            validator: self.nodes[victim].id,
            ..real.clone()
        };
        let mut forged_sig = [0u8; 64];
        self.rng.fill(&mut forged_sig[..]);
        let signed = |v: Vote| {
            let sig = codec::sign(&key, &vote_sign_bytes(&CTX_ID, &v));
            codec::encode_vote(&SignedMessage::new(v, sig))
        };
        let msgs = [
            signed(wrong_value),
            signed(wrong_height),
            codec::encode_vote(&SignedMessage::new(
                forged,
                conclave_consensus::context::Sig(forged_sig),
            )),
        ];
        for to in (0..self.nodes.len()).filter(|&j| j != i) {
            for m in &msgs {
                self.send(i, to, Msg::Vote(m.clone()));
            }
            let len = if self.rng.gen_bool(0.1) {
                self.rng.gen_range(
                    codec::MAX_CONSENSUS_MSG_BYTES + 1..3 * codec::MAX_CONSENSUS_MSG_BYTES,
                )
            } else {
                self.rng.gen_range(0..300)
            };
            let mut junk = vec![0u8; len];
            self.rng.fill(&mut junk[..]);
            self.stats.junk_sent += 1;
            self.send(i, to, Msg::Junk(junk));
        }
    }
}
