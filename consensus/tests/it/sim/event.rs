//! Simulated time: a priority queue of events ordered by `(time, seq)`, so
//! two events at the same millisecond run in the order they were scheduled.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use conclave_consensus::mal::{Round, Timeout};
use conclave_consensus::Height;

use super::link::Msg;

/// Simulated milliseconds since the start of the run.
pub type Millis = u64;

pub enum Event {
    /// A message arrives at `to`; `sent` orders sends network-wide.
    Deliver {
        to: usize,
        from: usize,
        sent: u64,
        msg: Msg,
    },
    /// A timer fires; it counts only if `id` is still the live timer for
    /// `timeout` (cancelled and superseded timers are ignored).
    Timer {
        node: usize,
        id: u64,
        timeout: Timeout,
    },
    /// Start `height` after the previous one finalised.
    StartHeight {
        node: usize,
        life: u32,
        height: Height,
    },
    /// The host has built its block for `(height, round)`.
    Propose {
        node: usize,
        life: u32,
        height: Height,
        round: Round,
    },
    /// Periodic catch-up check.
    SyncTick { node: usize },
}

struct Scheduled {
    at: Millis,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    // Reversed: `BinaryHeap` is a max-heap and we pop the earliest event.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

#[derive(Default)]
pub struct Queue {
    heap: BinaryHeap<Scheduled>,
    seq: u64,
}

impl Queue {
    /// Schedules `event` at `at` and returns its sequence number (unique).
    pub fn push(&mut self, at: Millis, event: Event) -> u64 {
        self.seq += 1;
        self.heap.push(Scheduled {
            at,
            seq: self.seq,
            event,
        });
        self.seq
    }

    pub fn next_at(&self) -> Option<Millis> {
        self.heap.peek().map(|s| s.at)
    }

    pub fn pop(&mut self) -> Option<(Millis, Event)> {
        self.heap.pop().map(|s| (s.at, s.event))
    }
}
