//! Counters of the network actor.
//!
//! Plain atomics shared between the actor and its handles, so reading them
//! never waits on the swarm loop. The node exports them to Prometheus under
//! the names given on [`MetricsSnapshot`]'s fields.

use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, updated by the actor.
#[derive(Debug, Default)]
pub struct Metrics {
    peers: AtomicU64,
    messages_accepted: AtomicU64,
    messages_rejected: AtomicU64,
    messages_ignored: AtomicU64,
    events_dropped: AtomicU64,
    requests_received: AtomicU64,
    requests_refused: AtomicU64,
    requests_malformed: AtomicU64,
    publish_no_peers: AtomicU64,
    pushes_sent: AtomicU64,
    pushes_received: AtomicU64,
    direct_received: AtomicU64,
    pushes_failed: AtomicU64,
    penalties: AtomicU64,
    reconnects: AtomicU64,
    reconnects_skipped: AtomicU64,
}

/// A point-in-time copy of [`Metrics`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// `conclave_p2p_peers`: connected peers.
    pub peers: u64,
    /// `conclave_p2p_messages_accepted_total`: consensus messages from
    /// members accepted, by gossip or straight from their sender, and
    /// delivered (a message that came both ways counts once).
    pub messages_accepted: u64,
    /// `conclave_p2p_messages_rejected_total`: consensus messages (gossip or
    /// direct) from non-members, oversized or malformed, rejected and
    /// penalised.
    pub messages_rejected: u64,
    /// `conclave_p2p_messages_ignored_total`: gossip on a topic no longer joined.
    pub messages_ignored: u64,
    /// `conclave_p2p_events_dropped_total`: events dropped because the app was slow.
    pub events_dropped: u64,
    /// `conclave_p2p_requests_received_total`: requests handed to the app.
    pub requests_received: u64,
    /// `conclave_p2p_requests_refused_total`: requests refused (not a member,
    /// unknown context, busy).
    pub requests_refused: u64,
    /// `conclave_p2p_requests_malformed_total`: inbound requests that were
    /// oversized or malformed; the peer is penalised.
    pub requests_malformed: u64,
    /// `conclave_p2p_publish_no_peers_total`: publishes that found no peer.
    pub publish_no_peers: u64,
    /// `conclave_p2p_pushes_sent_total`: pushes sent, one per recipient.
    pub pushes_sent: u64,
    /// `conclave_p2p_pushes_received_total`: pushes from members delivered
    /// to the app.
    pub pushes_received: u64,
    /// Consensus messages received straight from their sender (delivered
    /// once, whichever of them and their gossip copy came first).
    pub direct_received: u64,
    /// `conclave_p2p_pushes_failed_total`: pushes and direct consensus
    /// messages lost (the stream's queue was full, the stream could not be
    /// opened or failed) or refused by their receiver.
    pub pushes_failed: u64,
    /// `conclave_p2p_penalties_total`: members penalised by the node for
    /// what they sent (a payload that does not open or decode).
    pub penalties: u64,
    /// `conclave_p2p_reconnects_total`: connections to a member closed and
    /// redialled because a context no longer heard it.
    pub reconnects: u64,
    /// `conclave_p2p_reconnects_skipped_total`: such requests left alone
    /// because the member's consensus traffic (for another context) still
    /// came over its connection.
    pub reconnects_skipped: u64,
}

/// A counter of [`Metrics`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Counter {
    MessagesAccepted,
    MessagesRejected,
    MessagesIgnored,
    EventsDropped,
    RequestsReceived,
    RequestsRefused,
    RequestsMalformed,
    PublishNoPeers,
    PushesSent,
    PushesReceived,
    DirectReceived,
    PushesFailed,
    Penalties,
    Reconnects,
    ReconnectsSkipped,
}

impl Metrics {
    fn counter(&self, c: Counter) -> &AtomicU64 {
        match c {
            Counter::MessagesAccepted => &self.messages_accepted,
            Counter::MessagesRejected => &self.messages_rejected,
            Counter::MessagesIgnored => &self.messages_ignored,
            Counter::EventsDropped => &self.events_dropped,
            Counter::RequestsReceived => &self.requests_received,
            Counter::RequestsRefused => &self.requests_refused,
            Counter::RequestsMalformed => &self.requests_malformed,
            Counter::PublishNoPeers => &self.publish_no_peers,
            Counter::PushesSent => &self.pushes_sent,
            Counter::PushesReceived => &self.pushes_received,
            Counter::DirectReceived => &self.direct_received,
            Counter::PushesFailed => &self.pushes_failed,
            Counter::Penalties => &self.penalties,
            Counter::Reconnects => &self.reconnects,
            Counter::ReconnectsSkipped => &self.reconnects_skipped,
        }
    }

    pub(crate) fn inc(&self, c: Counter) {
        self.add(c, 1);
    }

    pub(crate) fn add(&self, c: Counter, n: u64) {
        self.counter(c).fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set_peers(&self, n: usize) {
        self.peers
            .store(u64::try_from(n).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let get = |c| self.counter(c).load(Ordering::Relaxed);
        MetricsSnapshot {
            peers: self.peers.load(Ordering::Relaxed),
            messages_accepted: get(Counter::MessagesAccepted),
            messages_rejected: get(Counter::MessagesRejected),
            messages_ignored: get(Counter::MessagesIgnored),
            events_dropped: get(Counter::EventsDropped),
            requests_received: get(Counter::RequestsReceived),
            requests_refused: get(Counter::RequestsRefused),
            requests_malformed: get(Counter::RequestsMalformed),
            publish_no_peers: get(Counter::PublishNoPeers),
            pushes_sent: get(Counter::PushesSent),
            pushes_received: get(Counter::PushesReceived),
            direct_received: get(Counter::DirectReceived),
            pushes_failed: get(Counter::PushesFailed),
            penalties: get(Counter::Penalties),
            reconnects: get(Counter::Reconnects),
            reconnects_skipped: get(Counter::ReconnectsSkipped),
        }
    }
}
