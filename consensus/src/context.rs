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

    /// Round-robin proposer: `(height + round) mod n` over the sorted members.
    pub fn proposer(&self, height: Height, round: Round) -> &Validator {
        let n = self.validators.len() as u64;
        let r = round.as_u32().unwrap_or(0) as u64;
        let idx = height.0.wrapping_add(r) % n.max(1);
        &self.validators[idx as usize]
    }
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
        validator_set.proposer(height, round)
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
