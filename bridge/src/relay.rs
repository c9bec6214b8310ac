//! The relayer loop for one context on one proxy, on any chain
//! ([`crate::chain::Anchor`]: Ethereum or NEAR).
//!
//! Each pass derives everything from the chain and the node, so a restart,
//! a second relayer or a reorg needs no local state to recover from:
//!
//! 1. read what the proxy holds (latest height, epoch, member set);
//! 2. read the node's completed checkpoints above it and the heights that
//!    emitted actions for this proxy; post the checkpoints [`crate::plan`]
//!    picks, in order;
//! 3. when the proxy's latest checkpoint announces the next member set,
//!    rotate the proxy to it (the set read from the node and checked
//!    against the announcement), then go on with step 2 for the new epoch;
//! 4. execute every action at or below the proxy's latest height that it
//!    has not executed, with its inclusion proof.
//!
//! Every call is checked before it is sent (simulated on Ethereum, the
//! proxy's views on NEAR); "already done" refusals (another relayer was
//! first) count as success. An action whose transfer
//! fails stays executable on chain and is retried on later passes, up to
//! `max_action_attempts`, then reported and left for an operator (a
//! restart retries it again). A reorg that drops a posted checkpoint shows
//! up as a lower latest height on the next pass, which posts it again.

use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use conclave_checkpoint::Domain;
use rand::Rng;
use tokio::sync::Notify;
use tracing::{info, warn};

use crate::chain::{Anchor, Mark, Outcome};
use crate::metrics::Metrics;
use crate::plan::{self, Blocked, ChainView};
use crate::source::{SignedCheckpoint, Source};
use crate::Result;

/// Checkpoints read from the node per pass, at most.
const MAX_CHECKPOINTS: usize = 500;
/// Actions read from the node per pass, at most.
const MAX_ACTIONS: usize = 500;
/// Member-set rotations per pass, at most.
const MAX_ROTATIONS: usize = 8;

/// Knobs of a relayer.
#[derive(Clone, Debug)]
pub struct RelayOptions {
    /// Time between passes when nothing fails.
    pub poll: Duration,
    /// Passes that try a failing action before it is reported and left.
    pub max_action_attempts: u32,
    /// Longest wait between passes after errors (exponential backoff with
    /// jitter, starting at `poll`).
    pub backoff_max: Duration,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(500),
            max_action_attempts: 5,
            backoff_max: Duration::from_secs(30),
        }
    }
}

/// What one pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Heights of the checkpoints this pass posted.
    pub posted: Vec<u64>,
    /// Epochs this pass rotated the proxy to.
    pub rotated: Vec<u64>,
    /// Ids of the actions this pass executed.
    pub executed: Vec<[u8; 32]>,
    /// Why posting stopped short of the node's newest checkpoint.
    pub blocked: Option<Blocked>,
    /// The proxy's latest checkpoint height after the pass.
    pub anchored: u64,
    /// The context's committed height.
    pub tip: u64,
}

/// A relayer of one context to one Ethereum proxy.
#[cfg(feature = "evm")]
pub type EvmRelay<S> = Relay<S, crate::evm::Proxy>;

/// A relayer of one context to one NEAR proxy.
#[cfg(feature = "near")]
pub type NearRelay<S> = Relay<S, conclave_bridge_near::NearProxy>;

/// A relayer of one context to one proxy.
pub struct Relay<S, C> {
    source: S,
    proxy: C,
    domain: Domain,
    context: String,
    chain_label: String,
    metrics: Metrics,
    opts: RelayOptions,
    /// Failed attempts per action id.
    attempts: HashMap<[u8; 32], u32>,
    /// Every action at or below this height is executed on the proxy, as
    /// of the chain's blocks in `marks`.
    done_through: u64,
    /// Blocks (number, hash) that what the last pass learnt rests on: the
    /// heads at its start and end and the blocks of its own transactions.
    /// If a later pass finds any of them replaced (a reorg), everything is
    /// checked again.
    marks: Vec<Mark>,
    /// Called after each checkpoint this relayer posted (crash tests arm a
    /// failpoint here).
    after_checkpoint: Option<Box<dyn Fn() + Send + Sync>>,
    /// Notified when the node has a new checkpoint: a pass runs at once
    /// instead of at the next poll.
    wake: Option<Arc<Notify>>,
}

