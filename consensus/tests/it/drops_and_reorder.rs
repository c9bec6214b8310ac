//! A lossy, jittery network: 10–20% of messages lost, latency anywhere in
//! 1–150 ms so messages on a link overtake each other. Lost proposals and
//! votes cost rounds (timeouts, L57/L61/L65) and rebroadcasts, never safety.

use crate::sim::{for_seeds, Config, Sim};

#[test]
fn drops_and_reorder() {
    for_seeds("drops_and_reorder", 20, |seed| {
        let mut cfg = Config::new(4);
        cfg.latency_ms = (1, 150);
        // 10%, 11%, ... 20%, by seed.
        cfg.drop = 0.10 + (seed % 11) as f64 / 100.0;
        let mut sim = Sim::new(seed, cfg);
        sim.start();
        sim.await_height(&[0, 1, 2, 3], 20, 600_000);
        sim.check_safety();
        // The faults were really there.
        assert!(sim.stats.dropped > 0, "seed {seed}: nothing dropped");
        assert!(sim.stats.reordered > 0, "seed {seed}: nothing reordered");
    });
}
