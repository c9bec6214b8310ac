//! A context's member sets over time, and the txs that change them.
//!
//! Membership is state of the context, kept by the node (not the app) under
//! the node namespace, so it is covered by the state root and every member
//! computes the same validator set for every height. A change committed at
//! height `H` takes effect at `H + 2` ([`ACTIVATION_OFFSET`]): the set that
//! validates `H + 1` was fixed before `H` was decided, and every node knows
//! the set of a height before it starts it.
//!
//! Txs with a method under `conclave.` are membership txs, executed here:
//! - `conclave.invite` adds a member (its BLS key checked by its proof of
//!   possession) and hands it the current context key sealed to it;
//! - `conclave.remove` removes a member (a member may remove itself: that is
//!   leaving) and, when sent by someone else, starts a new key epoch with the
//!   new key sealed to every remaining member;
//! - `conclave.rotate` starts a new key epoch without changing members (the
//!   remaining members do it after one of them left).
//!
//! A membership tx that breaks a rule fails (its nonce is used, nothing else
//! changes), like an app call that traps.

use borsh::{BorshDeserialize, BorshSerialize};
use conclave_consensus::{types::sha256, ContextId, Hash32, Height, MemberId};
use serde::Serialize;

use crate::good_pops::pop_holds;
use crate::seal::SEALED_KEY_LEN;
use crate::store::{Genesis, MemberInfo};

pub const METHOD_INVITE: &str = "conclave.invite";
pub const METHOD_REMOVE: &str = "conclave.remove";
pub const METHOD_ROTATE: &str = "conclave.rotate";
/// A change committed at `H` applies from `H + ACTIVATION_OFFSET`.
pub const ACTIVATION_OFFSET: u64 = 2;
/// Members of one context, at most (the proxies' bound, one definition).
pub use conclave_checkpoint::MAX_MEMBERS;

/// State key of the member sets (node namespace).
pub const MEMBERS_KEY: &[u8] = b"\x00members";

/// State key of `member`'s copy of the context key of `epoch`.
pub fn sealed_key_key(epoch: u64, member: &MemberId) -> Vec<u8> {
    let mut k = b"\x00key/".to_vec();
    k.extend_from_slice(&epoch.to_be_bytes());
    k.extend_from_slice(member.as_bytes());
    k
}

/// Whether `method` is executed by the node as a membership tx.
pub fn is_membership_method(method: &str) -> bool {
    method.starts_with("conclave.")
}

/// A member and the first height it validates.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct MemberEntry {
    #[serde(flatten)]
    pub info: MemberInfo,
    pub since: Height,
}

/// The members that validate from height `from` on (until the next set).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct MemberSet {
    pub from: Height,
    /// Counts changes of the members (ids or keys); checkpoints name it as
    /// their epoch and proxies rotate once per epoch. A new context key
    /// alone (`conclave.rotate`) keeps it: the same keys sign.
    pub epoch: u64,
    /// The context key epoch traffic at these heights is sealed under.
    pub key_epoch: u64,
    /// Sorted by member id.
    pub members: Vec<MemberEntry>,
}

impl MemberSet {
    pub fn ids(&self) -> Vec<MemberId> {
        self.members.iter().map(|m| m.info.id).collect()
    }

    pub fn infos(&self) -> Vec<MemberInfo> {
        self.members.iter().map(|m| m.info.clone()).collect()
    }

    pub fn contains(&self, id: &MemberId) -> bool {
        self.members.iter().any(|m| m.info.id == *id)
    }

    /// The hash block headers carry (`members_hash`); for the genesis set it
    /// equals [`Genesis::members_hash`].
    pub fn hash(&self) -> Hash32 {
        sha256(&[
            b"conclave/members/v1",
            &borsh::to_vec(&self.infos()).unwrap_or_default(),
        ])
    }
}

/// Every member set a context still needs: the one in force at its tip and
/// any that start later.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Membership {
    /// Ascending by `from`; the first starts at or before the tip's next
    /// height.
    pub sets: Vec<MemberSet>,
}

impl Membership {
    pub fn genesis(genesis: &Genesis) -> Self {
        Self {
            sets: vec![MemberSet {
                from: Height(1),
                epoch: 0,
                key_epoch: 0,
                members: genesis
                    .members
                    .iter()
                    .map(|info| MemberEntry {
                        info: info.clone(),
                        since: Height(1),
                    })
                    .collect(),
            }],
        }
    }

