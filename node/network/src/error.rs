//! The crate's error type.

use conclave_consensus::{ContextId, MemberId};
use libp2p::{gossipsub, request_response, swarm::DialError, TransportError};

use crate::codec::RefuseReason;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything the network layer can report to its caller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The 32-byte secret is not a usable ed25519 secret key.
    #[error("invalid ed25519 secret key")]
    InvalidSecret,
    /// A member id is not a valid ed25519 public key, so no peer can own it.
    #[error("member id {0} is not a valid ed25519 public key")]
    InvalidMemberKey(MemberId),
    /// An address given to dial or as a static peer lacks a `/p2p/<peer id>` suffix.
    #[error("address {0} has no /p2p/<peer id> component")]
    MissingPeerId(libp2p::Multiaddr),
    /// The local node has not joined the context.
    #[error("context {0} is not joined")]
    NotJoined(ContextId),
    /// A publish found no connected peer subscribed to the context's topic.
    /// Nothing is queued; callers that gossip periodically may ignore it.
    #[error("no peer subscribed to context {0}")]
    NoPeers(ContextId),
    /// Gossipsub has already seen a message with the same id.
    #[error("duplicate message")]
    Duplicate,
    /// A payload exceeds the configured limit.
    #[error("payload of {size} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Size of the payload.
        size: usize,
        /// Configured maximum.
        max: usize,
    },
    /// The remote refused the request.
    #[error("request refused: {0}")]
    Refused(RefuseReason),
    /// The request got no answer within the configured timeout.
    #[error("request timed out")]
    Timeout,
    /// The request failed in transport (dial failure, connection closed,
    /// stream reset, protocol not supported, or a malformed answer).
    #[error("request failed: {0}")]
    Request(#[from] request_response::OutboundFailure),
    /// Gossipsub refused to publish for another reason.
    #[error("publish failed: {0}")]
    Publish(gossipsub::PublishError),
    /// Gossipsub refused the subscription.
    #[error("subscribe failed: {0}")]
    Subscribe(#[from] gossipsub::SubscriptionError),
    /// The gossipsub configuration was rejected.
    #[error("invalid gossipsub config: {0}")]
    GossipsubConfig(#[from] gossipsub::ConfigBuilderError),
    /// Setting up a component failed (gossipsub signing or peer scoring).
    #[error("setup failed: {0}")]
    Setup(String),
    /// The Noise handshake configuration could not be built.
    #[error("noise: {0}")]
    Noise(#[from] libp2p::noise::Error),
    /// Listening on the configured address failed.
    #[error("listen: {0}")]
    Listen(#[from] TransportError<std::io::Error>),
    /// Dialling failed immediately.
    #[error("dial: {0}")]
    Dial(#[from] DialError),
    /// [`crate::spawn`] was called outside a tokio runtime.
    #[error("not inside a tokio runtime")]
    NoRuntime,
    /// The network actor has stopped.
    #[error("network actor stopped")]
    Stopped,
}
