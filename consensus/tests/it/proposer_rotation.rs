//! Proposer selection is round-robin over the sorted members, each
//! context's turn shifted by its id (`proposer_index`). A member that never
//! builds a block makes its rounds time out (L57 timeoutPropose → prevote
//! nil), and the next round's proposer decides its own block.

use conclave_consensus::mal::Round;
use rand::Rng;

use crate::sim::{for_seeds, value_for, Behaviour, Config, Sim};

#[test]
fn proposer_rotation() {
    for_seeds("proposer_rotation", 20, |seed| {
        let mut sim = Sim::new(seed, Config::new(4));
        let silent = sim.rng().gen_range(0..4);
        sim.set_behaviour(silent, Behaviour::Silent);
        sim.start();
        sim.await_height(&[0, 1, 2, 3], 24, 120_000);
        sim.check_safety();

        // Every round every node started names the round-robin proposer.
        for node in &sim.nodes {
            for &(h, r, p) in &node.rounds {
                let expected = sim.proposer(h.0, r.as_u32().expect("round"));
                assert_eq!(
                    p, sim.nodes[expected].id,
                    "seed {seed}: proposer of ({h}, {r:?})"
                );
            }
        }
        // Each height decided the block of the first live proposer.
        for d in &sim.nodes[0].decided {
            let h = d.height.0;
            let r = if sim.proposer(h, 0) == silent { 1 } else { 0 };
            let proposer = sim.nodes[sim.proposer(h, r)].id;
            assert_eq!(d.round, Round::new(r), "seed {seed}: height {h}");
            assert_eq!(
                d.value,
                value_for(d.height, i64::from(r), proposer),
                "seed {seed}: height {h}"
            );
        }
    });
}
