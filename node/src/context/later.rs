//! Gossip that arrived for a height this node has not reached yet: kept
//! (bounded in heights and bytes) and replayed when the height starts, so a
//! member a little behind does not lose the votes of the height it is about
//! to enter.

use std::collections::{BTreeMap, VecDeque};

use conclave_consensus::{Height, MemberId};

/// Gossip kept for heights this node has not reached yet, at most.
const MAX_BYTES: usize = 32 << 20;

/// Heights above the next one whose gossip is kept; anything further is
/// left to catch-up (a member cannot make us hold gossip for far heights).
const WINDOW: u64 = 16;

type Frame = (MemberId, Vec<u8>);

#[derive(Default)]
pub(super) struct LaterHeights {
    held: BTreeMap<Height, Vec<Frame>>,
    /// Bytes held in `held`.
    bytes: usize,
    /// Frames of the height just reached, to be handled again.
    replay: VecDeque<Frame>,
}

fn frames_bytes(frames: &[Frame]) -> usize {
    frames.iter().map(|(_, d)| d.len()).sum()
}

impl LaterHeights {
    /// Keeps `data` from `from`, for `height` above `next`, if it is within
    /// the window and the byte budget; says whether it was kept.
    pub(super) fn hold(
        &mut self,
        next: Height,
        height: Height,
        from: MemberId,
        data: &[u8],
    ) -> bool {
        let fits = self.bytes.saturating_add(data.len()) <= MAX_BYTES;
        if height <= next || height.0 - next.0 > WINDOW || !fits {
            return false;
        }
        self.held
            .entry(height)
            .or_default()
            .push((from, data.to_vec()));
        self.bytes += data.len();
        true
    }

    /// Height `next` is about to run: what was held for it is queued for
    /// replay, and anything older is dropped.
    pub(super) fn reached(&mut self, next: Height) {
        let due: Vec<Height> = self.held.range(..=next).map(|(h, _)| *h).collect();
        for h in due {
            let frames = self.held.remove(&h).unwrap_or_default();
            self.bytes = self.bytes.saturating_sub(frames_bytes(&frames));
            if h == next {
                self.replay.extend(frames);
            }
        }
    }

    /// The next frame to handle again.
    pub(super) fn next_replay(&mut self) -> Option<Frame> {
        self.replay.pop_front()
    }

    #[cfg(test)]
    pub(super) fn held_bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_within_window_and_budget_and_replays_only_the_reached_height() {
        let mut later = LaterHeights::default();
        let m = MemberId([1; 32]);
        let next = Height(5);
        assert!(!later.hold(next, Height(5), m, b"current"));
        assert!(!later.hold(next, Height(4), m, b"past"));
        assert!(!later.hold(next, Height(5 + WINDOW + 1), m, b"too far"));
        assert!(later.hold(next, Height(6), m, b"six"));
        assert!(later.hold(next, Height(7), m, b"seven"));
        assert!(!later.hold(next, Height(7), m, &vec![0; MAX_BYTES]));
        assert_eq!(later.held_bytes(), 8);

        later.reached(Height(6));
        assert_eq!(later.next_replay(), Some((m, b"six".to_vec())));
        assert_eq!(later.next_replay(), None);
        assert_eq!(later.held_bytes(), 5);

        // Catch-up jumped past height 7: it is dropped, not replayed.
        later.reached(Height(9));
        assert_eq!(later.next_replay(), None);
        assert_eq!(later.held_bytes(), 0);
    }
}
