//! Checkpoints on the node side: which heights are checkpoints, collecting
//! members' BLS signatures into aggregates, storing them, and showing them
//! (with the actions they commit) over RPC.
//!
//! - [`collector`]: the pure signature-collection state machine.
//! - [`Checkpoints`]: the collector of one context with its I/O (store,
//!   metrics); the context actor calls it on commit, on gossip and on a
//!   timer, and gossips what it returns.
//! - [`view`]: checkpoints and actions as the RPC shows them, each checked
//!   with `conclave_checkpoint::Verifier`.
//!
//! A height `h` is a checkpoint height iff `h % checkpoint_interval == 0`
//! or the block at `h` emitted at least one action. Its payload (one per
//! anchor domain, docs/checkpoint.md) carries that block's state root and
//! its actions root, so an action is checkpointed at its own height and
//! never waits for a later block.

pub mod collector;
pub mod view;

use std::sync::Arc;

use conclave_checkpoint::Domain;
use conclave_checkpoint::{ChainKind, SecretKey};
use conclave_consensus::{BlockHeader, ContextId, Height, MemberId};
use tracing::{debug, info, warn};

pub use collector::{Collector, Params, Refusal, Share};

use crate::anchors::{Anchors, MAX_ANCHORS};
use crate::members::bls_set;
use crate::members::Membership;
use crate::metrics::Metrics;
use crate::store::{AnchorDomain, ContextRecord, Genesis, Store};

/// Largest checkpoint interval accepted.
pub const MAX_INTERVAL: u64 = 1_000_000;
/// Recent heights whose unfinished checkpoints a restarted node resumes.
const RESUME_WINDOW: u64 = 64;

/// A context's checkpoint parameters from its genesis; refuses anchors
/// that do not decode, repeat or are unanchored, and intervals outside
/// `1..=MAX_INTERVAL`.
pub fn params(id: ContextId, genesis: &Genesis) -> Result<Params, String> {
    params_for(id, genesis, &genesis.anchors, &genesis.members, 0)
}

/// [`params`] for the member set `members` (sorted by id) of set epoch
/// `epoch`, after membership changes, and the anchors in force
/// (`crate::anchors::Anchors::at`: the genesis' and those added since).
pub fn params_for(
    id: ContextId,
    genesis: &Genesis,
    anchors: &[AnchorDomain],
    members: &[crate::store::MemberInfo],
    epoch: u64,
) -> Result<Params, String> {
    let set = bls_set(members)?;
    if anchors.len() > MAX_ANCHORS {
        return Err(format!("more than {MAX_ANCHORS} anchors"));
    }
    let mut domains = Vec::with_capacity(anchors.len().max(1));
    for a in anchors {
        let d = Domain::decode(&a.0).map_err(|e| format!("anchor {}: {e}", hex::encode(a.0)))?;
        if d.kind == ChainKind::Unanchored {
            return Err("the unanchored domain is not an anchor".into());
        }
        if domains.contains(&d) {
            return Err(format!("anchor {} is named twice", hex::encode(a.0)));
        }
        domains.push(d);
    }
    if domains.is_empty() {
        domains.push(Domain::unanchored());
    }
    if !(1..=MAX_INTERVAL).contains(&genesis.checkpoint_interval) {
        return Err(format!(
            "checkpoint interval {} outside 1..={MAX_INTERVAL}",
            genesis.checkpoint_interval
        ));
    }
    Ok(Params {
        context: id,
        members: members.iter().map(|m| m.id).collect(),
        next_members_hash: set.hash(),
        set,
        domains,
        interval: genesis.checkpoint_interval,
        epoch,
    })
}

