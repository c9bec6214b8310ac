//! What this node says to the other members of a context, and how it reads
//! what they say. It owns the context's key ring (sealing and opening by
//! key epoch), the frame sequence, the batch of admitted txs waiting to be
//! pushed, and the publisher task that sends everything in order through
//! the [`Transport`].

use std::collections::BTreeMap;
use std::sync::Arc;

use conclave_consensus::{ContextId, MemberId, SignedTx};
use ed25519_dalek::SigningKey;
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use super::seams::Transport;
use super::wire::Wire;
use crate::members::Membership;
use crate::metrics::Metrics;
use crate::seal::{ContextKey, Purpose};
use crate::store::Overlay;
use crate::store::{ContextRecord, Store};
use crate::Result;

/// Bytes of txs pushed in one message, at most (well under the network's
/// message limit).
const MAX_TX_BATCH_BYTES: usize = 512 << 10;

/// What came of opening a sealed payload.
pub(super) enum Opened {
    Plain(Vec<u8>),
    /// Sealed under a key epoch newer than any this node holds: it missed a
    /// rotation (the blocks carry its copy of the new key).
    NewerKey,
    /// Malformed, or its tag does not check (counted and logged).
    Dropped,
}

/// What goes to the context's publisher task, in order.
enum Outbound {
    /// A sealed consensus message, gossiped.
    Publish(Vec<u8>),
    /// Sealed txs, pushed straight to each member.
    Push(Vec<u8>),
    /// The members allowed on the topic changed.
    Members(Vec<MemberId>),
}

pub(super) struct Gossip {
    context: ContextId,
    label: String,
    metrics: Arc<Metrics>,
    transport: Option<Arc<dyn Transport>>,
    /// This node's context keys by key epoch.
    keys: BTreeMap<u64, ContextKey>,
    /// The key epoch of the next height: what this node seals under.
    seal_epoch: u64,
    /// Messages for the other members, in order (none while alone).
    outbound: Option<mpsc::Sender<Outbound>>,
    /// Sequence number of the next frame (starts at the clock, so a
    /// restarted node does not repeat its earlier frames).
    seq: u64,
    /// Admitted txs not pushed yet, and their encoded size.
    txs: Vec<SignedTx>,
    txs_bytes: usize,
}

