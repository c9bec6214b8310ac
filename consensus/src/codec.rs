//! Canonical encodings: what members sign, and the bounded wire format of
//! consensus messages. Every signed message starts with a domain tag and the
//! context id, so a signature is valid for one message kind in one context.

use borsh::{BorshDeserialize, BorshSerialize};
use bytes::Bytes;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use malachitebft_core_types::{
    CommitCertificate, CommitSignature, NilOrVal, Round, SignedMessage, SignedProposal, SignedVote,
    VoteType,
};

use crate::context::{ConclaveContext, Proposal, Sig, Vote};
use crate::types::{ContextId, Hash32, Height, MemberId};
use crate::{Error, Result};

/// Largest consensus message accepted from the wire (votes and proposal
/// headers are small; blocks travel separately).
pub const MAX_CONSENSUS_MSG_BYTES: usize = 4 * 1024;

const VOTE_DOMAIN: &[u8] = b"conclave/vote/v1";
const PROPOSAL_DOMAIN: &[u8] = b"conclave/proposal/v1";

pub(crate) fn round_to_wire(r: Round) -> i64 {
    r.as_i64()
}

pub(crate) fn round_from_wire(r: i64) -> Result<Round> {
    match r {
        -1 => Ok(Round::Nil),
        r if (0..=i64::from(u32::MAX)).contains(&r) => Ok(Round::new(r as u32)),
        r => Err(Error::Decode(format!("invalid round {r}"))),
    }
}

