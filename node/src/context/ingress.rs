use std::sync::{Arc, Weak};

use conclave_consensus::mal::Timeout;
use conclave_consensus::{ContextId, Hash32, Height, MemberId, SignedTx, VerifiedTx};
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tokio::sync::mpsc;

use crate::exec::TxRejection;
use crate::mempool::MempoolError;

/// Why `tx_submit` refused a tx.
#[derive(Debug, Error, Clone)]
pub enum SubmitError {
    #[error("invalid tx: {0}")]
    Rejected(#[from] TxRejection),
    #[error(transparent)]
    Mempool(#[from] MempoolError),
    /// A submission refused for lack of room (the pool, or its sender's
    /// share of it, full): nothing changed, and room is likely after
    /// `retry_after`, once the context's next block has taken txs out.
    #[error("{refused}")]
    Full {
        refused: MempoolError,
        retry_after: std::time::Duration,
    },
    #[error("internal: {0}")]
    Internal(String),
    /// The node cannot write to its disk (full, failing): it takes no tx
    /// it could not keep.
    #[error("the node cannot write to its disk, so it takes no txs now: {0}")]
    Storage(String),
    #[error("context is shutting down")]
    Closed,
}

/// What the context actor is asked to do.
#[derive(Debug)]
pub enum Message {
    /// Txs submitted here were acknowledged beside the actor
    /// ([`super::submit::Intake`]): push them to the other members, and
    /// start a height if none runs.
    Acknowledged,
    TimeoutElapsed(Timeout, u64),
    /// A gossip message on the context's topic from member `from`.
    Gossip(conclave_consensus::MemberId, Vec<u8>),
    /// A message member `from`'s node pushed to this one (txs), or gossip
    /// held for a later height and replayed now.
    Pushed(conclave_consensus::MemberId, Vec<u8>),
    /// Time to re-gossip checkpoint signatures still below quorum.
    CheckpointTick,
    /// A wait of `pace` is over (a next height held for a fuller block,
    /// txs held back from a push): the run loop looks again.
    Paced,
    /// The answer to this node's sync request to a member (or its failure).
    Synced(Result<Vec<u8>, String>),
    /// Time to ask again after a failed sync request.
    RetrySync,
    /// The node's tip watch (`crate::tip_watch`) heard that member
    /// `.0` decided this context up to height `.1`: catch up from it if
    /// still behind.
    TipSeen(MemberId, Height),
    /// A connection to a member's node opened: compare tips with it.
    PeerConnected(MemberId),
    /// Time to try writing again after a storage fault.
    RetryStorage,
}

/// A committed block, as announced to subscribers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockEvent {
    pub context_id: ContextId,
    pub height: Height,
    pub hash: Hash32,
    pub state_root: Hash32,
    pub time_ms: u64,
    pub txs: Vec<Hash32>,
    /// The consensus round the block was decided in (0 unless a round
    /// failed: a missed proposal, lost votes, a timeout).
    #[serde(default)]
    pub round: u32,
}

/// The mailbox of a context actor: two lanes. Consensus (votes,
/// proposals, timers, catch-up) goes first; the bulk lane (txs pushed by
/// members, the wake for txs submitted here) is worked through in slices
/// between consensus messages, so a flood of txs never holds up a vote.
/// Txs submitted here, and questions about the pool, are answered beside
/// the actor, by its [`Intake`](super::submit::Intake).
#[derive(Clone, Debug)]
pub struct ContextHandle {
    pub id: ContextId,
    tx: mpsc::Sender<Message>,
    bulk: mpsc::Sender<Message>,
    fault: super::fault::FaultStatus,
    standing: Standing,
    /// The actor's pool: held by the actor, so that it (and the store it
    /// reads) goes with the actor, whoever still holds a handle.
    intake: Weak<super::submit::Intake>,
}

impl ContextHandle {
    pub(crate) fn new(
        id: ContextId,
        tx: mpsc::Sender<Message>,
        bulk: mpsc::Sender<Message>,
        fault: super::fault::FaultStatus,
        standing: Standing,
        intake: Weak<super::submit::Intake>,
    ) -> Self {
        Self {
            id,
            tx,
            bulk,
            fault,
            standing,
            intake,
        }
    }

    /// Why the context cannot write to disk now, if it cannot (see
    /// `storage.rs`); `node_health` reports it.
    pub fn storage_fault(&self) -> Option<String> {
        self.fault.get()
    }

    /// Admits a tx whose signature the caller checked; answered without
    /// the actor's turn (see [`super::submit::Intake::submit`]).
    pub async fn submit(&self, tx: VerifiedTx) -> Result<Hash32, SubmitError> {
        self.intake()?.submit(tx).await
    }