impl Gossip {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        context: ContextId,
        metrics: Arc<Metrics>,
        transport: Option<Arc<dyn Transport>>,
        keys: Vec<ContextKey>,
        seal_epoch: u64,
        readers: &[MemberId],
        now_ms: u64,
    ) -> Self {
        let mut gossip = Self {
            context,
            label: context.to_hex(),
            metrics,
            transport,
            keys: keys.into_iter().map(|k| (k.epoch, k)).collect(),
            seal_epoch,
            outbound: None,
            seq: now_ms.saturating_mul(1_000),
            txs: Vec::new(),
            txs_bytes: 0,
        };
        gossip.readers_changed(readers);
        gossip
    }

    /// Whether anything this node says reaches another member.
    pub(super) fn has_peers(&self) -> bool {
        self.outbound.is_some()
    }

    /// The newest key epoch this node holds.
    pub(super) fn newest_epoch(&self) -> u64 {
        self.keys.keys().next_back().copied().unwrap_or(0)
    }

    pub(super) fn set_seal_epoch(&mut self, epoch: u64) {
        self.seal_epoch = epoch;
    }

    /// The members allowed on the topic changed: tell the publisher, or
    /// start one once there is someone to talk to.
    pub(super) fn readers_changed(&mut self, readers: &[MemberId]) {
        match (&self.outbound, &self.transport) {
            (Some(out), _) => {
                let _ = out.try_send(Outbound::Members(readers.to_vec()));
            }
            (None, Some(net)) if readers.len() > 1 => {
                self.outbound = Some(spawn_publisher(net.clone(), self.context, readers.to_vec()));
            }
            _ => {}
        }
    }

    /// Gossips a consensus message to the other members.
    pub(super) fn broadcast(&mut self, wire: &Wire) {
        self.send(wire, Outbound::Publish);
    }

    /// Queues an admitted tx for the other members; pushed in batches by
    /// [`Self::flush_txs`] at the end of the actor's turn, or on a busy
    /// node a little later (`pace::PushPace`).
    pub(super) fn queue_tx(&mut self, tx: SignedTx) {
        if self.outbound.is_none() {
            return;
        }
        self.txs_bytes += tx.encoded_len();
        self.txs.push(tx);
        if self.txs_bytes >= MAX_TX_BATCH_BYTES {
            self.flush_txs();
        }
    }

    /// Admitted txs queued for a push.
    pub(super) fn unpushed(&self) -> usize {
        self.txs.len()
    }

    /// Pushes the queued txs to the other members (straight to each, never
    /// ahead of consensus gossip).
    pub(super) fn flush_txs(&mut self) {
        if self.txs.is_empty() {
            return;
        }
        let txs = std::mem::take(&mut self.txs);
        self.txs_bytes = 0;
        self.send(&Wire::Txs(txs), Outbound::Push);
    }

    fn send(&mut self, wire: &Wire, lane: fn(Vec<u8>) -> Outbound) {
        self.seq = self.seq.wrapping_add(1);
        let Some(out) = &self.outbound else {
            return;
        };
        let Some(key) = self.sealing_key() else {
            warn!(context = %self.context, "no context key; gossip not sent");
            return;
        };
        let sealed = key.seal(&self.context, Purpose::Gossip, &wire.encode(self.seq));
        if out.try_send(lane(sealed)).is_err() {
            warn!(context = %self.context, "outbound gossip queue full; message dropped");
        }
    }

    /// The key this node seals with: the key epoch of the next height, or
    /// the newest it holds.
    fn sealing_key(&self) -> Option<&ContextKey> {
        self.keys
            .get(&self.seal_epoch)
            .or_else(|| self.keys.values().next_back())
    }

    /// Opens a sealed payload from `from`.
    pub(super) fn open(&self, from: MemberId, purpose: Purpose, data: &[u8]) -> Opened {
        let epoch = match crate::seal::envelope_epoch(data) {
            Ok(e) => e,
            Err(e) => {
                self.count_unopened("malformed");
                warn!(context = %self.context, member = %from, error = %e, "dropping unsealed payload");
                self.penalise(from);
                return Opened::Dropped;
            }
        };
        let Some(key) = self.keys.get(&epoch) else {
            self.count_unopened("unknown_key");
            debug!(context = %self.context, member = %from, epoch, "payload under a key this node does not hold");
            return if epoch > self.newest_epoch() {
                Opened::NewerKey
            } else {
                Opened::Dropped
            };
        };
        match key.open(&self.context, purpose, data) {
            Ok(plain) => Opened::Plain(plain),
            Err(e) => {
                self.count_unopened("tag");
                warn!(context = %self.context, member = %from, error = %e, "dropping a payload that does not open");
                self.penalise(from);
                Opened::Dropped
            }
        }
    }

    /// A member sent what no honest node sends (a payload that does not
    /// open under a key it holds, or does not decode): the network lowers
    /// its score, and enough of it has its gossip ignored. A payload under
    /// a key this node lacks is no fault (a rotation in flight).
    pub(super) fn penalise(&self, from: MemberId) {
        if let Some(net) = &self.transport {
            net.penalise(from);
        }
    }

    fn count_unopened(&self, reason: &str) {
        self.metrics
            .sealed_rejected_total
            .with_label_values(&[&self.label, reason])
            .inc();
    }

    /// Opens and keeps this node's copies of context keys handed over in
    /// committed blocks (at its invitation, and at each rotation).
    pub(super) fn pick_up_keys(
        &mut self,
        store: &Store,
        record: &ContextRecord,
        membership: &Membership,
        key: &SigningKey,
    ) -> Result<()> {
        let me = MemberId(key.verifying_key().to_bytes());
        let epochs: Vec<u64> = membership
            .key_epochs_of(&me)
            .into_iter()
            .filter(|e| !self.keys.contains_key(e))
            .collect();
        if epochs.is_empty() {
            return Ok(());
        }
        let state = store.state(record.id);
        let overlay = Overlay::new(&state, record.height);
        for epoch in epochs {
            let Some(sealed) = overlay.get(&crate::members::sealed_key_key(epoch, &me))? else {
                continue;
            };
            match crate::seal::open_key(key, &record.id, epoch, &sealed) {
                Ok(opened) => {
                    store.put_context_key(&record.id, &opened)?;
                    info!(context = %record.id, epoch, "received the context key");
                    self.keys.insert(epoch, opened);
                }
                Err(e) => {
                    warn!(context = %record.id, epoch, error = %e, "the context key sealed to this node does not open")
                }
            }
        }
        Ok(())
    }
}

/// Joins the context's topic and sends its outbound messages in order.
fn spawn_publisher(
    net: Arc<dyn Transport>,
    context: ContextId,
    members: Vec<MemberId>,
) -> mpsc::Sender<Outbound> {
    let (tx, mut rx) = mpsc::channel::<Outbound>(4096);
    tokio::spawn(async move {
        if let Err(e) = net.join(context, members).await {
            error!(%context, error = %e, "cannot join the context's topic");
            return;
        }
        while let Some(out) = rx.recv().await {
            let result = match out {
                Outbound::Publish(data) => net.publish(context, data).await,
                Outbound::Push(data) => net.push(context, data).await,
                Outbound::Members(members) => net.join(context, members).await,
            };
            match result {
                Ok(()) | Err(conclave_network::Error::NoPeers(_)) => {}
                Err(e) => debug!(%context, error = %e, "publish failed"),
            }
        }
    });
    tx
}
