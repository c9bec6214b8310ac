//! A Byzantine member replaces every precommit with garbage: signed
//! precommits for random values and for wrong heights, precommits forged in
//! other members' names, and bytes that are not a vote (some over the size
//! limit). The three honest precommits are a quorum (L49), so the chain keeps
//! deciding; nothing the garbage says reaches a certificate, the junk is
//! refused by the codec, and no honest member is framed as an equivocator.

use rand::Rng;

use crate::sim::{for_seeds, Behaviour, Config, Sim};

#[test]
fn byz_garbage_precommits() {
    for_seeds("byz_garbage_precommits", 20, |seed| {
        let mut sim = Sim::new(seed, Config::new(4));
        let byz = sim.rng().gen_range(0..4);
        sim.set_behaviour(byz, Behaviour::GarbagePrecommits);
        let honest = sim.honest();
        sim.start();
        sim.await_height(&honest, 30, 60_000);
        // check_safety: certificates verify, no honest equivocator, no engine
        // error, no junk decoded.
        sim.check_safety();
        assert!(sim.stats.junk_sent > 0);
        assert!(
            sim.stats.junk_rejected > 0,
            "seed {seed}: no junk reached the decoder"
        );
        // The garbage never counted: every certificate holds exactly the
        // three honest precommits.
        let byz_id = sim.nodes[byz].id;
        for &i in &honest {
            for cert in sim.nodes[i].certs.values() {
                assert!(cert.commit_signatures.iter().all(|s| s.address != byz_id));
                assert_eq!(cert.commit_signatures.len(), 3, "seed {seed}");
            }
        }
    });
}
