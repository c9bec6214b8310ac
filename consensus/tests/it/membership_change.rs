//! After a membership change the validator set of a height is the new
//! one: a removed member's precommit counts for nothing, and a certificate
//! that needs it to reach a quorum is refused (this is how catch-up checks
//! every synced block).

use conclave_consensus::codec::commit_signature;
use conclave_consensus::engine::verify_commit_certificate;
use conclave_consensus::mal::{CommitCertificate, Round};
use conclave_consensus::{Hash32, Height, MemberId, ValidatorSet};
use ed25519_dalek::SigningKey;

use crate::sim::CTX_ID;

fn certificate(
    signers: &[&SigningKey],
    value: Hash32,
) -> CommitCertificate<conclave_consensus::ConclaveContext> {
    let mut cert = CommitCertificate {
        height: Height(7),
        round: Round::new(0),
        value_id: value,
        commit_signatures: Vec::new(),
    };
    for key in signers {
        let signature = commit_signature(&CTX_ID, &cert, key);
        cert.commit_signatures.push(signature);
    }
    cert
}

#[test]
fn a_removed_members_vote_counts_for_nothing() {
    let keys: Vec<SigningKey> = (1..=4u8)
        .map(|i| SigningKey::from_bytes(&[i; 32]))
        .collect();
    let id = |k: &SigningKey| MemberId(k.verifying_key().to_bytes());
    let before = ValidatorSet::from_members(&keys.iter().map(id).collect::<Vec<_>>()).unwrap();
    // Member 3 removed: three validators, all three needed.
    let after = ValidatorSet::from_members(&keys[..3].iter().map(id).collect::<Vec<_>>()).unwrap();
    let value = Hash32([9; 32]);

    let with_removed = certificate(&[&keys[0], &keys[1], &keys[3]], value);
    // Under the old set, three of four is a quorum.
    verify_commit_certificate(&CTX_ID, &with_removed, &before, Default::default())
        .expect("a quorum of the old set");
    // Under the new one the removed key is no validator: refused.
    assert!(
        verify_commit_certificate(&CTX_ID, &with_removed, &after, Default::default()).is_err(),
        "a removed member's vote was counted"
    );
    // Two remaining members alone are not a quorum of three.
    let two = certificate(&[&keys[0], &keys[1]], value);
    assert!(verify_commit_certificate(&CTX_ID, &two, &after, Default::default()).is_err());
    let all = certificate(&[&keys[0], &keys[1], &keys[2]], value);
    verify_commit_certificate(&CTX_ID, &all, &after, Default::default()).expect("all three");
}
