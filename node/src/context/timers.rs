//! The consensus engine's timeouts and the checkpoint resend tick, as
//! messages the actor sends itself after a delay (on tokio's clock, which
//! tests can pause). A cancelled or superseded timeout still arrives, and
//! is recognised by its sequence number and ignored.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use conclave_consensus::mal::{Round, Timeout, TimeoutKind};
use conclave_consensus::Height;
use malachitebft_core_types::LinearTimeouts;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::ingress::Message;
use super::pace::{ProposalDelays, ProposeWait};

/// The engine's step timeouts from the node's config; a node stuck in a
/// step rebroadcasts its votes (and asks for decided blocks) after all
/// three have passed.
pub(super) fn consensus_timeouts(cfg: &crate::config::Config) -> LinearTimeouts {
    let c = &cfg.consensus;
    let delta = Duration::from_millis(c.timeout_delta_ms);
    let propose = Duration::from_millis(c.timeout_propose_ms);
    let prevote = Duration::from_millis(c.timeout_prevote_ms);
    let precommit = Duration::from_millis(c.timeout_precommit_ms);
    LinearTimeouts {
        propose,
        propose_delta: delta,
        prevote,
        prevote_delta: delta,
        precommit,
        precommit_delta: delta,
        rebroadcast: propose + prevote + precommit,
        max_timeout: Duration::from_secs(30),
    }
}

pub(super) struct Timers {
    inbox: mpsc::Sender<Message>,
    /// The timeouts running.
    armed: HashMap<Timeout, Armed>,
    seq: u64,
    /// A checkpoint resend tick is scheduled.
    tick_armed: bool,
    /// The height ended here (decided and finalized): until a round of
    /// the next one starts, nothing is timed ([`Self::height_ended`]).
    ended: bool,
    /// How long to wait for proposals, by how late they have arrived.
    propose: ProposeWait,
}

/// A running timeout.
#[derive(Clone, Copy)]
struct Armed {
    /// The sequence number of its message.
    seq: u64,
    /// What the engine asked.
    asked: Duration,
    /// When it runs out.
    due: Instant,
}

impl Timers {
    /// `propose`: the configured propose timeout; `delays`: how late the
    /// node's proposals have lately arrived, over its contexts.
    pub(super) fn new(
        inbox: mpsc::Sender<Message>,
        propose: Duration,
        delays: Arc<ProposalDelays>,
    ) -> Self {
        Self {
            inbox,
            armed: HashMap::new(),
            seq: 0,
            tick_armed: false,
            ended: false,
            propose: ProposeWait::new(propose, delays),
        }
    }

    /// A round started here now (the wait for its proposal starts).
    pub(super) fn round_started(&mut self, height: Height, round: Round) {
        self.ended = false;
        self.propose.round_started(height, round, Instant::now());
    }

    /// The height about to start may have been held by its proposer for
    /// up to `hold` (`pace::FillWait::proposer_may_hold`).
    pub(super) fn proposer_may_hold(&mut self, hold: Duration) {
        self.propose.proposer_may_hold(hold);
    }

    /// A proposal of `(height, round)` arrived now; returns how long
    /// proposals are waited for from now on.
    pub(super) fn proposal_arrived(&mut self, height: Height, round: Round) -> Duration {
        self.propose.proposal_arrived(height, round, Instant::now());
        self.propose.current()
    }

    /// Starts `timeout`, replacing a running one of the same kind. A
    /// propose timeout waits as long as proposals have lately needed
    /// ([`ProposeWait`]), at least what the engine asks; a rebroadcast
    /// timeout (from the round's start) that much longer too.
    pub(super) fn schedule(&mut self, timeout: Timeout, after: Duration) {
        if self.ended {
            return;
        }
        let delay = self.delay_of(timeout, after);
        self.arm(timeout, after, Instant::now() + delay);
    }

    /// Runs `timeout` (the engine asked `asked`) until `due`, replacing a
    /// running one of the same kind.
    fn arm(&mut self, timeout: Timeout, asked: Duration, due: Instant) {
        self.seq += 1;
        let seq = self.seq;
        self.armed.insert(timeout, Armed { seq, asked, due });
        let after = due.saturating_duration_since(Instant::now());
        self.after(after, Message::TimeoutElapsed(timeout, seq));
    }

