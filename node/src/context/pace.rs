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

use std::collections::VecDeque;
use std::time::Duration;

use conclave_consensus::mal::Round;
use conclave_consensus::Height;
use tokio::time::Instant;

/// Proposal delays remembered (the rounds they came from).
const WINDOW: usize = 16;

/// The wait is at most this many times the configured propose timeout.
pub(super) const STRETCH_LIMIT: u32 = 8;

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

    /// How long to wait for a proposal where the engine asks `asked` (the
    /// configured timeout, grown by the round).
    pub(super) fn timeout(&self, asked: Duration) -> Duration {
        let latest = self.recent.iter().max().copied().unwrap_or_default();
        let limit = self.base.saturating_mul(STRETCH_LIMIT);
        asked.max(latest.saturating_mul(2).min(limit))
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
}
