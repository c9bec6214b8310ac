//! Refusals of `submit_checkpoint` for checkpoints signed for this very
//! proxy (NEAR domain), so each fails for its own reason only.

use conclave_checkpoint::CheckpointPayload;

use super::fixture::{self, near_domain, Submission, ACCOUNT, NETWORK};
use super::{proxy_at_near_checkpoint, submit};
use crate::error::ProxyError;
use crate::ConclaveProxy;

/// Genesis member `b` is vector key `b`.
fn genesis_key(b: usize) -> u32 {
    b as u32
}

fn genesis_hash() -> [u8; 32] {
    let (_, _, hash) = fixture::member_set("genesis");
    conclave_checkpoint::vectors::from_hex_n(&hash).expect("hash")
}

fn near_payload(height: u64) -> CheckpointPayload {
    fixture::payload(
        near_domain(NETWORK, ACCOUNT),
        0,
        height,
        [0u8; 32],
        genesis_hash(),
    )
}

fn expect_refused(proxy: &mut ConclaveProxy, s: &Submission, want: ProxyError) {
    assert_eq!(submit(proxy, s), Err(want));
    assert_eq!(proxy.latest_checkpoint().expect("stored").height, 2);
}

#[test]
fn later_heights_are_accepted_by_any_quorum() {
    let mut proxy = proxy_at_near_checkpoint();
    submit(
        &mut proxy,
        &fixture::sign(&near_payload(3), &[0, 1, 2, 3], genesis_key),
    )
    .expect("all sign");
    submit(
        &mut proxy,
        &fixture::sign(&near_payload(7), &[1, 2, 3], genesis_key),
    )
    .expect("exact quorum");
    assert_eq!(proxy.latest_checkpoint().expect("stored").height, 7);
    assert!(proxy.checkpoint_at(3).is_some());
    assert!(proxy.checkpoint_at(5).is_none());
}

#[test]
fn stale_height() {
    let mut proxy = proxy_at_near_checkpoint();
    let again = Submission::from_case(&fixture::checkpoint_case("near_domain"));
    expect_refused(
        &mut proxy,
        &again,
        ProxyError::StaleHeight { latest: 2, got: 2 },
    );
    let lower = fixture::sign(&near_payload(1), &[0, 1, 2], genesis_key);
    expect_refused(
        &mut proxy,
        &lower,
        ProxyError::StaleHeight { latest: 2, got: 1 },
    );
}

#[test]
fn under_quorum() {
    let mut proxy = proxy_at_near_checkpoint();
    let s = fixture::sign(&near_payload(3), &[0, 3], genesis_key);
    expect_refused(
        &mut proxy,
        &s,
        ProxyError::UnderQuorum {
            signers: 2,
            quorum: 3,
        },
    );
}

#[test]
fn non_member_bit() {
    let mut proxy = proxy_at_near_checkpoint();
    let keys = [fixture::secret(0), fixture::secret(1), fixture::secret(2)];
    let s = fixture::sign_with_bitmap(&near_payload(3), &keys, &[0, 1, 2, 4]);
    expect_refused(&mut proxy, &s, ProxyError::NonMemberBit);
    let s = fixture::sign_with_bitmap(&near_payload(3), &keys, &[0, 1, 2, 255]);
    expect_refused(&mut proxy, &s, ProxyError::NonMemberBit);
}

#[test]
fn forged_aggregate_by_non_members() {
    let mut proxy = proxy_at_near_checkpoint();
    let outsiders = [fixture::secret(5), fixture::secret(6), fixture::secret(7)];
    let s = fixture::sign_with_bitmap(&near_payload(3), &outsiders, &[0, 1, 2]);
    expect_refused(&mut proxy, &s, ProxyError::BadSignature);
}

#[test]
fn bitmap_claiming_a_non_signer() {
    let mut proxy = proxy_at_near_checkpoint();
    let keys = [fixture::secret(0), fixture::secret(1), fixture::secret(2)];
    let s = fixture::sign_with_bitmap(&near_payload(3), &keys, &[0, 1, 2, 3]);
    expect_refused(&mut proxy, &s, ProxyError::BadSignature);
}

