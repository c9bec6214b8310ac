//! Conclave as a malachite [`Context`]: members are the validators (one vote
//! each), the value decided at each height is a block hash, and every signed
//! message is bound to its context id so it cannot be replayed elsewhere.

use std::fmt;

use borsh::{BorshDeserialize, BorshSerialize};
use bytes::Bytes;
use ed25519_dalek::{SigningKey, VerifyingKey};
use malachitebft_core_types::{
    self as mal, LinearTimeouts, NilOrVal, Round, SignedExtension, ValueId, VoteType, VotingPower,
};

use crate::types::{ContextId, Hash32, Height, MemberId};
use crate::{Error, Result};

/// The malachite context of one Conclave context.
#[derive(Clone, Debug)]
pub struct ConclaveContext {
    pub context_id: ContextId,
}

impl ConclaveContext {
    pub fn new(context_id: ContextId) -> Self {
        Self { context_id }
    }
}

/// An ed25519 signature (`Ord` as malachite requires).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, BorshSerialize, BorshDeserialize)]
pub struct Sig(pub [u8; 64]);

impl fmt::Debug for Sig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Sig({}…)", hex::encode(&self.0[..6]))
    }
}

/// Ed25519 as malachite's signing scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ed25519;

impl mal::SigningScheme for Ed25519 {
    type DecodingError = Error;
    type Signature = Sig;
    type PublicKey = VerifyingKey;
    type PrivateKey = SigningKey;

    fn decode_signature(bytes: &[u8]) -> Result<Sig> {
        let arr: [u8; 64] = bytes
            .try_into()
            .map_err(|_| Error::Decode("signature must be 64 bytes".into()))?;
        Ok(Sig(arr))
    }

    fn encode_signature(signature: &Sig) -> Vec<u8> {
        signature.0.to_vec()
    }

    fn decode_public_key(bytes: &[u8]) -> Result<VerifyingKey> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::BadPublicKey)?;
        VerifyingKey::from_bytes(&arr).map_err(|_| Error::BadPublicKey)
    }

    fn encode_public_key(public_key: &VerifyingKey) -> Vec<u8> {
        public_key.to_bytes().to_vec()
    }
}

impl mal::Address for MemberId {}

impl mal::Value for Hash32 {
    type Id = Hash32;

    fn id(&self) -> Hash32 {
        *self
    }
}

/// A member in its role as validator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    pub address: MemberId,
    pub public_key: VerifyingKey,
    pub voting_power: VotingPower,
}

impl Validator {
    /// A validator with one vote, keyed by its member id.
    pub fn from_member(member: MemberId) -> Result<Self> {
        let public_key =
            VerifyingKey::from_bytes(member.as_bytes()).map_err(|_| Error::BadPublicKey)?;
        Ok(Self {
            address: member,
            public_key,
            voting_power: 1,
        })
    }
}

impl mal::Validator<ConclaveContext> for Validator {
    fn address(&self) -> &MemberId {
        &self.address
    }

    fn public_key(&self) -> &VerifyingKey {
        &self.public_key
    }

    fn voting_power(&self) -> VotingPower {
        self.voting_power
    }
}

/// The members of a context at one height, sorted by member id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
}

impl ValidatorSet {
    pub fn new(mut validators: Vec<Validator>) -> Result<Self> {
        if validators.is_empty() {
            return Err(Error::EmptyValidatorSet);
        }
        validators.sort_by_key(|v| v.address);
        validators.dedup_by_key(|v| v.address);
        Ok(Self { validators })
    }

    pub fn from_members(members: &[MemberId]) -> Result<Self> {
        Self::new(
            members
                .iter()
                .map(|m| Validator::from_member(*m))
                .collect::<Result<_>>()?,
        )
    }

    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    pub fn contains(&self, member: &MemberId) -> bool {
        self.validators
            .binary_search_by_key(member, |v| v.address)
            .is_ok()
    }

    /// The proposer of `context`'s round `round` of `height`: round-robin
    /// over the sorted members, each context's turn shifted by its id
    /// ([`proposer_index`]).
    pub fn proposer(&self, context: &ContextId, height: Height, round: Round) -> &Validator {
        &self.validators[proposer_index(context, height, round, self.validators.len())]
    }
}

