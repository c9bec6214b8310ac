use bytes::Bytes;
use malachitebft_core_consensus::LocallyProposedValue;
use malachitebft_core_types::{
    NilOrVal, Round, SignedMessage, ValidatorSet as _, VoteExtensionPolicy, VoteType,
};

use super::*;
use crate::context::{Proposal, Vote};
use crate::{sha256, ValidatorSet};

const H: Height = Height(7);

fn member(b: u8) -> MemberId {
    MemberId([b; 32])
}

fn vote(typ: VoteType, value: NilOrVal<Hash32>, ext: Option<&'static [u8]>) -> WalInput {
    Input::Vote(SignedMessage::new(
        Vote {
            typ,
            height: H,
            round: Round::new(3),
            value,
            validator: member(1),
            extension: ext.map(|e| SignedMessage::new(Bytes::from_static(e), Sig([9; 64]))),
        },
        Sig([4; 64]),
    ))
}

fn proposal(pol_round: Round) -> WalInput {
    Input::Proposal(SignedMessage::new(
        Proposal {
            height: H,
            round: Round::new(2),
            value: Hash32([5; 32]),
            pol_round,
            proposer: member(2),
        },
        Sig([6; 64]),
    ))
}

fn proposed_value(validity: Validity, origin: ValueOrigin) -> WalInput {
    Input::ProposedValue(
        ProposedValue {
            height: H,
            round: Round::new(1),
            valid_round: Round::Nil,
            proposer: member(3),
            value: Hash32([8; 32]),
            validity,
        },
        origin,
    )
}

fn polka(signers: usize) -> WalInput {
    Input::PolkaCertificate(PolkaCertificate {
        height: H,
        round: Round::new(0),
        value_id: Hash32([1; 32]),
        polka_signatures: (0..signers)
            .map(|i| PolkaSignature::new(member(i as u8), Sig([i as u8; 64])))
            .collect(),
    })
}

/// One of every persisted input, in every shape that carries distinct data.
fn every_persisted_input() -> Vec<WalInput> {
    let mut all = vec![
        vote(VoteType::Prevote, NilOrVal::Nil, None),
        vote(VoteType::Prevote, NilOrVal::Val(Hash32([2; 32])), None),
        vote(VoteType::Precommit, NilOrVal::Val(Hash32([2; 32])), None),
        vote(
            VoteType::Precommit,
            NilOrVal::Val(Hash32([2; 32])),
            Some(b"ext"),
        ),
        proposal(Round::Nil),
        proposal(Round::new(1)),
        proposed_value(Validity::Valid, ValueOrigin::Consensus),
        proposed_value(Validity::Invalid, ValueOrigin::Consensus),
        proposed_value(Validity::Valid, ValueOrigin::Sync),
        polka(0),
        polka(4),
    ];
    for kind in [
        TimeoutKind::Propose,
        TimeoutKind::Prevote,
        TimeoutKind::Precommit,
        TimeoutKind::Rebroadcast,
        TimeoutKind::FinalizeHeight(Duration::from_millis(1234)),
    ] {
        all.push(Input::TimeoutElapsed(Timeout::new(Round::new(4), kind)));
    }
    all
}

#[test]
fn every_persisted_input_roundtrips() {
    for input in every_persisted_input() {
        let bytes = encode_entry(H, &input).unwrap();
        assert_eq!(bytes[0], WAL_CODEC_VERSION);
        let (height, decoded) = decode_entry(&bytes).unwrap();
        assert_eq!(height, H);
        assert_eq!(decoded, input, "roundtrip of {input:?}");
    }
}

#[test]
fn unpersisted_inputs_are_refused() {
    let vs = ValidatorSet::from_members(&[MemberId(
        ed25519_dalek::SigningKey::from_bytes(&[1; 32])
            .verifying_key()
            .to_bytes(),
    )])
    .unwrap();
    assert_eq!(vs.count(), 1);
    let start = Input::StartHeight(H, vs, true, None, VoteExtensionPolicy::Disabled);
    assert_eq!(
        encode_entry(H, &start),
        Err(WalCodecError::NotPersisted("StartHeight"))
    );
    let propose = Input::Propose(LocallyProposedValue::new(H, Round::new(0), Hash32([1; 32])));
    assert_eq!(
        encode_entry(H, &propose),
        Err(WalCodecError::NotPersisted("Propose"))
    );
}