    /// How long [`Self::schedule`] waits for `timeout` where the engine
    /// asks `after` (a propose timeout takes the hold it waits out).
    fn delay_of(&mut self, timeout: Timeout, after: Duration) -> Duration {
        match timeout.kind {
            TimeoutKind::Propose => self.propose.timeout_of(timeout.round, after),
            TimeoutKind::Rebroadcast => after + self.propose.stretch(timeout.round),
            _ => after,
        }
    }

    pub(super) fn cancel(&mut self, timeout: &Timeout) {
        self.armed.remove(timeout);
    }

    pub(super) fn cancel_all(&mut self) {
        self.armed.clear();
    }

    /// The height was decided and finalized here: its timeouts stop, and
    /// none is armed until a round of the next height starts. When this
    /// node's own precommit is the one that decides (it voted after two
    /// others' precommits had arrived, as a node behind on a full machine
    /// does), malachite finalizes the height before it arms that vote's
    /// rebroadcast timeout, and the timeout then ran out in the decided
    /// height's commit step while the next height was held, or the
    /// context idle, and again every period after: the node resent its
    /// votes and took the height for stuck, asking members for blocks
    /// nobody had decided (the safety net's `sync` fallbacks at 100
    /// saturated contexts, docs/PERFORMANCE.md, fifty-fourth session).
    /// The votes need no resending there: a member that missed them
    /// learns the decision from this node's next height or its tip.
    pub(super) fn height_ended(&mut self) {
        self.cancel_all();
        self.ended = true;
    }

    /// Whether an elapsed timeout's message is the running one (it stops).
    /// A propose timeout whose proposal has not arrived runs on instead if
    /// the proposals that arrived since its round started say to wait
    /// longer ([`ProposeWait::wait_more`]), and the round's rebroadcast
    /// timeout runs out as much later, so that the longer wait is not taken
    /// for a stuck step. (The engine cancels a round's propose timeout once
    /// it proposes or prevotes, so only a wait for a proposal runs on.)
    pub(super) fn fired(&mut self, timeout: &Timeout, seq: u64) -> bool {
        self.fired_at(timeout, seq, Instant::now())
    }

    fn fired_at(&mut self, timeout: &Timeout, seq: u64, now: Instant) -> bool {
        let Some(armed) = self.armed.get(timeout).copied() else {
            return false;
        };
        if armed.seq != seq {
            return false;
        }
        if timeout.kind == TimeoutKind::Propose {
            if let Some(more) = self.propose.wait_more(timeout.round, armed.asked, now) {
                let due = now + more;
                self.arm(*timeout, armed.asked, due);
                let later = due.saturating_duration_since(armed.due);
                let rebroadcast = Timeout::rebroadcast(timeout.round);
                if let Some(r) = self.armed.get(&rebroadcast).copied() {
                    self.arm(rebroadcast, r.asked, r.due + later);
                }
                return false;
            }
        }
        self.armed.remove(timeout);
        true
    }

    /// Schedules one checkpoint resend tick unless one is scheduled.
    pub(super) fn arm_tick(&mut self, after: Duration) {
        if self.tick_armed {
            return;
        }
        self.tick_armed = true;
        self.after(after, Message::CheckpointTick);
    }

    /// The tick arrived.
    pub(super) fn ticked(&mut self) {
        self.tick_armed = false;
    }

