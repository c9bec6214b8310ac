//! Evidence of equivocation: the two conflicting messages one member
//! signed at one `(height, round)` (two votes of one type for different
//! values, or two proposals of different blocks), as their signed
//! encodings. Anyone who knows the members of that height can check it
//! ([`Evidence::verify`]): both signatures are the offender's, over the
//! same position, for different values. Nothing in it needs trust in the
//! node that reports it.

use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_types::{NilOrVal, Round, SignedProposal, SignedVote, VoteType};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::codec::{
    decode_proposal, decode_vote, encode_proposal, encode_vote, proposal_sign_bytes, verify,
    vote_sign_bytes,
};
use crate::context::{ConclaveContext, Validator};
use crate::types::{ContextId, Hash32, Height, MemberId};

/// What was signed twice.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum EvidenceKind {
    Prevote,
    Precommit,
    Proposal,
}

/// Two conflicting signed messages of one member.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct Evidence {
    pub offender: MemberId,
    pub height: Height,
    pub round: u32,
    pub kind: EvidenceKind,
    /// The signed messages (`codec::encode_vote` or `encode_proposal`).
    pub first: Vec<u8>,
    pub second: Vec<u8>,
}

/// Why evidence does not prove equivocation.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum EvidenceError {
    #[error("a message does not decode: {0}")]
    Malformed(String),
    #[error("{0} is not a member at height {1}")]
    NotAMember(MemberId, Height),
    #[error("a message is not signed by the offender")]
    WrongSigner,
    #[error("a signature does not verify")]
    BadSignature,
    #[error("the messages are not of the same kind, height and round")]
    DifferentPositions,
    #[error("the messages are for the same value: not a conflict")]
    SameValue,
}

fn round_of(r: Round) -> u32 {
    r.as_u32().unwrap_or(0)
}

impl Evidence {
    /// Evidence from two votes malachite found conflicting.
    pub fn votes(a: &SignedVote<ConclaveContext>, b: &SignedVote<ConclaveContext>) -> Self {
        Self {
            offender: a.message.validator,
            height: a.message.height,
            round: round_of(a.message.round),
            kind: kind_of(a.message.typ),
            first: encode_vote(a),
            second: encode_vote(b),
        }
    }

    /// Evidence from a precommit that arrived after its height was
    /// decided: if `late` is a precommit of a signer of `cert`, at the
    /// certificate's round, for anything but the decided block, the two
    /// conflict (the signatures are checked by [`Evidence::verify`]).
    pub fn late_precommit(
        cert: &crate::codec::StoredCertificate,
        late: &SignedVote<ConclaveContext>,
    ) -> Option<Self> {
        let v = &late.message;
        if v.typ != VoteType::Precommit
            || v.height != cert.height
            || i64::from(round_of(v.round)) != cert.round
            || v.value == NilOrVal::Val(cert.block_hash)
        {
            return None;
        }
        let signed = cert.precommit_of(&v.validator)?;
        Some(Self::votes(&signed, late))
    }

    /// Evidence from two proposals malachite found conflicting.
    pub fn proposals(
        a: &SignedProposal<ConclaveContext>,
        b: &SignedProposal<ConclaveContext>,
    ) -> Self {
        Self {
            offender: a.message.proposer,
            height: a.message.height,
            round: round_of(a.message.round),
            kind: EvidenceKind::Proposal,
            first: encode_proposal(a),
            second: encode_proposal(b),
        }
    }

    /// Checks that this proves equivocation in context `ctx` by a member of
    /// `members` (the members of its height).
    pub fn verify(&self, ctx: &ContextId, members: &[MemberId]) -> Result<(), EvidenceError> {
        if !members.contains(&self.offender) {
            return Err(EvidenceError::NotAMember(self.offender, self.height));
        }
        let key = Validator::from_member(self.offender)
            .map_err(|e| EvidenceError::Malformed(e.to_string()))?
            .public_key;
        let (at_a, value_a) = self.open(ctx, &key, &self.first)?;
        let (at_b, value_b) = self.open(ctx, &key, &self.second)?;
        let at = (self.kind, self.height, self.round);
        if at_a != at || at_b != at {
            return Err(EvidenceError::DifferentPositions);
        }
        if value_a == value_b {
            return Err(EvidenceError::SameValue);
        }
        Ok(())
    }

