//! A deterministic simulation of N engines in one process.
//!
//! - [`event`]: simulated time, a queue of events ordered by `(time, seq)`.
//! - [`link`]: the network (latency range, drops, partitions, reordering).
//! - [`host`]: what a node does with each [`Output`](conclave_consensus::Output):
//!   publish, timers that fire, blocks built and judged, decisions recorded,
//!   catch-up through the engine's sync path, and the Byzantine behaviours.
//! - [`check`]: the properties every scenario asserts, and the seed runner.
//!
//! Everything random comes from one ChaCha PRNG seeded per run, so a seed
//! replays a run exactly. Runs are bounded by simulated time and by an event
//! budget, never by the wall clock. `SIM_SEED=n` replays one seed,
//! `SIM_SEEDS=n` runs seeds `1..=n`, `SIM_TRACE=1` prints each run's stats.
//!
//! Crash model: a crashed node stops; a restarted node gets a fresh
//! [`Engine`] at the height after its last decided one and remembers its
//! decided blocks (they are in its store) but nothing else: it has no WAL.
//! The real node adds a WAL, so that it never signs a vote that conflicts
//! with one it signed before the crash.

mod byz;
mod check;
mod event;
mod host;
mod link;
mod node;
mod sync;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use conclave_consensus::mal::Round;
use conclave_consensus::{ContextId, Engine, EngineConfig, Hash32, Height, MemberId, ValidatorSet};
use ed25519_dalek::SigningKey;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use check::for_seeds;
pub use event::Millis;
use event::{Event, Queue};
use link::Links;
pub use node::{Decision, Node, Stats};

pub const CTX_ID: ContextId = ContextId([9; 32]);

/// The block a proposer builds at `(height, round)`: a hash of the three.
pub fn value_for(height: Height, round: i64, proposer: MemberId) -> Hash32 {
    conclave_consensus::types::sha256(&[
        &height.0.to_be_bytes(),
        &round.to_be_bytes(),
        proposer.as_bytes(),
    ])
}

/// How a node behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    Honest,
    /// Votes but never answers `GetValue` (a stalled block builder).
    Silent,
    /// Sends one proposal to one half of the members and a conflicting one,
    /// also signed, to the other half; one member of the first half also
    /// gets the second (as gossip relaying would do).
    Equivocate,
    /// As `Equivocate`, and sends no votes, so it is in no certificate.
    EquivocateWithoutVotes,
    /// Replaces its precommits with garbage: signed votes for random values
    /// or wrong heights, forged votes, and bytes that are not votes.
    GarbagePrecommits,
    /// Proposes blocks that every honest member finds invalid.
    InvalidBlock,
}

impl Behaviour {
    pub fn is_byzantine(self) -> bool {
        matches!(
            self,
            Self::Equivocate
                | Self::EquivocateWithoutVotes
                | Self::GarbagePrecommits
                | Self::InvalidBlock
        )
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub n: usize,
    /// Latency of each message, drawn uniformly from this range.
    pub latency_ms: (Millis, Millis),
    /// Probability that a message is lost.
    pub drop: f64,
    /// Catch-up through the engine's sync path.
    pub sync: bool,
    pub sync_interval_ms: Millis,
    /// Pause between `Finalize` and starting the next height.
    pub next_height_ms: Millis,
    /// The run fails if it needs more events than this.
    pub max_events: u64,
}

impl Config {
    pub fn new(n: usize) -> Self {
        Self {
            n,
            latency_ms: (1, 20),
            drop: 0.0,
            sync: true,
            sync_interval_ms: 1_000,
            next_height_ms: 5,
            max_events: 2_000_000,
        }
    }
}

pub struct Sim {
    pub seed: u64,
    pub cfg: Config,
    pub now: Millis,
    pub nodes: Vec<Node>,
    pub validators: ValidatorSet,
    pub stats: Stats,
    /// Blocks that honest members find invalid when they re-execute them.
    pub invalid_values: BTreeSet<Hash32>,
    rng: ChaCha8Rng,
    queue: Queue,
    links: Links,
    timer_ids: u64,
}

impl Sim {
    /// `n` members, sorted by id so node `i` is the `i`-th validator and the
    /// proposer of `(h, r)` is node `(h + r) mod n`.
    pub fn new(seed: u64, cfg: Config) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut keys: Vec<SigningKey> = (0..cfg.n)
            .map(|_| {
                let mut secret = [0u8; 32];
                rand::RngCore::fill_bytes(&mut rng, &mut secret);
                SigningKey::from_bytes(&secret)
            })
            .collect();
        keys.sort_by_key(|k| k.verifying_key().to_bytes());
        let ids: Vec<MemberId> = keys
            .iter()
            .map(|k| MemberId(k.verifying_key().to_bytes()))
            .collect();
        let validators = ValidatorSet::from_members(&ids).expect("valid keys");
        let nodes = keys
            .into_iter()
            .zip(ids)
            .map(|(key, id)| Node {
                id,
                engine: Some(Engine::new(
                    EngineConfig::new(CTX_ID),
                    key.clone(),
                    Height(1),
                    validators.clone(),
                )),
                key,
                life: 0,
                behaviour: Behaviour::Honest,
                decided: Vec::new(),
                certs: BTreeMap::new(),
                equivocators: BTreeSet::new(),
                synced: 0,
                rounds: Vec::new(),
                timers: HashMap::new(),
                height_since: 0,
                sync_peer: 0,
                synced_last: false,
            })
            .collect();
        let mut sim = Self {
            seed,
            links: Links::new(cfg.n),
            cfg,
            now: 0,
            nodes,
            validators,
            stats: Stats::default(),
            invalid_values: BTreeSet::new(),
            rng,
            queue: Queue::default(),
            timer_ids: 0,
        };
        for node in 0..sim.nodes.len() {
            let at = sim.rng.gen_range(0..sim.cfg.sync_interval_ms);
            sim.queue.push(at, Event::SyncTick { node });
        }
        sim
    }

