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
//! configured timeout once they arrive in time again.
//!
//! And when to start the next height. A height costs each member about
//! the same whatever it carries (its votes, syncs and messages); a node
//! running the heights of many contexts at once, slowly, pays that cost
//! once per context and height. There a context's next height waits for a
//! fuller block ([`FillWait`]): if the context is loaded, its proposer
//! holds it while txs keep coming, and the other members hold theirs until
//! its proposal arrives, so that no propose timeout runs while the
//! proposer waits; if not, its proposer alone holds it briefly. An
//! unloaded node, or a context whose heights are quick, starts at once.
//!
//! And when to push the txs admitted here to the other members: on such a
//! node, at most every so often while the context's height runs or is
//! held ([`PushPace`]), instead of after every turn of its actor.

use std::collections::VecDeque;
use std::time::Duration;

use conclave_consensus::mal::Round;
use conclave_consensus::Height;
use tokio::time::Instant;

/// Proposal delays remembered (the rounds they came from).
const WINDOW: usize = 16;

/// The wait is at most this many times the configured propose timeout.
const STRETCH_LIMIT: u32 = 8;

pub(super) struct ProposeWait {
    /// The configured propose timeout: the least wait.
    base: Duration,
    /// The height in progress, and when each of its rounds started here
    /// with whether its proposal has arrived (only the first one counts).
    height: Height,
    rounds: Vec<(Round, Instant, bool)>,
    /// How long after their rounds started the last proposals arrived.
    recent: VecDeque<Duration>,
}

impl ProposeWait {
    pub(super) fn new(base: Duration) -> Self {
        Self {
            base,
            height: Height(0),
            rounds: Vec::new(),
            recent: VecDeque::with_capacity(WINDOW),
        }
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
        if self.recent.len() == WINDOW {
            self.recent.pop_front();
        }
        self.recent
            .push_back(now.saturating_duration_since(*started));
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
        let latest = self.recent.iter().max().copied().unwrap_or_default();
        let limit = self.base.saturating_mul(STRETCH_LIMIT);
        asked.max(latest.saturating_mul(2).min(limit))
    }
}

/// Heights in progress or held on the node (over all its contexts) from
/// which it counts as busy.
const BUSY_HEIGHTS: i64 = 16;

/// A context whose last height took less than this starts the next at
/// once: its heights are not what loads the node.
const SLOW_HEIGHT: Duration = Duration::from_millis(200);

/// Txs waiting that make a block worth starting at once.
const FULL_BLOCK: usize = 256;

/// A context whose last block carried fewer txs than this has a light
/// load of its own: only its proposer holds the next height, briefly
/// ([`LIGHT_HOLD`]). At 1,000 tx/s over 100 contexts (blocks of about
/// eight txs) the long holds of a loaded context doubled the median
/// latency and gave no fewer blocks.
const HOLD_FROM_TXS: usize = 32;

/// The longest a lightly loaded context's proposer holds its next height
/// (and never longer than the last height took); the other members start
/// at once, and a proposal this late stretches their propose wait.
const LIGHT_HOLD: Duration = Duration::from_millis(500);

/// The longest the next height's proposer holds it.
const MAX_HOLD: Duration = Duration::from_millis(2_500);

/// A proposer whose pool has not grown for this long stops holding: the
/// load has paused, and what waits is all the block would get.
const QUIET: Duration = Duration::from_millis(400);

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
/// pool stops growing for [`QUIET`], or [`MAX_HOLD`]; the other members
/// hold theirs until the height's first message (its proposal) starts it
/// (`inbound`), a full block waits here too, or [`MEMBER_HOLD`]. Only the
/// proposer holding (up to 500 ms, no longer than the last height) let
/// the members' propose timeouts run meanwhile, and the hold stayed short.
/// That short hold stays for a lightly loaded context, whose txs a long
/// one would only delay.
#[derive(Default)]
pub(super) struct FillWait {
    /// When the height in progress started here.
    started: Option<Instant>,
    /// How long the last height took, start to end.
    last: Duration,
    /// Txs in the last block committed.
    last_txs: usize,
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
    pub(super) fn height_started(&mut self, now: Instant) {
        self.started = Some(now);
        self.release();
    }

