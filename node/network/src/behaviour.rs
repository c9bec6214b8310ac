//! The composed libp2p behaviour and its gossipsub tuning.
//!
//! Two lanes carry a context's messages. Gossip (gossipsub) is for what
//! must reach every member even through others: consensus. Gossipsub sends
//! to a peer through one queue and one substream, in order, so a vote
//! published behind megabytes of txs waits behind them; bulk data (txs)
//! therefore takes the push lane instead: a stream of its own straight to
//! each connected member (yamux interleaves the streams of a connection,
//! so gossip is not held up). See `lanes`.
//!
//! Gossipsub signs every message with the member's key (`Strict`), ids a
//! message by the hash of its topic and data, and hands each message to the
//! actor for manual validation before forwarding it. Peer scoring is on: a
//! rejected message costs its propagator through the invalid-deliveries
//! penalty (P4) of the context's topic, and malformed requests lower the
//! application-specific score (P5).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use libp2p::connection_limits::{self, ConnectionLimits};
use libp2p::gossipsub::{
    self, MessageAuthenticity, MessageId, PeerScoreParams, PeerScoreThresholds, TopicScoreParams,
    ValidationMode,
};
use libp2p::identity::Keypair;
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{identify, ping};
use sha2::{Digest, Sha256};

use crate::codec::{Codec, PROTOCOL};
use crate::config::NetworkConfig;
use crate::error::{Error, Result};

/// Identify protocol version; peers on another version are still served.
pub const IDENTIFY_PROTOCOL: &str = "/conclave/id/1";

/// Room for gossipsub's envelope (signature, sequence number, topic, framing)
/// on top of the payload limit.
const GOSSIP_ENVELOPE_OVERHEAD: usize = 64 * 1024;

/// Application-specific score per refused or malformed request, multiplied by
/// [`PeerScoreParams::app_specific_weight`] (10).
pub(crate) const REQUEST_STRIKE_SCORE: f64 = -1.0;

/// Every protocol a Conclave node speaks.
#[derive(NetworkBehaviour)]
pub(crate) struct Behaviour {
    /// Peers cut off on purpose (fault injection in tests): no connection
    /// to or from them is allowed while listed.
    pub(crate) blocked: libp2p::allow_block_list::Behaviour<libp2p::allow_block_list::BlockedPeers>,
    pub(crate) limits: connection_limits::Behaviour,
    pub(crate) gossipsub: gossipsub::Behaviour,
    pub(crate) request: request_response::Behaviour<Codec>,
    /// The push and direct lanes: one long-lived stream per member and
    /// lane (`lanes`). Pushes are bulk (txs) on streams of their own, so
    /// bulk traffic never queues ahead of gossip; direct messages are
    /// consensus sent straight to each connected member besides gossip:
    /// gossipsub's link to a member can die while the connection lives
    /// (seen after a member restarts), and a context of three members then
    /// stops; a stream of its own does not share that fate.
    pub(crate) streams: libp2p_stream::Behaviour,
    pub(crate) identify: identify::Behaviour,
    pub(crate) ping: ping::Behaviour,
}

impl Behaviour {
    pub(crate) fn new(keypair: &Keypair, cfg: &NetworkConfig) -> Result<Self> {
        let mut gossipsub =
            gossipsub::Behaviour::new(MessageAuthenticity::Signed(keypair.clone()), gossip(cfg)?)
                .map_err(|e| Error::Setup(e.to_string()))?;
        gossipsub
            .with_peer_score(score_params(), score_thresholds())
            .map_err(Error::Setup)?;

        let codec = Codec {
            max_request: cfg.max_request_bytes,
            max_response: cfg.max_message_bytes,
        };
        let request = request_response::Behaviour::with_codec(
            codec,
            [(PROTOCOL, ProtocolSupport::Full)],
            request_response::Config::default().with_request_timeout(cfg.request_timeout),
        );
        let identify = identify::Behaviour::new(identify::Config::new(
            IDENTIFY_PROTOCOL.to_owned(),
            keypair.public(),
        ));
        let limits = ConnectionLimits::default()
            .with_max_established_incoming(Some(cfg.max_incoming_connections))
            .with_max_pending_incoming(Some(cfg.max_pending_incoming))
            .with_max_established_per_peer(Some(cfg.max_connections_per_peer));
        Ok(Self {
            blocked: Default::default(),
            limits: connection_limits::Behaviour::new(limits),
            gossipsub,
            request,
            streams: libp2p_stream::Behaviour::new(),
            identify,
            ping: ping::Behaviour::new(ping::Config::new()),
        })
    }
}

