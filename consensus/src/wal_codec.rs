//! The bounded, versioned encoding of the consensus inputs a context's
//! write-ahead log keeps.
//!
//! Malachite 0.8.2 appends these [`Input`] variants (see its `input.rs` and
//! every `Effect::WalAppend` site): [`Input::Vote`] (received, ours, and the
//! votes a round certificate dissolves into), [`Input::Proposal`],
//! [`Input::ProposedValue`] with its validity and origin,
//! [`Input::PolkaCertificate`] and [`Input::TimeoutElapsed`] (propose,
//! prevote and precommit timeouts). `StartHeight`, `Propose`,
//! `RoundCertificate` and `SyncValueResponse` are never persisted; encoding
//! one is an error.
//!
//! Layout of one entry: `version u8 | height u64 | borsh(EntryWire)`. Votes
//! and proposals reuse the wire encoding of [`crate::codec`], so a vote in the
//! log is byte for byte the vote on the wire. Every length is bounded before
//! anything is allocated, and decoding never panics.

use std::time::Duration;

use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_consensus::{Input, ProposedValue};
use malachitebft_core_types::{
    PolkaCertificate, PolkaSignature, Timeout, TimeoutKind, Validity, ValueOrigin,
};
use thiserror::Error;

use crate::codec::{self, round_from_wire, round_to_wire};
use crate::context::{ConclaveContext, Sig};
use crate::types::{Hash32, Height, MemberId};

/// Version byte that opens every entry.
pub const WAL_CODEC_VERSION: u8 = 1;

/// Most signatures a persisted polka certificate may carry (one per member).
pub const MAX_CERT_SIGNATURES: usize = 1024;

/// Largest encoded entry: a full polka certificate plus framing.
pub const MAX_WAL_ENTRY_BYTES: usize = 16 + MAX_CERT_SIGNATURES * (32 + 64) + 64;

/// Why an entry could not be encoded or decoded.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum WalCodecError {
    #[error("input {0} is not persisted in the write-ahead log")]
    NotPersisted(&'static str),
    #[error("entry of {size} bytes exceeds the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("empty entry")]
    Empty,
    #[error("unknown entry version {0}")]
    UnknownVersion(u8),
    #[error("polka certificate with {0} signatures exceeds the limit")]
    TooManySignatures(usize),
    #[error("entry for height {entry} carries an input of height {input}")]
    HeightMismatch { entry: Height, input: Height },
    #[error("malformed entry: {0}")]
    Malformed(String),
}

pub type WalInput = Input<ConclaveContext>;

#[derive(BorshSerialize, BorshDeserialize)]
struct ProposedValueWire {
    round: i64,
    valid_round: i64,
    proposer: MemberId,
    value: Hash32,
    valid: bool,
    from_sync: bool,
}

#[derive(BorshSerialize, BorshDeserialize)]
struct PolkaWire {
    round: i64,
    value_id: Hash32,
    signatures: Vec<(MemberId, Sig)>,
}

#[derive(BorshSerialize, BorshDeserialize)]
enum TimeoutKindWire {
    Propose,
    Prevote,
    Precommit,
    Rebroadcast,
    FinalizeHeight { secs: u64, nanos: u32 },
}

#[derive(BorshSerialize, BorshDeserialize)]
struct TimeoutWire {
    round: i64,
    kind: TimeoutKindWire,
}

/// The variant tags are part of the format: append new variants, never
/// reorder.
#[derive(BorshSerialize, BorshDeserialize)]
enum EntryWire {
    Vote(Vec<u8>),
    Proposal(Vec<u8>),
    ProposedValue(ProposedValueWire),
    PolkaCertificate(PolkaWire),
    TimeoutElapsed(TimeoutWire),
}

#[derive(BorshSerialize, BorshDeserialize)]
struct Envelope {
    height: u64,
    entry: EntryWire,
}

fn to_wire(input: &WalInput) -> Result<EntryWire, WalCodecError> {
    Ok(match input {
        Input::Vote(v) => EntryWire::Vote(codec::encode_vote(v)),
        Input::Proposal(p) => EntryWire::Proposal(codec::encode_proposal(p)),
        Input::ProposedValue(pv, origin) => EntryWire::ProposedValue(ProposedValueWire {
            round: round_to_wire(pv.round),
            valid_round: round_to_wire(pv.valid_round),
            proposer: pv.proposer,
            value: pv.value,
            valid: pv.validity.is_valid(),
            from_sync: origin.is_sync(),
        }),
        Input::PolkaCertificate(c) => {
            if c.polka_signatures.len() > MAX_CERT_SIGNATURES {
                return Err(WalCodecError::TooManySignatures(c.polka_signatures.len()));
            }
            EntryWire::PolkaCertificate(PolkaWire {
                round: round_to_wire(c.round),
                value_id: c.value_id,
                signatures: c
                    .polka_signatures
                    .iter()
                    .map(|s| (s.address, s.signature))
                    .collect(),
            })
        }
        Input::TimeoutElapsed(t) => EntryWire::TimeoutElapsed(TimeoutWire {
            round: round_to_wire(t.round),
            kind: match t.kind {
                TimeoutKind::Propose => TimeoutKindWire::Propose,
                TimeoutKind::Prevote => TimeoutKindWire::Prevote,
                TimeoutKind::Precommit => TimeoutKindWire::Precommit,
                TimeoutKind::Rebroadcast => TimeoutKindWire::Rebroadcast,
                TimeoutKind::FinalizeHeight(d) => TimeoutKindWire::FinalizeHeight {
                    secs: d.as_secs(),
                    nanos: d.subsec_nanos(),
                },
            },
        }),
        // Not persisted by malachite; no wildcard, so a new input variant
        // must be classified here.
        Input::StartHeight(..) => return Err(WalCodecError::NotPersisted("StartHeight")),
        Input::Propose(..) => return Err(WalCodecError::NotPersisted("Propose")),
        Input::RoundCertificate(..) => return Err(WalCodecError::NotPersisted("RoundCertificate")),
        Input::SyncValueResponse(..) => {
            return Err(WalCodecError::NotPersisted("SyncValueResponse"))
        }
    })
}