    pub(super) fn height_ended(&mut self, now: Instant) {
        if let Some(started) = self.started.take() {
            self.last = now.saturating_duration_since(started);
        }
    }

    /// A block of `txs` txs was committed.
    pub(super) fn committed(&mut self, txs: usize) {
        self.last_txs = txs;
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
    /// `busy` heights of the node's contexts are in progress or held, this
    /// context's last height was slow, and fewer than a full block's txs
    /// wait here (`waiting`); until the limits of the [`FillWait`] rule for
    /// the next height's `proposer` or for another member, or of
    /// [`LIGHT_HOLD`] after a small block. A hold ends (`None`) but stays
    /// [`Self::is_held`] until the caller starts the height or releases it.
    pub(super) fn hold(
        &mut self,
        now: Instant,
        busy: i64,
        waiting: usize,
        proposer: bool,
    ) -> Option<Hold> {
        let light = self.last_txs < HOLD_FROM_TXS;
        if busy < BUSY_HEIGHTS
            || waiting >= FULL_BLOCK
            || self.last < SLOW_HEIGHT
            || (light && !proposer)
        {
            return None;
        }
        let since = *self.held_since.get_or_insert(now);
        let until = if light {
            since + self.last.min(LIGHT_HOLD)
        } else if proposer {
            if self.grown.is_none_or(|(_, seen)| waiting > seen) {
                self.grown = Some((now, waiting));
            }
            let grown_at = self.grown.map_or(now, |(at, _)| at);
            (since + MAX_HOLD).min(grown_at + QUIET)
        } else {
            since + MEMBER_HOLD
        };
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
/// them, while their context runs a height or holds the next.
const PUSH_EVERY: Duration = Duration::from_millis(250);

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
/// There a context pushes at most every [`PUSH_EVERY`] while its height
/// runs, or once [`PUSH_BATCH`] txs wait; txs pushed during a height go
/// into a later block anyway. So does a context holding its next height
/// ([`FillWait`]): the proposer builds from them when its hold ends, and
/// the members' holds, unpaced, pushed every tx on its own again. An
/// unloaded node, or a context between heights that does not hold (its
/// txs may start one), pushes at once.
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
    /// Whether to push the `waiting` txs now: `busy` heights of the node's
    /// contexts are in progress or held, `height_running` says whether
    /// this context's is one.
    pub(super) fn push(
        &mut self,
        now: Instant,
        busy: i64,
        height_running: bool,
        waiting: usize,
    ) -> Push {
        if waiting == 0 {
            return Push::Later;
        }
        let due = self.last.map_or(now, |last| last + PUSH_EVERY);
        if busy < BUSY_HEIGHTS || !height_running || waiting >= PUSH_BATCH || now >= due {
            self.last = Some(now);
            return Push::Now;
        }
        if self.armed.is_some_and(|at| at > now) {
            return Push::Later;
        }
        self.armed = Some(due);
        Push::WakeAt(due)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: Duration = Duration::from_millis(1000);

    fn arrived_after(wait: &mut ProposeWait, h: u64, after: Duration) {
        let start = Instant::now();
        wait.round_started(Height(h), Round::new(0), start);
        wait.proposal_arrived(Height(h), Round::new(0), start + after);
    }

    #[test]
    fn proposals_in_time_keep_the_configured_timeout() {
        let mut wait = ProposeWait::new(BASE);
        assert_eq!(wait.timeout(BASE), BASE);
        for h in 1..=20 {
            arrived_after(&mut wait, h, Duration::from_millis(30));
        }
        assert_eq!(wait.timeout(BASE), BASE);
        // The engine's longer timeouts of later rounds stand.
        assert_eq!(wait.timeout(BASE * 2), BASE * 2);
    }

    #[test]
    fn late_proposals_stretch_the_wait_then_it_settles_back() {
        let mut wait = ProposeWait::new(BASE);
        arrived_after(&mut wait, 1, Duration::from_millis(1200));
        assert_eq!(wait.timeout(BASE), Duration::from_millis(2400));
        // Bounded, however late.
        arrived_after(&mut wait, 2, Duration::from_secs(60));
        assert_eq!(wait.timeout(BASE), BASE * STRETCH_LIMIT);
        // Once a window of proposals arrive in time, the wait is back.
        for h in 3..3 + WINDOW as u64 {
            assert!(wait.timeout(BASE) > BASE);
            arrived_after(&mut wait, h, Duration::from_millis(20));
        }
        assert_eq!(wait.timeout(BASE), BASE);
    }

    #[test]
    fn only_the_first_proposal_of_a_round_started_here_counts() {
        let mut wait = ProposeWait::new(BASE);
        let start = Instant::now();
        // Before any round, for a round not started here, or for another
        // height: nothing learnt.
        wait.proposal_arrived(Height(1), Round::new(0), start + BASE * 3);
        wait.round_started(Height(1), Round::new(1), start);
        wait.proposal_arrived(Height(1), Round::new(0), start + BASE * 3);
        wait.proposal_arrived(Height(2), Round::new(1), start + BASE * 3);
        assert_eq!(wait.timeout(BASE), BASE);
        // The round's own proposal counts once: a copy arriving later
        // (a rebroadcast, a second lane) does not.
        wait.proposal_arrived(Height(1), Round::new(1), start + Duration::from_millis(100));
        wait.proposal_arrived(Height(1), Round::new(1), start + BASE * 3);
        assert_eq!(wait.timeout(BASE), BASE);
    }

    /// A proposal so late that its round timed out and the next one
    /// started still teaches how late proposals arrive.
    #[test]
    fn a_proposal_arriving_after_its_round_ended_counts() {
        let mut wait = ProposeWait::new(BASE);
        let start = Instant::now();
        wait.round_started(Height(1), Round::new(0), start);
        wait.round_started(Height(1), Round::new(1), start + BASE);
        wait.proposal_arrived(Height(1), Round::new(0), start + BASE * 2);
        assert_eq!(wait.timeout(BASE), BASE * 4);
        // The next height forgets the rounds of this one.
        wait.round_started(Height(2), Round::new(0), start + BASE * 3);
        wait.proposal_arrived(Height(1), Round::new(1), start + BASE * 9);
        assert_eq!(wait.timeout(BASE), BASE * 4);
    }

    #[test]
    fn a_silent_proposer_teaches_nothing() {
        let mut wait = ProposeWait::new(BASE);
        for h in 1..=5 {
            // Rounds whose proposer sent nothing: the timeout fired.
            wait.round_started(Height(h), Round::new(0), Instant::now());
            wait.round_started(Height(h), Round::new(1), Instant::now());
            wait.proposal_arrived(Height(h), Round::new(1), Instant::now());
        }
        assert_eq!(wait.timeout(BASE), BASE);
    }

    /// A node whose last height took `last`, at `start`, and committed a
    /// block worth holding the next for.
    fn after_a_height(start: Instant, last: Duration) -> FillWait {
        let mut fill = FillWait::default();
        fill.height_started(start);
        fill.committed(HOLD_FROM_TXS);
        fill.height_ended(start + last);
        fill
    }

    #[test]
    fn a_busy_proposer_holds_while_txs_keep_coming_up_to_the_limit() {
        let t = Instant::now();
        let mut fill = after_a_height(t, Duration::from_secs(1));
        let now = t + Duration::from_secs(1);
        let first = fill.hold(now, BUSY_HEIGHTS, 10, true).expect("held");
        assert_eq!(
            first,
            Hold {
                until: now + QUIET,
                wake: true
            }
        );
        // More txs move the quiet end; the wake-up armed stands (it looks
        // again when it fires).
        let mut at = now;
        for waiting in 11..40 {
            at += QUIET / 2;
            let held = fill.hold(at, BUSY_HEIGHTS, waiting, true);
            if at + QUIET <= now + MAX_HOLD {
                assert_eq!(held.as_ref().map(|h| h.until), Some(at + QUIET));
            }
            if at >= now + MAX_HOLD {
                assert_eq!(held, None, "held past the limit");
                return;
            }
        }
        panic!("the hold never reached its limit");
    }

    #[test]
    fn a_proposer_s_hold_ends_when_its_pool_stops_growing_or_fills() {
        let t = Instant::now();
        let mut fill = after_a_height(t, Duration::from_secs(1));
        let now = t + Duration::from_secs(1);
        let first = fill.hold(now, BUSY_HEIGHTS, 10, true).expect("held");
        // Woken at the quiet end with no more txs: it starts. Until the
        // caller starts it (or releases the hold), it counts as held.
        assert_eq!(fill.hold(first.until, BUSY_HEIGHTS, 10, true), None);
        assert!(fill.is_held());
        fill.release();
        assert!(!fill.is_held());
        // A full block's txs start it at once.
        fill.hold(now, BUSY_HEIGHTS, 10, true).expect("held anew");
        assert_eq!(fill.hold(now, BUSY_HEIGHTS, FULL_BLOCK, true), None);
    }

    #[test]
    fn a_busy_member_holds_for_the_proposal_up_to_its_own_limit() {
        let t = Instant::now();
        let mut fill = after_a_height(t, Duration::from_secs(1));
        let now = t + Duration::from_secs(1);
        let held = fill.hold(now, BUSY_HEIGHTS, 10, false).expect("held");
        assert_eq!(
            held,
            Hold {
                until: now + MEMBER_HOLD,
                wake: true
            }
        );
        // No quiet end for a member: the proposal starts its height.
        let quiet = now + QUIET * 2;
        assert_eq!(
            fill.hold(quiet, BUSY_HEIGHTS, 10, false),
            Some(Hold {
                until: now + MEMBER_HOLD,
                wake: false
            })
        );
        // Past the proposer's longest hold, up to its own.
        assert!(MEMBER_HOLD > MAX_HOLD);
        assert_eq!(fill.hold(now + MEMBER_HOLD, BUSY_HEIGHTS, 10, false), None);
        // A full block waiting here starts it too.
        fill.hold(now, BUSY_HEIGHTS, 10, false).expect("held anew");
        assert_eq!(fill.hold(now, BUSY_HEIGHTS, FULL_BLOCK, false), None);
    }

    #[test]
    fn after_a_small_block_only_the_proposer_holds_and_briefly() {
        let t = Instant::now();
        let mut light = after_a_height(t, Duration::from_secs(2));
        light.committed(HOLD_FROM_TXS - 1);
        let now = t + Duration::from_secs(2);
        assert_eq!(light.hold(now, 1_000, 10, false), None);
        let held = light.hold(now, 1_000, 10, true).expect("held");
        assert_eq!(held.until, now + LIGHT_HOLD);
        // Txs coming do not stretch it; the limit ends it.
        assert_eq!(
            light
                .hold(now + LIGHT_HOLD / 2, 1_000, 20, true)
                .map(|h| h.until),
            Some(now + LIGHT_HOLD)
        );
        assert_eq!(light.hold(now + LIGHT_HOLD, 1_000, 30, true), None);
        // Never longer than the last height took.
        let mut quicker = after_a_height(t, Duration::from_millis(300));
        quicker.committed(1);
        let held = quicker.hold(now, 1_000, 1, true).expect("held");
        assert_eq!(held.until, now + Duration::from_millis(300));
    }

    #[test]
    fn an_unloaded_node_or_a_quick_context_starts_at_once() {
        let t = Instant::now();
        let mut slow = after_a_height(t, Duration::from_secs(2));
        assert_eq!(slow.hold(t, BUSY_HEIGHTS - 1, 0, true), None);
        assert_eq!(slow.hold(t, BUSY_HEIGHTS - 1, 0, false), None);
        let mut quick = after_a_height(t, SLOW_HEIGHT - Duration::from_millis(1));
        assert_eq!(quick.hold(t, 1_000, 0, true), None);
        assert_eq!(quick.hold(t, 1_000, 0, false), None);

        // Before any height: nothing known, no hold.
        assert_eq!(FillWait::default().hold(t, 1_000, 0, true), None);
        // A new height, or a release, forgets the hold.
        slow.hold(t, BUSY_HEIGHTS, 0, false).unwrap();
        slow.height_started(t + MEMBER_HOLD);
        slow.height_ended(t + MEMBER_HOLD * 2);
        let later = t + MEMBER_HOLD * 2;
        let held = slow.hold(later, BUSY_HEIGHTS, 0, false).unwrap();
        assert_eq!(held.until, later + MEMBER_HOLD);
        assert!(held.wake);
        slow.release();
        let again = slow.hold(later + MAX_HOLD, BUSY_HEIGHTS, 0, false).unwrap();
        assert_eq!(again.until, later + MAX_HOLD + MEMBER_HOLD);
    }

    #[test]
    fn a_busy_node_pushes_a_running_context_s_txs_at_most_every_interval() {
        let t = Instant::now();
        let mut pace = PushPace::default();
        // The first push goes at once; the next waits out the interval,
        // with one wake-up armed for its end.
        assert_eq!(pace.push(t, BUSY_HEIGHTS, true, 1), Push::Now);
        let soon = t + PUSH_EVERY / 5;
        assert_eq!(
            pace.push(soon, BUSY_HEIGHTS, true, 1),
            Push::WakeAt(t + PUSH_EVERY)
        );
        assert_eq!(pace.push(soon, BUSY_HEIGHTS, true, 2), Push::Later);
        // A batch's worth goes at once.
        assert_eq!(pace.push(soon, BUSY_HEIGHTS, true, PUSH_BATCH), Push::Now);
        // The wake-up armed before it is still to fire: no other yet.
        let later = soon + PUSH_EVERY / 2;
        assert_eq!(pace.push(later, BUSY_HEIGHTS, true, 1), Push::Later);
        // It fires: the interval runs from that push, so one more is armed.
        let fired = t + PUSH_EVERY;
        assert_eq!(
            pace.push(fired, BUSY_HEIGHTS, true, 1),
            Push::WakeAt(soon + PUSH_EVERY)
        );
        assert_eq!(pace.push(fired, BUSY_HEIGHTS, true, 1), Push::Later);
        assert_eq!(
            pace.push(soon + PUSH_EVERY, BUSY_HEIGHTS, true, 1),
            Push::Now
        );
        // Nothing waiting: nothing to push, nothing armed.
        assert_eq!(
            pace.push(soon + PUSH_EVERY, BUSY_HEIGHTS, true, 0),
            Push::Later
        );
    }

    #[test]
    fn an_unloaded_node_or_a_context_between_heights_pushes_at_once() {
        let t = Instant::now();
        let mut pace = PushPace::default();
        assert_eq!(pace.push(t, BUSY_HEIGHTS, true, 1), Push::Now);
        // Right after a push: not busy, or no height of this context
        // running (its txs may start one), and it pushes again.
        assert_eq!(pace.push(t, BUSY_HEIGHTS - 1, true, 1), Push::Now);
        assert_eq!(pace.push(t, 1_000, false, 1), Push::Now);
        assert_eq!(
            pace.push(t, BUSY_HEIGHTS, true, 1),
            Push::WakeAt(t + PUSH_EVERY)
        );
    }
}
