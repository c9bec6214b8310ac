//! One of four members crashed (f = 1 < n/3): the other three keep deciding.
//! Restarted with a fresh engine and no WAL, it catches up through the
//! engine's sync path (commit certificates it verifies) and never decides a
//! value that conflicts with the others.

use rand::Rng;

use crate::sim::{for_seeds, Config, Sim};

fn others(down: usize) -> Vec<usize> {
    (0..4).filter(|&i| i != down).collect()
}

/// Crashed before height 1. Heights it would propose need a round change
/// (its round-0 proposal never comes; L57 timeoutPropose, then L34/L44 nil).
#[test]
fn n4_f1_crashed_from_start() {
    for_seeds("n4_f1_crashed_from_start", 20, |seed| {
        let mut sim = Sim::new(seed, Config::new(4));
        let down = sim.rng().gen_range(0..4);
        let up = others(down);
        sim.crash(down);
        sim.start();
        sim.await_height(&up, 20, 120_000);
        assert_eq!(
            sim.nodes[down].tip(),
            0,
            "seed {seed}: a crashed node decided"
        );
        sim.check_safety();
        // Its heights were decided in a later round, by the next proposer.
        for d in &sim.nodes[up[0]].decided {
            if sim.proposer(d.height.0, 0) == down {
                assert!(
                    d.round.as_i64() >= 1,
                    "seed {seed}: height {} decided in round 0",
                    d.height
                );
            }
        }

        let tip = sim.max_tip(&up);
        sim.restart(down);
        sim.await_height(&[down], tip, 60_000);
        sim.await_height(&[0, 1, 2, 3], tip + 10, 60_000);
        sim.check_safety();
        assert!(
            sim.nodes[down].synced > 0,
            "seed {seed}: caught up without sync?"
        );
    });
}

/// Crashed at a random moment mid-run, restarted after a random downtime.
#[test]
fn n4_f1_crash_mid_run() {
    for_seeds("n4_f1_crash_mid_run", 20, |seed| {
        let mut sim = Sim::new(seed, Config::new(4));
        sim.start();
        sim.await_height(&[0, 1, 2, 3], 5, 10_000);
        let crash_at = sim.now + sim.rng().gen_range(0..2_000);
        sim.run_until(crash_at, |_| false);
        let down = sim.rng().gen_range(0..4);
        let up = others(down);
        sim.crash(down);
        let frozen = sim.nodes[down].tip();

        // The three keep deciding: 10 more heights within 60 s.
        let target = sim.max_tip(&up) + 10;
        sim.await_height(&up, target, 60_000);
        assert_eq!(
            sim.nodes[down].tip(),
            frozen,
            "seed {seed}: a crashed node decided"
        );

        let downtime = sim.rng().gen_range(0..10_000);
        sim.run_for(downtime);
        // No stall: with the crashed node's rounds costing one
        // timeoutPropose (1 s) each, decisions never pause for 3 s.
        let during: Vec<_> = sim.nodes[up[0]]
            .decided
            .iter()
            .filter(|d| d.at >= crash_at)
            .map(|d| d.at)
            .collect();
        let gap = during.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
        assert!(
            gap <= 3_000,
            "seed {seed}: a {gap} ms stall with one node down"
        );
        let tip = sim.max_tip(&up);
        sim.restart(down);
        sim.await_height(&[down], tip, 60_000);
        sim.await_height(&[0, 1, 2, 3], tip + 10, 60_000);
        sim.check_safety();
    });
}
