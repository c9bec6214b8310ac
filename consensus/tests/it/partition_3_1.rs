//! A 3/1 split: the three keep deciding; the isolated one decides nothing
//! while alone. After the heal it catches up (verified certificates) and
//! agrees with the majority at every height.

use rand::Rng;

use crate::sim::{for_seeds, Config, Sim};

#[test]
fn partition_3_1() {
    for_seeds("partition_3_1", 20, |seed| {
        let mut sim = Sim::new(seed, Config::new(4));
        sim.start();
        sim.await_height(&[0, 1, 2, 3], 5, 10_000);
        let alone = sim.rng().gen_range(0..4);
        let majority: Vec<usize> = (0..4).filter(|&i| i != alone).collect();
        sim.partition(&[&majority, &[alone]]);

        sim.run_for(100);
        let frozen = sim.nodes[alone].tip();
        let target = sim.max_tip(&majority) + 20;
        sim.await_height(&majority, target, 120_000);
        assert_eq!(
            sim.nodes[alone].tip(),
            frozen,
            "seed {seed}: the isolated node decided"
        );
        // Alone it is still in the height after its last decision: with one
        // prevote of the 2f+1 that would arm timeoutPrevote (L34) it stays
        // put and rebroadcasts into the void.
        let (h, _) = sim.position(alone).expect("up");
        assert_eq!(h.0, frozen + 1);
        sim.check_safety();

        sim.heal();
        let tip = sim.max_tip(&majority);
        sim.await_height(&[alone], tip, 60_000);
        sim.await_height(&[0, 1, 2, 3], tip + 10, 60_000);
        sim.check_safety();
        // Most of the way through verified certificates (the last heights
        // may come from consensus messages it buffered meanwhile).
        assert!(
            sim.nodes[alone].synced > 0,
            "seed {seed}: caught up without sync?"
        );
    });
}
