//! How long a member waits for a round's proposal. The configured propose
//! timeout suits an unloaded node; on a node busy with many contexts a
//! proposer's block waits for a core behind the others' blocks, and its
//! proposal arrives after the timeout although nothing is wrong. Then
//! every member prevotes nil, the round is lost and the height pays its
//! votes twice, which loads the node further. So the wait follows how late
//! proposals have been arriving: twice the latest of the last few, never
//! below the configured timeout and never above [`STRETCH_LIMIT`] times it.
//! A proposer that is down sends nothing and teaches nothing: the wait
//! grows only from proposals that did arrive, and settles back to the
//! configured timeout once they arrive in time again. What makes them late
//! on a busy node is the node's load, whatever their context, so each
//! context also learns from the proposals of all the node's contexts
//! ([`ProposalDelays`]), not only from its own few.
//!
//! And when to start the next height. A height costs each member about
//! the same whatever it carries (its votes, syncs and messages); a node
//! running the heights of many contexts at once pays that cost once per
//! context and height, however quick each one is. There a context's next
//! height waits for a fuller block ([`FillWait`]): if the context is
//! loaded, its proposer holds it while txs keep coming, and the other
//! members hold theirs until its proposal arrives, so that no propose
//! timeout runs while the proposer waits; if not, its proposer alone holds
//! it briefly. An unloaded node starts at once, and so does a busy one
//! whose machine has CPU to spare: the holds scale with the machine's CPU
//! shortage ([`Load`], `crate::cpu`), whole when nothing is idle.
//!
//! And when to push the txs admitted here to the other members: on such a
//! node, at most every so often while the context's height runs or is
//! held ([`PushPace`]), instead of after every turn of its actor.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use conclave_consensus::mal::Round;
use conclave_consensus::Height;
use parking_lot::Mutex;
use tokio::time::Instant;

use crate::cpu::Shortage;

/// Proposal delays remembered (the rounds they came from), by each
/// context and over the node.
const WINDOW: usize = 16;

/// The wait is at most this many times the configured propose timeout.
const STRETCH_LIMIT: u32 = 8;

/// Less than this left of a learnt wait is not waited for again (tokio's
/// timers tick in milliseconds).
const MIN_WAIT_MORE: Duration = Duration::from_millis(2);

/// How late proposals have lately arrived at this node, over all its
/// contexts (one per node, shared by their [`ProposeWait`]s). A context
/// running a few heights among many others' sees too few of its own
/// proposals to learn the wait in time: at 100 contexts starting their
/// load together over four validators (`conclave bench --contexts 100`),
/// every context's second height, whose proposer's blocks reached the
/// others 1.5 to 3.5 s after their rounds started, went to a second round
/// (73 of the run's 801 heights), the wait having learnt only from the
/// context's first proposal.
#[derive(Default)]
pub struct ProposalDelays(Mutex<Delays>);

/// The last [`WINDOW`] proposal delays, a context's or a node's.
#[derive(Default)]
struct Delays(VecDeque<Duration>);

impl Delays {
    fn record(&mut self, delay: Duration) {
        if self.0.len() == WINDOW {
            self.0.pop_front();
        }
        self.0.push_back(delay);
    }

    /// The longest of them.
    fn latest(&self) -> Duration {
        self.0.iter().max().copied().unwrap_or_default()
    }
}

pub(super) struct ProposeWait {
    /// The configured propose timeout: the least wait.
    base: Duration,
    /// The height in progress, and when each of its rounds started here
    /// with whether its proposal has arrived (only the first one counts).
    height: Height,
    rounds: Vec<(Round, Instant, bool)>,
    /// How long after their rounds started the last proposals arrived.
    recent: Delays,
    /// The same over the node's contexts: a context whose proposals come
    /// from a slow member still waits for them when the node's others
    /// arrive quickly, and one that saw few learns from the others.
    node: Arc<ProposalDelays>,
    /// How long the next height's proposer may hold it before its first
    /// round ([`FillWait::proposer_may_hold`]), until that round's propose
    /// timeout is scheduled.
    may_hold: Option<Duration>,
}

