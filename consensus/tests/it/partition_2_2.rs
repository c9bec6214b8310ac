//! A 2/2 split: neither side has 2f+1 = 3 members, so no height is decided
//! while split (and so no fork). After the heal, rounds re-synchronise
//! through rebroadcast votes and round certificates, and decisions resume.

use rand::seq::SliceRandom;

use crate::sim::{for_seeds, Config, Sim};

#[test]
fn partition_2_2() {
    for_seeds("partition_2_2", 20, |seed| {
        let mut sim = Sim::new(seed, Config::new(4));
        sim.start();
        sim.await_height(&[0, 1, 2, 3], 5, 10_000);
        let mut order = [0, 1, 2, 3];
        order.shuffle(sim.rng());
        sim.partition(&[&order[..2], &order[2..]]);

        // Messages sent before the split may still land; then nothing moves.
        sim.run_for(100);
        let before: Vec<u64> = sim.nodes.iter().map(|n| n.tip()).collect();
        let blocked = sim.stats.blocked;
        sim.run_for(30_000);
        let during: Vec<u64> = sim.nodes.iter().map(|n| n.tip()).collect();
        assert_eq!(before, during, "seed {seed}: decided while split 2/2");
        assert!(
            sim.stats.blocked > blocked,
            "seed {seed}: the partition blocked nothing"
        );
        sim.check_safety();

        sim.heal();
        let tip = sim.max_tip(&[0, 1, 2, 3]);
        sim.await_height(&[0, 1, 2, 3], tip + 10, 120_000);
        sim.check_safety();
    });
}