    /// Decodes the stored sets (`None`: no change yet, the genesis set).
    pub fn decode(stored: Option<&[u8]>, genesis: &Genesis) -> Result<Self, String> {
        match stored {
            None => Ok(Self::genesis(genesis)),
            Some(bytes) => {
                let m: Self = borsh::from_slice(bytes).map_err(|e| format!("member sets: {e}"))?;
                if m.sets.is_empty() {
                    return Err("member sets: empty".into());
                }
                Ok(m)
            }
        }
    }

    /// The set that validates `height`.
    pub fn at(&self, height: Height) -> &MemberSet {
        self.sets
            .iter()
            .rev()
            .find(|s| s.from <= height)
            .unwrap_or(&self.sets[0])
    }

    /// The key epochs of the sets `member` belongs to, oldest first: the
    /// epochs whose key was handed to it.
    pub fn key_epochs_of(&self, member: &MemberId) -> Vec<u64> {
        let mut epochs: Vec<u64> = self
            .sets
            .iter()
            .filter(|s| s.contains(member))
            .map(|s| s.key_epoch)
            .collect();
        epochs.dedup();
        epochs
    }

    /// The newest set (in force or pending).
    pub fn latest(&self) -> &MemberSet {
        &self.sets[self.sets.len() - 1]
    }

    /// Who may read the context and talk on its topic once `tip` is
    /// committed: the members of the next height and those admitted after.
    pub fn readers(&self, tip: Height) -> Vec<MemberId> {
        let next = Height(tip.0 + 1);
        let mut ids = self.at(next).ids();
        for s in self.sets.iter().filter(|s| s.from > next) {
            ids.extend(s.ids());
        }
        ids.sort();
        ids.dedup();
        ids
    }

    /// Numbers the newest set's epoch after a change: its predecessor's,
    /// plus one if their members differ.
    fn settle_epoch(&mut self) {
        if let [.., prev, last] = &mut self.sets[..] {
            last.epoch = prev.epoch + u64::from(prev.members != last.members);
        }
    }

    /// The set a change committed at `height` edits: the pending one
    /// starting at `height + 2` (created from the newest if missing). Sets
    /// no longer needed after `height` are dropped.
    fn pending_mut(&mut self, height: Height) -> &mut MemberSet {
        let from = Height(height.0 + ACTIVATION_OFFSET);
        if self.latest().from != from {
            let mut next = self.latest().clone();
            next.from = from;
            self.sets.push(next);
        }
        // Keep the set in force at the next height and everything after.
        let next = Height(height.0 + 1);
        let keep_from = self.sets.iter().rposition(|s| s.from <= next).unwrap_or(0);
        self.sets.drain(..keep_from);
        let last = self.sets.len() - 1;
        &mut self.sets[last]
    }
}

/// Args of `conclave.invite`.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct InviteArgs {
    pub member: MemberInfo,
    /// The newest key epoch, and its key sealed to the new member.
    pub key_epoch: u64,
    pub sealed_key: Vec<u8>,
}

/// Args of `conclave.remove` (and of leaving: removing oneself).
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct RemoveArgs {
    pub member: MemberId,
    /// A new key epoch with its key sealed to each remaining member; empty
    /// when a member leaves (a remaining member rotates afterwards).
    pub rotation: Option<Rotation>,
}

/// A new context key, sealed to every member of the newest set.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Rotation {
    pub key_epoch: u64,
    pub sealed_keys: Vec<(MemberId, Vec<u8>)>,
}

/// What a membership tx writes, and what its receipt says.
pub struct Applied {
    pub writes: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    pub output: Vec<u8>,
}

#[derive(Serialize)]
struct Outcome<'a> {
    change: &'a str,
    member: Option<MemberId>,
    active_from: u64,
    key_epoch: u64,
}

