//! The proxies a context anchors to, added after its creation.
//!
//! A context may name proxies in its genesis (`context create --anchor`);
//! more are added by the context tx `conclave.anchor`, which every member
//! executes the same way, so all agree from which height checkpoints are
//! signed for the new proxy. Like a membership change, an anchor committed
//! at `H` applies from `H + 2` ([`crate::members::ACTIVATION_OFFSET`]).
//!
//! The tx names the member-set epoch and the checkpoint members hash the
//! proxy was deployed with (`conclave anchor deploy` reads them from the
//! node just before deploying); it fails unless the set in force at
//! `H + 2` is exactly that one, so a proxy never waits for checkpoints of a
//! set it does not know. The entries live under the node namespace of the
//! state (`\x00anchors`), covered by the state root.

use borsh::{BorshDeserialize, BorshSerialize};
use conclave_checkpoint::{ChainKind, Domain};
use conclave_consensus::Height;
use serde::Serialize;

use crate::members::{Applied, Membership, ACTIVATION_OFFSET};
use crate::store::{AnchorDomain, Genesis};

pub const METHOD_ANCHOR: &str = "conclave.anchor";
/// State key of the anchors added after creation (node namespace).
pub const ANCHORS_KEY: &[u8] = b"\x00anchors";

/// Anchors a context may name, at most.
pub const MAX_ANCHORS: usize = 8;

/// A proxy added by `conclave.anchor`, and the first height whose
/// checkpoints are signed for it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct AnchorEntry {
    pub domain: AnchorDomain,
    pub from: Height,
}

/// Every anchor added after creation, in the order they were added.
#[derive(Clone, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct Anchors {
    pub entries: Vec<AnchorEntry>,
}

impl Anchors {
    /// Decodes the stored entries (`None`: none added).
    pub fn decode(stored: Option<&[u8]>) -> Result<Self, String> {
        match stored {
            None => Ok(Self::default()),
            Some(bytes) => borsh::from_slice(bytes).map_err(|e| format!("anchors: {e}")),
        }
    }

    /// The domains checkpoints of `height` are signed for: the genesis'
    /// anchors, then those in force at `height`, in the order added.
    pub fn at(&self, genesis: &Genesis, height: Height) -> Vec<AnchorDomain> {
        let mut out = genesis.anchors.clone();
        out.extend(
            self.entries
                .iter()
                .filter(|e| e.from <= height)
                .map(|e| e.domain),
        );
        out
    }
}

/// Args of `conclave.anchor`.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct AnchorArgs {
    /// The proxy's 41-byte domain.
    pub domain: AnchorDomain,
    /// The member-set epoch the proxy was deployed with.
    pub epoch: u64,
    /// The checkpoint members hash (`conclave_checkpoint::MemberSet::hash`)
    /// of the keys the proxy was deployed with.
    pub members_hash: [u8; 32],
}

#[derive(Serialize)]
struct Outcome {
    change: &'static str,
    domain: AnchorDomain,
    active_from: u64,
}

/// Executes `conclave.anchor` committed at `height` over the anchors and
/// member sets after the parent height.
pub fn apply(
    genesis: &Genesis,
    current: &Anchors,
    membership: &Membership,
    args: &[u8],
    height: Height,
) -> Result<Applied, String> {
    let a: AnchorArgs =
        borsh::from_slice(args).map_err(|e| format!("anchor: malformed args: {e}"))?;
    let domain = Domain::decode(&a.domain.0).map_err(|e| format!("anchor: domain: {e}"))?;
    if domain.kind == ChainKind::Unanchored {
        return Err("anchor: the unanchored domain is not a proxy".into());
    }
    let from = Height(height.0 + ACTIVATION_OFFSET);
    let in_force = current.at(genesis, Height(u64::MAX));
    if in_force.contains(&a.domain) {
        return Err(format!(
            "anchor: {} is an anchor already",
            hex::encode(a.domain.0)
        ));
    }
    if in_force.len() >= MAX_ANCHORS {
        return Err(format!(
            "anchor: a context has at most {} anchors",
            MAX_ANCHORS
        ));
    }
    let set = membership.at(from);
    if set.epoch != a.epoch {
        return Err(format!(
            "anchor: the proxy was deployed for member-set epoch {}, the set from height {} is epoch {}; deploy it again",
            a.epoch, from.0, set.epoch
        ));
    }
    let members_hash = crate::members::bls_set(&set.infos())
        .map_err(|e| format!("anchor: {e}"))?
        .hash();
    if members_hash != a.members_hash {
        return Err(format!(
            "anchor: the proxy's members hash {} is not the set's {} from height {}; deploy it again",
            hex::encode(a.members_hash),
            hex::encode(members_hash),
            from.0
        ));
    }
    let mut next = current.clone();
    next.entries.push(AnchorEntry {
        domain: a.domain,
        from,
    });
    let output = serde_json::to_vec(&Outcome {
        change: "anchor",
        domain: a.domain,
        active_from: from.0,
    })
    .unwrap_or_default();
    Ok(Applied {
        writes: vec![(
            ANCHORS_KEY.to_vec(),
            Some(borsh::to_vec(&next).map_err(|e| e.to_string())?),
        )],
        output,
    })
}

