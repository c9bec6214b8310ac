//! Collecting members' BLS signatures of a checkpoint into aggregates.
//!
//! Pure: no I/O, no clock. The context actor feeds it its own commits and
//! the shares members gossip, and persists and gossips what comes out.
//!
//! - On committing a checkpoint height a member signs the payload of every
//!   domain of the context and gossips its share; shares of heights the
//!   node has not committed yet wait (bounded) until it has.
//! - Incoming shares wait, decoded but unchecked, until every member's
//!   share is in, or, once a quorum is in but some member's share is
//!   missing, until the resend tick ([`Collector::settle_waiting`]); then
//!   they are checked as one aggregate per domain (one pairing check
//!   instead of one per share, and one a round where checking the quorum
//!   first and the last share alone took two). Only if that fails is
//!   each checked on its own, and the bad ones are refused: one bad share
//!   can never spoil an aggregate. What the collector keeps is a set of
//!   shares whose sum verifies, which is all a certificate needs; a share
//!   that differs from a signer's unchecked one is checked at once (BLS
//!   signatures are unique, so one of the two is bad).
//! - Each height is signed by the member set in force there ([`Params`] per
//!   round): a share that arrives after the set changed is still checked
//!   against the set that signs its height.
//! - Once the shares checked make a quorum, they are aggregated (bitmap
//!   in the set's member order) into a [`CheckpointRecord`]; a later share
//!   (of a member that was away at the tick) upgrades it.
//! - A member below quorum re-gossips its share on a timer (bounded); a
//!   member at quorum that sees such a repeat answers with its own share,
//!   so a member that was briefly away completes too.

use std::collections::BTreeMap;
use std::sync::Arc;

use conclave_checkpoint::{
    sign_checkpoint, CheckpointPayload, Domain, MemberSet, PublicKey, SecretKey, Signature,
    SignerBitmap,
};
use conclave_consensus::{ContextId, Hash32, Height, MemberId};
use thiserror::Error;

use crate::store::{AnchorDomain, CheckpointRecord, DomainCertificate};

/// Rounds (checkpoint heights) kept for late signers, at most.
const MAX_ROUNDS: usize = 64;
/// Shares buffered for heights not committed yet, at most.
const MAX_BUFFERED: usize = 1024;
/// How far above the committed tip a buffered share may be.
pub(crate) const MAX_AHEAD: u64 = 256;
/// Answers to repeated shares per round, at most.
const MAX_ECHOES: u32 = 32;

/// One member's signatures of a checkpoint: one per domain, in the
/// context's domain order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Share {
    pub height: u64,
    pub signer: MemberId,
    pub sigs: Vec<([u8; 41], [u8; 96])>,
}

/// Why a share was refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("signer {0} is not a member")]
    NotMember(MemberId),
    #[error("share names other domains than the context's")]
    WrongDomains,
    #[error("signature for domain {0} does not decode")]
    BadEncoding(usize),
    #[error("signature for domain {0} does not verify")]
    BadSignature(usize),
}

/// What a height's checkpoint is: the members that sign it, their BLS set,
/// the domains, the interval, and the set that follows.
#[derive(Clone, Debug)]
pub struct Params {
    pub context: ContextId,
    /// Members sorted by id (the bitmap's order).
    pub members: Vec<MemberId>,
    pub set: MemberSet,
    pub domains: Vec<Domain>,
    pub interval: u64,
    /// Member-set epoch: how many times the member set changed.
    pub epoch: u64,
    /// Hash of the set that signs the next height: `set`'s own, except at
    /// the last height of an epoch, whose checkpoint announces the next
    /// set (a proxy rotates to it).
    pub next_members_hash: [u8; 32],
}

impl Params {
    /// Whether `height` is a checkpoint height: a multiple of the interval,
    /// a height whose block emitted actions, or the last height of an
    /// epoch (it announces the next member set).
    pub fn is_checkpoint_height(&self, height: u64, actions: usize) -> bool {
        height > 0
            && (actions > 0
                || self.announces()
                || (self.interval > 0 && height.is_multiple_of(self.interval)))
    }

    /// Whether these are the parameters of an epoch's last height.
    pub fn announces(&self) -> bool {
        self.next_members_hash != self.set.hash()
    }

    /// This node's index among the signers, if its key (`public`) is the
    /// one the set holds for it.
    fn index_of(&self, me: &MemberId, public: &PublicKey) -> Option<usize> {
        let i = self.members.iter().position(|m| m == me)?;
        (self.set.members().get(i) == Some(public)).then_some(i)
    }

