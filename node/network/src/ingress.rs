//! The actor's mailbox: [`NetworkHandle`] sends [`Message`]s, the actor emits
//! [`NetworkEvent`]s.

use std::sync::Arc;

use conclave_consensus::{ContextId, MemberId};
use libp2p::Multiaddr;
use tokio::sync::{mpsc, oneshot};

use crate::error::{Error, Result};
use crate::metrics::{Metrics, MetricsSnapshot};

/// How long `set_blocked` waits for the blocked peers' connections to
/// close.
const BLOCK_CLOSE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// What the network tells the application.
#[derive(Debug)]
pub enum NetworkEvent {
    /// A gossip message on a joined context, from one of its members.
    Message {
        /// The context whose topic carried it.
        context: ContextId,
        /// The member that signed it (not necessarily the peer that relayed it).
        from: MemberId,
        /// The payload.
        data: Vec<u8>,
    },
    /// A push (the bulk lane) on a joined context, from one of its members
    /// (the peer that sent it: pushes are not relayed).
    Pushed {
        /// The context named by the push.
        context: ContextId,
        /// The member whose node sent it.
        from: MemberId,
        /// The payload.
        data: Vec<u8>,
    },
    /// A request from a member of a joined context. Send the answer on
    /// `reply`; dropping it refuses the request.
    Request {
        /// The context named by the request.
        context: ContextId,
        /// The requesting member.
        from: MemberId,
        /// The payload.
        data: Vec<u8>,
        /// Where the answer goes.
        reply: oneshot::Sender<Vec<u8>>,
    },
    /// The first connection to a member's node opened.
    PeerConnected(MemberId),
    /// The last connection to a member's node closed.
    PeerDisconnected(MemberId),
}

/// A command to the actor. Each carries the sender of its result.
#[derive(Debug)]
pub(crate) enum Message {
    Join {
        context: ContextId,
        members: Vec<MemberId>,
        done: oneshot::Sender<Result<()>>,
    },
    Leave {
        context: ContextId,
        done: oneshot::Sender<Result<()>>,
    },
    Publish {
        context: ContextId,
        data: Vec<u8>,
        done: oneshot::Sender<Result<()>>,
    },
    Request {
        peer: MemberId,
        context: ContextId,
        data: Vec<u8>,
        done: oneshot::Sender<Result<Vec<u8>>>,
    },
    Push {
        context: ContextId,
        data: Vec<u8>,
        done: oneshot::Sender<Result<usize>>,
    },
    Peers {
        done: oneshot::Sender<Vec<MemberId>>,
    },
    TopicPeers {
        context: ContextId,
        done: oneshot::Sender<Vec<MemberId>>,
    },
    PeerScore {
        peer: MemberId,
        done: oneshot::Sender<Option<f64>>,
    },
    ListenAddrs {
        done: oneshot::Sender<Vec<Multiaddr>>,
    },
    Dial {
        addr: Multiaddr,
        done: oneshot::Sender<Result<()>>,
    },
    SetBlocked {
        peers: Vec<MemberId>,
        done: oneshot::Sender<Result<()>>,
    },
    Reconnect {
        peer: MemberId,
    },
    Penalise {
        peer: MemberId,
    },
    Shutdown {
        done: oneshot::Sender<()>,
    },
}

/// A cloneable handle to the network actor. The actor stops when the last
/// handle is dropped or [`NetworkHandle::shutdown`] is called.
#[derive(Clone, Debug)]
pub struct NetworkHandle {
    pub(crate) sender: mpsc::Sender<Message>,
    pub(crate) local: MemberId,
    pub(crate) metrics: Arc<Metrics>,
}