/// Encodes the entry `WalAppend(height, input)`.
pub fn encode_entry(height: Height, input: &WalInput) -> Result<Vec<u8>, WalCodecError> {
    let envelope = Envelope {
        height: height.0,
        entry: to_wire(input)?,
    };
    let mut out = vec![WAL_CODEC_VERSION];
    envelope
        .serialize(&mut out)
        .map_err(|e| WalCodecError::Malformed(e.to_string()))?;
    if out.len() > MAX_WAL_ENTRY_BYTES {
        return Err(WalCodecError::TooLarge {
            size: out.len(),
            limit: MAX_WAL_ENTRY_BYTES,
        });
    }
    Ok(out)
}

fn malformed(e: impl std::fmt::Display) -> WalCodecError {
    WalCodecError::Malformed(e.to_string())
}

fn from_wire(height: Height, entry: EntryWire) -> Result<WalInput, WalCodecError> {
    let check = |input: Height| {
        if input == height {
            Ok(())
        } else {
            Err(WalCodecError::HeightMismatch {
                entry: height,
                input,
            })
        }
    };
    let input = match entry {
        EntryWire::Vote(bytes) => {
            let vote = codec::decode_vote(&bytes).map_err(malformed)?;
            check(vote.message.height)?;
            Input::Vote(vote)
        }
        EntryWire::Proposal(bytes) => {
            let p = codec::decode_proposal(&bytes).map_err(malformed)?;
            check(p.message.height)?;
            Input::Proposal(p)
        }
        EntryWire::ProposedValue(w) => Input::ProposedValue(
            ProposedValue {
                height,
                round: round_from_wire(w.round).map_err(malformed)?,
                valid_round: round_from_wire(w.valid_round).map_err(malformed)?,
                proposer: w.proposer,
                value: w.value,
                validity: if w.valid {
                    Validity::Valid
                } else {
                    Validity::Invalid
                },
            },
            if w.from_sync {
                ValueOrigin::Sync
            } else {
                ValueOrigin::Consensus
            },
        ),
        EntryWire::PolkaCertificate(w) => {
            if w.signatures.len() > MAX_CERT_SIGNATURES {
                return Err(WalCodecError::TooManySignatures(w.signatures.len()));
            }
            Input::PolkaCertificate(PolkaCertificate {
                height,
                round: round_from_wire(w.round).map_err(malformed)?,
                value_id: w.value_id,
                polka_signatures: w
                    .signatures
                    .into_iter()
                    .map(|(a, s)| PolkaSignature::new(a, s))
                    .collect(),
            })
        }
        EntryWire::TimeoutElapsed(w) => {
            let kind = match w.kind {
                TimeoutKindWire::Propose => TimeoutKind::Propose,
                TimeoutKindWire::Prevote => TimeoutKind::Prevote,
                TimeoutKindWire::Precommit => TimeoutKind::Precommit,
                TimeoutKindWire::Rebroadcast => TimeoutKind::Rebroadcast,
                TimeoutKindWire::FinalizeHeight { secs, nanos } => {
                    if nanos >= 1_000_000_000 {
                        return Err(malformed("timeout nanos out of range"));
                    }
                    TimeoutKind::FinalizeHeight(Duration::new(secs, nanos))
                }
            };
            let round = round_from_wire(w.round).map_err(malformed)?;
            Input::TimeoutElapsed(Timeout::new(round, kind))
        }
    };
    Ok(input)
}

/// Decodes one entry into its height and input. Fails, without panicking or
/// allocating beyond [`MAX_WAL_ENTRY_BYTES`], on anything but a well-formed
/// entry of a known version with no trailing bytes.
pub fn decode_entry(bytes: &[u8]) -> Result<(Height, WalInput), WalCodecError> {
    if bytes.len() > MAX_WAL_ENTRY_BYTES {
        return Err(WalCodecError::TooLarge {
            size: bytes.len(),
            limit: MAX_WAL_ENTRY_BYTES,
        });
    }
    let (&version, body) = bytes.split_first().ok_or(WalCodecError::Empty)?;
    if version != WAL_CODEC_VERSION {
        return Err(WalCodecError::UnknownVersion(version));
    }
    let envelope: Envelope = borsh::from_slice(body).map_err(malformed)?;
    let height = Height(envelope.height);
    Ok((height, from_wire(height, envelope.entry)?))
}

#[cfg(test)]
mod tests;