#[test]
fn tampered_fields() {
    let mut proxy = proxy_at_near_checkpoint();
    let good = fixture::sign(&near_payload(3), &[0, 1, 2], genesis_key);
    let flip = |s: &str| {
        let mut b = conclave_checkpoint::vectors::from_hex(s).expect("hex");
        b[5] ^= 1;
        conclave_checkpoint::vectors::to_hex(&b)
    };
    let mut s = good.clone();
    s.state_root = flip(&s.state_root);
    expect_refused(&mut proxy, &s, ProxyError::BadSignature);
    let mut s = good.clone();
    s.actions_root = flip(&s.actions_root);
    expect_refused(&mut proxy, &s, ProxyError::BadSignature);
    let mut s = good.clone();
    s.next_members_hash = flip(&s.next_members_hash);
    expect_refused(&mut proxy, &s, ProxyError::BadSignature);
    let mut s = good.clone();
    s.height = 4;
    expect_refused(&mut proxy, &s, ProxyError::BadSignature);
    submit(&mut proxy, &good).expect("the untampered one verifies");
}

#[test]
fn wrong_domain_or_context() {
    let mut proxy = proxy_at_near_checkpoint();
    let hash = genesis_hash();
    for domain in [
        near_domain(NETWORK, "other-proxy.testnet"),
        near_domain("mainnet", ACCOUNT),
        conclave_checkpoint::Domain::evm(0, [0u8; 20]),
    ] {
        let p = fixture::payload(domain, 0, 3, [0u8; 32], hash);
        let s = fixture::sign(&p, &[0, 1, 2, 3], genesis_key);
        expect_refused(&mut proxy, &s, ProxyError::BadSignature);
    }
    let mut p = near_payload(3);
    p.context_id[0] ^= 1;
    let s = fixture::sign(&p, &[0, 1, 2, 3], genesis_key);
    expect_refused(&mut proxy, &s, ProxyError::BadSignature);
}

#[test]
fn wrong_epoch() {
    let mut proxy = proxy_at_near_checkpoint();
    let mut p = near_payload(3);
    p.epoch = 1;
    let s = fixture::sign(&p, &[0, 1, 2, 3], genesis_key);
    expect_refused(
        &mut proxy,
        &s,
        ProxyError::WrongEpoch {
            expected: 0,
            got: 1,
        },
    );
}

#[test]
fn malformed_signatures_and_hex() {
    let mut proxy = proxy_at_near_checkpoint();
    let good = fixture::sign(&near_payload(3), &[0, 1, 2], genesis_key);
    // The point at infinity (compressed flag + infinity flag).
    let mut s = good.clone();
    s.signature = format!("0xc0{}", "00".repeat(95));
    expect_refused(&mut proxy, &s, ProxyError::BadSignature);
    // Not on the curve.
    let mut s = good.clone();
    s.signature = format!("0x8{}", "1".repeat(191));
    expect_refused(&mut proxy, &s, ProxyError::BadSignature);
    let mut s = good.clone();
    s.signature = "0x1234".into();
    expect_refused(&mut proxy, &s, ProxyError::BadHex("signature"));
    let mut s = good;
    s.signers = "zz".into();
    expect_refused(&mut proxy, &s, ProxyError::BadHex("signers"));
}

/// A proxy deployed after membership changes starts at its set's epoch:
/// that epoch's checkpoints pass, earlier ones do not.
#[test]
fn a_proxy_deployed_later_starts_at_the_sets_epoch() {
    super::call();
    let (members, quorum, _) = fixture::member_set("genesis");
    let mut proxy = ConclaveProxy::new(
        fixture::context_id(),
        NETWORK.into(),
        members,
        Some(quorum),
        Some(3),
    )
    .expect("valid set");
    assert_eq!(proxy.epoch(), 3);
    let stale = fixture::sign(&near_payload(5), &[0, 1, 2], genesis_key);
    assert_eq!(
        submit(&mut proxy, &stale),
        Err(ProxyError::WrongEpoch {
            expected: 3,
            got: 0
        })
    );
    let mut p = near_payload(5);
    p.epoch = 3;
    let s = fixture::sign(&p, &[0, 1, 2], genesis_key);
    assert_eq!(submit(&mut proxy, &s), Ok(()));
    assert_eq!(proxy.latest_checkpoint().expect("stored").height, 5);
}