impl<S: Source, C: Anchor> Relay<S, C> {
    /// A relayer of `context` from `source` to `proxy`; fails only if the
    /// proxy's domain cannot be encoded.
    pub fn new(
        source: S,
        proxy: C,
        context: [u8; 32],
        metrics: Metrics,
        opts: RelayOptions,
    ) -> Result<Self> {
        let domain = proxy.domain()?;
        let chain_label = proxy.label();
        metrics.init_chain(&chain_label);
        Ok(Self {
            source,
            proxy,
            domain,
            context: hex::encode(context),
            chain_label,
            metrics,
            opts,
            attempts: HashMap::new(),
            done_through: 0,
            marks: Vec::new(),
            after_checkpoint: None,
            wake: None,
        })
    }

    /// Runs a pass whenever `wake` is notified (a subscription to the
    /// node's checkpoints), besides every poll interval.
    pub fn woken_by(mut self, wake: Arc<Notify>) -> Self {
        self.wake = Some(wake);
        self
    }

    /// Calls `f` after each checkpoint this relayer posts.
    pub fn on_checkpoint_posted(mut self, f: impl Fn() + Send + Sync + 'static) -> Self {
        self.after_checkpoint = Some(Box::new(f));
        self
    }

    /// Runs passes until `stop` resolves: every poll interval, and at once
    /// when woken ([`Relay::woken_by`]). Errors are counted, logged and
    /// retried with backoff.
    pub async fn run(&mut self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut failures = 0u32;
        loop {
            let wait = match self.pass().await {
                Ok(_) => {
                    failures = 0;
                    self.opts.poll
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    self.error(&e);
                    backoff(self.opts.poll, self.opts.backoff_max, failures)
                }
            };
            // After errors the backoff holds, however many checkpoints come.
            let woken = async {
                match (&self.wake, failures) {
                    (Some(w), 0) => w.notified().await,
                    _ => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(wait) => {}
                _ = woken => {}
            }
        }
    }

    /// One pass: post what the proxy lacks, then execute what it can.
    pub async fn pass(&mut self) -> Result<Report> {
        let start = self.proxy.head().await?;
        let marks = std::mem::take(&mut self.marks);
        self.check_marks(&marks).await?;
        self.marks.push(start);
        let tip = self.source.tip().await?;
        let actions = self
            .source
            .actions(&self.domain, self.done_through, MAX_ACTIONS)
            .await?;
        let heights: BTreeSet<u64> = actions.iter().map(|a| a.height).collect();
        let mut report = Report {
            tip,
            ..Report::default()
        };
        let mut view = self.proxy.view().await?;
        // Checkpoints up to an epoch's announcement, the rotation, the next
        // epoch's checkpoints, ...
        for _ in 0..MAX_ROTATIONS {
            let completed = self
                .source
                .checkpoints(&self.domain, view.latest, MAX_CHECKPOINTS)
                .await?;
            let plan = plan::checkpoints(&view, &completed, &heights);
            report.blocked = plan.blocked.clone();
            self.post(&plan.post, &mut report).await?;
            view = self.proxy.view().await?;
            let Some(next) = self.proxy.announced(view.latest).await? else {
                break;
            };
            if !self.rotate(&view, next, &mut report).await? {
                break;
            }
            view = self.proxy.view().await?;
        }
        if let Some(b) = &report.blocked {
            match b {
                Blocked::Collecting(h) => {
                    info!(context = %self.context, height = h, "waiting for the checkpoint of an action height")
                }
                other => {
                    warn!(context = %self.context, chain = %self.chain_label, blocked = ?other, "checkpoints held back")
                }
            }
        }
        report.anchored = view.latest;
        self.metrics
            .anchor_height
            .with_label_values(&[&self.chain_label, &self.context])
            .set(i64::try_from(view.latest).unwrap_or(i64::MAX));
        self.metrics
            .anchor_lag_blocks
            .with_label_values(&[&self.chain_label, &self.context])
            .set(i64::try_from(tip.saturating_sub(view.latest)).unwrap_or(i64::MAX));

        let mut all_done_through = None;
        for a in &actions {
            let settled = a.height <= view.latest && self.execute(a, &mut report).await?;
            if !settled && all_done_through.is_none() {
                all_done_through = Some(a.height.saturating_sub(1));
            }
        }
        self.done_through = all_done_through
            .unwrap_or_else(|| actions.last().map_or(self.done_through, |a| a.height))
            .max(self.done_through);
        // The head after this pass's reads and transactions; then the start
        // head once more: a reorg during the pass shows now.
        let end = self.proxy.head().await?;
        self.check_marks(&[start]).await?;
        self.marks.push(end);
        Ok(report)
    }

    /// Forgets what passes learnt (`done_through`) if the chain no longer
    /// holds one of `marks`.
    ///
    /// Reads go to the latest block, so a reorg that happens during a pass
    /// and replaces only blocks above its start head and none of its own
    /// transactions' blocks goes unseen here; the transactions themselves
    /// count only after `confirmations` blocks on top of them.
    async fn check_marks(&mut self, marks: &[Mark]) -> Result<()> {
        for &(number, hash) in marks {
            if self.proxy.block_hash(number).await? != Some(hash) {
                warn!(context = %self.context, chain = %self.chain_label, block = number,
                    "chain reorganised: checking every checkpoint and action again");
                self.count_error_reason("reorg");
                self.done_through = 0;
                self.marks.clear();
                return Ok(());
            }
        }
        Ok(())
    }

    /// Posts `checkpoints` in order; stops where another relayer is ahead
    /// (the next pass plans again).
    async fn post(&mut self, checkpoints: &[SignedCheckpoint], report: &mut Report) -> Result<()> {
        for c in checkpoints {
            let h = c.payload.height;
            let outcome = match self.proxy.submit_checkpoint(c).await {
                Ok(o) => o,
                Err(e) => {
                    self.count_error("checkpoint");
                    return Err(e);
                }
            };
            self.count("checkpoint", &outcome);
            let Outcome::Done {
                tx,
                gas_used,
                block,
            } = outcome
            else {
                break;
            };
            self.marks.push(block);
            info!(context = %self.context, chain = %self.chain_label, height = h,
                epoch = c.payload.epoch, %tx, gas_used, "checkpoint posted");
            report.posted.push(h);
            if let Some(f) = &self.after_checkpoint {
                f();
            }
        }
        Ok(())
    }

    /// Rotates the proxy in state `view` to the member set its latest
    /// checkpoint announced (`next`: that set's hash), read from the node
    /// and checked against the announcement first. True if the proxy is
    /// rotated now (by this relayer or another).
    async fn rotate(
        &mut self,
        view: &ChainView,
        next: [u8; 32],
        report: &mut Report,
    ) -> Result<bool> {
        let height = view.latest;
        let members = self.source.members_at(height + 1).await?;
        if members.epoch != view.epoch + 1 || members.hash()? != next {
            self.count_error_reason("rotation_mismatch");
            return Err(crate::Error::Malformed(format!(
                "the checkpoint at height {height} announces member set {}, but the node's set \
                 from height {} is epoch {} with hash {} (the proxy is at epoch {})",
                hex::encode(next),
                height + 1,
                members.epoch,
                members
                    .hash()
                    .map(hex::encode)
                    .unwrap_or_else(|e| e.to_string()),
                view.epoch
            )));
        }
        let outcome = match self.proxy.rotate_members(height, &members).await {
            Ok(o) => o,
            Err(e) => {
                self.count_error("rotation");
                return Err(e);
            }
        };
        self.count("rotation", &outcome);
        match outcome {
            Outcome::Done {
                tx,
                gas_used,
                block,
            } => {
                self.marks.push(block);
                info!(context = %self.context, chain = %self.chain_label, height,
                    epoch = members.epoch, members = members.keys.len(), %tx, gas_used,
                    "member set rotated");
                report.rotated.push(members.epoch);
                Ok(true)
            }
            Outcome::AlreadyDone(_) => Ok(true),
            Outcome::ActionFails(why) => Err(crate::Error::Refused {
                call: "rotateMembers",
                reason: why,
            }),
        }
    }

    /// Executes `a` unless done; true once it is executed on chain.
    async fn execute(
        &mut self,
        a: &crate::source::ProvenAction,
        report: &mut Report,
    ) -> Result<bool> {
        let id = a.action.id;
        if self.proxy.executed(id).await? {
            return Ok(true);
        }
        if self.proxy.roots_at(a.height).await?.1 == [0; 32] {
            // The proxy passed this height without its checkpoint: only a
            // relayer that ignores the plan (or a rogue one) does that.
            warn!(context = %self.context, chain = %self.chain_label, height = a.height,
                id = %hex::encode(id), "action stranded: its checkpoint is not on the proxy");
            self.count_error_reason("stranded");
            return Ok(false);
        }
        let tries = self.attempts.get(&id).copied().unwrap_or(0);
        if tries >= self.opts.max_action_attempts {
            return Ok(false);
        }
        let outcome = match self.proxy.execute_action(a).await {
            Ok(o) => o,
            Err(e) => {
                self.count_error("action");
                return Err(e);
            }
        };
        self.count("action", &outcome);
        match outcome {
            Outcome::Done {
                tx,
                gas_used,
                block,
            } => {
                self.marks.push(block);
                info!(context = %self.context, chain = %self.chain_label, height = a.height,
                    id = %hex::encode(id), %tx, gas_used, "action executed");
                report.executed.push(id);
                self.attempts.remove(&id);
                Ok(true)
            }
            Outcome::AlreadyDone(_) => Ok(true),
            Outcome::ActionFails(why) => {
                let tries = tries + 1;
                self.attempts.insert(id, tries);
                if tries >= self.opts.max_action_attempts {
                    warn!(context = %self.context, chain = %self.chain_label, id = %hex::encode(id),
                        attempts = tries, reason = %why,
                        "action keeps failing; left executable on chain for a later relayer run");
                    self.count_error_reason("action_fails");
                } else {
                    info!(context = %self.context, id = %hex::encode(id), attempts = tries, reason = %why, "action failed; will retry");
                }
                Ok(false)
            }
        }
    }

    fn count(&self, kind: &str, o: &Outcome) {
        let result = match o {
            Outcome::Done { gas_used, .. } => {
                self.metrics
                    .gas_used_total
                    .with_label_values(&[&self.chain_label])
                    .inc_by(*gas_used);
                "sent"
            }
            Outcome::AlreadyDone(_) => "already_done",
            Outcome::ActionFails(_) => "action_fails",
        };
        self.metrics
            .submissions_total
            .with_label_values(&[&self.chain_label, kind, result])
            .inc();
    }

    fn count_error(&self, kind: &str) {
        self.metrics
            .submissions_total
            .with_label_values(&[&self.chain_label, kind, "error"])
            .inc();
    }

    fn count_error_reason(&self, reason: &str) {
        self.metrics
            .errors_total
            .with_label_values(&[&self.chain_label, reason])
            .inc();
    }

    fn error(&self, e: &crate::Error) {
        self.count_error_reason(e.reason());
        warn!(context = %self.context, chain = %self.chain_label, error = %e, "relay pass failed");
    }
}

/// `base * 2^(failures-1)`, at most `max`, times a jitter in [0.5, 1.5).
pub fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let exp = base.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let capped = exp.min(max);
    capped.mul_f64(rand::thread_rng().gen_range(0.5..1.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped_with_jitter() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for _ in 0..50 {
            let first = backoff(base, max, 1);
            assert!(first >= Duration::from_millis(50) && first < Duration::from_millis(150));
            let fourth = backoff(base, max, 4);
            assert!(fourth >= Duration::from_millis(400) && fourth < Duration::from_millis(1200));
            let late = backoff(base, max, 30);
            assert!(late >= Duration::from_secs(1) && late < Duration::from_secs(3));
        }
    }
}
