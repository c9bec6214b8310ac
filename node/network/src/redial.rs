//! Backoff schedule for static peers.
//!
//! Pure bookkeeping with time passed in, so it is tested without a clock: the
//! actor reports connects, disconnects and dial failures, asks which peers are
//! due, and sleeps until [`Redialer::next_deadline`].

use std::collections::HashMap;
use std::time::Duration;

use libp2p::{Multiaddr, PeerId};
use tokio::time::Instant;

#[derive(Debug)]
struct StaticPeer {
    addr: Multiaddr,
    backoff: Duration,
    next: Option<Instant>,
}

/// Redial state of every static peer.
#[derive(Debug)]
pub(crate) struct Redialer {
    peers: HashMap<PeerId, StaticPeer>,
    initial: Duration,
    max: Duration,
}

impl Redialer {
    pub(crate) fn new(initial: Duration, max: Duration) -> Self {
        Self {
            peers: HashMap::new(),
            initial,
            max: max.max(initial),
        }
    }

    /// Adds a static peer, due at `now`.
    pub(crate) fn add(&mut self, peer: PeerId, addr: Multiaddr, now: Instant) {
        self.peers.insert(
            peer,
            StaticPeer {
                addr,
                backoff: self.initial,
                next: Some(now),
            },
        );
    }

    /// A connection to `peer` is up: no redial, backoff reset.
    pub(crate) fn connected(&mut self, peer: &PeerId) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.next = None;
            p.backoff = self.initial;
        }
    }

    /// `peer` has no connection (closed, or a dial failed): redial after the
    /// current backoff, which then doubles up to the maximum.
    pub(crate) fn disconnected(&mut self, peer: &PeerId, now: Instant) {
        if let Some(p) = self.peers.get_mut(peer) {
            if p.next.is_none() {
                p.next = Some(now + p.backoff);
                p.backoff = (p.backoff * 2).min(self.max);
            }
        }
    }

    /// Redial `peer` at `now` with a fresh backoff (it became reachable).
    pub(crate) fn reset(&mut self, peer: &PeerId, now: Instant) {
        if let Some(p) = self.peers.get_mut(peer) {
            p.next = Some(now);
            p.backoff = self.initial;
        }
    }

    /// Peers due at `now`; they are not due again until reported disconnected.
    pub(crate) fn due(&mut self, now: Instant) -> Vec<(PeerId, Multiaddr)> {
        let mut due = Vec::new();
        for (peer, p) in &mut self.peers {
            if p.next.is_some_and(|t| t <= now) {
                p.next = None;
                due.push((*peer, p.addr.clone()));
            }
        }
        due
    }

    /// The earliest scheduled redial.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        self.peers.values().filter_map(|p| p.next).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn backoff_doubles_to_max_and_resets_on_connect() {
        let t0 = Instant::now();
        let peer = PeerId::random();
        let mut r = Redialer::new(100 * MS, 300 * MS);
        r.add(peer, Multiaddr::empty(), t0);
        assert_eq!(r.due(t0).len(), 1);
        assert_eq!(r.next_deadline(), None);

        r.disconnected(&peer, t0);
        assert_eq!(r.next_deadline(), Some(t0 + 100 * MS));
        assert!(r.due(t0 + 99 * MS).is_empty());
        assert_eq!(r.due(t0 + 100 * MS).len(), 1);

        r.disconnected(&peer, t0);
        assert_eq!(r.next_deadline(), Some(t0 + 200 * MS));
        r.due(t0 + 200 * MS);
        r.disconnected(&peer, t0);
        assert_eq!(r.next_deadline(), Some(t0 + 300 * MS));
        r.due(t0 + 300 * MS);
        r.disconnected(&peer, t0);
        assert_eq!(r.next_deadline(), Some(t0 + 300 * MS), "capped");

        r.connected(&peer);
        assert_eq!(r.next_deadline(), None);
        r.disconnected(&peer, t0);
        assert_eq!(r.next_deadline(), Some(t0 + 100 * MS), "reset");
    }

    #[test]
    fn a_second_report_does_not_push_the_deadline() {
        let t0 = Instant::now();
        let peer = PeerId::random();
        let mut r = Redialer::new(100 * MS, 1000 * MS);
        r.add(peer, Multiaddr::empty(), t0);
        r.due(t0);
        r.disconnected(&peer, t0);
        r.disconnected(&peer, t0 + 50 * MS);
        assert_eq!(r.next_deadline(), Some(t0 + 100 * MS));
    }

    #[test]
    fn unknown_peers_are_ignored() {
        let mut r = Redialer::new(MS, MS);
        r.disconnected(&PeerId::random(), Instant::now());
        assert_eq!(r.next_deadline(), None);
    }
}
