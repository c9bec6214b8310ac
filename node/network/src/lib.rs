//! Conclave's peer-to-peer layer.
//!
//! One libp2p swarm per node (TCP, Noise, Yamux, identify, ping), whose
//! identity is the member's ed25519 key, so a peer id is a [`MemberId`]
//! (`peer_id_of`, `member_of`). A node hosts many contexts; each joined
//! context is a gossipsub topic (`conclave/ctx/<hex>`) on which only the
//! context's members may publish, and requests name the context they are
//! about so the responder can refuse non-members. Bulk data takes a lane of
//! its own ([`NetworkHandle::push`]): one-way messages straight to each
//! connected member, so it never queues ahead of gossip (`behaviour`).
//!
//! The crate is one actor, in commonware's shape:
//!
//! - [`config`]: [`NetworkConfig`], the knobs;
//! - `ingress`: [`NetworkHandle`] (the mailbox) and [`NetworkEvent`]s;
//! - `actor`: [`spawn`] and the swarm loop; `events`: swarm event handling
//!   (gossip validation, inbound requests, connections);
//! - `behaviour`: the composed libp2p behaviour and the gossipsub tuning for
//!   small groups (mesh degree 1..8, flood publish, peer scoring);
//! - [`codec`]: the length-limited request-response (and push) wire format;
//! - `lanes`: the push and direct lanes, one long-lived stream per member
//!   and lane, written and read by tasks of their own;
//! - `redial`: backoff for static peers; [`metrics`]: counters.
//!
//! What reaches the application has been checked: gossip is signed by its
//! source (`Strict`) and that source is a member of the context per the last
//! [`NetworkHandle::join`]; anything else is rejected, which penalises the
//! peer that relayed it in gossipsub's score. Oversized or malformed frames
//! are dropped and penalised, never a panic. Queues are bounded: when the
//! application falls behind, events are dropped and counted.

// Tests fail by panicking; production code must not unwrap.
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

mod actor;
mod behaviour;
pub mod codec;
pub mod config;
mod error;
mod events;
mod identity;
mod ingress;
mod lanes;
pub mod metrics;
mod recent;
mod redial;

/// The scope of node-to-node requests that are about no joined context
/// (a member's identity, a genesis offered to a member). No genesis hashes
/// to it. Any member identity may send such a request; the application
/// decides what to answer.
pub const NODE_SCOPE: conclave_consensus::ContextId = conclave_consensus::ContextId([0u8; 32]);

pub use actor::spawn;
pub use codec::RefuseReason;
pub use config::{MeshParams, NetworkConfig};
pub use error::{Error, Result};
pub use identity::{
    keypair_from_secret, member_from_secret, member_of, peer_id_of, peer_in_addr, topic_of,
};
pub use ingress::{NetworkEvent, NetworkHandle};
pub use libp2p::{Multiaddr, PeerId};
pub use metrics::MetricsSnapshot;
