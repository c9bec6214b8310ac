//! Member admission (PoPs at init, registration) and rotation.

use conclave_checkpoint::vectors::{from_hex, from_hex_n, to_hex};
use conclave_checkpoint::{ProofOfPossession, PublicKey};
use near_sdk::NearToken;

use super::fixture::{self, near_domain, ACCOUNT, NETWORK};
use super::{call, call_with, proxy_at_near_checkpoint, submit, BALANCE};
use crate::error::ProxyError;
use crate::types::MemberKey;
use crate::ConclaveProxy;

fn init(members: Vec<MemberKey>, quorum: Option<u32>) -> Result<ConclaveProxy, ProxyError> {
    call();
    ConclaveProxy::new(fixture::context_id(), NETWORK.into(), members, quorum, None)
}

fn compressed_key(eip: &str) -> String {
    to_hex(
        &PublicKey::from_eip2537(&from_hex(eip).expect("hex"))
            .expect("point")
            .to_compressed(),
    )
}

fn compressed_pop(eip: &str) -> String {
    let pop = ProofOfPossession::from_eip2537(&from_hex(eip).expect("hex")).expect("point");
    to_hex(&pop.as_signature().to_compressed())
}

#[test]
fn every_bad_registration_vector_is_refused_at_init() {
    let file = fixture::members_file();
    assert_eq!(file.bad_registrations.len(), 3);
    for bad in &file.bad_registrations {
        assert_eq!(bad.reason, "bad_pop");
        let members: Vec<MemberKey> = bad
            .pks_eip2537
            .iter()
            .zip(&bad.pops_eip2537)
            .map(|(pk, pop)| MemberKey {
                public_key: compressed_key(pk),
                pop: Some(compressed_pop(pop)),
            })
            .collect();
        let got = init(members, Some(bad.quorum)).err();
        assert_eq!(
            got,
            Some(ProxyError::BadPop(bad.bad_index as usize)),
            "{}",
            bad.name
        );
    }
}

#[test]
fn default_quorum_and_set_shape_refusals() {
    let (genesis, _, _) = fixture::member_set("genesis");
    let proxy = init(genesis.clone(), None).expect("valid");
    assert_eq!(proxy.quorum(), 3);
    assert_eq!(proxy.member_count(), 4);
    assert_eq!(proxy.epoch(), 0);
    assert_eq!(proxy.network(), NETWORK);
    assert_eq!(proxy.members().len(), 4);
    assert_eq!(
        proxy.members()[0],
        fixture::keys_file().keys[0].pk_uncompressed
    );
    assert!(proxy.latest_checkpoint().is_none());

    assert_eq!(
        init(vec![], None).err(),
        Some(ProxyError::InvalidMembers(0))
    );
    assert_eq!(
        init(genesis.clone(), Some(5)).err(),
        Some(ProxyError::InvalidQuorum {
            quorum: 5,
            members: 4
        })
    );
    let mut dup = genesis.clone();
    dup[2] = dup[0].clone();
    assert_eq!(init(dup, None).err(), Some(ProxyError::DuplicateMember(2)));
    let mut infinity = genesis.clone();
    infinity[1].public_key = format!("0xc0{}", "00".repeat(47));
    assert_eq!(init(infinity, None).err(), Some(ProxyError::BadPop(1)));
    call();
    let bad_network = ConclaveProxy::new(fixture::context_id(), String::new(), genesis, None, None);
    assert_eq!(bad_network.err(), Some(ProxyError::BadNetwork));
}

/// A set deployed without some PoPs accepts no checkpoint until
/// `register_keys` has verified them.
#[test]
fn missing_pops_are_registered_before_any_checkpoint() {
    let (genesis, quorum, hash) = fixture::member_set("genesis");
    let mut members = genesis.clone();
    members[0].pop = None;
    members[3].pop = None;
    let mut proxy = init(members, Some(quorum)).expect("inline PoPs verify");
    assert_eq!(proxy.members_hash(), hash);
    assert_eq!(proxy.unverified_members(), 2);
    let case = fixture::checkpoint_case("near_domain");
    let s = fixture::Submission::from_case(&case);
    assert_eq!(
        submit(&mut proxy, &s),
        Err(ProxyError::UnverifiedMembers(2))
    );

    // A bad PoP is refused and counts nothing.
    let mut swapped = vec![genesis[0].clone()];
    swapped[0].pop = genesis[1].pop.clone();
    call_with(NearToken::from_millinear(100), BALANCE);
    assert_eq!(proxy.register_keys(swapped), Err(ProxyError::BadPop(0)));
    // Storage must be paid for.
    call_with(NearToken::from_yoctonear(0), BALANCE);
    assert_eq!(
        proxy.register_keys(vec![genesis[0].clone()]),
        Err(ProxyError::InsufficientDeposit)
    );
    call_with(NearToken::from_millinear(100), BALANCE);
    proxy
        .register_keys(vec![genesis[0].clone()])
        .expect("valid PoP");
    assert_eq!(proxy.unverified_members(), 1);
    // Registering again counts once.
    proxy
        .register_keys(vec![genesis[0].clone()])
        .expect("valid PoP");
    assert_eq!(proxy.unverified_members(), 1);
    assert_eq!(
        proxy.key_registered(genesis[0].public_key.clone()),
        Ok(true)
    );
    assert_eq!(
        proxy.key_registered(genesis[1].public_key.clone()),
        Ok(false)
    );
    proxy
        .register_keys(vec![genesis[3].clone()])
        .expect("valid PoP");
    assert_eq!(proxy.unverified_members(), 0);
    submit(&mut proxy, &s).expect("all PoPs verified");
}

