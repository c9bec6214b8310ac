//! A Byzantine proposer signs two different proposals for the same round and
//! sends one to a random part of the members and the other to the rest. Its
//! own engine votes for the first. At most one value per height is decided
//! (one value cannot gather 2f+1 prevotes, L28/L36, if the other has f+1
//! honest ones), and the chain keeps deciding.

use rand::Rng;

use crate::sim::{for_seeds, Behaviour, Config, Sim};

#[test]
fn byz_equivocating_proposer() {
    for_seeds("byz_equivocating_proposer", 20, |seed| {
        let mut sim = Sim::new(seed, Config::new(4));
        let byz = sim.rng().gen_range(0..4);
        sim.set_behaviour(byz, Behaviour::Equivocate);
        let honest = sim.honest();
        sim.start();
        sim.await_height(&honest, 30, 300_000);
        sim.check_safety();
        // It proposed (it is the round-0 proposer of every 4th height), so
        // honest members really saw conflicting proposals.
        let its_heights = (1..=30).filter(|&h| sim.proposer(h, 0) == byz).count();
        assert!(its_heights >= 7);
        let tip = sim.max_tip(&honest);
        for h in 1..=tip {
            let values: std::collections::BTreeSet<_> = honest
                .iter()
                .filter_map(|&i| sim.nodes[i].value_at(h))
                .collect();
            assert_eq!(
                values.len(),
                1,
                "seed {seed}: height {h} decided {values:?}"
            );
        }
    });
}

/// The equivocator is caught: a member that received both of its signed
/// proposals reports it in `Finalize`, even though it sent no votes and so
/// signed no certificate.
#[test]
fn byz_equivocating_proposer_is_reported() {
    for_seeds("byz_equivocating_proposer_is_reported", 20, |seed| {
        let mut sim = Sim::new(seed, Config::new(4));
        let byz = sim.rng().gen_range(0..4);
        sim.set_behaviour(byz, Behaviour::EquivocateWithoutVotes);
        let honest = sim.honest();
        sim.start();
        sim.await_height(&honest, 30, 300_000);
        sim.check_safety();
        let byz_id = sim.nodes[byz].id;
        for &i in &honest {
            assert!(sim.nodes[i]
                .certs
                .values()
                .all(|c| c.commit_signatures.iter().all(|s| s.address != byz_id)));
        }
        assert!(
            honest
                .iter()
                .any(|&i| sim.nodes[i].equivocators.contains(&byz_id)),
            "seed {seed}: conflicting proposals went unreported"
        );
    });
}