/// The anchors added after creation stored in `overlay`.
pub fn read(overlay: &crate::store::Overlay<'_>) -> Result<Anchors, crate::store::StoreError> {
    let stored = overlay.get(ANCHORS_KEY)?;
    Anchors::decode(stored.as_deref())
        .map_err(|msg| crate::store::StoreError::Corrupt { cf: "state", msg })
}

#[cfg(test)]
mod tests {
    use conclave_checkpoint::SecretKey;
    use conclave_consensus::Hash32;

    use super::*;
    use crate::store::MemberInfo;

    fn genesis(n: u8) -> Genesis {
        let mut members: Vec<MemberInfo> = (1..=n)
            .map(|b| {
                let k = ed25519_dalek::SigningKey::from_bytes(&[b; 32]);
                MemberInfo::of(&k, &SecretKey::from_seed(&[b; 32]).unwrap())
            })
            .collect();
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

    fn args(domain: Domain, epoch: u64, members_hash: [u8; 32]) -> Vec<u8> {
        borsh::to_vec(&AnchorArgs {
            domain: AnchorDomain(domain.encode()),
            epoch,
            members_hash,
        })
        .unwrap()
    }

    fn set_hash(g: &Genesis) -> [u8; 32] {
        crate::members::bls_set(&g.members).unwrap().hash()
    }

    #[test]
    fn an_anchor_applies_two_heights_later_after_the_genesis_ones() {
        let mut g = genesis(4);
        let first = AnchorDomain(Domain::evm(1, [9; 20]).encode());
        g.anchors = vec![first];
        let m = Membership::genesis(&g);
        let d = Domain::evm(31337, [7; 20]);
        let a = apply(
            &g,
            &Anchors::default(),
            &m,
            &args(d, 0, set_hash(&g)),
            Height(5),
        )
        .unwrap();
        let anchors = Anchors::decode(a.writes[0].1.as_deref()).unwrap();
        assert_eq!(anchors.at(&g, Height(6)), vec![first]);
        assert_eq!(
            anchors.at(&g, Height(7)),
            vec![first, AnchorDomain(d.encode())]
        );
        assert!(String::from_utf8(a.output)
            .unwrap()
            .contains(r#""active_from":7"#));
    }

    #[test]
    fn refusals_change_nothing_and_say_why() {
        let g = genesis(3);
        let m = Membership::genesis(&g);
        let d = Domain::evm(31337, [7; 20]);
        let ok = args(d, 0, set_hash(&g));
        let err = |current: &Anchors, a: &[u8]| apply(&g, current, &m, a, Height(3)).err().unwrap();
        assert!(err(&Anchors::default(), b"junk").contains("malformed"));
        assert!(err(&Anchors::default(), &args(d, 1, set_hash(&g))).contains("epoch 1"));
        assert!(err(&Anchors::default(), &args(d, 0, [0; 32])).contains("members hash"));
        let unanchored = borsh::to_vec(&AnchorArgs {
            domain: AnchorDomain([0; 41]),
            epoch: 0,
            members_hash: set_hash(&g),
        })
        .unwrap();
        assert!(err(&Anchors::default(), &unanchored).contains("unanchored"));
        let once = Anchors {
            entries: vec![AnchorEntry {
                domain: AnchorDomain(d.encode()),
                from: Height(9),
            }],
        };
        assert!(err(&once, &ok).contains("already"));
        let full = Anchors {
            entries: (0..MAX_ANCHORS as u8)
                .map(|i| AnchorEntry {
                    domain: AnchorDomain(Domain::evm(1, [i; 20]).encode()),
                    from: Height(1),
                })
                .collect(),
        };
        assert!(err(&full, &ok).contains("at most"));
    }
}