impl ProposeWait {
    pub(super) fn new(base: Duration, node: Arc<ProposalDelays>) -> Self {
        Self {
            base,
            height: Height(0),
            rounds: Vec::new(),
            recent: Delays::default(),
            node,
            may_hold: None,
        }
    }

    /// The height about to start may have been held by its proposer for
    /// up to `hold` (its first round's proposal comes that much later).
    pub(super) fn proposer_may_hold(&mut self, hold: Duration) {
        self.may_hold = (!hold.is_zero()).then_some(hold);
    }

    /// A round started at `now`.
    pub(super) fn round_started(&mut self, height: Height, round: Round, now: Instant) {
        if height != self.height {
            self.height = height;
            self.rounds.clear();
        }
        if self.rounds.iter().all(|(r, ..)| *r != round) {
            self.rounds.push((round, now, false));
        }
    }

    /// The proposal of `(height, round)` arrived at `now`: if that round
    /// started here (the one in progress, or an earlier one of the same
    /// height the timeout already ended) and it is the round's first
    /// proposal, its delay is remembered.
    pub(super) fn proposal_arrived(&mut self, height: Height, round: Round, now: Instant) {
        if height != self.height {
            return;
        }
        let Some((_, started, heard)) = self.rounds.iter_mut().find(|(r, ..)| *r == round) else {
            return;
        };
        if std::mem::replace(heard, true) {
            return;
        }
        let delay = now.saturating_duration_since(*started);
        self.recent.record(delay);
        self.node.0.lock().record(delay);
    }

    /// How long to wait for a proposal now, where the engine asks the
    /// configured timeout (what `conclave_consensus_propose_wait_seconds`
    /// shows).
    pub(super) fn current(&self) -> Duration {
        self.timeout(self.base)
    }

    /// How long to wait for a proposal where the engine asks `asked` (the
    /// configured timeout, grown by the round).
    pub(super) fn timeout(&self, asked: Duration) -> Duration {
        // With one context the node's delays are its own.
        let latest = self.recent.latest().max(self.node.0.lock().latest());
        let limit = self.base.saturating_mul(STRETCH_LIMIT);
        asked.max(latest.saturating_mul(2).min(limit))
    }

    /// [`Self::timeout`] for the proposal of `round`: a height's first
    /// round also waits out the hold its proposer may have made
    /// ([`Self::proposer_may_hold`]) and the configured timeout after it.
    /// Without it a member that did not hold the height itself (its last
    /// block was small, or no hold applied to it) timed the round
    /// out while the proposer still held, prevoted nil, and the height went
    /// to a second round.
    pub(super) fn timeout_of(&mut self, round: Round, asked: Duration) -> Duration {
        let wait = self.expected(round, asked);
        self.may_hold = None;
        wait
    }

    /// [`Self::timeout_of`], leaving the hold in place.
    fn expected(&self, round: Round, asked: Duration) -> Duration {
        let learnt = self.timeout(asked);
        match self.may_hold {
            Some(hold) if round == Round::new(0) => learnt.max(hold + asked),
            _ => learnt,
        }
    }

    /// How much longer than its timeout (armed for `asked`) the proposal
    /// of `round`, not arrived by `now`, is to be waited for by what has
    /// been learnt since the round started: proposals that arrived
    /// meanwhile, of this context's other rounds or of the node's other
    /// contexts. Where many heights start together on a full machine (100
    /// contexts' first heights, at a load's onset) no proposal has arrived
    /// when their waits are set, and nothing stretches them; by the time
    /// they run out the first proposals have taught how late the others
    /// will be. `None` once the proposal arrived, for a round not started
    /// here, or when the wait is over.
    pub(super) fn wait_more(
        &self,
        round: Round,
        asked: Duration,
        now: Instant,
    ) -> Option<Duration> {
        let (_, started, heard) = self.rounds.iter().find(|(r, ..)| *r == round)?;
        if *heard {
            return None;
        }
        let more = (*started + self.timeout(asked)).saturating_duration_since(now);
        (more >= MIN_WAIT_MORE).then_some(more)
    }