/// The checkpoint parameters of `height`: the member set in force there,
/// the anchors in force there, and, at the last height of an epoch, the
/// announcement of the next set. `membership` must know the sets of
/// `height` and `height + 1` (it does once `height - 1` is committed);
/// `None` if it no longer holds the set of `height`.
pub fn params_at(
    id: ContextId,
    genesis: &Genesis,
    membership: &Membership,
    anchors: &Anchors,
    height: Height,
) -> Result<Option<Params>, String> {
    if membership.sets[0].from > height {
        return Ok(None);
    }
    let set = membership.at(height);
    let next = membership.at(Height(height.0.saturating_add(1)));
    let mut params = params_for(
        id,
        genesis,
        &anchors.at(genesis, height),
        &set.infos(),
        set.epoch,
    )?;
    if next.epoch != set.epoch {
        params.next_members_hash = bls_set(&next.infos())?.hash();
    }
    Ok(Some(params))
}

/// Parses an anchor: `evm:<chain id>:<0x address>`,
/// `near:<network>:<account>`, or the 41-byte domain in hex.
pub fn parse_anchor(spec: &str) -> Result<AnchorDomain, String> {
    let bad = |why: &str| format!("anchor {spec:?}: {why}");
    let mut parts = spec.splitn(3, ':');
    let domain = match (parts.next(), parts.next(), parts.next()) {
        (Some("evm"), Some(chain), Some(addr)) => {
            let chain_id: u64 = chain.parse().map_err(|_| bad("chain id is not a number"))?;
            if chain_id == 0 {
                return Err(bad("chain id 0"));
            }
            let bytes = hex::decode(addr.strip_prefix("0x").unwrap_or(addr))
                .map_err(|_| bad("address is not hex"))?;
            let addr: [u8; 20] = bytes
                .try_into()
                .map_err(|_| bad("an EVM address is 20 bytes"))?;
            Domain::evm(chain_id, addr)
        }
        (Some("near"), Some(network), Some(account)) => {
            Domain::near(network, account).map_err(|e| bad(&e.to_string()))?
        }
        (Some(hex_domain), None, None) => {
            let bytes = hex::decode(hex_domain.strip_prefix("0x").unwrap_or(hex_domain))
                .map_err(|_| bad("expected evm:<chain id>:<address>, near:<network>:<account> or 41 bytes of hex"))?;
            Domain::decode(&bytes).map_err(|e| bad(&e.to_string()))?
        }
        _ => {
            return Err(bad(
                "expected evm:<chain id>:<address> or near:<network>:<account>",
            ))
        }
    };
    if domain.kind == ChainKind::Unanchored {
        return Err(bad("the unanchored domain is not an anchor"));
    }
    Ok(AnchorDomain(domain.encode()))
}

/// The checkpoints of one context: its collector, the member sets and
/// anchors that say who signs each height, the store and metrics.
pub struct Checkpoints {
    id: ContextId,
    genesis: Genesis,
    membership: Membership,
    anchors: Anchors,
    /// Parameters computed lately (each checks every member's PoP), newest
    /// last, with the epochs and anchors they were computed for.
    cache: Vec<(ParamsKey, Arc<Params>)>,
    collector: Collector,
    store: Store,
    metrics: Arc<Metrics>,
    label: String,
    max_resends: u32,
    latest: u64,
    /// Where stored checkpoints are announced (RPC subscribers).
    events: Option<tokio::sync::broadcast::Sender<CheckpointEvent>>,
}

/// What a height's [`Params`] depend on.
#[derive(PartialEq, Eq)]
struct ParamsKey {
    epoch: u64,
    next_epoch: u64,
    anchors: Vec<AnchorDomain>,
}

/// Parameter sets kept by [`Checkpoints`], at most.
const PARAMS_CACHE: usize = 4;