/// Height 3 announces the rotated set (members.json `rotated`: keys 2..=6,
/// quorum 4); epoch 1 then belongs to it.
#[test]
fn rotation_to_the_announced_set() {
    let mut proxy = proxy_at_near_checkpoint();
    let (rotated, quorum, rotated_hash) = fixture::member_set("rotated");
    let p = fixture::payload(
        near_domain(NETWORK, ACCOUNT),
        0,
        3,
        [0u8; 32],
        from_hex_n(&rotated_hash).expect("hash"),
    );
    submit(&mut proxy, &fixture::sign(&p, &[0, 1, 2], |b| b as u32)).expect("announcement");

    // Refusals first: no announcement at height 2, another quorum, bad PoPs.
    call();
    assert_eq!(
        proxy.rotate_members(2, rotated.clone(), Some(quorum)),
        Err(ProxyError::UnknownRotation)
    );
    assert_eq!(
        proxy.rotate_members(9, rotated.clone(), Some(quorum)),
        Err(ProxyError::UnknownRotation)
    );
    assert_eq!(
        proxy.rotate_members(3, rotated.clone(), Some(5)),
        Err(ProxyError::MembersHashMismatch)
    );
    let mut swapped = rotated.clone();
    swapped.swap(0, 1);
    assert_eq!(
        proxy.rotate_members(3, swapped, Some(quorum)),
        Err(ProxyError::MembersHashMismatch)
    );
    let mut bad_pop = rotated.clone();
    bad_pop[1].pop = rotated[2].pop.clone();
    assert_eq!(
        proxy.rotate_members(3, bad_pop, Some(quorum)),
        Err(ProxyError::BadPop(1))
    );
    assert_eq!(proxy.epoch(), 0);

    proxy
        .rotate_members(3, rotated.clone(), Some(quorum))
        .expect("announced set");
    assert_eq!(proxy.epoch(), 1);
    assert_eq!(proxy.members_hash(), rotated_hash);
    assert_eq!(proxy.quorum(), 4);
    assert_eq!(proxy.member_count(), 5);
    let events = super::events();
    assert_eq!(events.last().expect("event")["event"], "members_rotated");
    // The announcement is spent: its epoch is over.
    assert_eq!(
        proxy.rotate_members(3, rotated, Some(quorum)),
        Err(ProxyError::UnknownRotation)
    );

    // The old set can no longer sign; the new one can.
    let hash = from_hex_n(&rotated_hash).expect("hash");
    let old = fixture::payload(near_domain(NETWORK, ACCOUNT), 0, 4, [0u8; 32], hash);
    assert_eq!(
        submit(
            &mut proxy,
            &fixture::sign(&old, &[0, 1, 2, 3], |b| b as u32)
        ),
        Err(ProxyError::WrongEpoch {
            expected: 1,
            got: 0
        })
    );
    let mut stale_signers = old;
    stale_signers.epoch = 1;
    assert_eq!(
        submit(
            &mut proxy,
            &fixture::sign(&stale_signers, &[0, 1, 2, 3], |b| b as u32)
        ),
        Err(ProxyError::BadSignature)
    );
    // Rotated member b is vector key b + 2.
    submit(
        &mut proxy,
        &fixture::sign(&stale_signers, &[0, 1, 3, 4], |b| b as u32 + 2),
    )
    .expect("rotated set signs epoch 1");
    assert_eq!(proxy.latest_checkpoint().expect("stored").epoch, 1);
}

/// Rotation keys may be registered ahead; an unregistered key without a PoP
/// is refused.
#[test]
fn rotation_with_registered_keys() {
    let mut proxy = proxy_at_near_checkpoint();
    let (rotated, quorum, rotated_hash) = fixture::member_set("rotated");
    let p = fixture::payload(
        near_domain(NETWORK, ACCOUNT),
        0,
        3,
        [0u8; 32],
        from_hex_n(&rotated_hash).expect("hash"),
    );
    submit(&mut proxy, &fixture::sign(&p, &[0, 1, 2], |b| b as u32)).expect("announcement");
    let bare: Vec<MemberKey> = rotated
        .iter()
        .map(|m| MemberKey {
            public_key: m.public_key.clone(),
            pop: None,
        })
        .collect();
    call_with(NearToken::from_millinear(100), BALANCE);
    proxy
        .register_keys(rotated[..4].to_vec())
        .expect("valid PoPs");
    assert_eq!(proxy.unverified_members(), 0);
    call();
    assert_eq!(
        proxy.rotate_members(3, bare.clone(), Some(quorum)),
        Err(ProxyError::BadPop(4))
    );
    call_with(NearToken::from_millinear(100), BALANCE);
    proxy
        .register_keys(rotated[4..].to_vec())
        .expect("valid PoP");
    call();
    proxy
        .rotate_members(3, bare, Some(quorum))
        .expect("all registered");
    assert_eq!(proxy.epoch(), 1);
}
