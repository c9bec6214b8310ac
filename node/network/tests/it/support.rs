//! Helpers: start nodes, connect them, wait on conditions.

use std::future::Future;
use std::time::Duration;

use conclave_consensus::{ContextId, MemberId};
use conclave_network::{spawn, Multiaddr, NetworkConfig, NetworkEvent, NetworkHandle};
use libp2p::multiaddr::Protocol;
use tokio::sync::mpsc;

/// Upper bound of any single wait; conditions normally hold within ms.
pub const LIMIT: Duration = Duration::from_secs(15);

pub struct Node {
    pub handle: NetworkHandle,
    pub events: mpsc::Receiver<NetworkEvent>,
    pub member: MemberId,
    pub secret: [u8; 32],
    /// First listen address with `/p2p/<peer id>`.
    pub addr: Multiaddr,
}

/// A config for fast tests: short heartbeat, timeouts and redial backoff.
pub fn cfg() -> NetworkConfig {
    NetworkConfig {
        heartbeat_interval: Duration::from_millis(100),
        request_timeout: Duration::from_secs(3),
        redial_initial: Duration::from_millis(50),
        redial_max: Duration::from_millis(400),
        ..NetworkConfig::default()
    }
}

pub fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

pub async fn start(seed: u8, cfg: NetworkConfig) -> Node {
    init_tracing();
    let secret = [seed; 32];
    let (handle, events) = spawn(cfg, secret).unwrap();
    let listen = within("listen address", handle.listen_addrs()).await;
    let peer = conclave_network::peer_id_of(&handle.local_member()).unwrap();
    let addr = listen[0].clone().with(Protocol::P2p(peer));
    Node {
        member: handle.local_member(),
        handle,
        events,
        secret,
        addr,
    }
}

pub fn ctx(n: u8) -> ContextId {
    ContextId([n; 32])
}

/// Awaits `fut`, failing the test after [`LIMIT`].
pub async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    match tokio::time::timeout(LIMIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// Re-checks `cond` until it holds, failing the test after [`LIMIT`].
pub async fn wait_until<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(what, async {
        while !cond().await {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
}

/// Dials `b` from `a` and waits until each sees the other.
pub async fn connect(a: &Node, b: &Node) {
    a.handle.dial(b.addr.clone()).await.unwrap();
    wait_until("connection", || async {
        a.handle.peers().await.contains(&b.member) && b.handle.peers().await.contains(&a.member)
    })
    .await;
}

/// Waits until `node` knows every one of `peers` is subscribed to `context`.
pub async fn wait_subscribed(node: &Node, context: ContextId, peers: &[MemberId]) {
    wait_until("topic subscriptions", || async {
        let known = node.handle.topic_peers(context).await;
        peers.iter().all(|p| known.contains(p))
    })
    .await;
}

/// The next gossip message `node` emits, skipping other events.
pub async fn next_message(node: &mut Node) -> (ContextId, MemberId, Vec<u8>) {
    next_event(node, "a gossip message", |event| match event {
        NetworkEvent::Message {
            context,
            from,
            data,
        } => Some((context, from, data)),
        _ => None,
    })
    .await
}

/// The next push `node` emits, skipping other events.
pub async fn next_push(node: &mut Node) -> (ContextId, MemberId, Vec<u8>) {
    next_event(node, "a push", |event| match event {
        NetworkEvent::Pushed {
            context,
            from,
            data,
        } => Some((context, from, data)),
        _ => None,
    })
    .await
}

/// The first event `node` emits that `pick` keeps, within [`LIMIT`].
async fn next_event<T>(node: &mut Node, what: &str, pick: impl Fn(NetworkEvent) -> Option<T>) -> T {
    within(what, async {
        loop {
            match node.events.recv().await {
                Some(event) => {
                    if let Some(found) = pick(event) {
                        return found;
                    }
                }
                None => panic!("event channel closed"),
            }
        }
    })
    .await
}

/// Gossip messages already queued at `node` (non-blocking).
pub fn queued_messages(node: &mut Node) -> Vec<(ContextId, MemberId, Vec<u8>)> {
    let mut out = Vec::new();
    while let Ok(event) = node.events.try_recv() {
        if let NetworkEvent::Message {
            context,
            from,
            data,
        } = event
        {
            out.push((context, from, data));
        }
    }
    out
}