    /// The payload of `domain` at a height.
    pub fn payload(
        &self,
        domain: Domain,
        height: u64,
        state_root: Hash32,
        actions_root: Hash32,
    ) -> CheckpointPayload {
        CheckpointPayload {
            domain,
            context_id: self.context.0,
            epoch: self.epoch,
            height,
            state_root: state_root.0,
            actions_root: actions_root.0,
            next_members_hash: self.next_members_hash,
        }
    }
}

/// What a step produced: a share to gossip, a checkpoint to store (with
/// the quorum of the set that signed it), and shares found bad when a
/// quorum was checked (accepted unchecked earlier, now dropped).
#[derive(Debug, Default)]
pub struct Step {
    pub gossip: Option<Share>,
    /// The checkpoint stored, and whether it is the round's first (not
    /// an upgrade of one stored before).
    pub completed: Option<(CheckpointRecord, bool)>,
    pub refused: Vec<(u64, MemberId, Refusal)>,
}

struct Round {
    params: Arc<Params>,
    /// This node's signer index in `params`, if it signs.
    me: Option<usize>,
    state_root: Hash32,
    actions_root: Hash32,
    payloads: Vec<CheckpointPayload>,
    /// Member index → its signature per domain, checked (with the others'
    /// as one aggregate, or alone).
    shares: BTreeMap<usize, Vec<Signature>>,
    /// Member index → its signature per domain, decoded, not checked yet.
    unchecked: BTreeMap<usize, Vec<Signature>>,
    /// Signers of the stored aggregate (0: not complete yet).
    stored: usize,
    resends: u32,
    /// Answers to other members' repeats.
    echoes: u32,
    actions: usize,
}

impl Round {
    /// Unchecked shares wait that would make a quorum with the checked
    /// ones (or add to a stored aggregate).
    fn waits(&self) -> bool {
        !self.unchecked.is_empty()
            && self.shares.len() + self.unchecked.len() >= self.params.set.quorum() as usize
    }
}

/// The collector of one context.
pub struct Collector {
    me: MemberId,
    key: SecretKey,
    /// `key`'s public key, derived once (a scalar multiplication, which
    /// every checkpoint height of every context paid).
    public: PublicKey,
    rounds: BTreeMap<u64, Round>,
    buffered: BTreeMap<u64, Vec<Share>>,
    buffered_len: usize,
    tip: u64,
}

impl Collector {
    /// `me`: this node's member id and BLS key (where it is not a member,
    /// or its key is not the one its member set holds, it collects without
    /// signing).
    pub fn new(me: MemberId, key: SecretKey, tip: u64) -> Self {
        Self {
            me,
            public: key.public_key(),
            key,
            rounds: BTreeMap::new(),
            buffered: BTreeMap::new(),
            buffered_len: 0,
            tip,
        }
    }

    /// Whether this node signs the heights of `params` (it is a member and
    /// its key is the one the set holds for it).
    pub fn signs(&self, params: &Params) -> bool {
        params.index_of(&self.me, &self.public).is_some()
    }

    /// The parameters the round of `height` is collected under.
    pub fn params_of(&self, height: u64) -> Option<&Params> {
        self.rounds.get(&height).map(|r| &*r.params)
    }

    /// Actions in checkpoints that have no quorum yet.
    pub fn pending_actions(&self) -> usize {
        self.rounds
            .values()
            .filter(|r| r.stored == 0)
            .map(|r| r.actions)
            .sum()
    }

    /// The node committed `height` (with `actions` actions in its outbox),
    /// whose checkpoint is signed under `params`.
    pub fn on_commit(
        &mut self,
        height: u64,
        state_root: Hash32,
        actions_root: Hash32,
        actions: usize,
        params: Arc<Params>,
    ) -> Step {
        self.tip = self.tip.max(height);
        let waiting = self.take_buffered(height);
        if !params.is_checkpoint_height(height, actions) || self.rounds.contains_key(&height) {
            return Step::default();
        }
        let payloads: Vec<_> = params
            .domains
            .iter()
            .map(|d| params.payload(*d, height, state_root, actions_root))
            .collect();
        let me = params.index_of(&self.me, &self.public);
        let mut round = Round {
            params,
            me,
            state_root,
            actions_root,
            payloads,
            shares: BTreeMap::new(),
            unchecked: BTreeMap::new(),
            stored: 0,
            resends: 0,
            echoes: 0,
            actions,
        };
        let mut step = Step::default();
        if let Some(index) = round.me {
            let sigs: Vec<Signature> = round
                .payloads
                .iter()
                .map(|p| sign_checkpoint(&self.key, p))
                .collect();
            round.shares.insert(index, sigs);
            step.gossip = Some(self.share_of(height, &round));
        }
        self.rounds.insert(height, round);
        while self.rounds.len() > MAX_ROUNDS {
            self.rounds.pop_first();
        }
        for share in waiting {
            if let Ok(s) = self.accept(share) {
                step.completed = s.completed.or(step.completed);
                step.refused.extend(s.refused);
            }
        }
        if let Some(done) = self.complete(height) {
            step.completed = Some(done);
        }
        step
    }

