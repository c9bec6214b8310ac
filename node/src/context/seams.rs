//! The context actor's two seams to the world outside its process: the
//! wall clock and the network. Production passes [`SystemClock`] and the
//! libp2p [`NetworkHandle`]; tests pass a clock of their own and an
//! in-memory bus (`context::sim`), so that the actor runs without sockets.
//!
//! Timers and elapsed time use tokio's clock (`tokio::time`), which a test
//! runtime can pause and advance.

use std::future::Future;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

use conclave_consensus::{ContextId, MemberId};
use conclave_network::NetworkHandle;

/// A future the seams return (boxed: the transport is a trait object).
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Wall-clock time, for block times and their checks.
pub trait Clock: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn unix_ms(&self) -> u64;
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }
}

/// What a context actor needs from the network: the context's topic (its
/// members, gossip on it), pushes straight to each member, a request to
/// one member (catch-up), and a fresh connection to a silent one.
pub trait Transport: Send + Sync + 'static {
    /// Allows `members` on the context's topic (joining it first if needed).
    fn join(
        &self,
        context: ContextId,
        members: Vec<MemberId>,
    ) -> Pending<'_, conclave_network::Result<()>>;
    /// Gossips `data` to the context's members (relayed).
    fn publish(
        &self,
        context: ContextId,
        data: Vec<u8>,
    ) -> Pending<'_, conclave_network::Result<()>>;
    /// Sends `data` straight to each connected member of the context.
    fn push(&self, context: ContextId, data: Vec<u8>) -> Pending<'_, conclave_network::Result<()>>;
    /// Asks `peer` for something about the context; its answer.
    fn request(
        &self,
        peer: MemberId,
        context: ContextId,
        data: Vec<u8>,
    ) -> Pending<'_, conclave_network::Result<Vec<u8>>>;
    /// Re-establishes the connection to `peer` (rate-limited by the
    /// network layer).
    fn reconnect(&self, peer: MemberId);
    /// Lowers `peer`'s standing for a payload that does not open or decode.
    fn penalise(&self, peer: MemberId);
}

impl Transport for NetworkHandle {
    fn join(
        &self,
        context: ContextId,
        members: Vec<MemberId>,
    ) -> Pending<'_, conclave_network::Result<()>> {
        Box::pin(NetworkHandle::join(self, context, members))
    }

    fn publish(
        &self,
        context: ContextId,
        data: Vec<u8>,
    ) -> Pending<'_, conclave_network::Result<()>> {
        Box::pin(NetworkHandle::publish(self, context, data))
    }

    fn push(&self, context: ContextId, data: Vec<u8>) -> Pending<'_, conclave_network::Result<()>> {
        Box::pin(async move { NetworkHandle::push(self, context, data).await.map(|_| ()) })
    }

    fn request(
        &self,
        peer: MemberId,
        context: ContextId,
        data: Vec<u8>,
    ) -> Pending<'_, conclave_network::Result<Vec<u8>>> {
        Box::pin(NetworkHandle::request(self, peer, context, data))
    }

    fn reconnect(&self, peer: MemberId) {
        NetworkHandle::reconnect(self, peer)
    }

    fn penalise(&self, peer: MemberId) {
        NetworkHandle::penalise(self, peer)
    }
}
