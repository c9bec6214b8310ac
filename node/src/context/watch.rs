//! The schedule of the node's tip watch (`crate::tip_watch`, which sends
//! the requests): when a context idle at one tip is due for a check and
//! with which member, how a round's checks are grouped into one request
//! per member, and what a member answers. Kept here, below the node, so
//! that each context's [`super::Standing`] holds its own [`Watch`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use conclave_consensus::{ContextId, Height, MemberId};

/// How often the node looks at its contexts' tips, and how long a context
/// stays idle at one tip before its first check.
pub const ROUND: Duration = Duration::from_secs(1);

/// The longest wait between two checks of a context idle at one tip.
pub const MAX_INTERVAL: Duration = Duration::from_secs(30);

/// Contexts one request names, at most (the rest wait for their next
/// check); a larger request is refused.
pub const MAX_ASKED: usize = 1024;

/// One context's checks, kept with what its actor shows the node
/// ([`crate::context::Standing`]), so that a round looks nothing up.
#[derive(Debug, Default)]
pub struct Watch {
    tip: Height,
    checks: u32,
    /// When the next check is due (`None`: not idle at the last round).
    due: Option<Instant>,
}

impl Watch {
    /// A round at `now` found the context idle at `tip`: whether it is due
    /// for a check, with how many were made at this tip before (which
    /// member to ask). The first comes a round after it was found idle at
    /// a tip, the next at doubling intervals up to [`MAX_INTERVAL`].
    pub fn due(&mut self, now: Instant, tip: Height) -> Option<u32> {
        match self.due {
            Some(due) if self.tip == tip => {
                if due > now {
                    return None;
                }
                let checks = self.checks;
                self.checks = checks.saturating_add(1);
                let wait = ROUND.saturating_mul(1 << self.checks.min(5));
                self.due = Some(now + wait.min(MAX_INTERVAL));
                Some(checks)
            }
            _ => {
                *self = Watch {
                    tip,
                    checks: 0,
                    due: Some(now + ROUND),
                };
                None
            }
        }
    }

    /// A round found a height under way: the checks start over once the
    /// context is idle again.
    pub fn busy(&mut self) {
        self.due = None;
    }
}

/// Contexts to check with one member, with this node's tips.
pub type Asks = HashMap<MemberId, Vec<(ContextId, Height)>>;

/// Adds `context`, due for its check number `checks` at `tip`, to the
/// request for the member whose turn it is among `readers` other than
/// `me`. A context alone asks nobody; one past [`MAX_ASKED`] for that
/// member waits for its next check.
pub fn add(
    asks: &mut Asks,
    me: MemberId,
    (context, tip, checks): (ContextId, Height, u32),
    readers: &[MemberId],
) {
    let others: Vec<MemberId> = readers.iter().copied().filter(|m| *m != me).collect();
    if others.is_empty() {
        return;
    }
    let asked = asks
        .entry(others[checks as usize % others.len()])
        .or_default();
    if asked.len() < MAX_ASKED {
        asked.push((context, tip));
    }
}

/// The answer to `asked` from a member: the contexts this node is ahead
/// on, with its tips, among those `tip_for` tells that member (it may read
/// them).
pub fn ahead(
    asked: &[(ContextId, Height)],
    tip_for: impl Fn(&ContextId) -> Option<Height>,
) -> Vec<(ContextId, Height)> {
    asked
        .iter()
        .filter_map(|(context, theirs)| {
            tip_for(context)
                .filter(|ours| ours > theirs)
                .map(|ours| (*context, ours))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// This node's member.
    const ME: MemberId = MemberId([1; 32]);

    fn ctx(b: u8) -> ContextId {
        ContextId([b; 32])
    }

    fn members(bs: &[u8]) -> Arc<[MemberId]> {
        bs.iter().map(|b| MemberId([*b; 32])).collect()
    }

    /// The checks of a context idle at one tip over `rounds` rounds a
    /// second apart: (seconds after the first round, member asked).
    fn checks(rounds: u64) -> Vec<(u64, u8)> {
        let (mut watch, start) = (Watch::default(), Instant::now());
        let mut seen = Vec::new();
        for s in 0..rounds {
            let now = start + Duration::from_secs(s);
            if let Some(checks) = watch.due(now, Height(5)) {
                let mut asks = Asks::new();
                add(
                    &mut asks,
                    ME,
                    (ctx(1), Height(5), checks),
                    &members(&[1, 2, 3, 4]),
                );
                assert_eq!(asks.len(), 1);
                for (peer, asked) in asks {
                    assert_eq!(asked, vec![(ctx(1), Height(5))]);
                    seen.push((s, peer.0[0]));
                }
            }
        }
        seen
    }

    #[test]
    fn an_idle_context_is_checked_at_doubling_intervals_with_each_member_in_turn() {
        assert_eq!(
            checks(125),
            [
                (1, 2),
                (3, 3),
                (7, 4),
                (15, 2),
                (31, 3),
                (61, 4),
                (91, 2),
                (121, 3)
            ],
            "a second after it went idle, then 2, 4, 8, 16 s later, then every 30 s"
        );
    }

    #[test]
    fn a_new_tip_or_a_busy_spell_starts_the_checks_over() {
        let (mut watch, start) = (Watch::default(), Instant::now());
        let at = |s: u64| start + Duration::from_secs(s);
        assert_eq!(watch.due(at(0), Height(5)), None);
        assert_eq!(watch.due(at(1), Height(5)), Some(0));
        assert_eq!(watch.due(at(2), Height(5)), None);
        // A height decided since: a round at the new tip first.
        assert_eq!(watch.due(at(3), Height(6)), None);
        assert_eq!(watch.due(at(4), Height(6)), Some(0));
        // A height under way: a round idle first, then the first check.
        watch.busy();
        assert_eq!(watch.due(at(5), Height(6)), None);
        assert_eq!(watch.due(at(6), Height(6)), Some(0));
        assert_eq!(watch.due(at(8), Height(6)), Some(1));
    }

    #[test]
    fn one_request_per_member_names_every_context_due_with_it_up_to_a_bound() {
        let mut asks = Asks::new();
        for i in 0..(MAX_ASKED + 10) {
            let mut id = [0; 32];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            // Checks 0 and 3 of members 2, 3, 4 both ask member 2.
            let checks = if i % 2 == 0 { 0 } else { 3 };
            add(
                &mut asks,
                ME,
                (ContextId(id), Height(3), checks),
                &members(&[1, 2, 3, 4]),
            );
        }
        assert_eq!(asks.len(), 1);
        assert_eq!(asks[&MemberId([2; 32])].len(), MAX_ASKED);
        // A context alone asks nobody.
        let mut alone = Asks::new();
        add(&mut alone, ME, (ctx(9), Height(1), 0), &members(&[1]));
        assert!(alone.is_empty());
    }

    #[test]
    fn a_member_hears_only_of_contexts_it_may_read_and_this_node_is_ahead_on() {
        let asked = [
            (ctx(1), Height(5)),
            (ctx(2), Height(5)),
            (ctx(3), Height(9)),
            (ctx(4), Height(1)),
        ];
        let ours = |c: &ContextId| match c.as_bytes()[0] {
            1 => Some(Height(7)),
            2 => Some(Height(5)),
            3 => Some(Height(8)),
            _ => None, // unknown here, or the asker may not read it
        };
        assert_eq!(ahead(&asked, ours), vec![(ctx(1), Height(7))]);
    }
}