impl NetworkHandle {
    async fn call<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Message) -> Result<T> {
        let (done, rx) = oneshot::channel();
        self.sender
            .send(make(done))
            .await
            .map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// The local member id (the node's peer id as a member).
    pub fn local_member(&self) -> MemberId {
        self.local
    }

    /// Current counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// Subscribes to the context's topic and sets who may publish on it.
    /// Calling it again replaces the member set.
    pub async fn join(&self, context: ContextId, members: Vec<MemberId>) -> Result<()> {
        self.call(|done| Message::Join {
            context,
            members,
            done,
        })
        .await?
    }

    /// Unsubscribes from the context's topic and forgets its members.
    pub async fn leave(&self, context: ContextId) -> Result<()> {
        self.call(|done| Message::Leave { context, done }).await?
    }

    /// Gossips `data` to the context. [`Error::NoPeers`] if no peer is
    /// subscribed yet; nothing is queued. The local node does not receive its
    /// own message, and publishing the same data twice is [`Error::Duplicate`]
    /// while gossipsub remembers it (two minutes).
    pub async fn publish(&self, context: ContextId, data: Vec<u8>) -> Result<()> {
        self.call(|done| Message::Publish {
            context,
            data,
            done,
        })
        .await?
    }

    /// Pushes `data` straight to every connected member of `context` (the
    /// bulk lane; see the crate docs) and returns how many it went to. Not
    /// relayed and not retried: a member that is not connected misses it.
    /// Delivery is acknowledged by the receiving network layer; failures
    /// are counted (`conclave_p2p_pushes_failed_total`).
    pub async fn push(&self, context: ContextId, data: Vec<u8>) -> Result<usize> {
        self.call(|done| Message::Push {
            context,
            data,
            done,
        })
        .await?
    }

    /// Sends a request about `context` to `peer` and waits for its answer, up
    /// to the configured timeout. The local node must have joined `context`;
    /// the peer must be connected or reachable at an address learnt from
    /// static peers or identify.
    pub async fn request(
        &self,
        peer: MemberId,
        context: ContextId,
        data: Vec<u8>,
    ) -> Result<Vec<u8>> {
        self.call(|done| Message::Request {
            peer,
            context,
            data,
            done,
        })
        .await?
    }

    /// Members whose nodes are connected.
    pub async fn peers(&self) -> Vec<MemberId> {
        self.call(|done| Message::Peers { done })
            .await
            .unwrap_or_default()
    }

    /// Connected peers known to be subscribed to the context's topic
    /// (subscriptions are announced to every connected peer, members or not).
    pub async fn topic_peers(&self, context: ContextId) -> Vec<MemberId> {
        self.call(|done| Message::TopicPeers { context, done })
            .await
            .unwrap_or_default()
    }

    /// Gossipsub's score of a peer, if it has one.
    pub async fn peer_score(&self, peer: MemberId) -> Option<f64> {
        self.call(|done| Message::PeerScore { peer, done })
            .await
            .ok()
            .flatten()
    }

    /// Addresses the node listens on. Waits for the first one to be bound.
    pub async fn listen_addrs(&self) -> Vec<Multiaddr> {
        self.call(|done| Message::ListenAddrs { done })
            .await
            .unwrap_or_default()
    }

    /// Dials an address (with or without `/p2p/<peer id>`). Returns once the
    /// dial has started; watch for [`NetworkEvent::PeerConnected`].
    pub async fn dial(&self, addr: Multiaddr) -> Result<()> {
        self.call(|done| Message::Dial { addr, done }).await?
    }

    /// Stops the actor and waits until its sockets are closed.
    /// Cuts this node off from exactly `peers` (closing connections and
    /// refusing new ones) and reconnects to anyone unblocked; returns once
    /// no connection to a blocked peer is left. Fault injection for
    /// partition tests; nodes expose it only when configured.
    pub async fn set_blocked(&self, peers: Vec<MemberId>) -> Result<()> {
        let blocked = self.call(|done| Message::SetBlocked { peers, done });
        match tokio::time::timeout(BLOCK_CLOSE_WAIT, blocked).await {
            Ok(answer) => answer?,
            Err(_) => Err(Error::Timeout),
        }
    }

    /// Closes the connections to `peer` so they are dialled afresh (static
    /// peers are redialled at once). For a connection whose gossip went
    /// silent: libp2p's gossipsub stops using a connection for good after a
    /// few failed substreams, while the connection itself stays up.
    pub fn reconnect(&self, peer: MemberId) {
        let _ = self.sender.try_send(Message::Reconnect { peer });
    }

    /// Lowers a member's score for what it sent that the application found
    /// bad (a payload that does not open or decode): as a malformed request
    /// does, so enough of it has the member's gossip ignored. Dropped if
    /// the actor is busy.
    pub fn penalise(&self, peer: MemberId) {
        let _ = self.sender.try_send(Message::Penalise { peer });
    }

    pub async fn shutdown(&self) {
        let _ = self.call(|done| Message::Shutdown { done }).await;
    }
}
