use conclave_consensus::mal::Round;
use conclave_consensus::{Engine, EngineConfig, Height, MemberId, Output, ValidatorSet};
use ed25519_dalek::SigningKey;

use crate::sim::{value_for, Config, Sim, CTX_ID};

/// One member decides every height by itself, through the same code path as
/// many members (no special case for n = 1).
#[test]
fn n1_decides_each_height_in_round_0() {
    let mut sim = Sim::new(1, Config::new(1));
    sim.start();
    sim.await_height(&[0], 5, 10_000);
    let node = &sim.nodes[0];
    for (i, d) in node.decided.iter().enumerate() {
        assert_eq!(d.height.0, i as u64 + 1);
        assert_eq!(d.round, Round::new(0));
        assert_eq!(
            d.value,
            value_for(d.height, 0, node.id),
            "decided our round-0 proposal"
        );
    }
    sim.check_safety();
}

/// malachite hands a member's own proposal and votes back to be checked
/// like anyone's, right after they were signed: they are known, and a
/// member alone never verifies a signature.
#[test]
fn n1_never_verifies_its_own_signatures() {
    let mut sim = Sim::new(1, Config::new(1));
    sim.start();
    sim.await_height(&[0], 5, 10_000);
    assert!(sim.nodes[0].decided.len() >= 5);
    assert_eq!(sim.nodes[0].signatures_checked(), 0);
}

/// Starting a height asks the proposer for a value before anything else is
/// published: no empty proposal is ever made by the engine itself.
#[test]
fn start_height_asks_for_a_value() {
    let key = SigningKey::from_bytes(&[7; 32]);
    let vs =
        ValidatorSet::from_members(&[MemberId(key.verifying_key().to_bytes())]).expect("valid key");
    let mut engine = Engine::new(EngineConfig::new(CTX_ID), key, Height(1), vs.clone());
    let out = engine.start_height(Height(1), vs, false).expect("start");
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::GetValue { height, .. } if *height == Height(1))));
    assert!(!out.iter().any(|o| matches!(o, Output::Publish(_))));
}