    /// A share gossiped by a member. `ahead`: the parameters of heights
    /// not committed yet, as far as the node knows them; a share for such
    /// a height waits (bounded) if its signer is among their members.
    pub fn on_share(&mut self, share: Share, ahead: Option<&Params>) -> Result<Step, Refusal> {
        if share.height > self.tip {
            if share.height > self.tip.saturating_add(MAX_AHEAD) {
                // Too far ahead to be worth keeping: dropped.
                return Ok(Step::default());
            }
            if !ahead.is_some_and(|p| p.members.contains(&share.signer)) {
                return Err(Refusal::NotMember(share.signer));
            }
            if self.buffered_len < MAX_BUFFERED {
                let slot = self.buffered.entry(share.height).or_default();
                if !slot.iter().any(|s| s.signer == share.signer) {
                    slot.push(share);
                    self.buffered_len += 1;
                }
            }
            return Ok(Step::default());
        }
        self.accept(share)
    }

    fn take_buffered(&mut self, height: u64) -> Vec<Share> {
        let mut out = Vec::new();
        while let Some((&h, _)) = self.buffered.first_key_value() {
            if h > height {
                break;
            }
            let shares = self
                .buffered
                .pop_first()
                .map(|(_, v)| v)
                .unwrap_or_default();
            self.buffered_len = self.buffered_len.saturating_sub(shares.len());
            if h == height {
                out = shares;
            }
        }
        out
    }

