//! Knobs of the network actor.

use std::net::Ipv4Addr;
use std::time::Duration;

use libp2p::multiaddr::Protocol;
use libp2p::Multiaddr;

/// Default limit for gossip payloads and responses: 4 MiB.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Configuration of one node's swarm.
#[derive(Clone, Debug)]
pub struct NetworkConfig {
    /// Address to listen on, e.g. `/ip4/0.0.0.0/tcp/26656`.
    pub listen: Multiaddr,
    /// Peers to keep connected, each with a `/p2p/<peer id>` suffix. They are
    /// dialled at start and redialled with backoff whenever disconnected.
    pub static_peers: Vec<Multiaddr>,
    /// Largest gossip payload and largest response, in bytes.
    pub max_message_bytes: usize,
    /// Largest request payload (excluding the context id), in bytes.
    pub max_request_bytes: usize,
    /// How long an outbound request waits for its response, and how long an
    /// inbound request waits for the application's reply.
    pub request_timeout: Duration,
    /// Capacity of the event channel to the application. When it is full,
    /// further events are dropped and counted.
    pub event_capacity: usize,
    /// Capacity of the command channel from [`crate::NetworkHandle`]s.
    pub command_capacity: usize,
    /// Inbound requests waiting for the application at once; more are refused
    /// as busy.
    pub max_pending_inbound_requests: usize,
    /// Gossipsub heartbeat.
    pub heartbeat_interval: Duration,
    /// Mesh degree bounds (`D_low`, `D`, `D_high`), tuned for small contexts.
    pub mesh: MeshParams,
    /// First redial delay of a disconnected static peer.
    pub redial_initial: Duration,
    /// Largest redial delay; the delay doubles up to it.
    pub redial_max: Duration,
    /// How long a connection without any active protocol is kept.
    pub idle_connection_timeout: Duration,
    /// Most established inbound connections; more are refused.
    pub max_incoming_connections: u32,
    /// Most connections being set up (Noise/Yamux) at once, inbound.
    pub max_pending_incoming: u32,
    /// Most established connections to one peer.
    pub max_connections_per_peer: u32,
}

/// Gossipsub mesh degrees.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MeshParams {
    /// `D_low`: graft more peers below this.
    pub n_low: usize,
    /// `D`: target mesh degree.
    pub n: usize,
    /// `D_high`: prune above this.
    pub n_high: usize,
}

impl Default for MeshParams {
    /// A context has a handful of members, so a mesh of one peer is healthy
    /// and everyone is reached in one or two hops.
    fn default() -> Self {
        Self {
            n_low: 1,
            n: 4,
            n_high: 8,
        }
    }
}

impl NetworkConfig {
    /// A config listening on `listen` with the defaults for everything else.
    pub fn new(listen: Multiaddr) -> Self {
        Self {
            listen,
            static_peers: Vec::new(),
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            max_request_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            request_timeout: Duration::from_secs(10),
            event_capacity: 1024,
            command_capacity: 256,
            max_pending_inbound_requests: 256,
            heartbeat_interval: Duration::from_millis(500),
            mesh: MeshParams::default(),
            redial_initial: Duration::from_millis(250),
            redial_max: Duration::from_secs(30),
            idle_connection_timeout: Duration::from_secs(300),
            max_incoming_connections: 256,
            max_pending_incoming: 64,
            max_connections_per_peer: 2,
        }
    }
}

impl Default for NetworkConfig {
    /// Listens on `127.0.0.1` on a port the OS picks.
    fn default() -> Self {
        Self::new(
            Multiaddr::empty()
                .with(Protocol::Ip4(Ipv4Addr::LOCALHOST))
                .with(Protocol::Tcp(0)),
        )
    }
}