    /// Refuses a tx the pool would refuse anyway, before its signature is
    /// checked (see [`super::submit::Intake::refuses`]).
    pub fn refuses(&self, tx: &SignedTx) -> Result<(), SubmitError> {
        self.intake()?.refuses(tx)
    }

    /// The next nonce a member should use (above committed and pending).
    pub async fn next_nonce(&self, member: MemberId) -> Result<u64, SubmitError> {
        self.intake()?.next_nonce(&member)
    }

    pub async fn pending(&self) -> Result<usize, SubmitError> {
        Ok(self.intake()?.pending())
    }

    pub async fn is_pending(&self, hash: Hash32) -> Result<bool, SubmitError> {
        Ok(self.intake()?.is_pending(&hash))
    }

    /// The actor's pool, unless the actor stopped.
    fn intake(&self) -> Result<Arc<super::submit::Intake>, SubmitError> {
        match self.intake.upgrade() {
            Some(intake) if !self.tx.is_closed() => Ok(intake),
            _ => Err(SubmitError::Closed),
        }
    }

    /// Hands a gossip message (consensus) to the actor; drops it if the
    /// actor's queue is full (gossip is retransmitted, the queue must stay
    /// bounded).
    pub fn gossip(&self, from: MemberId, data: Vec<u8>) -> bool {
        self.tx.try_send(Message::Gossip(from, data)).is_ok()
    }

    /// Hands a member's push (txs) to the actor's bulk lane; drops it if
    /// that lane is full (the txs reach this node again in a proposal).
    pub fn pushed(&self, from: MemberId, data: Vec<u8>) -> bool {
        self.bulk.try_send(Message::Pushed(from, data)).is_ok()
    }

    /// Tells the actor that `member`'s node is reachable now (a restart or
    /// a healed partition), so it can catch up from it if behind.
    pub fn peer_connected(&self, member: MemberId) {
        let _ = self.tx.try_send(Message::PeerConnected(member));
    }

    /// Tells the actor that `member` decided the context up to `height`
    /// (the node's tip watch asked it).
    pub fn tip_seen(&self, member: MemberId, height: Height) {
        let _ = self.tx.try_send(Message::TipSeen(member, height));
    }

    /// The context's committed tip and who may read it, as its actor last
    /// set them.
    pub fn standing(&self) -> &Standing {
        &self.standing
    }
}

/// What the node reads of a context without waiting for its actor's turn
/// (the node's tip watch, `crate::tip_watch`): its committed tip, whether
/// a height is under way (running, or held for a fuller block), who may
/// read it, and whether this node still follows it. Written by the actor
/// as they change.
#[derive(Clone, Debug)]
pub struct Standing(Arc<parking_lot::RwLock<StandingNow>>);

#[derive(Debug)]
struct StandingNow {
    tip: Height,
    under_way: bool,
    following: bool,
    readers: Arc<[MemberId]>,
    /// The watch's checks of this context.
    watch: super::watch::Watch,
}

impl Standing {
    pub(super) fn new(tip: Height, readers: &[MemberId]) -> Self {
        Self(Arc::new(parking_lot::RwLock::new(StandingNow {
            tip,
            under_way: false,
            following: true,
            readers: readers.into(),
            watch: Default::default(),
        })))
    }

    /// The committed tip and the members who may read the context, while
    /// no height is under way and this node follows it.
    #[cfg(test)]
    pub(crate) fn idle(&self) -> Option<(Height, Arc<[MemberId]>)> {
        let now = self.0.read();
        (!now.under_way && now.following).then(|| (now.tip, now.readers.clone()))
    }

    /// A round of the tip watch at `now`: if the context is idle and due
    /// for a check ([`super::watch::Watch::due`]), its tip, the members
    /// who may read it and the checks made at that tip before.
    pub fn due(&self, now: std::time::Instant) -> Option<(Height, Arc<[MemberId]>, u32)> {
        let mut standing = self.0.write();
        if standing.under_way || !standing.following {
            standing.watch.busy();
            return None;
        }
        let tip = standing.tip;
        let checks = standing.watch.due(now, tip)?;
        Some((tip, standing.readers.clone(), checks))
    }

    /// The committed tip, to tell `member` only if it may read the context.
    pub fn tip_for(&self, member: &MemberId) -> Option<Height> {
        let now = self.0.read();
        (now.following && now.readers.contains(member)).then_some(now.tip)
    }

    pub(super) fn set_tip(&self, tip: Height) {
        self.0.write().tip = tip;
    }

    pub(super) fn set_under_way(&self, under_way: bool) {
        self.0.write().under_way = under_way;
    }

    pub(super) fn set_readers(&self, readers: &[MemberId], following: bool) {
        let mut now = self.0.write();
        now.readers = readers.into();
        now.following = following;
    }
}
