//! The properties every scenario asserts, and the seed runner.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use conclave_consensus::engine::verify_commit_certificate;
use conclave_consensus::mal::Round;
use malachitebft_core_types::ThresholdParams;

use super::{Sim, CTX_ID};

/// Runs `scenario` once per seed: seeds `1..=count`, or only `SIM_SEED` if
/// set, or `1..=SIM_SEEDS` if that is set. A failure names its seed.
pub fn for_seeds(name: &str, count: u64, scenario: impl Fn(u64)) {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let seeds: Vec<u64> = match (env("SIM_SEED"), env("SIM_SEEDS")) {
        (Some(seed), _) => vec![seed],
        (None, Some(n)) => (1..=n).collect(),
        (None, None) => (1..=count).collect(),
    };
    for seed in seeds {
        if let Err(e) = catch_unwind(AssertUnwindSafe(|| scenario(seed))) {
            eprintln!("{name}: failed with seed {seed}; replay with SIM_SEED={seed} cargo test -p conclave-consensus {name}");
            resume_unwind(e);
        }
    }
}

impl Sim {
    /// Safety, checked on every pair of honest nodes at every height they
    /// both decided: the same value. Also: each node decides heights in
    /// order, once each; every decision carries a commit certificate that
    /// verifies (> 2/3 of valid precommit signatures for that value); no
    /// honest member is ever reported as an equivocator; the engines never
    /// returned an error.
    pub fn check_safety(&self) {
        let seed = self.seed;
        if std::env::var("SIM_TRACE").is_ok() {
            let rounds: Vec<Vec<i64>> = self
                .nodes
                .iter()
                .map(|n| n.decided.iter().map(|d| d.round.as_i64()).collect())
                .collect();
            eprintln!(
                "seed {seed} t={}ms {:?} rounds {rounds:?}",
                self.now, self.stats
            );
        }
        let honest = self.honest();
        for (x, &a) in honest.iter().enumerate() {
            for &b in &honest[x + 1..] {
                for d in &self.nodes[a].decided {
                    if let Some(v) = self.nodes[b].value_at(d.height.0) {
                        assert_eq!(
                            d.value, v,
                            "seed {seed}: fork at height {} between nodes {a} and {b}",
                            d.height
                        );
                    }
                }
            }
        }
        for (i, node) in self.nodes.iter().enumerate() {
            for (k, d) in node.decided.iter().enumerate() {
                assert_eq!(
                    d.height.0,
                    k as u64 + 1,
                    "seed {seed}: node {i} decided out of order"
                );
                let cert = &node.certs[&d.height.0];
                assert_eq!(cert.value_id, d.value);
                assert!(
                    verify_commit_certificate(
                        &CTX_ID,
                        cert,
                        &self.validators,
                        ThresholdParams::default()
                    )
                    .is_ok(),
                    "seed {seed}: node {i} decided height {} without a valid certificate",
                    d.height
                );
            }
            for &h in &honest {
                assert!(
                    !node.equivocators.contains(&self.nodes[h].id),
                    "seed {seed}: node {i} reported honest node {h} as an equivocator"
                );
            }
        }
        assert!(
            self.stats.engine_errors.is_empty(),
            "seed {seed}: engine errors: {:?}",
            self.stats.engine_errors
        );
        assert!(
            self.stats.double_decides.is_empty(),
            "seed {seed}: {:?}",
            self.stats.double_decides
        );
        assert_eq!(
            self.stats.junk_accepted, 0,
            "seed {seed}: junk bytes decoded as a vote"
        );
    }

    /// All heights up to `h` decided by the honest nodes, in round 0 each.
    pub fn all_round_zero(&self, h: u64) -> bool {
        self.honest().iter().all(|&i| {
            self.nodes[i]
                .decided
                .iter()
                .take(h as usize)
                .all(|d| d.round == Round::new(0))
        })
    }
}