/// Which of `n` members (sorted by id) proposes `context`'s round `round`
/// of `height`: `(height + round + shift) mod n`, where `shift` is the
/// context id's first eight bytes (little-endian). Contexts created
/// together advance their heights in step; without the shift the same
/// member proposed every one of them at each height, building, executing
/// and signing their blocks one after another on its node while the
/// other members waited (100 contexts' first heights all proposed by one
/// of four validators, docs/PERFORMANCE.md, fifty-fourth session). With
/// it each member proposes about `1/n` of them. 0 when `n` is 0.
pub fn proposer_index(context: &ContextId, height: Height, round: Round, n: usize) -> usize {
    let Some(n) = u64::try_from(n).ok().filter(|n| *n > 0) else {
        return 0;
    };
    let shift = u64::from_le_bytes(context.0[..8].try_into().expect("8 of 32 bytes"));
    let r = u64::from(round.as_u32().unwrap_or(0));
    let turn = (height.0 % n + r % n + shift % n) % n;
    turn as usize
}

impl mal::ValidatorSet<ConclaveContext> for ValidatorSet {
    fn count(&self) -> usize {
        self.validators.len()
    }

    fn total_voting_power(&self) -> VotingPower {
        self.validators.iter().map(|v| v.voting_power).sum()
    }

    fn get_by_address(&self, address: &MemberId) -> Option<&Validator> {
        self.validators
            .binary_search_by_key(address, |v| v.address)
            .ok()
            .map(|i| &self.validators[i])
    }

    fn get_by_index(&self, index: usize) -> Option<&Validator> {
        self.validators.get(index)
    }
}

/// A proposal for the block with hash `value` at `(height, round)`. The block
/// itself travels beside it (malachite's "proposal and parts" mode), so every
/// member can re-execute it before voting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    pub height: Height,
    pub round: Round,
    pub value: Hash32,
    pub pol_round: Round,
    pub proposer: MemberId,
}

impl mal::Proposal<ConclaveContext> for Proposal {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &Hash32 {
        &self.value
    }
    fn take_value(self) -> Hash32 {
        self.value
    }
    fn pol_round(&self) -> Round {
        self.pol_round
    }
    fn validator_address(&self) -> &MemberId {
        &self.proposer
    }
}

/// Malachite requires a proposal-part type; Conclave sends a proposed block
/// as one message, so parts are never streamed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WholeBlock;

impl mal::ProposalPart<ConclaveContext> for WholeBlock {
    fn is_first(&self) -> bool {
        true
    }
    fn is_last(&self) -> bool {
        true
    }
}

/// A prevote or precommit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vote {
    pub typ: VoteType,
    pub height: Height,
    pub round: Round,
    pub value: NilOrVal<Hash32>,
    pub validator: MemberId,
    pub extension: Option<SignedExtension<ConclaveContext>>,
}

impl mal::Vote<ConclaveContext> for Vote {
    fn height(&self) -> Height {
        self.height
    }
    fn round(&self) -> Round {
        self.round
    }
    fn value(&self) -> &NilOrVal<Hash32> {
        &self.value
    }
    fn take_value(self) -> NilOrVal<Hash32> {
        self.value
    }
    fn vote_type(&self) -> VoteType {
        self.typ
    }
    fn validator_address(&self) -> &MemberId {
        &self.validator
    }
    fn extension(&self) -> Option<&SignedExtension<ConclaveContext>> {
        self.extension.as_ref()
    }
    fn take_extension(&mut self) -> Option<SignedExtension<ConclaveContext>> {
        self.extension.take()
    }
    fn extend(self, extension: SignedExtension<ConclaveContext>) -> Self {
        Self {
            extension: Some(extension),
            ..self
        }
    }
}

impl mal::Context for ConclaveContext {
    type Address = MemberId;
    type Height = Height;
    type ProposalPart = WholeBlock;
    type Proposal = Proposal;
    type Validator = Validator;
    type ValidatorSet = ValidatorSet;
    type Timeouts = LinearTimeouts;
    type Value = Hash32;
    type Vote = Vote;
    type Extension = Bytes;
    type SigningScheme = Ed25519;

