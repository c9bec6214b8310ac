//! What each member signed at recent heights, kept after those heights are
//! decided. Malachite compares votes and proposals only within the height
//! in progress; a member that signs a second prevote or proposal for a
//! height already decided would otherwise go unseen. The witness keeps the
//! first message each member signed at each position (kind, height,
//! round) for a window of heights, and turns a second, different one into
//! [`Evidence`].
//!
//! A forgery held first does not hide what the member really signed: when
//! two messages differ, both signatures are checked, and one that does not
//! check gives way. The record is bounded: a
//! window of heights behind the newest decided one, and a number of
//! entries (a member signing many rounds cannot grow it without limit;
//! the oldest heights go first).

use std::collections::BTreeMap;

use malachitebft_core_types::{NilOrVal, SignedProposal, SignedVote, VoteType};

use crate::codec::{proposal_sign_bytes, verify, vote_sign_bytes};
use crate::context::{ConclaveContext, Validator};
use crate::evidence::Evidence;
use crate::types::{ContextId, Hash32, Height, MemberId};

/// Heights kept behind the newest decided one.
pub const DEFAULT_WINDOW: u64 = 64;
/// Entries kept at most, all members and heights together.
pub const DEFAULT_MAX_ENTRIES: usize = 8192;

/// Where a member signed: height, round, kind (0 prevote, 1 precommit,
/// 2 proposal), signer. Ordered by height first, so the oldest go first.
type Position = (Height, u32, u8, MemberId);

#[derive(Clone)]
enum Signed {
    Vote(SignedVote<ConclaveContext>),
    Proposal(SignedProposal<ConclaveContext>),
}

impl Signed {
    /// The same message with the same signature.
    fn same_as(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Vote(a), Self::Vote(b)) => a.message == b.message && a.signature == b.signature,
            (Self::Proposal(a), Self::Proposal(b)) => {
                a.message == b.message && a.signature == b.signature
            }
            _ => false,
        }
    }

    fn value(&self) -> Option<Hash32> {
        match self {
            Self::Vote(v) => match v.message.value {
                NilOrVal::Val(h) => Some(h),
                NilOrVal::Nil => None,
            },
            Self::Proposal(p) => Some(p.message.value),
        }
    }
}

/// The first signed message of each member at each recent position.
pub struct Witness {
    context: ContextId,
    window: u64,
    max_entries: usize,
    /// Heights below this are out of the window.
    floor: Height,
    seen: BTreeMap<Position, Signed>,
}

impl Witness {
    pub fn new(context: ContextId) -> Self {
        Self::with_bounds(context, DEFAULT_WINDOW, DEFAULT_MAX_ENTRIES)
    }

