//! When a full pool will likely have room again. A pool makes room when
//! its context commits a block (the block's txs leave it), so a submitter
//! it refuses is told to come back about when the next commit is due:
//! `tx_submit`'s error data (`retry_after_ms`). Clients that follow it
//! come back once a block has taken txs out, instead of at their own pace
//! while nothing has changed; each refusal costs the node a request.

use std::time::{Duration, Instant};

/// The shortest wait advised: below it, a retry costs more than it saves.
pub(super) const RETRY_MIN: Duration = Duration::from_millis(5);
/// The longest wait advised, whatever the context's pace.
pub(super) const RETRY_MAX: Duration = Duration::from_secs(1);
/// The wait advised before the context has committed twice since this
/// node started (no pace known yet).
pub(super) const RETRY_UNKNOWN: Duration = Duration::from_millis(50);

/// The pace of a context's commits on this node.
#[derive(Debug, Default)]
pub(super) struct CommitPace {
    last: Option<Instant>,
    /// The usual time between two commits: a moving average, a quarter
    /// of each new interval.
    interval: Option<Duration>,
}

impl CommitPace {
    /// A block committed at `now`.
    pub(super) fn committed(&mut self, now: Instant) {
        if let Some(last) = self.last {
            let since = now.saturating_duration_since(last);
            self.interval = Some(match self.interval {
                None => since,
                Some(usual) => (usual * 3 + since) / 4,
            });
        }
        self.last = Some(now);
    }

    /// How long a submitter refused for lack of room at `now` should wait:
    /// until the next commit is due; once it is overdue (a slow height, a
    /// stuck one), a quarter of the time since the last, so that clients
    /// back off as long as the pool stays full.
    pub(super) fn retry_after(&self, now: Instant) -> Duration {
        let (Some(last), Some(usual)) = (self.last, self.interval) else {
            return RETRY_UNKNOWN;
        };
        let since = now.saturating_duration_since(last);
        let wait = match usual.checked_sub(since) {
            Some(left) if !left.is_zero() => left,
            _ => since / 4,
        };
        wait.clamp(RETRY_MIN, RETRY_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Commits every `every`, `n` of them, from `start`; returns the last.
    fn commits(pace: &mut CommitPace, start: Instant, every: Duration, n: u32) -> Instant {
        let mut at = start;
        for i in 0..n {
            at = start + every * i;
            pace.committed(at);
        }
        at
    }

    #[test]
    fn advises_the_time_left_until_the_next_commit_is_due() {
        let mut pace = CommitPace::default();
        let start = Instant::now();
        assert_eq!(pace.retry_after(start), RETRY_UNKNOWN);
        pace.committed(start);
        assert_eq!(
            pace.retry_after(start),
            RETRY_UNKNOWN,
            "one commit is no pace"
        );
        let last = commits(&mut pace, start + ms(200), ms(200), 9);
        assert_eq!(pace.retry_after(last), ms(200));
        assert_eq!(pace.retry_after(last + ms(150)), ms(50));
        assert_eq!(pace.retry_after(last + ms(199)), RETRY_MIN);
    }

    #[test]
    fn an_overdue_commit_makes_the_wait_grow_with_the_time_since_the_last() {
        let mut pace = CommitPace::default();
        let last = commits(&mut pace, Instant::now(), ms(100), 5);
        assert_eq!(pace.retry_after(last + ms(100)), ms(25));
        assert_eq!(pace.retry_after(last + ms(2_000)), ms(500));
        assert_eq!(pace.retry_after(last + ms(60_000)), RETRY_MAX);
    }

    #[test]
    fn the_pace_follows_the_commits_a_quarter_at_a_time() {
        let mut pace = CommitPace::default();
        let last = commits(&mut pace, Instant::now(), ms(100), 3);
        // One slow height moves the usual interval a quarter of the way.
        pace.committed(last + ms(500));
        assert_eq!(pace.retry_after(last + ms(500)), ms(200));
        // Quick heights bring it back down.
        let last = commits(&mut pace, last + ms(510), ms(10), 20);
        let wait = pace.retry_after(last);
        assert!(wait > ms(10) && wait <= ms(12), "{wait:?}");
    }
}