    fn accept(&mut self, share: Share) -> Result<Step, Refusal> {
        let Some(round) = self.rounds.get(&share.height) else {
            // Not a checkpoint height, or long done.
            return Ok(Step::default());
        };
        let Some(index) = round.params.members.iter().position(|m| *m == share.signer) else {
            return Err(Refusal::NotMember(share.signer));
        };
        if share.sigs.len() != round.payloads.len()
            || share
                .sigs
                .iter()
                .zip(&round.payloads)
                .any(|((d, _), p)| *d != p.domain.encode())
        {
            return Err(Refusal::WrongDomains);
        }
        let waiting = round.unchecked.get(&index);
        let same = |held: &Vec<Signature>| {
            held.iter()
                .zip(&share.sigs)
                .all(|(s, (_, raw))| s.to_compressed() == *raw)
        };
        if round.shares.contains_key(&index) || waiting.is_some_and(same) {
            return Ok(self.repeated(share.height, index));
        }
        let waiting_another = waiting.is_some();
        let sigs = share
            .sigs
            .iter()
            .enumerate()
            .map(|(i, (_, sig))| {
                Signature::from_compressed(sig).map_err(|_| Refusal::BadEncoding(i))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let Some(round) = self.rounds.get_mut(&share.height) else {
            return Ok(Step::default());
        };
        if waiting_another {
            // Another share than the one waiting under this signer: at
            // most one of them is good, so this one is checked now (and
            // replaces the waiting one if it holds).
            check_alone(round, index, &sigs)?;
            round.unchecked.remove(&index);
            round.shares.insert(index, sigs);
        } else {
            round.unchecked.insert(index, sigs);
        }
        let refused = self.settle(share.height, false);
        Ok(Step {
            gossip: None,
            completed: self.complete(share.height),
            refused,
        })
    }

    /// A share already held came again: its signer has no quorum yet.
    /// Answer with ours once we have one (a bounded number of times), so
    /// it completes too.
    fn repeated(&mut self, height: u64, index: usize) -> Step {
        let Some(round) = self.rounds.get_mut(&height) else {
            return Step::default();
        };
        let answer =
            round.me.is_some_and(|m| m != index) && round.stored > 0 && round.echoes < MAX_ECHOES;
        if !answer {
            return Step::default();
        }
        round.echoes += 1;
        let gossip = self.rounds.get(&height).map(|r| self.share_of(height, r));
        Step {
            gossip,
            ..Step::default()
        }
    }

    /// Checks the round's waiting shares once every member's is in (or,
    /// with `force`, once they can make a quorum or add to a stored one):
    /// as one aggregate per domain, and only if that fails each on its
    /// own. Returns the ones found bad.
    fn settle(&mut self, height: u64, force: bool) -> Vec<(u64, MemberId, Refusal)> {
        let Some(round) = self.rounds.get_mut(&height) else {
            return Vec::new();
        };
        let held = round.shares.len() + round.unchecked.len();
        let ready = held == round.params.members.len() || (force && round.waits());
        if round.unchecked.is_empty() || !ready {
            return Vec::new();
        }
        let waiting = std::mem::take(&mut round.unchecked);
        let keys = round.params.set.members();
        let pks: Vec<&PublicKey> = waiting.keys().filter_map(|i| keys.get(*i)).collect();
        let together = pks.len() == waiting.len()
            && round.payloads.iter().enumerate().all(|(d, payload)| {
                let sigs: Vec<Signature> = waiting.values().map(|s| s[d]).collect();
                Signature::aggregate(&sigs)
                    .is_ok_and(|sum| sum.fast_aggregate_verify(&payload.digest(), &pks))
            });
        let mut refused = Vec::new();
        for (index, sigs) in waiting {
            if !together {
                if let Err(e) = check_alone(round, index, &sigs) {
                    refused.push((height, round.params.members[index], e));
                    continue;
                }
            }
            round.shares.insert(index, sigs);
        }
        refused
    }

    /// Aggregates the round if it has a quorum and more signers than what
    /// was stored.
    fn complete(&mut self, height: u64) -> Option<(CheckpointRecord, bool)> {
        let round = self.rounds.get_mut(&height)?;
        let quorum = round.params.set.quorum();
        let n = round.shares.len();
        if n < quorum as usize || n <= round.stored {
            return None;
        }
        let signers = SignerBitmap::from_indices(round.shares.keys().copied()).ok()?;
        let mut certificates = Vec::with_capacity(round.payloads.len());
        for (d, payload) in round.payloads.iter().enumerate() {
            let sigs: Vec<Signature> = round
                .shares
                .values()
                .filter_map(|s| s.get(d))
                .copied()
                .collect();
            let aggregate = Signature::aggregate(&sigs).ok()?;
            certificates.push(DomainCertificate {
                domain: AnchorDomain(payload.domain.encode()),
                signers: signers.to_bytes(),
                signature: aggregate.to_compressed(),
            });
        }
        let first_time = round.stored == 0;
        round.stored = n;
        let first = round.payloads.first()?;
        let record = CheckpointRecord {
            height: Height(height),
            epoch: first.epoch,
            state_root: round.state_root,
            actions_root: round.actions_root,
            next_members_hash: first.next_members_hash,
            certificates,
        };
        Some((record, first_time))
    }

    /// Whether the resend tick has work: [`Collector::resend`] would
    /// gossip something now or later, or shares wait for members that
    /// have not signed ([`Collector::settle_waiting`]).
    pub fn has_unfinished(&self, max: u32) -> bool {
        self.rounds
            .values()
            .any(|r| (r.me.is_some() && r.stored == 0 && r.resends < max) || r.waits())
    }

    /// The resend tick: rounds whose shares make a quorum but wait for
    /// members that have not signed are checked and completed with the
    /// shares they have.
    pub fn settle_waiting(&mut self) -> Vec<Step> {
        let waiting: Vec<u64> = self
            .rounds
            .iter()
            .filter(|(_, r)| r.waits())
            .map(|(h, _)| *h)
            .collect();
        waiting
            .into_iter()
            .map(|h| Step {
                gossip: None,
                refused: self.settle(h, true),
                completed: self.complete(h),
            })
            .collect()
    }

    /// This node's shares of checkpoints still below quorum, to gossip
    /// again (each at most `max` times).
    pub fn resend(&mut self, max: u32) -> Vec<Share> {
        let due: Vec<u64> = self
            .rounds
            .iter_mut()
            .filter(|(_, r)| r.me.is_some() && r.stored == 0 && r.resends < max)
            .map(|(h, r)| {
                r.resends += 1;
                *h
            })
            .collect();
        due.into_iter()
            .filter_map(|h| self.rounds.get(&h).map(|r| self.share_of(h, r)))
            .collect()
    }

    fn share_of(&self, height: u64, round: &Round) -> Share {
        let sigs = round
            .me
            .and_then(|i| round.shares.get(&i))
            .map(|sigs| {
                sigs.iter()
                    .zip(&round.payloads)
                    .map(|(s, p)| (p.domain.encode(), s.to_compressed()))
                    .collect()
            })
            .unwrap_or_default();
        Share {
            height,
            signer: self.me,
            sigs,
        }
    }
}

/// Checks one member's share on its own, domain by domain.
fn check_alone(round: &Round, index: usize, sigs: &[Signature]) -> Result<(), Refusal> {
    let pk = round
        .params
        .set
        .members()
        .get(index)
        .ok_or(Refusal::NotMember(round.params.members[index]))?;
    for (i, (sig, payload)) in sigs.iter().zip(&round.payloads).enumerate() {
        if !sig.verify(&payload.digest(), pk) {
            return Err(Refusal::BadSignature(i));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
