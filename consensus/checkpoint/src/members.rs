//! The member set: BLS keys admitted by proof of possession, and a quorum.
//!
//! Members hash (what a checkpoint's `next_members_hash` commits to):
//! `sha256(MEMBERS_TAG || u32 BE n || u32 BE quorum || pk_0 || ... || pk_{n-1})`
//! with each `pk_i` in its 128-byte EIP-2537 encoding, in member order.
//! `MEMBERS_TAG` is `"CONCLAVE-MEMBERS-V1"` right-padded with zeros to 32
//! bytes.

use sha2::{Digest, Sha256};

use crate::bls::{ProofOfPossession, PublicKey};
use crate::error::{Error, Result};

/// Most members a set may have (the signer bitmap and the EVM key store
/// are sized for it).
pub const MAX_MEMBERS: usize = 128;
/// The tag that opens the members-hash preimage.
pub const MEMBERS_TAG: [u8; 32] = *b"CONCLAVE-MEMBERS-V1\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// The default quorum for `n` members: `floor(2n/3) + 1`.
pub fn default_quorum(n: usize) -> u32 {
    (2 * n / 3 + 1) as u32
}

/// A public key with its proof of possession, as a member registers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The member's key.
    pub public_key: PublicKey,
    /// Its proof of possession.
    pub pop: ProofOfPossession,
}

/// An ordered member set whose every key passed its PoP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberSet {
    members: Vec<PublicKey>,
    quorum: u32,
}

impl MemberSet {
    /// Admits `registrations` in order. `quorum = 0` picks
    /// [`default_quorum`]. Refuses a failing PoP (rogue-key defence),
    /// duplicates, sizes outside `1..=MAX_MEMBERS` and quorums outside
    /// `1..=n`.
    pub fn new(registrations: &[Registration], quorum: u32) -> Result<Self> {
        Self::with_pop_check(registrations, quorum, |r| r.public_key.verify_pop(&r.pop))
    }

    /// As [`Self::new`], with each proof of possession checked by
    /// `pop_holds`, which must answer as [`PublicKey::verify_pop`] does (a
    /// caller that remembers the pairs it found good answers those from
    /// memory: a check costs a pairing).
    pub fn with_pop_check(
        registrations: &[Registration],
        quorum: u32,
        pop_holds: impl Fn(&Registration) -> bool,
    ) -> Result<Self> {
        let n = registrations.len();
        if n == 0 || n > MAX_MEMBERS {
            return Err(Error::MemberCount {
                size: n,
                max: MAX_MEMBERS,
            });
        }
        let quorum = if quorum == 0 {
            default_quorum(n)
        } else {
            quorum
        };
        if quorum as usize > n {
            return Err(Error::InvalidQuorum { quorum, members: n });
        }
        let mut members: Vec<PublicKey> = Vec::with_capacity(n);
        for (index, reg) in registrations.iter().enumerate() {
            if !pop_holds(reg) {
                return Err(Error::BadPop { index });
            }
            if members.contains(&reg.public_key) {
                return Err(Error::DuplicateMember { index });
            }
            members.push(reg.public_key);
        }
        Ok(MemberSet { members, quorum })
    }

    /// Members in order; bit `i` of a signer bitmap is `members()[i]`.
    pub fn members(&self) -> &[PublicKey] {
        &self.members
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Never true for a constructed set; here for API completeness.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Signers needed for a valid checkpoint.
    pub fn quorum(&self) -> u32 {
        self.quorum
    }

    /// Position of a key in the set.
    pub fn index_of(&self, pk: &PublicKey) -> Option<usize> {
        self.members.iter().position(|m| m == pk)
    }

    /// The concatenated EIP-2537 keys (the EVM key store's content).
    pub fn eip2537_keys(&self) -> Vec<u8> {
        self.members.iter().flat_map(|pk| pk.to_eip2537()).collect()
    }

    /// The members hash (module docs).
    pub fn hash(&self) -> [u8; 32] {
        members_hash(&self.members, self.quorum)
    }
}

/// Members hash of any key list and quorum, without PoP checks (for
/// computing what a contract would compute from calldata).
pub fn members_hash(keys: &[PublicKey], quorum: u32) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(MEMBERS_TAG);
    h.update((keys.len() as u32).to_be_bytes());
    h.update(quorum.to_be_bytes());
    for pk in keys {
        h.update(pk.to_eip2537());
    }
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bls::SecretKey;

    fn reg(i: u8) -> Registration {
        let sk = SecretKey::from_seed(&[i; 32]).expect("seed");
        Registration {
            public_key: sk.public_key(),
            pop: sk.prove_possession(),
        }
    }

    #[test]
    fn default_quorum_is_two_thirds_plus_one() {
        assert_eq!(default_quorum(1), 1);
        assert_eq!(default_quorum(3), 3);
        assert_eq!(default_quorum(4), 3);
        assert_eq!(default_quorum(10), 7);
        assert_eq!(default_quorum(30), 21);
        let set = MemberSet::new(&[reg(1), reg(2), reg(3), reg(4)], 0).expect("valid");
        assert_eq!(set.quorum(), 3);
        assert_eq!(set.len(), 4);
    }

    #[test]
    fn refuses_bad_pop_duplicates_and_bad_sizes() {
        let mut bad = reg(2);
        bad.pop = reg(1).pop;
        assert_eq!(
            MemberSet::new(&[reg(1), bad], 0),
            Err(Error::BadPop { index: 1 })
        );
        assert_eq!(
            MemberSet::new(&[reg(1), reg(1)], 0),
            Err(Error::DuplicateMember { index: 1 })
        );
        assert!(matches!(
            MemberSet::new(&[], 0),
            Err(Error::MemberCount { .. })
        ));
        assert_eq!(
            MemberSet::new(&[reg(1)], 2),
            Err(Error::InvalidQuorum {
                quorum: 2,
                members: 1
            })
        );
    }

    #[test]
    fn hash_binds_keys_order_and_quorum() {
        let a = MemberSet::new(&[reg(1), reg(2), reg(3)], 2).expect("valid");
        let b = MemberSet::new(&[reg(2), reg(1), reg(3)], 2).expect("valid");
        let c = MemberSet::new(&[reg(1), reg(2), reg(3)], 3).expect("valid");
        assert_ne!(a.hash(), b.hash());
        assert_ne!(a.hash(), c.hash());
        let mut pre = MEMBERS_TAG.to_vec();
        pre.extend_from_slice(&3u32.to_be_bytes());
        pre.extend_from_slice(&2u32.to_be_bytes());
        pre.extend_from_slice(&a.eip2537_keys());
        let expect: [u8; 32] = Sha256::digest(&pre).into();
        assert_eq!(a.hash(), expect);
        assert_eq!(a.index_of(&reg(3).public_key), Some(2));
    }
}