#[derive(BorshSerialize, BorshDeserialize)]
struct VoteBody {
    precommit: bool,
    height: u64,
    round: i64,
    value: Option<Hash32>,
    validator: MemberId,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct VoteWire {
    body: VoteBody,
    signature: Sig,
    extension: Option<(Vec<u8>, Sig)>,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct ProposalWire {
    height: u64,
    round: i64,
    value: Hash32,
    pol_round: i64,
    proposer: MemberId,
}

fn vote_body(v: &Vote) -> VoteBody {
    VoteBody {
        precommit: v.typ == VoteType::Precommit,
        height: v.height.0,
        round: round_to_wire(v.round),
        value: match v.value {
            NilOrVal::Nil => None,
            NilOrVal::Val(h) => Some(h),
        },
        validator: v.validator,
    }
}

fn proposal_wire(p: &Proposal) -> ProposalWire {
    ProposalWire {
        height: p.height.0,
        round: round_to_wire(p.round),
        value: p.value,
        pol_round: round_to_wire(p.pol_round),
        proposer: p.proposer,
    }
}

fn framed(domain: &[u8], ctx: &ContextId, body: &impl BorshSerialize) -> Vec<u8> {
    let mut out = Vec::with_capacity(domain.len() + 32 + 64);
    out.extend_from_slice(domain);
    out.extend_from_slice(ctx.as_bytes());
    // Serialising plain structs into a Vec cannot fail.
    let _ = body.serialize(&mut out);
    out
}

/// The bytes a member signs for a vote (the extension is signed separately).
pub fn vote_sign_bytes(ctx: &ContextId, vote: &Vote) -> Vec<u8> {
    framed(VOTE_DOMAIN, ctx, &vote_body(vote))
}

/// The bytes a proposer signs for a proposal.
pub fn proposal_sign_bytes(ctx: &ContextId, proposal: &Proposal) -> Vec<u8> {
    framed(PROPOSAL_DOMAIN, ctx, &proposal_wire(proposal))
}

pub fn sign(key: &SigningKey, bytes: &[u8]) -> Sig {
    Sig(key.sign(bytes).to_bytes())
}

pub fn verify(key: &VerifyingKey, bytes: &[u8], sig: &Sig) -> bool {
    key.verify_strict(bytes, &Signature::from_bytes(&sig.0))
        .is_ok()
}

/// The precommit a commit signature stands for.
pub fn precommit_for(cert: &CommitCertificate<ConclaveContext>, signer: MemberId) -> Vote {
    Vote {
        typ: VoteType::Precommit,
        height: cert.height,
        round: cert.round,
        value: NilOrVal::Val(cert.value_id),
        validator: signer,
        extension: None,
    }
}

/// The commit signature `key`'s member adds to `cert` in context `ctx`:
/// its precommit for the certificate's value, signed as the engine signs
/// it (for certificates made outside an engine: the tests').
pub fn commit_signature(
    ctx: &ContextId,
    cert: &CommitCertificate<ConclaveContext>,
    key: &SigningKey,
) -> CommitSignature<ConclaveContext> {
    let address = MemberId(key.verifying_key().to_bytes());
    let bytes = vote_sign_bytes(ctx, &precommit_for(cert, address));
    CommitSignature::new(address, sign(key, &bytes))
}

pub fn encode_vote(v: &SignedVote<ConclaveContext>) -> Vec<u8> {
    let wire = VoteWire {
        body: vote_body(&v.message),
        signature: v.signature,
        extension: v
            .message
            .extension
            .as_ref()
            .map(|e| (e.message.to_vec(), e.signature)),
    };
    borsh::to_vec(&wire).unwrap_or_default()
}

fn check_len(bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_CONSENSUS_MSG_BYTES {
        return Err(Error::TooLarge {
            size: bytes.len(),
            limit: MAX_CONSENSUS_MSG_BYTES,
        });
    }
    Ok(())
}

pub fn decode_vote(bytes: &[u8]) -> Result<SignedVote<ConclaveContext>> {
    check_len(bytes)?;
    let w: VoteWire = borsh::from_slice(bytes).map_err(|e| Error::Decode(e.to_string()))?;
    let vote = Vote {
        typ: if w.body.precommit {
            VoteType::Precommit
        } else {
            VoteType::Prevote
        },
        height: Height(w.body.height),
        round: round_from_wire(w.body.round)?,
        value: w.body.value.map_or(NilOrVal::Nil, NilOrVal::Val),
        validator: w.body.validator,
        extension: w
            .extension
            .map(|(data, sig)| SignedMessage::new(Bytes::from(data), sig)),
    };
    Ok(SignedMessage::new(vote, w.signature))
}

#[derive(BorshSerialize, BorshDeserialize)]
struct SignedProposalWire {
    proposal: ProposalWire,
    signature: Sig,
}

pub fn encode_proposal(p: &SignedProposal<ConclaveContext>) -> Vec<u8> {
    borsh::to_vec(&SignedProposalWire {
        proposal: proposal_wire(&p.message),
        signature: p.signature,
    })
    .unwrap_or_default()
}

pub fn decode_proposal(bytes: &[u8]) -> Result<SignedProposal<ConclaveContext>> {
    check_len(bytes)?;
    let w: SignedProposalWire =
        borsh::from_slice(bytes).map_err(|e| Error::Decode(e.to_string()))?;
    let p = Proposal {
        height: Height(w.proposal.height),
        round: round_from_wire(w.proposal.round)?,
        value: w.proposal.value,
        pol_round: round_from_wire(w.proposal.pol_round)?,
        proposer: w.proposal.proposer,
    };
    Ok(SignedMessage::new(p, w.signature))
}

/// A commit certificate as stored with its block and served to syncing peers.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct StoredCertificate {
    pub height: Height,
    pub round: i64,
    pub block_hash: Hash32,
    pub signatures: Vec<(MemberId, Sig)>,
}

impl StoredCertificate {
    pub fn from_cert(c: &CommitCertificate<ConclaveContext>) -> Self {
        Self {
            height: c.height,
            round: round_to_wire(c.round),
            block_hash: c.value_id,
            signatures: c
                .commit_signatures
                .iter()
                .map(|s| (s.address, s.signature))
                .collect(),
        }
    }

    /// The precommit `member` signed for this certificate, as it was
    /// gossiped: the signature is over that vote's sign bytes.
    pub fn precommit_of(&self, member: &MemberId) -> Option<SignedVote<ConclaveContext>> {
        let (_, signature) = self.signatures.iter().find(|(m, _)| m == member)?;
        let vote = Vote {
            typ: VoteType::Precommit,
            height: self.height,
            round: round_from_wire(self.round).ok()?,
            value: NilOrVal::Val(self.block_hash),
            validator: *member,
            extension: None,
        };
        Some(SignedMessage::new(vote, *signature))
    }