    fn select_proposer<'a>(
        &self,
        validator_set: &'a ValidatorSet,
        height: Height,
        round: Round,
    ) -> &'a Validator {
        validator_set.proposer(&self.context_id, height, round)
    }

    fn new_proposal(
        &self,
        height: Height,
        round: Round,
        value: Hash32,
        pol_round: Round,
        address: MemberId,
    ) -> Proposal {
        Proposal {
            height,
            round,
            value,
            pol_round,
            proposer: address,
        }
    }

    fn new_prevote(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<ValueId<Self>>,
        address: MemberId,
    ) -> Vote {
        Vote {
            typ: VoteType::Prevote,
            height,
            round,
            value: value_id,
            validator: address,
            extension: None,
        }
    }

    fn new_precommit(
        &self,
        height: Height,
        round: Round,
        value_id: NilOrVal<ValueId<Self>>,
        address: MemberId,
    ) -> Vote {
        Vote {
            typ: VoteType::Precommit,
            height,
            round,
            value: value_id,
            validator: address,
            extension: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(first: u64) -> ContextId {
        let mut id = [0xee; 32];
        id[..8].copy_from_slice(&first.to_le_bytes());
        ContextId(id)
    }

    #[test]
    fn a_context_s_proposers_take_turns_from_its_shift() {
        // Shift 0: the plain round-robin.
        let plain = context(0);
        let turns: Vec<usize> = (1..=8)
            .map(|h| proposer_index(&plain, Height(h), Round::new(0), 4))
            .collect();
        assert_eq!(turns, [1, 2, 3, 0, 1, 2, 3, 0]);
        assert_eq!(proposer_index(&plain, Height(1), Round::new(2), 4), 3);
        // Shift 6 (mod 4: 2), and a shift past u64's half that a plain sum
        // would overflow.
        let shifted = context(6);
        assert_eq!(proposer_index(&shifted, Height(1), Round::new(0), 4), 3);
        assert_eq!(proposer_index(&shifted, Height(2), Round::new(1), 4), 1);
        let far = context(u64::MAX);
        // (3 + 3 + 3) mod 4.
        assert_eq!(
            proposer_index(&far, Height(u64::MAX), Round::new(u32::MAX), 4),
            1
        );
        // Each member once in any n heights, in any round.
        for first in 0..16 {
            for r in 0..3 {
                let mut seen: Vec<usize> = (7..11)
                    .map(|h| proposer_index(&context(first), Height(h), Round::new(r), 4))
                    .collect();
                seen.sort_unstable();
                assert_eq!(seen, [0, 1, 2, 3], "context {first} round {r}");
            }
        }
        assert_eq!(proposer_index(&plain, Height(5), Round::Nil, 4), 1);
        assert_eq!(proposer_index(&plain, Height(5), Round::new(0), 0), 0);
    }

    #[test]
    fn contexts_at_the_same_height_have_different_proposers() {
        // Context ids are hashes: their shifts spread evenly.
        let mut counts = [0usize; 4];
        for i in 0..400u64 {
            use sha2::Digest;
            let id = ContextId(sha2::Sha256::digest(i.to_le_bytes()).into());
            counts[proposer_index(&id, Height(1), Round::new(0), 4)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (60..=140).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn the_validator_set_names_the_shifted_proposer() {
        let keys: Vec<MemberId> = (1..=4u8)
            .map(|i| MemberId(SigningKey::from_bytes(&[i; 32]).verifying_key().to_bytes()))
            .collect();
        let set = ValidatorSet::from_members(&keys).unwrap();
        let ctx = ConclaveContext::new(context(3));
        for h in 1..=8 {
            let named = <ConclaveContext as mal::Context>::select_proposer(
                &ctx,
                &set,
                Height(h),
                Round::new(0),
            );
            let at = proposer_index(&ctx.context_id, Height(h), Round::new(0), 4);
            assert_eq!(named.address, set.validators()[at].address);
        }
    }
}
