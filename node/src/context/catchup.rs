//! Catch-up, asking side: which member to ask for decided blocks (one
//! request at a time, another member after each failure), checking what
//! comes back, and the safety net's view of which members went silent.
//! The serving side is `wire::serve_sync`.

use std::collections::HashMap;
use std::time::Duration;

use conclave_consensus::codec::StoredCertificate;
use conclave_consensus::{Block, ContextId, Height, MemberId, ValidatorSet};
use malachitebft_core_types::CommitCertificate;
use tokio::time::Instant;

use super::wire::SyncRequest;

/// Failed sync requests in a row retried on their own, at most; then only
/// new evidence of being behind (gossip for a later height, a member
/// connecting, a slow height) asks again.
const MAX_RETRIES: usize = 8;

/// Requests after empty answers while following a height being decided,
/// at most, and their spacing: about 5 s of polling after the last gossip.
const FOLLOW_POLLS: u32 = 20;
const FOLLOW_POLL_EVERY: Duration = Duration::from_millis(250);

/// A member whose consensus gossip has not reached us for this long, while
/// a height is struggling, gets its connection re-established (the network
/// limits how often, whichever contexts ask).
const SILENT_AFTER: Duration = Duration::from_secs(5);

pub(super) type Certificate = CommitCertificate<conclave_consensus::ConclaveContext>;

#[derive(Default)]
pub(super) struct CatchUp {
    /// A request is in flight.
    syncing: bool,
    /// The member the last request went to.
    peer: Option<MemberId>,
    /// Requests that failed in a row; the next one goes to another member
    /// (a member that never answers cannot keep us asking it).
    failures: usize,
    /// When each member's consensus gossip last reached us.
    last_heard: HashMap<MemberId, Instant>,
    /// Empty answers still to follow with another request, while following
    /// a height being decided (see [`CatchUp::follow_height`]).
    follow_polls: u32,
    /// The member the last request for a slow height went to.
    last_slow: Option<MemberId>,
}

impl CatchUp {
    /// Consensus gossip from `member` reached us.
    pub(super) fn heard(&mut self, member: MemberId) {
        self.last_heard.insert(member, Instant::now());
    }

    /// Starts a request for the blocks after `tip`, to `wanted` (or, after
    /// failures, the member that many places after it among `others`):
    /// the member to ask and the request's bytes, or `None` while a request
    /// is in flight.
    pub(super) fn ask(
        &mut self,
        wanted: MemberId,
        others: &[MemberId],
        tip: Height,
        key_epoch: u64,
    ) -> Option<(MemberId, Vec<u8>)> {
        if self.syncing || others.is_empty() {
            return None;
        }
        let peer = match others.iter().position(|m| *m == wanted) {
            Some(i) if self.failures > 0 => others[(i + self.failures) % others.len()],
            _ => wanted,
        };
        let req = SyncRequest {
            from: tip.0 + 1,
            key_epoch,
        };
        let data = borsh::to_vec(&req).ok()?;
        self.peer = Some(peer);
        self.syncing = true;
        Some((peer, data))
    }

    /// Starts a request for a slow height (see [`CatchUp::ask`]): to the
    /// member after the one the previous slow-height request went to, so
    /// that every member is asked in turn. Members stuck together at one
    /// height (in a step with no timeout left, only rebroadcasts, so their
    /// round never changes) would otherwise ask each other forever while
    /// the members that decided it sit idle.
    pub(super) fn ask_slow(
        &mut self,
        others: &[MemberId],
        tip: Height,
        key_epoch: u64,
    ) -> Option<(MemberId, Vec<u8>)> {
        let next = match self
            .last_slow
            .and_then(|m| others.iter().position(|o| *o == m))
        {
            Some(i) => i + 1,
            None => 0,
        };
        let wanted = *others.get(next % others.len().max(1))?;
        let asked = self.ask(wanted, others, tip, key_epoch)?;
        self.last_slow = Some(wanted);
        Some(asked)
    }

