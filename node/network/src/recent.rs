//! The last consensus messages delivered, by digest: a message sent both
//! by gossip and straight to each member arrives twice and is delivered
//! once.

use std::collections::{HashSet, VecDeque};

use sha2::{Digest, Sha256};

pub(crate) struct Recent {
    order: VecDeque<[u8; 32]>,
    seen: HashSet<[u8; 32]>,
    cap: usize,
}

impl Recent {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            order: VecDeque::with_capacity(cap),
            seen: HashSet::with_capacity(cap),
            cap,
        }
    }

    /// Whether `data` was not among the last `cap` messages; remembers it.
    pub(crate) fn first_time(&mut self, data: &[u8]) -> bool {
        let digest: [u8; 32] = Sha256::digest(data).into();
        if !self.seen.insert(digest) {
            return false;
        }
        self.order.push_back(digest);
        if self.order.len() > self.cap {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_is_delivered_once_within_the_window() {
        let mut r = Recent::new(2);
        assert!(r.first_time(b"a"));
        assert!(!r.first_time(b"a"));
        assert!(r.first_time(b"b"));
        assert!(r.first_time(b"c"));
        // "a" left the window.
        assert!(r.first_time(b"a"));
        assert!(!r.first_time(b"c"));
    }
}
