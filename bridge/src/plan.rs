//! Which checkpoints a relayer posts, decided from what the chain holds and
//! what the node has. Pure: no I/O, so every rule is unit-tested.
//!
//! A proxy accepts checkpoints at strictly increasing heights and keeps the
//! roots of each one it accepted; an action executes against the actions
//! root of its own height's checkpoint. So:
//!
//! - every checkpoint at a height that emitted actions for this chain must
//!   be posted, in order, or its actions could never execute;
//! - a checkpoint must not be posted while a lower action height's
//!   checkpoint is still collecting signatures (posting it would strand
//!   those actions below the proxy's latest height);
//! - a checkpoint that announces a new member set must be posted (the
//!   proxy rotates against it);
//! - of the others only the newest is worth its gas: it carries the latest
//!   state root.

use std::collections::BTreeSet;

use crate::source::SignedCheckpoint;

/// What a proxy holds now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainView {
    /// Height of the latest accepted checkpoint (0: none).
    pub latest: u64,
    /// Member-set epoch the proxy verifies against.
    pub epoch: u64,
    /// Hash of the proxy's current member set.
    pub members_hash: [u8; 32],
}

/// Why posting stops before the node's newest checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// The checkpoint of this action height is not complete yet.
    Collecting(u64),
    /// Checkpoints from this height on are signed for a later epoch: the
    /// proxy's member set must be rotated first.
    Rotation { height: u64, epoch: u64 },
    /// This action height's checkpoint is signed for an epoch the proxy has
    /// left behind: its actions cannot execute on this proxy any more.
    Stale { height: u64, epoch: u64 },
}

/// The checkpoints to post, in order, and why it stops where it does.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Plan {
    pub post: Vec<SignedCheckpoint>,
    pub blocked: Option<Blocked>,
}

/// Plans the checkpoints to post to a proxy in state `chain`, given the
/// node's `completed` checkpoints above `chain.latest` (ascending) and
/// the heights above it whose blocks emitted actions for this chain.
pub fn checkpoints(
    chain: &ChainView,
    completed: &[SignedCheckpoint],
    action_heights: &BTreeSet<u64>,
) -> Plan {
    let mut blocked = None;
    let mut limit = u64::MAX;
    // The first action height without a complete checkpoint bounds what
    // may be posted.
    for &h in action_heights.range(chain.latest + 1..) {
        if !completed.iter().any(|c| c.payload.height == h) {
            blocked = Some(Blocked::Collecting(h));
            limit = h;
            break;
        }
    }
    let mut eligible = Vec::new();
    for c in completed {
        let h = c.payload.height;
        if h <= chain.latest || h >= limit {
            continue;
        }
        let epoch = c.payload.epoch;
        if epoch > chain.epoch {
            blocked = Some(Blocked::Rotation { height: h, epoch });
            break;
        }
        if epoch < chain.epoch {
            if action_heights.contains(&h) {
                blocked.get_or_insert(Blocked::Stale { height: h, epoch });
            }
            continue;
        }
        eligible.push(c);
    }
    let last = eligible.len().saturating_sub(1);
    let post = eligible
        .into_iter()
        .enumerate()
        .filter(|(i, c)| {
            *i == last
                || action_heights.contains(&c.payload.height)
                || c.payload.next_members_hash != chain.members_hash
        })
        .map(|(_, c)| c.clone())
        .collect();
    Plan { post, blocked }
}

#[cfg(test)]
mod tests {
    use conclave_checkpoint::{CheckpointPayload, Domain, SecretKey};

    use super::*;

    const SET: [u8; 32] = [7; 32];

    fn cp(height: u64, epoch: u64, next: [u8; 32]) -> SignedCheckpoint {
        let payload = CheckpointPayload {
            domain: Domain::evm(31337, [1; 20]),
            context_id: [2; 32],
            epoch,
            height,
            state_root: [3; 32],
            actions_root: [0; 32],
            next_members_hash: next,
        };
        let key = SecretKey::from_seed(&[9; 32]).unwrap();
        SignedCheckpoint {
            signature: conclave_checkpoint::sign_checkpoint(&key, &payload),
            payload,
            signers: [0; 32],
        }
    }

    fn heights(p: &Plan) -> Vec<u64> {
        p.post.iter().map(|c| c.payload.height).collect()
    }

    fn chain(latest: u64) -> ChainView {
        ChainView {
            latest,
            epoch: 0,
            members_hash: SET,
        }
    }

    #[test]
    fn only_the_newest_plain_checkpoint_is_posted() {
        let done = [cp(10, 0, SET), cp(20, 0, SET), cp(30, 0, SET)];
        let p = checkpoints(&chain(0), &done, &BTreeSet::new());
        assert_eq!(heights(&p), vec![30]);
        assert_eq!(p.blocked, None);
    }

    #[test]
    fn every_action_height_is_posted_in_order() {
        let done = [
            cp(10, 0, SET),
            cp(13, 0, SET),
            cp(20, 0, SET),
            cp(27, 0, SET),
        ];
        let p = checkpoints(&chain(0), &done, &BTreeSet::from([13, 27]));
        assert_eq!(heights(&p), vec![13, 27]);
    }

    #[test]
    fn nothing_at_or_below_the_chain_is_posted() {
        let done = [cp(13, 0, SET), cp(20, 0, SET)];
        let p = checkpoints(&chain(20), &done, &BTreeSet::from([13]));
        assert!(p.post.is_empty());
        assert_eq!(p.blocked, None);
    }

    #[test]
    fn an_incomplete_action_checkpoint_holds_back_everything_above_it() {
        // 13 emitted actions but its checkpoint is still collecting: posting
        // 20 would put the proxy above 13 for good.
        let done = [cp(10, 0, SET), cp(20, 0, SET)];
        let p = checkpoints(&chain(0), &done, &BTreeSet::from([13]));
        assert_eq!(heights(&p), vec![10]);
        assert_eq!(p.blocked, Some(Blocked::Collecting(13)));
    }

    #[test]
    fn announcements_are_posted_and_a_later_epoch_waits_for_rotation() {
        let next = [8; 32];
        let done = [
            cp(5, 0, SET),
            cp(9, 0, next),
            cp(10, 1, next),
            cp(12, 1, next),
        ];
        let p = checkpoints(&chain(0), &done, &BTreeSet::new());
        assert_eq!(heights(&p), vec![9]);
        assert_eq!(
            p.blocked,
            Some(Blocked::Rotation {
                height: 10,
                epoch: 1
            })
        );
        // After the rotation the proxy verifies epoch 1.
        let rotated = ChainView {
            latest: 9,
            epoch: 1,
            members_hash: next,
        };
        let p = checkpoints(&rotated, &done, &BTreeSet::new());
        assert_eq!(heights(&p), vec![12]);
    }

    #[test]
    fn an_action_height_of_a_past_epoch_is_reported_stale() {
        let done = [cp(4, 0, SET), cp(8, 1, SET)];
        let view = ChainView {
            latest: 2,
            epoch: 1,
            members_hash: SET,
        };
        let p = checkpoints(&view, &done, &BTreeSet::from([4]));
        assert_eq!(heights(&p), vec![8]);
        assert_eq!(
            p.blocked,
            Some(Blocked::Stale {
                height: 4,
                epoch: 0
            })
        );
    }
}
