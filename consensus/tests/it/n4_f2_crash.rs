//! Two of four crashed (f = 2 >= n/3): no quorum, so no height may be decided
//! while they are down, though the survivors keep changing rounds. Restarting
//! one restores a quorum of three and decisions resume.

use rand::seq::SliceRandom;

use crate::sim::{for_seeds, Config, Sim};

#[test]
fn n4_f2_crash() {
    for_seeds("n4_f2_crash", 20, |seed| {
        let mut sim = Sim::new(seed, Config::new(4));
        sim.start();
        sim.await_height(&[0, 1, 2, 3], 5, 10_000);
        let mut order = [0, 1, 2, 3];
        order.shuffle(sim.rng());
        let (a, b, up) = (order[0], order[1], vec![order[2], order[3]]);
        sim.crash(a);
        sim.crash(b);

        // Let messages already in flight land, then hold for a minute.
        sim.run_for(100);
        let flat: Vec<u64> = up.iter().map(|&i| sim.nodes[i].tip()).collect();
        let heights_before: Vec<_> = up.iter().map(|&i| sim.position(i)).collect();
        let fired = sim.stats.timeouts_fired;
        sim.run_for(60_000);
        let after: Vec<u64> = up.iter().map(|&i| sim.nodes[i].tip()).collect();
        assert_eq!(flat, after, "seed {seed}: decided without a quorum");
        let heights_after: Vec<_> = up.iter().map(|&i| sim.position(i)).collect();
        for (x, y) in heights_before.iter().zip(&heights_after) {
            assert_eq!(x.map(|p| p.0), y.map(|p| p.0), "seed {seed}: height moved");
        }
        // The survivors are live, not idle: two prevotes are short of the
        // 2f+1 that would arm timeoutPrevote (L34), so they sit in the round
        // and rebroadcast their votes every 3 s.
        assert!(
            sim.stats.timeouts_fired >= fired + 2 * 15,
            "seed {seed}: survivors went quiet"
        );

        // One comes back: three of four is a quorum again.
        sim.restart(a);
        let tip = sim.max_tip(&up);
        let three = [a, up[0], up[1]];
        sim.await_height(&three, tip + 5, 120_000);
        sim.check_safety();

        // The second comes back and catches up.
        sim.restart(b);
        let tip = sim.max_tip(&three);
        sim.await_height(&[0, 1, 2, 3], tip + 5, 120_000);
        sim.check_safety();
    });
}