    pub fn to_cert(&self) -> Result<CommitCertificate<ConclaveContext>> {
        Ok(CommitCertificate {
            height: self.height,
            round: round_from_wire(self.round)?,
            value_id: self.block_hash,
            commit_signatures: self
                .signatures
                .iter()
                .map(|(a, s)| CommitSignature::new(*a, *s))
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SigningKey {
        SigningKey::from_bytes(&[9; 32])
    }

    #[test]
    fn vote_roundtrip_and_signature_binding() {
        let k = key();
        let me = MemberId(k.verifying_key().to_bytes());
        let ctx = ContextId([1; 32]);
        let vote = Vote {
            typ: VoteType::Precommit,
            height: Height(5),
            round: Round::new(2),
            value: NilOrVal::Val(Hash32([3; 32])),
            validator: me,
            extension: None,
        };
        let sig = sign(&k, &vote_sign_bytes(&ctx, &vote));
        let signed = SignedMessage::new(vote.clone(), sig);
        let decoded = decode_vote(&encode_vote(&signed)).unwrap();
        assert_eq!(decoded, signed);
        assert!(verify(
            &k.verifying_key(),
            &vote_sign_bytes(&ctx, &decoded),
            &decoded.signature
        ));
        // Same vote in another context does not verify.
        let other = ContextId([2; 32]);
        assert!(!verify(
            &k.verifying_key(),
            &vote_sign_bytes(&other, &vote),
            &sig
        ));
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(decode_vote(&[1, 2, 3]).is_err());
        assert!(matches!(
            decode_vote(&vec![0u8; MAX_CONSENSUS_MSG_BYTES + 1]),
            Err(Error::TooLarge { .. })
        ));
        let p = Proposal {
            height: Height(1),
            round: Round::new(0),
            value: Hash32([1; 32]),
            pol_round: Round::Nil,
            proposer: MemberId([0; 32]),
        };
        let mut bytes = encode_proposal(&SignedMessage::new(p, Sig([0; 64])));
        // Corrupt the round into an out-of-range value.
        bytes[8..16].copy_from_slice(&(-7i64).to_le_bytes());
        assert!(decode_proposal(&bytes).is_err());
    }
}

/// Largest certificate accepted from the wire (1,024 signatures).
pub const MAX_CERTIFICATE_BYTES: usize = 160 * 1024;
const MAX_CERT_SIGNATURES: usize = 1024;

#[derive(BorshSerialize, BorshDeserialize)]
struct PolkaWire {
    height: u64,
    round: i64,
    value: Hash32,
    signatures: Vec<(MemberId, Sig)>,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct RoundSigWire {
    precommit: bool,
    value: Option<Hash32>,
    member: MemberId,
    signature: Sig,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct RoundCertWire {
    height: u64,
    round: i64,
    /// `true` for a precommit certificate, `false` for a skip certificate.
    precommit: bool,
    signatures: Vec<RoundSigWire>,
}

fn check_cert_len(bytes: &[u8]) -> Result<()> {
    if bytes.len() > MAX_CERTIFICATE_BYTES {
        return Err(Error::TooLarge {
            size: bytes.len(),
            limit: MAX_CERTIFICATE_BYTES,
        });
    }
    Ok(())
}

/// Encodes a polka certificate (a quorum of prevotes for one value).
pub fn encode_polka(c: &malachitebft_core_types::PolkaCertificate<ConclaveContext>) -> Vec<u8> {
    borsh::to_vec(&PolkaWire {
        height: c.height.0,
        round: round_to_wire(c.round),
        value: c.value_id,
        signatures: c
            .polka_signatures
            .iter()
            .map(|s| (s.address, s.signature))
            .collect(),
    })
    .unwrap_or_default()
}

pub fn decode_polka(
    bytes: &[u8],
) -> Result<malachitebft_core_types::PolkaCertificate<ConclaveContext>> {
    check_cert_len(bytes)?;
    let w: PolkaWire = borsh::from_slice(bytes).map_err(|e| Error::Decode(e.to_string()))?;
    if w.signatures.len() > MAX_CERT_SIGNATURES {
        return Err(Error::Decode("too many signatures".into()));
    }
    Ok(malachitebft_core_types::PolkaCertificate {
        height: Height(w.height),
        round: round_from_wire(w.round)?,
        value_id: w.value,
        polka_signatures: w
            .signatures
            .into_iter()
            .map(|(a, s)| malachitebft_core_types::PolkaSignature::new(a, s))
            .collect(),
    })
}

/// Encodes a round certificate (skip or precommit), which lets members
/// that fell behind in rounds rejoin the others' round.
pub fn encode_round_certificate(
    c: &malachitebft_core_types::RoundCertificate<ConclaveContext>,
) -> Vec<u8> {
    borsh::to_vec(&RoundCertWire {
        height: c.height.0,
        round: round_to_wire(c.round),
        precommit: c.cert_type == malachitebft_core_types::RoundCertificateType::Precommit,
        signatures: c
            .round_signatures
            .iter()
            .map(|s| RoundSigWire {
                precommit: s.vote_type == VoteType::Precommit,
                value: match s.value_id {
                    NilOrVal::Nil => None,
                    NilOrVal::Val(v) => Some(v),
                },
                member: s.address,
                signature: s.signature,
            })
            .collect(),
    })
    .unwrap_or_default()
}

pub fn decode_round_certificate(
    bytes: &[u8],
) -> Result<malachitebft_core_types::RoundCertificate<ConclaveContext>> {
    use malachitebft_core_types::{RoundCertificate, RoundCertificateType, RoundSignature};
    check_cert_len(bytes)?;
    let w: RoundCertWire = borsh::from_slice(bytes).map_err(|e| Error::Decode(e.to_string()))?;
    if w.signatures.len() > MAX_CERT_SIGNATURES {
        return Err(Error::Decode("too many signatures".into()));
    }
    Ok(RoundCertificate {
        height: Height(w.height),
        round: round_from_wire(w.round)?,
        cert_type: if w.precommit {
            RoundCertificateType::Precommit
        } else {
            RoundCertificateType::Skip
        },
        round_signatures: w
            .signatures
            .into_iter()
            .map(|s| {
                RoundSignature::new(
                    if s.precommit {
                        VoteType::Precommit
                    } else {
                        VoteType::Prevote
                    },
                    s.value.map_or(NilOrVal::Nil, NilOrVal::Val),
                    s.member,
                    s.signature,
                )
            })
            .collect(),
    })
}

#[cfg(test)]
mod cert_tests {
    use super::*;
    use malachitebft_core_types::{
        PolkaCertificate, PolkaSignature, RoundCertificate, RoundCertificateType, RoundSignature,
    };

    #[test]
    fn certificates_roundtrip_and_bounds() {
        let polka = PolkaCertificate::<ConclaveContext> {
            height: Height(3),
            round: Round::new(1),
            value_id: Hash32([4; 32]),
            polka_signatures: vec![PolkaSignature::new(MemberId([1; 32]), Sig([2; 64]))],
        };
        assert_eq!(decode_polka(&encode_polka(&polka)).unwrap(), polka);
        let rc = RoundCertificate::<ConclaveContext> {
            height: Height(3),
            round: Round::new(2),
            cert_type: RoundCertificateType::Skip,
            round_signatures: vec![RoundSignature::new(
                VoteType::Prevote,
                NilOrVal::Nil,
                MemberId([1; 32]),
                Sig([2; 64]),
            )],
        };
        assert_eq!(
            decode_round_certificate(&encode_round_certificate(&rc)).unwrap(),
            rc
        );
        assert!(decode_polka(&[1, 2, 3]).is_err());
        assert!(decode_round_certificate(&vec![0; MAX_CERTIFICATE_BYTES + 1]).is_err());
    }
}