    /// How much longer than the configured timeout the proposal of
    /// `round` is waited for now (a held height's first round, proposals
    /// arriving late). A round's rebroadcast timeout runs from its start,
    /// through its propose step, so it is stretched by as much: waiting
    /// out a held or late proposal is not a stuck step, and asked the
    /// safety net for blocks at 100 saturated contexts.
    pub(super) fn stretch(&self, round: Round) -> Duration {
        self.expected(round, self.base).saturating_sub(self.base)
    }
}

/// Heights in progress or held on the node (over all its contexts) from
/// which it counts as busy.
const BUSY_HEIGHTS: i64 = 16;

/// Heights in progress or held from which a node, not busy yet, counts as
/// running a few: short of CPU, it has its proposers hold each next
/// height briefly, [`HOLD_PER_BUSY_HEIGHT`] for each (at most
/// [`FEW_HOLD`]), and nothing else ([`FillWait::hold`]). With nothing
/// held below [`BUSY_HEIGHTS`], 3 to 15 loaded contexts ran their heights
/// back to back with small blocks at about half of one context's
/// throughput (5 contexts: 6,596 tx/s in blocks of 58 txs, against
/// 11,478 with these holds; one context 14,965; `conclave bench
/// --validators 4 --contexts 5 --txs 150000 --keys 8 --clients 64`). The
/// busy node's longer holds there (650 ms at least) cost a p99 eight times
/// as long at 1,000 tx/s over 3 contexts; these cost about 20 ms more
/// (43-50 against 65-73 ms) for a lower median (22-24 against 16-18 ms),
/// the heights they save being CPU the others get.
const FEW_HEIGHTS: i64 = 2;

/// The longest a node with a few heights under way holds one.
const FEW_HOLD: Duration = HOLD_PER_BUSY_HEIGHT.saturating_mul(BUSY_HEIGHTS as u32 - 1);

/// What a node's holds and push pacing follow: how many heights of its
/// contexts are in progress or held, and how short of CPU it is.
/// A node with [`BUSY_HEIGHTS`] or more holds ([`FillWait`]) and paces
/// ([`PushPace`]) only while it is short of CPU, and scales the
/// proposer's holds and the push interval by the shortage: with cores to
/// spare, fewer heights save nothing anyone needs and a hold costs its
/// whole length in latency (`crate::cpu`). A node with a few heights
/// ([`FEW_HEIGHTS`]) holds briefly on the same terms, and paces nothing.
#[derive(Clone, Copy, Debug)]
pub(super) struct Load {
    pub(super) heights: i64,
    pub(super) cpu: Shortage,
}

impl Load {
    /// The load of a node with `heights` busy; `cpu` reads its machine's
    /// shortage, only when that many could make it hold (a node with one
    /// height under way, one context's, reads nothing on its hot path; the
    /// shortage it then carries is never used).
    pub(super) fn new(heights: i64, cpu: impl FnOnce() -> Shortage) -> Self {
        let cpu = if heights >= FEW_HEIGHTS {
            cpu()
        } else {
            Shortage::NONE
        };
        Self { heights, cpu }
    }

    /// Whether the node holds and paces at all.
    fn holds(self) -> bool {
        self.heights >= BUSY_HEIGHTS && self.cpu.any()
    }

    /// Whether the node runs a few heights ([`FEW_HEIGHTS`]) short of CPU:
    /// its proposers hold briefly.
    fn holds_few(self) -> bool {
        (FEW_HEIGHTS..BUSY_HEIGHTS).contains(&self.heights) && self.cpu.any()
    }
}

/// Txs waiting that make a block worth starting at once.
const FULL_BLOCK: usize = 256;

/// A context whose last block carried fewer txs than this has a light
/// load of its own: only its proposer holds the next height, briefly
/// ([`LIGHT_HOLD`]). At 1,000 tx/s over 100 contexts (blocks of about
/// eight txs) the long holds of a loaded context doubled the median
/// latency and gave no fewer blocks.
const HOLD_FROM_TXS: usize = 32;

