//! One simulated node's state as the harness sees it, and run statistics.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use conclave_consensus::mal::{CommitCertificate, Round, Timeout};
use conclave_consensus::{ConclaveContext, Engine, Hash32, Height, MemberId};
use ed25519_dalek::SigningKey;

use super::{Behaviour, Millis};

/// A decided height as one node saw it.
#[derive(Clone, Debug)]
pub struct Decision {
    pub height: Height,
    pub value: Hash32,
    pub round: Round,
    pub at: Millis,
}

pub struct Node {
    pub id: MemberId,
    pub(super) key: SigningKey,
    pub(super) engine: Option<Engine>,
    /// Bumped at each crash, so events of an earlier life are ignored.
    pub(super) life: u32,
    pub behaviour: Behaviour,
    /// Survives crashes (it is the node's block store).
    pub decided: Vec<Decision>,
    pub certs: BTreeMap<u64, CommitCertificate<ConclaveContext>>,
    /// Members this node caught equivocating, from `Finalize`.
    pub equivocators: BTreeSet<MemberId>,
    /// Heights this node decided through catch-up (verified certificates).
    pub synced: u64,
    /// `(height, round, proposer)` of every round this node started.
    pub rounds: Vec<(Height, Round, MemberId)>,
    pub(super) timers: HashMap<Timeout, u64>,
    pub(super) height_since: Millis,
    /// The peer last asked for a decided height, and whether the last
    /// decision came through sync (then the next height is asked for at
    /// once: catching up is a stream, not one height per tick).
    pub(super) sync_peer: usize,
    pub(super) synced_last: bool,
}

impl Node {
    pub fn is_up(&self) -> bool {
        self.engine.is_some()
    }

    /// Signatures its engine verified in full (0 while it is down).
    pub fn signatures_checked(&self) -> u64 {
        self.engine.as_ref().map_or(0, |e| e.signatures_checked())
    }

    /// The last decided height (0 before the first).
    pub fn tip(&self) -> u64 {
        self.decided.last().map_or(0, |d| d.height.0)
    }

    pub fn value_at(&self, h: u64) -> Option<Hash32> {
        let first = self.decided.first()?.height.0;
        self.decided
            .get(h.checked_sub(first)? as usize)
            .map(|d| d.value)
    }
}

#[derive(Debug, Default)]
pub struct Stats {
    pub events: u64,
    pub delivered: u64,
    pub dropped: u64,
    /// Not sent because of a partition.
    pub blocked: u64,
    pub reordered: u64,
    pub junk_sent: u64,
    pub junk_rejected: u64,
    /// Junk that decoded: must stay 0.
    pub junk_accepted: u64,
    pub sync_rejected: u64,
    pub timeouts_fired: u64,
    /// Errors returned by `Engine::handle`: must stay empty.
    pub engine_errors: Vec<String>,
    /// A node decided a height twice: must stay empty.
    pub double_decides: Vec<String>,
}