impl Checkpoints {
    /// Sets up collection for `record`'s context, whose member sets and
    /// added anchors are `membership` and `anchors` (as of its tip),
    /// resuming the unfinished checkpoints of its recent heights.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        metrics: Arc<Metrics>,
        record: &ContextRecord,
        membership: Membership,
        anchors: Anchors,
        me: MemberId,
        key: SecretKey,
        max_resends: u32,
    ) -> crate::Result<Self> {
        let resume_from = record.height.0.saturating_sub(RESUME_WINDOW) + 1;
        let collector = Collector::new(me, key, resume_from.saturating_sub(1));
        let latest = store
            .latest_checkpoint(&record.id)?
            .map_or(0, |c| c.height.0);
        let mut this = Self {
            id: record.id,
            genesis: record.genesis.clone(),
            membership,
            anchors,
            cache: Vec::new(),
            collector,
            store,
            metrics,
            label: record.id.to_hex(),
            max_resends,
            latest,
            events: None,
        };
        let next = Height(record.height.0 + 1);
        if let Some(p) = this.params_at(next) {
            if p.members.contains(&me) && !this.collector.signs(&p) {
                warn!(context = %record.id, "this node's BLS key is not the one its member set holds; it does not sign checkpoints");
            }
        }
        for h in resume_from..=record.height.0 {
            let id = record.id;
            if this.store.checkpoint(&id, Height(h))?.is_some() {
                continue;
            }
            let Some(block) = this.store.block(&id, Height(h))? else {
                continue;
            };
            let actions = this.store.actions_at(&id, Height(h))?.len();
            // Gossip goes out with the first resend.
            let _ = this.on_commit(&block.header, actions);
        }
        this.set_gauges();
        Ok(this)
    }

    /// Announces each checkpoint it stores on `events`.
    pub fn announcing_to(
        mut self,
        events: tokio::sync::broadcast::Sender<CheckpointEvent>,
    ) -> Self {
        self.events = Some(events);
        self
    }

    /// The member sets or anchors changed (as of the committed tip).
    pub fn update(&mut self, membership: &Membership, anchors: &Anchors) {
        self.membership = membership.clone();
        self.anchors = anchors.clone();
    }

    /// The parameters `height` is signed under (cached: computing them
    /// checks every member's proof of possession). `None`, logged, when the
    /// sets no longer say (a height older than the oldest set kept).
    fn params_at(&mut self, height: Height) -> Option<Arc<Params>> {
        if self.membership.sets[0].from > height {
            debug!(context = %self.id, height = height.0, "no member set known for this height");
            return None;
        }
        let key = ParamsKey {
            epoch: self.membership.at(height).epoch,
            next_epoch: self.membership.at(Height(height.0.saturating_add(1))).epoch,
            anchors: self.anchors.at(&self.genesis, height),
        };
        if let Some((_, p)) = self.cache.iter().find(|(k, _)| *k == key) {
            return Some(p.clone());
        }
        match params_at(
            self.id,
            &self.genesis,
            &self.membership,
            &self.anchors,
            height,
        ) {
            Ok(Some(p)) => {
                let p = Arc::new(p);
                if self.cache.len() >= PARAMS_CACHE {
                    self.cache.remove(0);
                }
                self.cache.push((key, p.clone()));
                Some(p)
            }
            Ok(None) => None,
            Err(e) => {
                warn!(context = %self.id, height = height.0, error = %e, "no checkpoint parameters for this height");
                None
            }
        }
    }

    /// The node committed the block of `header`, whose outbox holds
    /// `actions` actions. Returns the share to gossip, if any.
    pub fn on_commit(&mut self, header: &BlockHeader, actions: usize) -> Option<Share> {
        let params = self.params_at(header.height)?;
        if params.announces() && params.is_checkpoint_height(header.height.0, actions) {
            info!(context = %self.id, height = header.height.0, epoch = params.epoch,
                "this height's checkpoint announces the next member set");
        }
        let step = self.collector.on_commit(
            header.height.0,
            header.state_root,
            header.actions_root,
            actions,
            params,
        );
        self.apply(step)
    }

    /// A member's share arrived on the context's topic.
    pub fn on_share(&mut self, from: MemberId, tip: Height, share: Share) -> Option<Share> {
        let height = share.height;
        // Parameters only for heights the collector would buffer: a share
        // claiming a far-away height (up to u64::MAX) is refused cheaply.
        let ahead = (height > tip.0 && height <= tip.0.saturating_add(collector::MAX_AHEAD))
            .then(|| self.params_at(Height(height)))
            .flatten();
        match self.collector.on_share(share, ahead.as_deref()) {
            Ok(step) => self.apply(step),
            Err(e) => {
                warn!(context = %self.id, member = %from, height, error = %e, "checkpoint share refused");
                None
            }
        }
    }

    /// Whether a resend timer is needed (a checkpoint of ours is below
    /// quorum, or shares wait for members that have not signed). Idle
    /// contexts arm no timer.
    pub fn wants_tick(&self) -> bool {
        self.collector.has_unfinished(self.max_resends)
    }

    /// The resend timer fired: checkpoints whose shares make a quorum but
    /// wait for members that have not signed complete with what they have;
    /// returns this node's shares of checkpoints still below quorum.
    pub fn on_tick(&mut self) -> Vec<Share> {
        for step in self.collector.settle_waiting() {
            // Settling gossips nothing.
            let _ = self.apply(step);
        }
        self.collector.resend(self.max_resends)
    }

    fn apply(&mut self, step: collector::Step) -> Option<Share> {
        for (height, member, error) in &step.refused {
            warn!(context = %self.id, %member, height, %error, "checkpoint share refused when its quorum was checked");
        }
        if let Some((rec, first)) = step.completed {
            let ctx = self.id;
            match self.store.put_checkpoint(&ctx, &rec) {
                Ok(()) => {
                    let signers = rec.certificates.first().map_or(0, |c| {
                        conclave_checkpoint::SignerBitmap::from_bytes(c.signers).count()
                    });
                    if rec.height.0 >= self.latest {
                        self.latest = rec.height.0;
                        self.metrics
                            .checkpoint_signers
                            .with_label_values(&[&self.label])
                            .set(i64::from(signers));
                    }
                    if first {
                        info!(context = %ctx, height = rec.height.0, signers, "checkpoint complete");
                    } else {
                        debug!(context = %ctx, height = rec.height.0, signers, "checkpoint upgraded");
                    }
                    if let Some(events) = &self.events {
                        let _ = events.send(CheckpointEvent {
                            context_id: ctx,
                            height: rec.height.0,
                            epoch: rec.epoch,
                            signers,
                        });
                    }
                }
                Err(e) => warn!(context = %ctx, error = %e, "cannot store checkpoint"),
            }
        }
        self.set_gauges();
        step.gossip
    }

    fn set_gauges(&self) {
        let m = &self.metrics;
        m.checkpoint_height
            .with_label_values(&[&self.label])
            .set(self.latest as i64);
        m.actions_pending
            .with_label_values(&[&self.label])
            .set(self.collector.pending_actions() as i64);
    }
}

