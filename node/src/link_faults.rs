//! Faults injected on the links from chosen members, for fault tests and
//! the soak (`debug_set_link_faults`, only with `[debug] fault_injection`):
//! gossip and pushes from a member are dropped with a probability, or
//! delivered late with jitter (and so out of order). Catch-up requests and
//! answers are untouched. It acts where this node receives, so a fault on
//! B for messages from A makes the link A→B lossy while B→A stays whole:
//! an asymmetric link.

use std::collections::HashMap;
use std::time::Duration;

use conclave_consensus::MemberId;
use parking_lot::RwLock;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// What happens to messages from one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkFault {
    pub from: MemberId,
    /// Messages dropped, per thousand.
    pub drop_permille: u16,
    /// Messages delivered after a delay between half and one and a half
    /// times this (0: at once).
    pub delay_ms: u32,
}

/// What becomes of one message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fate {
    Deliver,
    Drop,
    Delay(Duration),
}

/// The faults in force, by sender.
#[derive(Debug, Default)]
pub struct LinkFaults(RwLock<HashMap<MemberId, LinkFault>>);

impl LinkFaults {
    /// Replaces the faults in force by `faults` (empty: every link whole).
    pub fn set(&self, faults: Vec<LinkFault>) {
        *self.0.write() = faults.into_iter().map(|f| (f.from, f)).collect();
    }

    /// The fate of one message from `from`.
    pub fn fate(&self, from: &MemberId) -> Fate {
        let Some(fault) = self.0.read().get(from).copied() else {
            return Fate::Deliver;
        };
        let mut rng = rand::thread_rng();
        if rng.gen_range(0..1000u16) < fault.drop_permille {
            return Fate::Drop;
        }
        if fault.delay_ms == 0 {
            return Fate::Deliver;
        }
        let half = u64::from(fault.delay_ms / 2);
        let ms = half + rng.gen_range(0..=u64::from(fault.delay_ms));
        Fate::Delay(Duration::from_millis(ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_faulty_link_loses_or_delays() {
        let faults = LinkFaults::default();
        let (a, b) = (MemberId([1; 32]), MemberId([2; 32]));
        faults.set(vec![LinkFault {
            from: a,
            drop_permille: 500,
            delay_ms: 100,
        }]);
        let fates: Vec<Fate> = (0..2000).map(|_| faults.fate(&a)).collect();
        let dropped = fates.iter().filter(|f| **f == Fate::Drop).count();
        assert!((800..1200).contains(&dropped), "{dropped} of 2000 dropped");
        assert!(fates.iter().all(|f| match f {
            Fate::Delay(d) => (50..=150).contains(&d.as_millis()),
            Fate::Drop => true,
            Fate::Deliver => false,
        }));
        assert_eq!(faults.fate(&b), Fate::Deliver);
        faults.set(Vec::new());
        assert_eq!(faults.fate(&a), Fate::Deliver);
    }
}
