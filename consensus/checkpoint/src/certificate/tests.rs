use super::*;
use crate::members::Registration;

fn keys(n: u8) -> Vec<SecretKey> {
    (1..=n)
        .map(|i| SecretKey::from_seed(&[i; 32]).expect("seed"))
        .collect()
}

fn set(keys: &[SecretKey]) -> MemberSet {
    let regs: Vec<Registration> = keys
        .iter()
        .map(|k| Registration {
            public_key: k.public_key(),
            pop: k.prove_possession(),
        })
        .collect();
    MemberSet::new(&regs, 0).expect("valid set")
}

fn payload(domain: Domain) -> CheckpointPayload {
    CheckpointPayload {
        domain,
        context_id: [7; 32],
        epoch: 0,
        height: 10,
        state_root: [1; 32],
        actions_root: [2; 32],
        next_members_hash: [3; 32],
    }
}

fn certify(
    keys: &[SecretKey],
    members: &MemberSet,
    p: &CheckpointPayload,
    who: &[usize],
) -> Certificate {
    let shares: Vec<(usize, Signature)> = who
        .iter()
        .map(|i| (*i, sign_checkpoint(&keys[*i], p)))
        .collect();
    Certificate::aggregate(members, p, &shares).expect("valid shares")
}

#[test]
fn quorum_certificate_verifies() {
    let ks = keys(4);
    let ms = set(&ks);
    let d = Domain::evm(31337, [9; 20]);
    let p = payload(d);
    let v = Verifier {
        domain: d,
        epoch: 0,
        members: &ms,
    };
    assert_eq!(v.verify(&p, &certify(&ks, &ms, &p, &[0, 1, 2, 3])), Ok(()));
    assert_eq!(v.verify(&p, &certify(&ks, &ms, &p, &[0, 2, 3])), Ok(()));
}

#[test]
fn refusals_name_their_reason() {
    let ks = keys(4);
    let ms = set(&ks);
    let d = Domain::evm(31337, [9; 20]);
    let p = payload(d);
    let v = Verifier {
        domain: d,
        epoch: 0,
        members: &ms,
    };

    let under = certify(&ks, &ms, &p, &[0, 1]);
    assert_eq!(
        v.verify(&p, &under),
        Err(Error::UnderQuorum {
            signers: 2,
            quorum: 3
        })
    );

    let other_chain = payload(Domain::evm(1, [9; 20]));
    let c = certify(&ks, &ms, &other_chain, &[0, 1, 2]);
    assert_eq!(v.verify(&other_chain, &c), Err(Error::WrongDomain));

    let mut later = p;
    later.epoch = 1;
    let c = certify(&ks, &ms, &later, &[0, 1, 2]);
    assert_eq!(
        v.verify(&later, &c),
        Err(Error::WrongEpoch {
            expected: 0,
            got: 1
        })
    );

    let good = certify(&ks, &ms, &p, &[0, 1, 2]);
    let mut tampered = p;
    tampered.state_root[0] ^= 1;
    assert_eq!(v.verify(&tampered, &good), Err(Error::BadSignature));

    let mut extra = good;
    extra.signers = SignerBitmap::from_indices([0, 1, 2, 4]).expect("in range");
    assert_eq!(
        v.verify(&p, &extra),
        Err(Error::NonMemberBit { bit: 4, members: 4 })
    );

    // Bitmap claims a signer whose share is not in the aggregate.
    let mut claims_more = good;
    claims_more.signers = SignerBitmap::from_indices([0, 1, 2, 3]).expect("in range");
    assert_eq!(v.verify(&p, &claims_more), Err(Error::BadSignature));
}

#[test]
fn aggregate_refuses_bad_shares() {
    let ks = keys(4);
    let ms = set(&ks);
    let p = payload(Domain::evm(1, [0; 20]));
    let wrong = sign_checkpoint(&ks[1], &p);
    assert_eq!(
        Certificate::aggregate(&ms, &p, &[(0, wrong)]),
        Err(Error::BadSignature)
    );
    let s0 = sign_checkpoint(&ks[0], &p);
    assert_eq!(
        Certificate::aggregate(&ms, &p, &[(0, s0), (0, s0)]),
        Err(Error::Aggregate("duplicate share"))
    );
    assert!(matches!(
        Certificate::aggregate(&ms, &p, &[(7, s0)]),
        Err(Error::NonMemberBit { bit: 7, .. })
    ));
}