    pub fn with_bounds(context: ContextId, window: u64, max_entries: usize) -> Self {
        Self {
            context,
            window,
            max_entries: max_entries.max(1),
            floor: Height(0),
            seen: BTreeMap::new(),
        }
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Records a vote; evidence if its signer signed another value at the
    /// same position before.
    pub fn vote(&mut self, vote: &SignedVote<ConclaveContext>) -> Option<Evidence> {
        let m = &vote.message;
        let kind = match m.typ {
            VoteType::Prevote => 0,
            VoteType::Precommit => 1,
        };
        let at = (m.height, m.round.as_u32().unwrap_or(0), kind, m.validator);
        // The same vote again (a member rebroadcasting while a height is
        // stuck): nothing to copy or check.
        if let Some(Signed::Vote(held)) = self.seen.get(&at) {
            if held.message == vote.message && held.signature == vote.signature {
                return None;
            }
        }
        match self.record(at, Signed::Vote(vote.clone()))? {
            Signed::Vote(first) => Some(Evidence::votes(&first, vote)),
            Signed::Proposal(_) => None,
        }
    }

    /// Records a proposal; evidence if its proposer proposed another block
    /// at the same height and round before.
    pub fn proposal(&mut self, proposal: &SignedProposal<ConclaveContext>) -> Option<Evidence> {
        let m = &proposal.message;
        let at = (m.height, m.round.as_u32().unwrap_or(0), 2, m.proposer);
        match self.record(at, Signed::Proposal(proposal.clone()))? {
            Signed::Proposal(first) => Some(Evidence::proposals(&first, proposal)),
            Signed::Vote(_) => None,
        }
    }

    /// Keeps `signed` if its position is new; returns the message held
    /// there if the two conflict: both signed by the member, for different
    /// values.
    ///
    /// Signatures are checked only when the two differ (ed25519 signs
    /// deterministically, so the same message with the same signature is
    /// the same vote): the common path costs no verification, and a forgery
    /// held first is replaced by the message the member really signed.
    fn record(&mut self, at: Position, signed: Signed) -> Option<Signed> {
        // Too old to keep or to compare: out of the window, or older than
        // everything held when the record is full.
        let lowest = self.seen.keys().next().map(|p| p.0);
        let full = self.seen.len() >= self.max_entries;
        if at.0 < self.floor || (full && lowest.is_some_and(|l| at.0 < l)) {
            return None;
        }
        let Some(first) = self.seen.get(&at) else {
            while self.seen.len() >= self.max_entries {
                self.seen.pop_first();
            }
            self.seen.insert(at, signed);
            return None;
        };
        if first.same_as(&signed) || !self.signed_by(&signed, at.3) {
            return None;
        }
        if !self.signed_by(first, at.3) {
            self.seen.insert(at, signed);
            return None;
        }
        let conflict = first.value() != signed.value();
        conflict.then(|| self.seen.get(&at).cloned()).flatten()
    }

    /// Whether `signed` carries `member`'s signature.
    fn signed_by(&self, signed: &Signed, member: MemberId) -> bool {
        let Ok(key) = Validator::from_member(member).map(|v| v.public_key) else {
            return false;
        };
        match signed {
            Signed::Vote(v) => verify(
                &key,
                &vote_sign_bytes(&self.context, &v.message),
                &v.signature,
            ),
            Signed::Proposal(p) => verify(
                &key,
                &proposal_sign_bytes(&self.context, &p.message),
                &p.signature,
            ),
        }
    }

    /// `height` is decided: heights more than the window behind it are
    /// forgotten.
    pub fn decided(&mut self, height: Height) {
        let keep_from = Height(height.0.saturating_sub(self.window));
        self.floor = self.floor.max(keep_from);
        while self
            .seen
            .first_key_value()
            .is_some_and(|(at, _)| at.0 < keep_from)
        {
            self.seen.pop_first();
        }
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use malachitebft_core_types::{Round, SignedMessage};

    use super::*;
    use crate::codec::sign;
    use crate::context::{Proposal, Vote};
    use crate::evidence::EvidenceKind;

    const CTX: ContextId = ContextId([3; 32]);

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    fn id(b: u8) -> MemberId {
        MemberId(key(b).verifying_key().to_bytes())
    }

    fn vote(
        who: u8,
        typ: VoteType,
        height: u64,
        round: u32,
        value: u8,
    ) -> SignedVote<ConclaveContext> {
        let vote = Vote {
            typ,
            height: Height(height),
            round: Round::new(round),
            value: NilOrVal::Val(Hash32([value; 32])),
            validator: id(who),
            extension: None,
        };
        let sig = sign(&key(who), &vote_sign_bytes(&CTX, &vote));
        SignedMessage::new(vote, sig)
    }

    fn proposal(who: u8, height: u64, round: u32, value: u8) -> SignedProposal<ConclaveContext> {
        let p = Proposal {
            height: Height(height),
            round: Round::new(round),
            value: Hash32([value; 32]),
            pol_round: Round::Nil,
            proposer: id(who),
        };
        let sig = sign(&key(who), &proposal_sign_bytes(&CTX, &p));
        SignedMessage::new(p, sig)
    }

    #[test]
    fn a_second_value_at_one_position_is_evidence_that_verifies() {
        let mut w = Witness::new(CTX);
        let members = [id(1), id(2)];
        for typ in [VoteType::Prevote, VoteType::Precommit] {
            assert!(w.vote(&vote(1, typ, 5, 0, 1)).is_none());
            // The same vote again, and one for another round, are no conflict.
            assert!(w.vote(&vote(1, typ, 5, 0, 1)).is_none());
            assert!(w.vote(&vote(1, typ, 5, 1, 2)).is_none());
            let e = w.vote(&vote(1, typ, 5, 0, 2)).expect("a double vote");
            assert_eq!((e.offender, e.height, e.round), (id(1), Height(5), 0));
            e.verify(&CTX, &members).expect("verifies");
        }
        assert!(w.proposal(&proposal(2, 5, 0, 1)).is_none());
        let e = w
            .proposal(&proposal(2, 5, 0, 7))
            .expect("a double proposal");
        assert_eq!(e.kind, EvidenceKind::Proposal);
        e.verify(&CTX, &members).expect("verifies");
        // A prevote and a precommit for different values are no conflict.
        assert!(w.vote(&vote(2, VoteType::Prevote, 6, 0, 1)).is_none());
        assert!(w.vote(&vote(2, VoteType::Precommit, 6, 0, 2)).is_none());
    }

    #[test]
    fn a_forgery_held_first_gives_way_to_what_the_member_signed() {
        let members = [id(1), id(2)];
        let forge = |mut v: SignedVote<ConclaveContext>| {
            v.signature = vote(2, VoteType::Prevote, 5, 0, 1).signature;
            v
        };
        for forged_value in [1, 9] {
            let mut w = Witness::new(CTX);
            // Another member's forgery of member 1's vote arrives first.
            assert!(w
                .vote(&forge(vote(1, VoteType::Prevote, 5, 0, forged_value)))
                .is_none());
            // Member 1's real vote takes its place; no evidence.
            assert!(w.vote(&vote(1, VoteType::Prevote, 5, 0, 1)).is_none());
            // A forged conflict is no evidence either.
            assert!(w
                .vote(&forge(vote(1, VoteType::Prevote, 5, 0, 3)))
                .is_none());
            // Member 1's own second vote is.
            let e = w
                .vote(&vote(1, VoteType::Prevote, 5, 0, 2))
                .expect("a double vote");
            e.verify(&CTX, &members).expect("verifies");
        }
        let mut w = Witness::new(CTX);
        let mut forged = proposal(1, 5, 0, 9);
        forged.signature = proposal(2, 5, 0, 9).signature;
        assert!(w.proposal(&forged).is_none());
        assert!(w.proposal(&proposal(1, 5, 0, 1)).is_none());
        let e = w
            .proposal(&proposal(1, 5, 0, 2))
            .expect("a double proposal");
        e.verify(&CTX, &members).expect("verifies");
    }

    #[test]
    fn old_heights_are_forgotten_and_the_record_is_bounded() {
        let mut w = Witness::with_bounds(CTX, 2, 4);
        for h in 1..=3 {
            assert!(w.vote(&vote(1, VoteType::Prevote, h, 0, 1)).is_none());
        }
        w.decided(Height(4));
        // Height 1 is more than two behind 4: gone, so no conflict is seen.
        assert!(w.vote(&vote(1, VoteType::Prevote, 1, 0, 2)).is_none());
        assert!(w.vote(&vote(1, VoteType::Prevote, 2, 0, 2)).is_some());
        // Many rounds at one height: the entries stay at the bound, and the
        // oldest go first.
        for r in 0..50 {
            let _ = w.vote(&vote(2, VoteType::Prevote, 9, r, 1));
        }
        assert_eq!(w.len(), 4);
        assert!(w.vote(&vote(2, VoteType::Prevote, 9, 49, 2)).is_some());
    }
}