    /// Sends `msg` to the actor after `after`.
    pub(super) fn after(&self, after: Duration, msg: Message) {
        let inbox = self.inbox.clone();
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = inbox.send(msg).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROPOSE: Duration = Duration::from_millis(1000);
    const REBROADCAST: Duration = Duration::from_millis(3000);

    /// In the order malachite asks at a round's start (the rebroadcast
    /// timeout, then the propose timeout) and after this node votes (the
    /// rebroadcast timeout again): a held height's first round waits out
    /// the hold in both of the first two, and only there.
    #[test]
    fn a_held_round_s_rebroadcast_waits_out_the_hold_too() {
        let (inbox, _rx) = mpsc::channel(1);
        let mut timers = Timers::new(inbox, PROPOSE, Arc::default());
        let hold = Duration::from_millis(2500);
        let round = Round::new(0);
        timers.round_started(Height(7), round);
        timers.proposer_may_hold(hold);

        let started = timers.delay_of(Timeout::rebroadcast(round), REBROADCAST);
        assert_eq!(started, REBROADCAST + hold);
        assert_eq!(
            timers.delay_of(Timeout::propose(round), PROPOSE),
            PROPOSE + hold
        );
        // The vote is cast once the proposal came: nothing is held any more.
        let voted = timers.delay_of(Timeout::rebroadcast(round), REBROADCAST);
        assert_eq!(voted, REBROADCAST);
        // Other steps wait what the engine asks, hold or not.
        timers.proposer_may_hold(hold);
        let prevote = timers.delay_of(Timeout::prevote(round), PROPOSE);
        assert_eq!(prevote, PROPOSE);
    }

    /// Many heights starting together (a load's onset over 100 contexts):
    /// none of their proposals has arrived when their waits are set. One
    /// that arrives before a round's wait runs out, 900 ms late in another
    /// context, makes it run on to twice that from the round's start, and
    /// its rebroadcast as much later; once out, it stops.
    #[tokio::test]
    async fn a_propose_timeout_runs_on_once_the_node_learns_proposals_are_late() {
        let node = Arc::new(ProposalDelays::default());
        let (inbox, _rx) = mpsc::channel(8);
        let mut timers = Timers::new(inbox, PROPOSE, node.clone());
        let (round, start) = (Round::new(0), Instant::now());
        let (propose, rebroadcast) = (Timeout::propose(round), Timeout::rebroadcast(round));
        timers.propose.round_started(Height(1), round, start);
        timers.arm(rebroadcast, REBROADCAST, start + REBROADCAST);
        timers.arm(propose, PROPOSE, start + PROPOSE);
        let mut other = ProposeWait::new(PROPOSE, node);
        other.round_started(Height(1), round, start);
        other.proposal_arrived(Height(1), round, start + Duration::from_millis(900));

        let seq = timers.armed[&propose].seq;
        assert!(
            !timers.fired_at(&propose, seq, start + PROPOSE),
            "it runs on"
        );
        assert!(
            !timers.fired_at(&propose, seq, start + PROPOSE),
            "superseded"
        );
        let ran_on = timers.armed[&propose];
        assert_eq!(ran_on.due, start + Duration::from_millis(1800));
        let later = REBROADCAST + Duration::from_millis(800);
        assert_eq!(timers.armed[&rebroadcast].due, start + later);
        assert!(timers.fired_at(&propose, ran_on.seq, ran_on.due));
        assert!(!timers.armed.contains_key(&propose));
    }

    /// A round of a node that learnt nothing, or whose proposal arrived
    /// (late or not; the engine ignores its timeout past the propose
    /// step), times out as armed.
    #[tokio::test]
    async fn a_propose_timeout_stops_when_nothing_says_to_wait_longer() {
        let (inbox, _rx) = mpsc::channel(8);
        let round = Round::new(0);
        let propose = Timeout::propose(round);
        for arrived in [false, true] {
            let mut timers = Timers::new(inbox.clone(), PROPOSE, Arc::default());
            let start = Instant::now();
            timers.propose.round_started(Height(1), round, start);
            timers.arm(propose, PROPOSE, start + PROPOSE);
            if arrived {
                let late = start + Duration::from_millis(900);
                timers.propose.proposal_arrived(Height(1), round, late);
            }
            let seq = timers.armed[&propose].seq;
            assert!(timers.fired_at(&propose, seq, start + PROPOSE));
        }
    }

    /// A decided height arms nothing, whatever the engine asks after its
    /// decision (the rebroadcast of the vote that decided it); a round of
    /// the next height times as before.
    #[tokio::test]
    async fn an_ended_height_arms_nothing_until_the_next_round_starts() {
        let (inbox, _rx) = mpsc::channel(8);
        let mut timers = Timers::new(inbox, PROPOSE, Arc::default());
        let round = Round::new(0);
        timers.round_started(Height(4), round);
        timers.schedule(Timeout::rebroadcast(round), REBROADCAST);
        timers.schedule(Timeout::propose(round), PROPOSE);
        assert_eq!(timers.armed.len(), 2);

        timers.height_ended();
        assert!(timers.armed.is_empty());
        timers.schedule(Timeout::rebroadcast(round), REBROADCAST);
        timers.schedule(Timeout::precommit(round), PROPOSE);
        assert!(timers.armed.is_empty(), "armed after the height ended");

        timers.round_started(Height(5), round);
        timers.schedule(Timeout::rebroadcast(round), REBROADCAST);
        assert!(timers.armed.contains_key(&Timeout::rebroadcast(round)));
    }
}