/// Executes membership tx `method(args)` from `sender` at `height` over
/// `current` (the sets after the parent height). `check_keys` verifies a
/// new member's BLS key and proof of possession.
pub fn apply(
    current: &Membership,
    sender: &MemberId,
    method: &str,
    args: &[u8],
    height: Height,
    check_keys: impl Fn(&MemberInfo) -> Result<(), String>,
) -> Result<Applied, String> {
    let mut next = current.clone();
    let mut writes = Vec::new();
    let (change, member) = match method {
        METHOD_INVITE => {
            let a: InviteArgs =
                borsh::from_slice(args).map_err(|e| format!("invite: malformed args: {e}"))?;
            check_keys(&a.member)?;
            let latest_key = current.latest().key_epoch;
            if a.key_epoch != latest_key {
                return Err(format!(
                    "invite: the key is of epoch {}, the newest is {latest_key}",
                    a.key_epoch
                ));
            }
            if a.sealed_key.len() != SEALED_KEY_LEN {
                return Err("invite: the sealed key is malformed".into());
            }
            let id = a.member.id;
            let set = next.pending_mut(height);
            if set.contains(&id) {
                return Err(format!("invite: {id} is a member already"));
            }
            if set.members.len() >= MAX_MEMBERS {
                return Err(format!(
                    "invite: a context has at most {MAX_MEMBERS} members"
                ));
            }
            let since = set.from;
            set.members.push(MemberEntry {
                info: a.member,
                since,
            });
            set.members.sort_by_key(|m| m.info.id);
            writes.push((sealed_key_key(a.key_epoch, &id), Some(a.sealed_key)));
            ("invite", Some(id))
        }
        METHOD_REMOVE => {
            let a: RemoveArgs =
                borsh::from_slice(args).map_err(|e| format!("remove: malformed args: {e}"))?;
            let set = next.pending_mut(height);
            if !set.contains(&a.member) {
                return Err(format!("remove: {} is not a member", a.member));
            }
            if set.members.len() == 1 {
                return Err("remove: the last member cannot be removed".into());
            }
            set.members.retain(|m| m.info.id != a.member);
            match (&a.rotation, a.member == *sender) {
                (Some(r), _) => rotate(set, r, &mut writes)?,
                (None, true) => {}
                (None, false) => {
                    return Err("remove: removing another member needs a new key".into())
                }
            }
            ("remove", Some(a.member))
        }
        METHOD_ROTATE => {
            let r: Rotation =
                borsh::from_slice(args).map_err(|e| format!("rotate: malformed args: {e}"))?;
            let set = next.pending_mut(height);
            rotate(set, &r, &mut writes)?;
            ("rotate", None)
        }
        other => return Err(format!("unknown membership method {other:?}")),
    };
    next.settle_epoch();
    let set = next.latest();
    let output = serde_json::to_vec(&Outcome {
        change,
        member,
        active_from: set.from.0,
        key_epoch: set.key_epoch,
    })
    .unwrap_or_default();
    writes.push((
        MEMBERS_KEY.to_vec(),
        Some(borsh::to_vec(&next).map_err(|e| e.to_string())?),
    ));
    Ok(Applied { writes, output })
}

/// A rotation to `key` for every member of `set`.
pub fn rotation_for(
    context: &ContextId,
    set: &MemberSet,
    key: &crate::seal::ContextKey,
) -> Result<Rotation, crate::seal::SealError> {
    let sealed_keys = set
        .members
        .iter()
        .map(|m| {
            Ok((
                m.info.id,
                crate::seal::seal_key_to(&m.info.id, context, key)?,
            ))
        })
        .collect::<Result<_, crate::seal::SealError>>()?;
    Ok(Rotation {
        key_epoch: key.epoch,
        sealed_keys,
    })
}

fn rotate(
    set: &mut MemberSet,
    r: &Rotation,
    writes: &mut Vec<(Vec<u8>, Option<Vec<u8>>)>,
) -> Result<(), String> {
    let want = set.key_epoch + 1;
    if r.key_epoch != want {
        return Err(format!(
            "rotate: the new key epoch must be {want}, not {}",
            r.key_epoch
        ));
    }
    let mut named: Vec<MemberId> = r.sealed_keys.iter().map(|(m, _)| *m).collect();
    named.sort();
    if named != set.ids() {
        return Err("rotate: the new key must be sealed to each member exactly once".into());
    }
    if r.sealed_keys.iter().any(|(_, k)| k.len() != SEALED_KEY_LEN) {
        return Err("rotate: a sealed key is malformed".into());
    }
    set.key_epoch = want;
    for (m, k) in &r.sealed_keys {
        writes.push((sealed_key_key(want, m), Some(k.clone())));
    }
    Ok(())
}

