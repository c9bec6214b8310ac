//! The simulated network: per-message latency drawn from a range (so jitter
//! reorders messages on a link), random drops, and partitions. Votes and
//! proposals travel as wire bytes and are decoded by the receiver, so every
//! message goes through the bounded codec.

use conclave_consensus::ConclaveContext;
use malachitebft_core_types::ValueResponse;
use malachitebft_core_types::{PolkaCertificate, RoundCertificate};
use rand::Rng;

use super::event::Event;
use super::Sim;

pub enum Msg {
    /// An encoded signed vote.
    Vote(Vec<u8>),
    /// Bytes a Byzantine node sends as a vote that are not one; the receiver
    /// runs them through the same decode path as [`Msg::Vote`].
    Junk(Vec<u8>),
    /// An encoded signed proposal; the block (here: its hash) travels with it
    /// and the receiver judges its validity.
    Proposal(Vec<u8>),
    Polka(PolkaCertificate<ConclaveContext>),
    RoundCert(RoundCertificate<ConclaveContext>),
    /// Catch-up: "send me the decided value and certificate of `height`".
    SyncRequest(u64),
    SyncResponse(Box<ValueResponse<ConclaveContext>>),
}

/// Who can talk to whom.
pub struct Links {
    /// Partition group of each node; nodes talk only within their group.
    group: Vec<usize>,
    /// Per directed link, the highest send sequence delivered so far.
    last_delivered: Vec<u64>,
    send_seq: u64,
}

impl Links {
    pub fn new(n: usize) -> Self {
        Self {
            group: vec![0; n],
            last_delivered: vec![0; n * n],
            send_seq: 0,
        }
    }

    pub fn can_talk(&self, a: usize, b: usize) -> bool {
        self.group[a] == self.group[b]
    }

    pub fn partition(&mut self, groups: &[&[usize]]) {
        for (g, members) in groups.iter().enumerate() {
            for &m in *members {
                self.group[m] = g + 1;
            }
        }
    }

    pub fn heal(&mut self) {
        self.group.iter_mut().for_each(|g| *g = 0);
    }
}

impl Sim {
    /// Sends `msg` from `from` to `to` over the simulated network.
    pub(super) fn send(&mut self, from: usize, to: usize, msg: Msg) {
        if from == to || !self.links.can_talk(from, to) {
            self.stats.blocked += 1;
            return;
        }
        if self.cfg.drop > 0.0 && self.rng.gen_bool(self.cfg.drop) {
            self.stats.dropped += 1;
            return;
        }
        let (lo, hi) = self.cfg.latency_ms;
        let at = self.now + self.rng.gen_range(lo..=hi);
        self.links.send_seq += 1;
        let sent = self.links.send_seq;
        self.queue.push(
            at,
            Event::Deliver {
                to,
                from,
                sent,
                msg,
            },
        );
    }

    /// Sends `make()` to every other member.
    pub(super) fn broadcast(&mut self, from: usize, make: impl Fn() -> Msg) {
        for to in 0..self.nodes.len() {
            if to != from {
                self.send(from, to, make());
            }
        }
    }

    /// Counts a delivery on `from -> to` that overtook an earlier send.
    pub(super) fn note_delivery(&mut self, from: usize, to: usize, send_seq: u64) {
        let n = self.nodes.len();
        let last = &mut self.links.last_delivered[from * n + to];
        if send_seq < *last {
            self.stats.reordered += 1;
        } else {
            *last = send_seq;
        }
    }
}