/// A checkpoint stored with a quorum (or upgraded with more signers), as
/// announced to subscribers: what a relayer waits for.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct CheckpointEvent {
    pub context_id: ContextId,
    pub height: u64,
    pub epoch: u64,
    pub signers: u32,
}

#[cfg(test)]
mod outbox_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_parse_from_specs_and_hex() {
        let evm = parse_anchor("evm:31337:0x5fbdb2315678afecb367f032d93f642f64180aa3").unwrap();
        let d = Domain::decode(&evm.0).unwrap();
        assert_eq!(d.kind, ChainKind::Evm);
        assert_eq!(d.chain_id, 31337);
        let near = parse_anchor("near:testnet:dao.testnet").unwrap();
        assert_eq!(
            near.0,
            Domain::near("testnet", "dao.testnet").unwrap().encode()
        );
        assert_eq!(parse_anchor(&hex::encode(evm.0)).unwrap(), evm);
        for bad in [
            "evm:x:0x00",
            "evm:1:0x1234",
            "evm:0:0x5fbdb2315678afecb367f032d93f642f64180aa3",
            "near:testnet:a",
            "sol:1:abc",
            "",
            &hex::encode([0u8; 41]),
        ] {
            assert!(parse_anchor(bad).is_err(), "{bad}");
        }
    }
}