/// The longest a lightly loaded context's proposer holds its next height,
/// only while fewer than a loaded block's [`HOLD_FROM_TXS`] txs wait
/// (where the load starts, after first blocks of one tx, 100 contexts held
/// their second height with 150 txs waiting, and their proposals reached
/// the members past the propose timeouts); the other members start at once
/// and wait it out ([`FillWait::proposer_may_hold`]). Long enough for the
/// other members' next push ([`QUIET`]): a proposer with no client of the
/// context's own gets its txs only from their pushes, every
/// [`PUSH_EVERY`] on a busy node. When it was held no longer than the
/// context's last height had taken (150-400 ms), at 100 contexts with 128
/// clients (`conclave bench --validators 4 --contexts 100 --clients 128`)
/// the hold ended before the next push came: the block carried the few
/// txs admitted here (about 9), stayed light, and the next hold was as
/// short (3,200-4,500 tx/s on 4,400-6,400 heights, most of the
/// validators' CPU).
const LIGHT_HOLD: Duration = QUIET;

/// The longest the next height's proposer holds it.
const MAX_HOLD: Duration = Duration::from_millis(2_500);

/// What each height in progress or held on the node adds to a loaded
/// context's hold ([`loaded_hold`]): the node's loaded contexts between
/// them then start about one height every this often, however many they
/// are. A height costs the validators about the same whatever it carries,
/// so their rate is what the node pays for; a hold of [`MAX_HOLD`] for
/// every loaded context paid for 100 contexts' and cost 30 contexts at
/// 2,000 tx/s a median of 1.2 s (blocks of 90 txs every 2.5 s) where 25
/// ms a busy height cost 0.6 s (and a p99 of 1.1 s against 2.8).
const HOLD_PER_BUSY_HEIGHT: Duration = Duration::from_millis(25);

/// How long a loaded context's proposer holds its next height at most
/// while `busy` heights of the node are in progress or held:
/// [`HOLD_PER_BUSY_HEIGHT`] each, from [`LIGHT_HOLD`] to [`MAX_HOLD`] (100
/// busy heights).
fn loaded_hold(busy: i64) -> Duration {
    let busy = u32::try_from(busy.max(0)).unwrap_or(u32::MAX);
    HOLD_PER_BUSY_HEIGHT
        .saturating_mul(busy)
        .clamp(LIGHT_HOLD, MAX_HOLD)
}

/// A proposer whose pool has not grown for this long stops holding: the
/// load has paused, and what waits is all the block would get. Longer
/// than a busy member's interval between pushes ([`PUSH_EVERY`]), so that
/// the load coming from one member's pushes does not look paused.
const QUIET: Duration = PUSH_EVERY.saturating_add(Duration::from_millis(150));

/// The longest the other members hold the next height for its proposal:
/// past the proposer's longest hold. A proposer that is down costs this
/// wait on top of the propose timeout it cost before.
const MEMBER_HOLD: Duration = MAX_HOLD.saturating_mul(2);

/// Whether a context holds its next height for a fuller block. A height
/// costs each member about the same whatever its block carries; at 100
/// contexts over four validators on two cores (`conclave bench`), blocks
/// of about 90 txs paid that cost at about the cost of their txs. There,
/// for a loaded context (its last block [`HOLD_FROM_TXS`] txs or more),
/// the proposer holds the next height until [`FULL_BLOCK`] txs wait, its
/// pool stops growing for [`QUIET`], or [`loaded_hold`]; the other members
/// hold theirs until the height's first message (its proposal) starts it
/// (`inbound`), a full block waits here too, or [`MEMBER_HOLD`]. Only the
/// proposer holding let the members' propose timeouts run meanwhile, and
/// the hold stayed short. A lightly loaded context's proposer alone holds,
/// for [`LIGHT_HOLD`]: a long hold would only delay its txs.
///
/// How long a context's own heights take does not exempt it: a node's
/// load is the count of its heights, quick or not. Contexts whose last
/// height took under 200 ms used to start the next at once; at 100
/// contexts with 128 clients their heights stayed quick and small (about
/// 24 txs a block, 6,000 heights for 150,000 txs).
#[derive(Default)]
pub(super) struct FillWait {
    /// Txs in the last block committed; `None` before the first here (a
    /// context's first height starts at once).
    last_txs: Option<usize>,
    /// Since when the next height is held.
    held_since: Option<Instant>,
    /// When the txs waiting last grew, and to how many (the proposer's
    /// [`QUIET`]).
    grown: Option<(Instant, usize)>,
    /// When the wake-up armed for the hold fires: until then no other is
    /// armed (it looks again when it fires).
    armed: Option<Instant>,
}

