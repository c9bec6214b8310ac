use conclave_consensus::{Height, Output};

use crate::net::{value_for, Net};

/// One member decides every height by itself, through the same code path as
/// many members (no special case for n = 1).
#[test]
fn n1_decides_each_height_in_round_0() {
    let mut net = Net::new(1);
    net.start(Height(1));
    net.run_until_height(5, 10_000);
    let me = net.engines[0].address();
    let decided = &net.decided[0];
    assert_eq!(decided.len(), 5);
    for (i, (h, v)) in decided.iter().enumerate() {
        assert_eq!(h.0, i as u64 + 1);
        assert_eq!(*v, value_for(*h, 0, me), "decided our round-0 proposal");
    }
}

/// Starting a height asks the proposer for a value before anything else is
/// published: no empty proposal is ever made by the engine itself.
#[test]
fn start_height_asks_for_a_value() {
    let mut net = Net::new(1);
    let vs = net.engines[0].validators().clone();
    let out = net.engines[0].start_height(Height(1), vs, false).unwrap();
    assert!(out.iter().any(|o| matches!(o, Output::GetValue { height, .. } if *height == Height(1))));
    assert!(!out.iter().any(|o| matches!(o, Output::Publish(_))));
}