/// A member is admitted only with a valid BLS key and a proof of possession
/// of it: without the proof, a rogue key could cancel honest keys in an
/// aggregate.
pub fn check_member_keys(m: &MemberInfo) -> crate::Result<()> {
    use conclave_checkpoint::bls::{ProofOfPossession, PublicKey};
    let bad = |why: String| crate::Error::member(m.id, why);
    let pk =
        PublicKey::from_compressed(&m.bls_public_key).map_err(|e| bad(format!("BLS key: {e}")))?;
    let pop =
        ProofOfPossession::from_compressed(&m.bls_pop).map_err(|e| bad(format!("BLS PoP: {e}")))?;
    if !pop_holds(&pk, &pop) {
        return Err(bad("BLS proof of possession does not verify".into()));
    }
    conclave_consensus::Validator::from_member(m.id).map_err(|e| bad(format!("member id: {e}")))?;
    Ok(())
}

/// The BLS member set of `members` (sorted by id) with the default quorum,
/// each key checked by its proof of possession.
pub fn bls_set(members: &[MemberInfo]) -> Result<conclave_checkpoint::MemberSet, String> {
    let mut regs = Vec::with_capacity(members.len());
    for m in members {
        let public_key = conclave_checkpoint::PublicKey::from_compressed(&m.bls_public_key)
            .map_err(|e| format!("member {}: BLS key: {e}", m.id))?;
        let pop = conclave_checkpoint::ProofOfPossession::from_compressed(&m.bls_pop)
            .map_err(|e| format!("member {}: BLS PoP: {e}", m.id))?;
        regs.push(conclave_checkpoint::Registration { public_key, pop });
    }
    conclave_checkpoint::MemberSet::with_pop_check(&regs, 0, |r| pop_holds(&r.public_key, &r.pop))
        .map_err(|e| format!("member set: {e}"))
}