/// A hold of the next height.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Hold {
    /// When it ends at the latest, unless more txs come (the proposer's
    /// quiet end moves with them).
    pub(super) until: Instant,
    /// The caller arms a wake-up for `until`: none is outstanding.
    pub(super) wake: bool,
}

impl FillWait {
    /// A block of `txs` txs was committed.
    pub(super) fn committed(&mut self, txs: usize) {
        self.last_txs = Some(txs);
    }

    /// The longest the next height's proposer may hold it while `busy`
    /// heights of this node's contexts are in progress or held: what the
    /// other members' first propose timeout of that height waits out
    /// ([`ProposeWait::timeout_of`]). The last block's size, which every
    /// member agrees on, picks the limit: the longest any proposer may
    /// hold after it (a loaded context's holds are shorter on a node with
    /// fewer busy heights, and the members' counts differ).
    pub(super) fn proposer_may_hold(&self, busy: i64) -> Duration {
        match self.last_txs {
            Some(txs) if busy >= BUSY_HEIGHTS && txs < HOLD_FROM_TXS => LIGHT_HOLD,
            Some(_) if busy >= BUSY_HEIGHTS => MAX_HOLD,
            Some(_) if busy >= FEW_HEIGHTS => FEW_HOLD,
            _ => Duration::ZERO,
        }
    }

    /// Whether the next height is held (since [`Self::hold`] first said so,
    /// until [`Self::release`] or a height starts).
    pub(super) fn is_held(&self) -> bool {
        self.held_since.is_some()
    }

    /// Forgets the hold (the height starts, or the context has nothing to
    /// start one with).
    pub(super) fn release(&mut self) {
        self.held_since = None;
        self.grown = None;
        self.armed = None;
    }

    /// Whether to hold the next height, now that it could start: while
    /// the node's `load` holds ([`Load`]), a block was committed here
    /// before, and fewer than a full block's txs wait here (`waiting`);
    /// until the limits of the [`FillWait`] rule for the next height's
    /// `proposer` (scaled by the CPU shortage) or for another member, or
    /// of [`LIGHT_HOLD`] (scaled alike) after a small block; on a node with
    /// a few heights ([`FEW_HEIGHTS`]), for the proposer alone,
    /// [`HOLD_PER_BUSY_HEIGHT`] for each of them (scaled alike). A hold ends
    /// (`None`) but stays [`Self::is_held`] until the caller starts the
    /// height or releases it.
    pub(super) fn hold(
        &mut self,
        now: Instant,
        load: Load,
        waiting: usize,
        proposer: bool,
    ) -> Option<Hold> {
        let light = self.last_txs? < HOLD_FROM_TXS;
        if load.holds_few() {
            if !proposer || waiting >= FULL_BLOCK {
                return None;
            }
            let since = *self.held_since.get_or_insert(now);
            let heights = u32::try_from(load.heights).unwrap_or(u32::MAX);
            let hold = HOLD_PER_BUSY_HEIGHT.saturating_mul(heights).min(FEW_HOLD);
            return self.until(now, since + load.cpu.of(hold));
        }
        if !load.holds()
            || waiting >= FULL_BLOCK
            || (light && (!proposer || waiting >= HOLD_FROM_TXS))
        {
            return None;
        }
        let since = *self.held_since.get_or_insert(now);
        let until = if light {
            since + load.cpu.of(LIGHT_HOLD)
        } else if proposer {
            if self.grown.is_none_or(|(_, seen)| waiting > seen) {
                self.grown = Some((now, waiting));
            }
            let grown_at = self.grown.map_or(now, |(at, _)| at);
            (since + load.cpu.of(loaded_hold(load.heights))).min(grown_at + QUIET)
        } else {
            since + MEMBER_HOLD
        };
        self.until(now, until)
    }

