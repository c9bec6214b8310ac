//! Who takes part in a context, as of its committed tip: the member sets
//! (`members::Membership`), the validators of the next height, who may talk
//! on its topic, which anchors the next checkpoints are signed for, and
//! whether this node still follows the context. Re-read after commits that
//! change them; the actor applies what changed.

use conclave_consensus::{Hash32, Height, MemberId, SignedTx, ValidatorSet};
use tracing::{info, warn};

use crate::anchors::Anchors;
use crate::members::{MemberSet, Membership};
use crate::store::Overlay;
use crate::store::{AnchorDomain, ContextRecord, Store};
use crate::Result;

pub(super) struct Roster {
    /// The member sets as of the committed tip.
    pub(super) membership: Membership,
    /// The anchors added after creation, as of the committed tip.
    pub(super) anchors: Anchors,
    /// The domains the next height's checkpoints are signed for.
    anchors_in_force: Vec<AnchorDomain>,
    /// The members that validate the next height.
    pub(super) members: Vec<MemberId>,
    pub(super) validators: ValidatorSet,
    /// Who may talk on the context's topic: the next height's members and
    /// those admitted after it.
    pub(super) readers: Vec<MemberId>,
    /// This node follows the context's blocks: false once its member was
    /// removed (a node that joined follows before its own admission shows
    /// in the blocks it has).
    pub(super) following: bool,
    me: MemberId,
}

/// What a refresh changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Changed {
    /// The validators of the next height.
    pub(super) validators: bool,
    /// Who may talk on the topic.
    pub(super) readers: bool,
}

fn validator_set(members: &[MemberId]) -> Result<ValidatorSet> {
    Ok(ValidatorSet::from_members(members)?)
}

impl Roster {
    /// The roster of `record`'s tip, for member `me`.
    pub(super) fn load(store: &Store, record: &ContextRecord, me: MemberId) -> Result<Self> {
        let state = store.state(record.id);
        let overlay = Overlay::new(&state, record.height);
        let membership = crate::members::read(&overlay, &record.genesis)?;
        let anchors = crate::anchors::read(&overlay)?;
        let next = Height(record.height.0 + 1);
        let members = membership.at(next).ids();
        Ok(Self {
            anchors_in_force: anchors.at(&record.genesis, next),
            validators: validator_set(&members)?,
            readers: membership.readers(record.height),
            membership,
            anchors,
            members,
            following: true,
            me,
        })
    }

    /// Whether this node validates the next height.
    pub(super) fn is_validator(&self) -> bool {
        self.members.contains(&self.me)
    }

    /// The validators of the next height other than this node.
    pub(super) fn other_members(&self) -> Vec<MemberId> {
        self.members
            .iter()
            .copied()
            .filter(|m| *m != self.me)
            .collect()
    }

    /// Who may talk on the topic, other than this node.
    pub(super) fn other_readers(&self) -> Vec<MemberId> {
        self.readers
            .iter()
            .copied()
            .filter(|m| *m != self.me)
            .collect()
    }

    /// The `members_hash` of the block at `height`: the set that validates
    /// the height after it (known from the parent state, as changes take
    /// effect two heights after their commit).
    pub(super) fn members_hash_after(&self, height: Height) -> Hash32 {
        self.membership.at(Height(height.0 + 1)).hash()
    }

    /// The key epoch of `height`'s member set.
    pub(super) fn key_epoch_at(&self, height: Height) -> u64 {
        self.membership.at(height).key_epoch
    }

    /// Whether a commit at `tip` may change the roster: member-set changes
    /// committed, a later set waiting to take effect, or an anchor pending.
    pub(super) fn may_change(&self, tip: Height, membership_txs: bool) -> bool {
        membership_txs
            || self.membership.sets.len() > 1
            || self.anchors.entries.iter().any(|e| e.from.0 > tip.0)
    }

    /// Re-reads the roster after the commit of `record`'s tip (`reload`:
    /// the member sets themselves changed); says what changed.
    pub(super) fn refresh(
        &mut self,
        store: &Store,
        record: &ContextRecord,
        reload: bool,
    ) -> Result<Changed> {
        let id = record.id;
        if reload {
            let state = store.state(id);
            let overlay = Overlay::new(&state, record.height);
            self.membership = crate::members::read(&overlay, &record.genesis)?;
            self.anchors = crate::anchors::read(&overlay)?;
        }
        let next = Height(record.height.0 + 1);
        let mut changed = Changed::default();
        let anchors_in_force = self.anchors.at(&record.genesis, next);
        if anchors_in_force != self.anchors_in_force {
            self.anchors_in_force = anchors_in_force;
            info!(context = %id, height = next.0, anchors = self.anchors_in_force.len(),
                "checkpoints are signed for a new anchor from here");
        }
        if self.membership.at(next).ids() != self.members {
            let set: MemberSet = self.membership.at(next).clone();
            let was_validator = self.is_validator();
            self.members = set.ids();
            self.validators = validator_set(&self.members)?;
            changed.validators = true;
            info!(context = %id, height = next.0, members = self.members.len(),
                epoch = set.epoch, key_epoch = set.key_epoch, "member set in force");
            match (was_validator, self.is_validator()) {
                (false, true) => {
                    info!(context = %id, height = next.0, "this node validates from here")
                }
                (true, false) => {
                    warn!(context = %id, height = next.0, "this node is no longer a member")
                }
                _ => {}
            }
        }
        let readers = self.membership.readers(record.height);
        if readers != self.readers {
            if self.readers.contains(&self.me) && !readers.contains(&self.me) {
                warn!(context = %id, height = record.height.0,
                    "this node's member was removed; it stops following the context");
                self.following = false;
            }
            self.readers = readers;
            changed.readers = true;
        }
        Ok(changed)
    }

    /// After a member left on its own (without handing out a new key), the
    /// remaining member with the lowest id rotates the key so the leaver
    /// cannot read what follows: the set to rotate from, if this node is
    /// that member.
    pub(super) fn rotation_after_leave(&self, changes: &[SignedTx]) -> Option<MemberSet> {
        let left = changes.iter().any(|tx| {
            tx.tx.method == crate::members::METHOD_REMOVE
                && borsh::from_slice::<crate::members::RemoveArgs>(&tx.tx.args)
                    .is_ok_and(|a| a.member == tx.tx.sender && a.rotation.is_none())
        });
        let latest = self.membership.latest();
        let first = latest.members.first().map(|m| m.info.id);
        (left && first == Some(self.me)).then(|| latest.clone())
    }
}
