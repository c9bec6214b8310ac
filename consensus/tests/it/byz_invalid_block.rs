//! A Byzantine proposer proposes blocks that honest members, re-executing
//! them, find invalid. They prevote nil (L26 `valid(v)` fails), its round
//! times out, and the next round's proposer decides. No invalid block is
//! ever decided.

use rand::Rng;

use crate::sim::{for_seeds, Behaviour, Config, Sim};

#[test]
fn byz_invalid_block() {
    for_seeds("byz_invalid_block", 20, |seed| {
        let mut sim = Sim::new(seed, Config::new(4));
        let byz = sim.rng().gen_range(0..4);
        sim.set_behaviour(byz, Behaviour::InvalidBlock);
        let honest = sim.honest();
        sim.start();
        sim.await_height(&honest, 30, 120_000);
        sim.check_safety();
        assert!(
            !sim.invalid_values.is_empty(),
            "seed {seed}: it never proposed"
        );
        for &i in &honest {
            for d in &sim.nodes[i].decided {
                assert!(
                    !sim.invalid_values.contains(&d.value),
                    "seed {seed}: invalid block decided at {}",
                    d.height
                );
                if sim.proposer(d.height.0, 0) == byz {
                    assert!(
                        d.round.as_i64() >= 1,
                        "seed {seed}: its round 0 decided at {}",
                        d.height
                    );
                }
            }
        }
    });
}