/// Message id: SHA-256 of the topic and the data, so the same payload sent
/// twice is delivered once, whoever signs it.
fn message_id(message: &gossipsub::Message) -> MessageId {
    let mut hasher = Sha256::new();
    hasher.update(message.topic.as_str().as_bytes());
    hasher.update([0u8]);
    hasher.update(&message.data);
    MessageId::from(hasher.finalize().to_vec())
}

fn gossip(cfg: &NetworkConfig) -> Result<gossipsub::Config> {
    let mesh = cfg.mesh;
    Ok(gossipsub::ConfigBuilder::default()
        .validation_mode(ValidationMode::Strict)
        .validate_messages()
        .message_id_fn(message_id)
        .max_transmit_size(
            cfg.max_message_bytes
                .saturating_add(GOSSIP_ENVELOPE_OVERHEAD),
        )
        .heartbeat_interval(cfg.heartbeat_interval)
        .mesh_n_low(mesh.n_low)
        .mesh_n(mesh.n)
        .mesh_n_high(mesh.n_high)
        // Outbound quotas guard big public meshes against eclipse; a context
        // of a few known members has nothing to gain and would starve.
        .mesh_outbound_min(0)
        .gossip_lazy(mesh.n)
        // Send our own messages to every subscribed peer, not only the mesh,
        // so a publish reaches members before the first heartbeat.
        .flood_publish(true)
        .duplicate_cache_time(Duration::from_secs(120))
        .build()?)
}

/// Score parameters per context topic.
///
/// Deliveries are sparse in a private group, so the mesh-delivery penalties
/// (P3, P3b) that assume steady traffic are off; what remains is a small
/// reward for time in mesh and first deliveries, and a steep, slowly decaying
/// penalty for invalid messages (P4 is the square of the count times
/// `-10`): one rejected message drops a peer to the gossip threshold, three
/// drop it past the graylist threshold.
pub(crate) fn topic_score_params() -> TopicScoreParams {
    TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 100.0,
        first_message_deliveries_weight: 0.5,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 20.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: -10.0,
        invalid_message_deliveries_decay: 0.99,
        ..TopicScoreParams::default()
    }
}

fn score_params() -> PeerScoreParams {
    // Every member of a local testnet shares one address; colocation is no
    // signal of a Sybil on loopback.
    let loopback: HashSet<IpAddr> = [
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(Ipv6Addr::LOCALHOST),
    ]
    .into_iter()
    .collect();
    PeerScoreParams {
        topic_score_cap: 50.0,
        ip_colocation_factor_whitelist: loopback,
        ..PeerScoreParams::default()
    }
}

fn score_thresholds() -> PeerScoreThresholds {
    PeerScoreThresholds {
        gossip_threshold: -10.0,
        publish_threshold: -50.0,
        graylist_threshold: -80.0,
        accept_px_threshold: 10.0,
        opportunistic_graft_threshold: 5.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_builds_and_scores_validate() {
        let keypair = Keypair::generate_ed25519();
        assert!(Behaviour::new(&keypair, &NetworkConfig::default()).is_ok());
        assert!(topic_score_params().validate().is_ok());
        assert!(score_params().validate().is_ok());
        assert!(score_thresholds().validate().is_ok());
    }

    #[test]
    fn message_id_depends_on_topic_and_data_only() {
        let msg = |topic: &str, data: &[u8], seq| gossipsub::Message {
            source: None,
            data: data.to_vec(),
            sequence_number: Some(seq),
            topic: gossipsub::TopicHash::from_raw(topic),
        };
        assert_eq!(
            message_id(&msg("a", b"x", 1)),
            message_id(&msg("a", b"x", 2))
        );
        assert_ne!(
            message_id(&msg("a", b"x", 1)),
            message_id(&msg("b", b"x", 1))
        );
        assert_ne!(
            message_id(&msg("a", b"x", 1)),
            message_id(&msg("a", b"y", 1))
        );
    }
}