    pub fn set_behaviour(&mut self, node: usize, b: Behaviour) {
        self.nodes[node].behaviour = b;
    }

    /// Starts height 1 on every node that is up.
    pub fn start(&mut self) {
        for i in 0..self.nodes.len() {
            if self.nodes[i].is_up() {
                self.start_height(i, Height(1), false);
            }
        }
    }

    /// Runs events until `stop` holds (returns true) or simulated time
    /// reaches `deadline` (returns false).
    pub fn run_until(&mut self, deadline: Millis, mut stop: impl FnMut(&Sim) -> bool) -> bool {
        loop {
            if stop(self) {
                return true;
            }
            match self.queue.next_at() {
                Some(at) if at <= deadline => {}
                _ => {
                    self.now = self.now.max(deadline);
                    return stop(self);
                }
            }
            let Some((at, event)) = self.queue.pop() else {
                continue;
            };
            self.now = at;
            self.stats.events += 1;
            assert!(
                self.stats.events <= self.cfg.max_events,
                "seed {}: event budget of {} exhausted at t={}ms",
                self.seed,
                self.cfg.max_events,
                self.now
            );
            self.on_event(event);
        }
    }

    /// Runs for `ms` of simulated time.
    pub fn run_for(&mut self, ms: Millis) {
        let deadline = self.now + ms;
        self.run_until(deadline, |_| false);
    }

    /// Runs until every node in `nodes` has decided `height`, or fails after
    /// `within` ms of simulated time.
    pub fn await_height(&mut self, nodes: &[usize], height: u64, within: Millis) {
        let deadline = self.now + within;
        let ok = self.run_until(deadline, |s| {
            nodes.iter().all(|&i| s.nodes[i].tip() >= height)
        });
        let tips: Vec<u64> = self.nodes.iter().map(Node::tip).collect();
        assert!(
            ok,
            "seed {}: nodes {nodes:?} did not reach height {height} by t={}ms (tips {tips:?})",
            self.seed, self.now
        );
    }

    pub fn crash(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.engine = None;
        node.timers.clear();
        node.life += 1;
    }

    /// Restarts a crashed node with a fresh engine at its next undecided
    /// height (no WAL: it remembers nothing of the height it crashed in).
    pub fn restart(&mut self, i: usize) {
        assert!(!self.nodes[i].is_up(), "node {i} is up");
        let height = Height(self.nodes[i].tip() + 1);
        let node = &mut self.nodes[i];
        let config = EngineConfig::new(CTX_ID);
        node.engine = Some(Engine::new(
            config,
            node.key.clone(),
            height,
            self.validators.clone(),
        ));
        self.start_height(i, height, true);
    }

    pub fn partition(&mut self, groups: &[&[usize]]) {
        self.links.partition(groups);
    }

    pub fn heal(&mut self) {
        self.links.heal();
    }

    pub fn rng(&mut self) -> &mut ChaCha8Rng {
        &mut self.rng
    }

    /// Nodes that follow the protocol (silent and crashed nodes included).
    pub fn honest(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].behaviour.is_byzantine())
            .collect()
    }

    pub fn max_tip(&self, nodes: &[usize]) -> u64 {
        nodes
            .iter()
            .map(|&i| self.nodes[i].tip())
            .max()
            .unwrap_or(0)
    }

    /// The node proposing round `r` of height `h`.
    pub fn proposer(&self, h: u64, r: u32) -> usize {
        conclave_consensus::proposer_index(&CTX_ID, Height(h), Round::new(r), self.nodes.len())
    }

    /// The engine's current `(height, round)`, if the node is up.
    pub fn position(&self, i: usize) -> Option<(Height, Round)> {
        self.nodes[i]
            .engine
            .as_ref()
            .map(|e| (e.height(), e.round()))
    }
}
