//! Four honest members on a healthy network (1–20 ms links, no loss): every
//! height is decided in round 0 by everyone, through consensus alone.

use crate::sim::{for_seeds, Config, Sim};

const HEIGHTS: u64 = 50;

#[test]
fn n4_happy() {
    for_seeds("n4_happy", 20, |seed| {
        let mut cfg = Config::new(4);
        // No catch-up: every decision must come from consensus messages.
        cfg.sync = false;
        let mut sim = Sim::new(seed, cfg);
        sim.start();
        // 50 heights at <= 3 hops of <= 20 ms each, with slack.
        sim.await_height(&[0, 1, 2, 3], HEIGHTS, 10_000);
        sim.check_safety();
        // L22-L28 with a timely proposer: round 0 suffices; no timeout may
        // have forced a round change.
        assert!(
            sim.all_round_zero(HEIGHTS),
            "seed {seed}: a round change on a healthy network"
        );
        assert!(sim.nodes.iter().all(|n| n.synced == 0));
        for h in 1..=HEIGHTS {
            let v = sim.nodes[0].value_at(h);
            assert!(
                sim.nodes.iter().all(|n| n.value_at(h) == v),
                "seed {seed}: height {h} differs"
            );
        }
    });
}