/// The member sets stored in `overlay` (the genesis set before any change).
pub fn read(
    overlay: &crate::store::Overlay<'_>,
    genesis: &Genesis,
) -> Result<Membership, crate::store::StoreError> {
    let stored = overlay.get(MEMBERS_KEY)?;
    Membership::decode(stored.as_deref(), genesis)
        .map_err(|msg| crate::store::StoreError::Corrupt { cf: "state", msg })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(b: u8) -> MemberInfo {
        let k = ed25519_dalek::SigningKey::from_bytes(&[b; 32]);
        MemberInfo {
            id: MemberId(k.verifying_key().to_bytes()),
            bls_public_key: vec![b; 48],
            bls_pop: vec![b; 96],
        }
    }

    fn genesis(n: u8) -> Genesis {
        let mut members: Vec<MemberInfo> = (1..=n).map(info).collect();
        members.sort_by_key(|m| m.id);
        Genesis {
            app_hash: Hash32::default(),
            members,
            created_at_ms: 1,
            salt: Hash32::default(),
            anchors: vec![],
            checkpoint_interval: 10,
        }
    }

    fn ok(_: &MemberInfo) -> Result<(), String> {
        Ok(())
    }

    fn apply_at(
        m: &Membership,
        sender: MemberId,
        method: &str,
        args: Vec<u8>,
        h: u64,
    ) -> Result<Membership, String> {
        let a = apply(m, &sender, method, &args, Height(h), ok)?;
        let (_, bytes) = a.writes.iter().find(|(k, _)| k == MEMBERS_KEY).unwrap();
        Membership::decode(bytes.as_deref(), &genesis(1))
    }

    #[test]
    fn changes_take_effect_two_heights_later() {
        let g = genesis(3);
        let m = Membership::genesis(&g);
        assert_eq!(m.at(Height(1)).hash(), g.members_hash());
        let me = g.members[0].id;
        let new = info(9);
        let invite = borsh::to_vec(&InviteArgs {
            member: new.clone(),
            key_epoch: 0,
            sealed_key: vec![0; SEALED_KEY_LEN],
        })
        .unwrap();
        let m2 = apply_at(&m, me, METHOD_INVITE, invite.clone(), 5).unwrap();
        assert_eq!(m2.at(Height(6)).ids(), g.member_ids(), "H+1 unchanged");
        assert!(m2.at(Height(7)).contains(&new.id), "in force at H+2");
        assert_eq!(m2.at(Height(7)).epoch, 1);
        assert_eq!(
            m2.readers(Height(5)).len(),
            4,
            "readers include the pending member"
        );
        // Inviting twice fails; the pending set is the one edited.
        assert!(apply_at(&m2, me, METHOD_INVITE, invite.clone(), 5)
            .unwrap_err()
            .contains("member already"));
        assert!(apply_at(&m2, me, METHOD_INVITE, invite, 6)
            .unwrap_err()
            .contains("member already"));

        // Removing another member without a new key fails; with one it
        // starts a key epoch for the remaining members.
        let victim = g.members[1].id;
        let bare = borsh::to_vec(&RemoveArgs {
            member: victim,
            rotation: None,
        })
        .unwrap();
        assert!(apply_at(&m2, me, METHOD_REMOVE, bare, 9)
            .unwrap_err()
            .contains("needs a new key"));
        let remaining: Vec<MemberId> = m2
            .at(Height(10))
            .ids()
            .into_iter()
            .filter(|i| *i != victim)
            .collect();
        let sealed = |ids: &[MemberId], e| Rotation {
            key_epoch: e,
            sealed_keys: ids.iter().map(|i| (*i, vec![1; SEALED_KEY_LEN])).collect(),
        };
        let bad_epoch = borsh::to_vec(&RemoveArgs {
            member: victim,
            rotation: Some(sealed(&remaining, 5)),
        })
        .unwrap();
        assert!(apply_at(&m2, me, METHOD_REMOVE, bad_epoch, 9)
            .unwrap_err()
            .contains("epoch"));
        let short = borsh::to_vec(&RemoveArgs {
            member: victim,
            rotation: Some(sealed(&remaining[1..], 1)),
        })
        .unwrap();
        assert!(apply_at(&m2, me, METHOD_REMOVE, short, 9)
            .unwrap_err()
            .contains("exactly once"));
        let good = borsh::to_vec(&RemoveArgs {
            member: victim,
            rotation: Some(sealed(&remaining, 1)),
        })
        .unwrap();
        let m3 = apply_at(&m2, me, METHOD_REMOVE, good, 9).unwrap();
        assert!(m3.at(Height(10)).contains(&victim));
        assert!(!m3.at(Height(11)).contains(&victim));
        assert_eq!(m3.at(Height(11)).key_epoch, 1);
        assert_eq!(m3.at(Height(10)).key_epoch, 0);
        assert_eq!(m3.at(Height(11)).epoch, 2, "the members changed");
        // A new context key alone keeps the epoch: the same keys sign.
        let ids = m3.at(Height(11)).ids();
        let rekey = borsh::to_vec(&sealed(&ids, 2)).unwrap();
        let m5 = apply_at(&m3, me, METHOD_ROTATE, rekey, 12).unwrap();
        assert_eq!(m5.at(Height(14)).key_epoch, 2);
        assert_eq!(m5.at(Height(14)).epoch, 2);
        // Old sets no longer needed are dropped.
        assert_eq!(m3.sets.len(), 2);

        // Leaving needs no key; the last member cannot leave.
        let leave = borsh::to_vec(&RemoveArgs {
            member: me,
            rotation: None,
        })
        .unwrap();
        let m4 = apply_at(&m3, me, METHOD_REMOVE, leave, 20).unwrap();
        assert!(!m4.at(Height(22)).contains(&me));
        let solo = Membership::genesis(&genesis(1));
        let only = solo.latest().members[0].info.id;
        let leave = borsh::to_vec(&RemoveArgs {
            member: only,
            rotation: None,
        })
        .unwrap();
        assert!(apply_at(&solo, only, METHOD_REMOVE, leave, 3)
            .unwrap_err()
            .contains("last member"));
        // Garbage args fail with a clear error.
        assert!(apply_at(&m, me, METHOD_INVITE, vec![1, 2, 3], 3)
            .unwrap_err()
            .contains("malformed"));
        assert!(apply_at(&m, me, "conclave.nope", vec![], 3)
            .unwrap_err()
            .contains("unknown"));
    }
}