#[test]
fn garbage_truncated_and_oversized_entries_fail_cleanly() {
    assert_eq!(decode_entry(&[]), Err(WalCodecError::Empty));
    assert_eq!(
        decode_entry(&[2, 0, 0]),
        Err(WalCodecError::UnknownVersion(2))
    );
    assert!(matches!(
        decode_entry(&vec![WAL_CODEC_VERSION; MAX_WAL_ENTRY_BYTES + 1]),
        Err(WalCodecError::TooLarge { .. })
    ));
    // Every strict prefix of every valid entry is an error, never a panic.
    for input in every_persisted_input() {
        let bytes = encode_entry(H, &input).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                decode_entry(&bytes[..cut]).is_err(),
                "prefix {cut} of {input:?}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_entry(&longer).is_err(), "trailing byte accepted");
    }
    // Seeded garbage behind a valid version byte.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in 0..300 {
        let mut buf = vec![WAL_CODEC_VERSION];
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            buf.push(x as u8);
        }
        let _ = decode_entry(&buf);
    }
}

#[test]
fn huge_declared_lengths_are_refused_without_allocating() {
    // A polka claiming 2^32-1 signatures in a tiny entry.
    let mut bytes = vec![WAL_CODEC_VERSION];
    bytes.extend_from_slice(&H.0.to_le_bytes());
    bytes.push(3); // EntryWire::PolkaCertificate
    bytes.extend_from_slice(&0i64.to_le_bytes());
    bytes.extend_from_slice(&[1; 32]);
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        decode_entry(&bytes),
        Err(WalCodecError::Malformed(_))
    ));
    // Too many signatures to encode.
    assert_eq!(
        encode_entry(H, &polka(MAX_CERT_SIGNATURES + 1)),
        Err(WalCodecError::TooManySignatures(MAX_CERT_SIGNATURES + 1))
    );
    // The largest certificate fits the entry limit.
    assert!(encode_entry(H, &polka(MAX_CERT_SIGNATURES)).is_ok());
}

#[test]
fn an_entry_whose_input_is_of_another_height_is_refused() {
    let input = proposal(Round::Nil);
    let bytes = encode_entry(Height(8), &input).unwrap();
    assert_eq!(
        decode_entry(&bytes),
        Err(WalCodecError::HeightMismatch {
            entry: Height(8),
            input: H
        })
    );
}

#[test]
fn out_of_range_fields_are_refused() {
    let t = Input::TimeoutElapsed(Timeout::new(Round::new(0), TimeoutKind::Propose));
    let mut bytes = encode_entry(H, &t).unwrap();
    // version, height, tag, then the round: make it -7.
    bytes[10..18].copy_from_slice(&(-7i64).to_le_bytes());
    assert!(matches!(
        decode_entry(&bytes),
        Err(WalCodecError::Malformed(_))
    ));
    // An unknown entry tag.
    let mut bytes = encode_entry(H, &t).unwrap();
    bytes[9] = 200;
    assert!(matches!(
        decode_entry(&bytes),
        Err(WalCodecError::Malformed(_))
    ));
}

/// Pins the storage format (first 8 bytes of each entry's SHA-256, in the
/// order of `every_persisted_input`): a change here makes old logs unreadable and must
/// come with a new version byte.
#[test]
fn format_is_pinned() {
    let pinned: Vec<String> = every_persisted_input()
        .iter()
        .map(|i| sha256(&[&encode_entry(H, i).unwrap()]).to_hex()[..16].to_string())
        .collect();
    let vote_bytes = encode_entry(H, &vote(VoteType::Prevote, NilOrVal::Nil, None)).unwrap();
    assert_eq!(
        hex::encode(&vote_bytes[..10]),
        "01070000000000000000",
        "version, height, tag"
    );
    assert_eq!(pinned, PINNED);
}

const PINNED: &[&str] = &[
    "52e20de248806d1a",
    "e7d62bcef5432693",
    "f23d8a9eb284bd34",
    "aea513d7dfc73c32",
    "d7fc53b4ad352d5e",
    "45c426cc00be303d",
    "c2a0e7b9c93d0f10",
    "63d0779ae11c74db",
    "c324b0909a847d95",
    "64117aca7783dc70",
    "1cb4898fdee7a209",
    "c6eefa997fe08c68",
    "e44435c7128937af",
    "41a66f8ce1814a16",
    "e4c758621fe591ac",
    "dfab1cfc67c5d410",
];