    /// A hold that ends at `until`, unless that is past; the wake-up to arm
    /// for it if none is.
    fn until(&mut self, now: Instant, until: Instant) -> Option<Hold> {
        if now >= until {
            return None;
        }
        let wake = self.armed.is_none_or(|at| at <= now);
        if wake {
            self.armed = Some(until);
        }
        Some(Hold { until, wake })
    }
}

/// The longest a busy node holds the txs admitted here before it pushes
/// them, while their context runs a height or holds the next. At 100
/// saturated contexts (`conclave bench`) 500 ms ran more txs than 250 ms
/// on less CPU, with a lower p99 and fewer pushes dropped, and the same
/// latency at 1,000 tx/s: held heights there last seconds anyway.
const PUSH_EVERY: Duration = Duration::from_millis(500);

/// The shortest interval between two pushes of a context that is not
/// paced by [`PUSH_EVERY`], unless a batch waits. Pushing after every turn
/// of the actor, one context with 512 clients (`conclave bench
/// --validators 4 --clients 512`) pushed about two txs a push, 1,300
/// pushes a second to each member; at the load's onset, while the members
/// ran their first full blocks, that was more than a member's stream
/// queues (the network's `LINK_QUEUE`): the excess was dropped, and each
/// proposal carrying those txs had them fetched again. At 1,000 tx/s over
/// four validators a node admits a tx every 4 ms or so: few wait.
const PUSH_GAP: Duration = Duration::from_millis(2);

/// Txs worth a push at once (what a member admits in one batch of
/// signature checks: `admission::PUSHED_BATCH`).
const PUSH_BATCH: usize = super::admission::PUSHED_BATCH;

/// When a context pushes the txs admitted here to the other members. A
/// push costs each member about the same whatever it carries (sealed,
/// framed, read, opened, and a turn of the context's actor); a node
/// running the heights of many contexts at once receives each context's
/// txs at a fraction of its own rate (a hundredth, with 100 contexts), and
/// pushing after every turn sent one tx a push: thousands a second per
/// member, more than the push streams carried (the excess was dropped)
/// and a large share of the node's CPU.
/// There a context pushes at most every [`PUSH_EVERY`] (scaled by the
/// machine's CPU shortage, [`Load`]) while its height runs, or once
/// [`PUSH_BATCH`] txs wait; txs pushed during a height go
/// into a later block anyway. So does a context holding its next height
/// ([`FillWait`]): the proposer builds from them when its hold ends, and
/// the members' holds, unpaced, pushed every tx on its own again. An
/// unloaded node, or a context between heights that does not hold (its
/// txs may start one), pushes at once, then no sooner than [`PUSH_GAP`]
/// after its last push unless a batch waits.
#[derive(Default)]
pub(super) struct PushPace {
    /// When it last pushed.
    last: Option<Instant>,
    /// When the last wake-up armed fires: until then no other is armed
    /// (it looks again when it fires).
    armed: Option<Instant>,
}

/// What to do with the txs waiting to be pushed.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Push {
    Now,
    /// Later, and a wake-up is to be armed for then.
    WakeAt(Instant),
    /// Later; the wake-up for then is armed already (or nothing waits).
    Later,
}

impl PushPace {
    /// Whether to push the `waiting` txs now, on a node under `load`;
    /// `height_running` says whether this context's height runs or is
    /// held.
    pub(super) fn push(
        &mut self,
        now: Instant,
        load: Load,
        height_running: bool,
        waiting: usize,
    ) -> Push {
        if waiting == 0 {
            return Push::Later;
        }
        let every = if !load.holds() || !height_running {
            PUSH_GAP
        } else {
            load.cpu.of(PUSH_EVERY).max(PUSH_GAP)
        };
        let due = self.last.map_or(now, |last| last + every);
        if waiting >= PUSH_BATCH || now >= due {
            self.last = Some(now);
            return Push::Now;
        }
        // A wake-up armed while the pushes were paced longer may come too
        // late for this one: another is armed for its end.
        if self.armed.is_some_and(|at| at > now && at <= due) {
            return Push::Later;
        }
        self.armed = Some(due);
        Push::WakeAt(due)
    }
}

#[cfg(test)]
#[path = "pace_tests.rs"]
mod tests;