    /// The request in flight ended; says who answered, if it succeeded.
    pub(super) fn answered(&mut self, ok: bool) -> MemberId {
        self.syncing = false;
        if ok {
            self.failures = 0;
        } else {
            self.failures += 1;
        }
        self.peer.unwrap_or_default()
    }

    /// A member that does not validate saw gossip of the height being
    /// decided: until an answer brings a block, ask again after each empty
    /// one for a while (the decision is imminent, and no later gossip may
    /// come to prompt a request once the network goes idle).
    pub(super) fn follow_height(&mut self) {
        self.follow_polls = FOLLOW_POLLS;
    }

    /// After an answer that brought `applied` blocks: when to ask again, if
    /// following a height and nothing came yet.
    pub(super) fn poll_again(&mut self, applied: u64) -> Option<Duration> {
        if applied > 0 || self.follow_polls == 0 {
            self.follow_polls = 0;
            return None;
        }
        self.follow_polls -= 1;
        Some(FOLLOW_POLL_EVERY)
    }

    /// After a failed request: when to ask again (250 ms, doubling, at
    /// most 5 s), or `None` once [`MAX_RETRIES`] failed in a row.
    pub(super) fn retry_after(&self) -> Option<Duration> {
        if self.failures == 0 || self.failures > MAX_RETRIES {
            return None;
        }
        let ms = 250u64.saturating_mul(1 << (self.failures - 1).min(5));
        Some(Duration::from_millis(ms.min(5_000)))
    }

    /// The member the last request went to.
    pub(super) fn peer(&self) -> Option<MemberId> {
        self.peer
    }

    /// Which of `others` have been silent too long, at `now`.
    pub(super) fn silent(&self, others: &[MemberId], now: Instant) -> Vec<MemberId> {
        others
            .iter()
            .copied()
            .filter(|m| {
                self.last_heard
                    .get(m)
                    .is_none_or(|t| now.duration_since(*t) > SILENT_AFTER)
            })
            .collect()
    }
}

/// `block`'s commit certificate from a sync response, if it is one of
/// more than 2/3 of `validators` (those of the block's height) for the
/// block's hash; execution is checked by the caller.
pub(super) fn certificate_for(
    context: &ContextId,
    validators: &ValidatorSet,
    block: &Block,
    stored: &StoredCertificate,
) -> Option<Certificate> {
    let cert = stored.to_cert().ok()?;
    let ok = cert.value_id == block.hash()
        && cert.height == block.height()
        && conclave_consensus::engine::verify_commit_certificate(
            context,
            &cert,
            validators,
            Default::default(),
        )
        .is_ok();
    ok.then_some(cert)
}