    /// One of the two messages, decoded and checked as signed by the
    /// offender: where it was signed, and for which value (`None`: nil).
    fn open(
        &self,
        ctx: &ContextId,
        key: &ed25519_dalek::VerifyingKey,
        bytes: &[u8],
    ) -> Result<(Position, Option<Hash32>), EvidenceError> {
        let malformed = |e: crate::Error| EvidenceError::Malformed(e.to_string());
        let (signer, signed, at, value) = match self.kind {
            EvidenceKind::Prevote | EvidenceKind::Precommit => {
                let v = decode_vote(bytes).map_err(malformed)?;
                let m = &v.message;
                let value = match m.value {
                    NilOrVal::Val(h) => Some(h),
                    NilOrVal::Nil => None,
                };
                let at = (kind_of(m.typ), m.height, round_of(m.round));
                let signed = verify(key, &vote_sign_bytes(ctx, m), &v.signature);
                (m.validator, signed, at, value)
            }
            EvidenceKind::Proposal => {
                let p = decode_proposal(bytes).map_err(malformed)?;
                let m = &p.message;
                let at = (EvidenceKind::Proposal, m.height, round_of(m.round));
                let signed = verify(key, &proposal_sign_bytes(ctx, m), &p.signature);
                (m.proposer, signed, at, Some(m.value))
            }
        };
        if signer != self.offender {
            return Err(EvidenceError::WrongSigner);
        }
        if !signed {
            return Err(EvidenceError::BadSignature);
        }
        Ok((at, value))
    }
}

/// Where a message was signed: its kind, height and round.
type Position = (EvidenceKind, Height, u32);

fn kind_of(typ: VoteType) -> EvidenceKind {
    match typ {
        VoteType::Prevote => EvidenceKind::Prevote,
        VoteType::Precommit => EvidenceKind::Precommit,
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;
    use malachitebft_core_types::SignedMessage;

    use super::*;
    use crate::codec::sign;
    use crate::context::{Proposal, Vote};

    const CTX: ContextId = ContextId([7; 32]);

    fn key(b: u8) -> SigningKey {
        SigningKey::from_bytes(&[b; 32])
    }

    fn id(b: u8) -> MemberId {
        MemberId(key(b).verifying_key().to_bytes())
    }

    fn vote(signer: u8, typ: VoteType, round: i64, value: u8) -> SignedVote<ConclaveContext> {
        let v = Vote {
            typ,
            height: Height(3),
            round: Round::new(round as u32),
            value: NilOrVal::Val(Hash32([value; 32])),
            validator: id(signer),
            extension: None,
        };
        let sig = sign(&key(signer), &vote_sign_bytes(&CTX, &v));
        SignedMessage::new(v, sig)
    }

    fn proposal(value: u8) -> SignedProposal<ConclaveContext> {
        let p = Proposal {
            height: Height(3),
            round: Round::new(0),
            value: Hash32([value; 32]),
            pol_round: Round::Nil,
            proposer: id(1),
        };
        let sig = sign(&key(1), &proposal_sign_bytes(&CTX, &p));
        SignedMessage::new(p, sig)
    }

    #[test]
    fn conflicting_votes_and_proposals_verify_for_anyone_with_the_members() {
        let members = [id(1), id(2)];
        let e = Evidence::votes(
            &vote(1, VoteType::Prevote, 0, 1),
            &vote(1, VoteType::Prevote, 0, 2),
        );
        assert_eq!(
            (e.kind, e.offender, e.height),
            (EvidenceKind::Prevote, id(1), Height(3))
        );
        assert_eq!(e.verify(&CTX, &members), Ok(()));
        let p = Evidence::proposals(&proposal(1), &proposal(2));
        assert_eq!(p.verify(&CTX, &members), Ok(()));
        // Another context: the signatures do not verify there.
        assert_eq!(
            e.verify(&ContextId([8; 32]), &members),
            Err(EvidenceError::BadSignature)
        );
        assert_eq!(
            e.verify(&CTX, &[id(2)]),
            Err(EvidenceError::NotAMember(id(1), Height(3)))
        );
    }

    #[test]
    fn what_is_not_a_conflict_is_refused() {
        let members = [id(1), id(2)];
        let same = Evidence::votes(
            &vote(1, VoteType::Precommit, 0, 1),
            &vote(1, VoteType::Precommit, 0, 1),
        );
        assert_eq!(same.verify(&CTX, &members), Err(EvidenceError::SameValue));
        let rounds = Evidence::votes(
            &vote(1, VoteType::Prevote, 0, 1),
            &vote(1, VoteType::Prevote, 1, 2),
        );
        assert_eq!(
            rounds.verify(&CTX, &members),
            Err(EvidenceError::DifferentPositions)
        );
        let mut framed = Evidence::votes(
            &vote(1, VoteType::Prevote, 0, 1),
            &vote(2, VoteType::Prevote, 0, 2),
        );
        assert_eq!(
            framed.verify(&CTX, &members),
            Err(EvidenceError::WrongSigner)
        );
        framed.second = vec![1, 2, 3];
        assert!(matches!(
            framed.verify(&CTX, &members),
            Err(EvidenceError::Malformed(_))
        ));
        let mut forged = Evidence::votes(
            &vote(1, VoteType::Prevote, 0, 1),
            &vote(1, VoteType::Prevote, 0, 2),
        );
        let n = forged.second.len();
        forged.second[n - 1] ^= 1;
        assert!(forged.verify(&CTX, &members).is_err());
    }
}
