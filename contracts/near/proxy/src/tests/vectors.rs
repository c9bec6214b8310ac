//! The shared vectors, byte for byte: hash to G2, domain, payload digest,
//! members hash, and every checkpoint case.

use conclave_checkpoint::vectors::from_hex;
use conclave_checkpoint::Signature;

use super::fixture::{self, Submission, ACCOUNT, NETWORK};
use super::{call, genesis_proxy, proxy_at_near_checkpoint, submit};
use crate::error::ProxyError;
use crate::{bls, codec};

#[test]
fn hash_to_g2_matches_every_vector() {
    call();
    let file = fixture::hash_to_g2_file();
    assert!(file.cases.len() >= 4);
    for case in &file.cases {
        let msg = from_hex(&case.msg).expect("msg");
        let expect = Signature::from_eip2537(&from_hex(&case.point_eip2537).expect("point"))
            .expect("valid point")
            .to_uncompressed();
        let got = bls::hash_to_g2(&msg, case.dst.as_bytes()).expect("hashes");
        assert_eq!(got.0, expect, "msg {} dst {}", case.msg, case.dst);
    }
}

#[test]
fn near_domain_and_payload_match_the_vector() {
    call();
    let case = fixture::checkpoint_case("near_domain");
    let domain = codec::near_domain(NETWORK, ACCOUNT);
    assert_eq!(
        domain.to_vec(),
        from_hex(&case.payload.domain.encoded).expect("hex")
    );
    let proxy = genesis_proxy();
    assert_eq!(proxy.domain(), case.payload.domain.encoded);
    let s = Submission::from_case(&case);
    let digest = proxy
        .checkpoint_digest(
            s.epoch,
            s.height,
            s.state_root,
            s.actions_root,
            s.next_members_hash,
        )
        .expect("hex fields");
    assert_eq!(digest, case.digest);
}

#[test]
fn members_hash_of_both_sets() {
    for name in ["genesis", "rotated"] {
        call();
        let (members, quorum, hash) = fixture::member_set(name);
        let proxy = crate::ConclaveProxy::new(
            fixture::context_id(),
            NETWORK.into(),
            members,
            Some(quorum),
            None,
        )
        .expect("valid set");
        assert_eq!(proxy.members_hash(), hash, "{name}");
        assert_eq!(proxy.quorum(), quorum);
    }
}

#[test]
fn near_domain_checkpoint_verifies_and_is_stored() {
    let proxy = proxy_at_near_checkpoint();
    let case = fixture::checkpoint_case("near_domain");
    let latest = proxy.latest_checkpoint().expect("stored");
    assert_eq!(latest.height, 2);
    assert_eq!(latest.state_root, case.payload.state_root);
    assert_eq!(latest.actions_root, case.payload.actions_root);
    assert_eq!(latest.next_members_hash, case.payload.next_members_hash);
    assert_eq!(
        proxy.state_root_at(2),
        Some(case.payload.state_root.clone())
    );
    assert_eq!(proxy.state_root_at(1), None);
    let events = super::events();
    let ev = events.last().expect("checkpoint event");
    assert_eq!(ev["standard"], "conclave");
    assert_eq!(ev["event"], "checkpoint");
    assert_eq!(ev["data"][0]["height"], 2);
    assert_eq!(ev["data"][0]["signers"], 3);
}

/// Each invalid case of checkpoints.json (EVM domain, height 10) is refused
/// with the error the EVM proxy gives for its reason: the domain is not a
/// parameter, so a checkpoint for another domain fails the pairing.
#[test]
fn every_invalid_vector_is_refused_with_its_reason() {
    let mut proxy = proxy_at_near_checkpoint();
    let file = fixture::checkpoints_file();
    assert!(file.invalid.len() >= 8);
    for case in &file.invalid {
        let got = submit(&mut proxy, &Submission::from_case(case)).expect_err(&case.name);
        let ok = match case.reason.as_deref() {
            Some("under_quorum") => matches!(got, ProxyError::UnderQuorum { .. }),
            Some("non_member_bit") => got == ProxyError::NonMemberBit,
            Some("wrong_epoch") => matches!(got, ProxyError::WrongEpoch { .. }),
            Some("wrong_domain") | Some("bad_signature") => got == ProxyError::BadSignature,
            other => panic!("unknown reason {other:?}"),
        };
        assert!(ok, "{}: {got}", case.name);
    }
    // The EVM-domain valid cases do not verify on NEAR either.
    for case in file.valid.iter().filter(|c| c.payload.domain.kind == 1) {
        let mut s = Submission::from_case(case);
        s.height += 100;
        s.epoch = 0;
        assert!(submit(&mut proxy, &s).is_err(), "{}", case.name);
    }
    assert_eq!(proxy.latest_checkpoint().expect("stored").height, 2);
}