/// [`certificate_for`] of each of an answer's `blocks`, against the same
/// `validators`, the two halves on two threads: the certificates' signature
/// checks are a good part of applying an answer, and the other core has
/// room while this one executes.
pub(super) fn certificates_for(
    context: &ContextId,
    validators: &ValidatorSet,
    blocks: &[(Block, StoredCertificate)],
) -> Vec<Option<Certificate>> {
    let check = |part: &[(Block, StoredCertificate)]| -> Vec<Option<Certificate>> {
        part.iter()
            .map(|(block, stored)| certificate_for(context, validators, block, stored))
            .collect()
    };
    if blocks.len() < 2 {
        return check(blocks);
    }
    let (first, second) = blocks.split_at(blocks.len() / 2);
    std::thread::scope(|scope| {
        let other = scope.spawn(|| check(second));
        let mut out = check(first);
        match other.join() {
            Ok(rest) => out.extend(rest),
            // Unchecked: the caller refuses a block without a certificate.
            Err(_) => out.extend(second.iter().map(|_| None)),
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_at_a_time_and_another_member_after_a_failure() {
        let (a, b, c) = (MemberId([1; 32]), MemberId([2; 32]), MemberId([3; 32]));
        let others = [a, b, c];
        let mut catch_up = CatchUp::default();
        assert_eq!(catch_up.ask(b, &[], Height(3), 0), None);
        let (peer, data) = catch_up.ask(b, &others, Height(3), 7).unwrap();
        assert_eq!(peer, b);
        let req: SyncRequest = borsh::from_slice(&data).unwrap();
        assert_eq!((req.from, req.key_epoch), (4, 7));
        assert_eq!(
            catch_up.ask(a, &others, Height(3), 0),
            None,
            "one in flight"
        );
        assert_eq!(catch_up.answered(false), b);
        // One failure: the member after the one wanted.
        assert_eq!(catch_up.ask(b, &others, Height(3), 0).unwrap().0, c);
        catch_up.answered(false);
        assert_eq!(catch_up.ask(b, &others, Height(3), 0).unwrap().0, a);
        assert_eq!(catch_up.answered(true), a);
        assert_eq!(catch_up.ask(b, &others, Height(3), 0).unwrap().0, b);
    }

    #[test]
    fn slow_heights_ask_every_member_in_turn() {
        let (a, b, c) = (MemberId([1; 32]), MemberId([2; 32]), MemberId([3; 32]));
        let others = [a, b, c];
        let mut catch_up = CatchUp::default();
        assert_eq!(catch_up.ask_slow(&[], Height(3), 0), None);
        let mut asked = Vec::new();
        for _ in 0..4 {
            asked.push(catch_up.ask_slow(&others, Height(3), 0).unwrap().0);
            // An empty answer is a success: nothing rotates the next
            // request but the turn itself.
            catch_up.answered(true);
        }
        assert_eq!(asked, [a, b, c, a]);
        // While a request is in flight the turn does not move.
        catch_up.ask_slow(&others, Height(3), 0).unwrap();
        assert_eq!(catch_up.ask_slow(&others, Height(3), 0), None);
        catch_up.answered(true);
        assert_eq!(catch_up.ask_slow(&others, Height(3), 0).unwrap().0, c);
    }

    #[test]
    fn failed_requests_are_retried_with_backoff_a_bounded_number_of_times() {
        let a = MemberId([1; 32]);
        let mut catch_up = CatchUp::default();
        let mut waits = Vec::new();
        loop {
            catch_up.ask(a, &[a], Height(0), 0).unwrap();
            catch_up.answered(false);
            match catch_up.retry_after() {
                Some(d) => waits.push(d.as_millis()),
                None => break,
            }
        }
        assert_eq!(waits, [250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
        catch_up.ask(a, &[a], Height(0), 0).unwrap();
        catch_up.answered(true);
        assert_eq!(
            catch_up.retry_after(),
            None,
            "nothing to retry after a success"
        );
    }

    #[test]
    fn a_follower_polls_a_bounded_while_until_a_block_comes() {
        let mut catch_up = CatchUp::default();
        assert_eq!(catch_up.poll_again(0), None, "not following");
        catch_up.follow_height();
        for _ in 0..FOLLOW_POLLS {
            assert_eq!(catch_up.poll_again(0), Some(FOLLOW_POLL_EVERY));
        }
        assert_eq!(catch_up.poll_again(0), None, "bounded");
        catch_up.follow_height();
        assert_eq!(catch_up.poll_again(1), None, "a block came");
        assert_eq!(catch_up.poll_again(0), None);
    }

    #[test]
    fn members_unheard_for_a_while_are_silent() {
        let (a, b) = (MemberId([1; 32]), MemberId([2; 32]));
        let mut catch_up = CatchUp::default();
        catch_up.heard(a);
        let now = Instant::now();
        assert_eq!(catch_up.silent(&[a, b], now), vec![b]);
        let later = now + SILENT_AFTER + Duration::from_millis(1);
        assert_eq!(catch_up.silent(&[a, b], later), vec![a, b]);
    }
}
