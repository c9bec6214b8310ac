//! Binary Merkle tree over 32-byte leaf hashes (SHA-256).
//!
//! - leaf hash: `sha256(0x00 || leaf encoding)`;
//! - node hash: `sha256(0x01 || left || right)` — distinct prefixes so a
//!   node can never pass for a leaf (second-preimage safety);
//! - a level with an odd number of nodes pairs its last node with 32 zero
//!   bytes (no duplication, so `[a, b, c]` and `[a, b, c, c]` differ);
//! - the root of one leaf is that leaf; the root of no leaves is 32 zero
//!   bytes, which no proof can reach.
//!
//! A proof is the sibling at every level from the leaf up, and the leaf's
//! index: bit `k` of the index (LSB first) says whether the node at level
//! `k` is a right child. The index must be below `2^len(siblings)`.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Deepest proof accepted (2^32 leaves).
pub const MAX_DEPTH: usize = 32;

/// `sha256(0x00 || data)`.
pub fn leaf_hash(data: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(data);
    h.finalize().into()
}

/// `sha256(0x01 || left || right)`.
pub fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

/// An inclusion proof.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MerkleProof {
    /// Position of the leaf.
    pub index: u64,
    /// Siblings from the leaf level up.
    pub siblings: Vec<[u8; 32]>,
}

fn next_level(level: &[[u8; 32]]) -> Vec<[u8; 32]> {
    level
        .chunks(2)
        .map(|pair| match pair {
            [l, r] => node_hash(l, r),
            [l] => node_hash(l, &[0u8; 32]),
            _ => [0u8; 32],
        })
        .collect()
}

/// Root of `leaves`.
pub fn root(leaves: &[[u8; 32]]) -> [u8; 32] {
    if leaves.is_empty() {
        return [0u8; 32];
    }
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        level = next_level(&level);
    }
    level[0]
}

/// Proof for `leaves[index]`, or `None` if out of range.
pub fn proof(leaves: &[[u8; 32]], index: usize) -> Option<MerkleProof> {
    if index >= leaves.len() {
        return None;
    }
    let mut siblings = Vec::new();
    let mut level = leaves.to_vec();
    let mut i = index;
    while level.len() > 1 {
        siblings.push(level.get(i ^ 1).copied().unwrap_or([0u8; 32]));
        level = next_level(&level);
        i /= 2;
    }
    Some(MerkleProof {
        index: index as u64,
        siblings,
    })
}

/// Checks that `leaf` is at `proof.index` under `root`.
pub fn verify(root: &[u8; 32], leaf: &[u8; 32], proof: &MerkleProof) -> Result<()> {
    let depth = proof.siblings.len();
    if depth > MAX_DEPTH || (depth < 64 && proof.index >> depth != 0) {
        return Err(Error::BadInclusionProof);
    }
    let mut acc = *leaf;
    for (k, sib) in proof.siblings.iter().enumerate() {
        acc = if (proof.index >> k) & 1 == 1 {
            node_hash(sib, &acc)
        } else {
            node_hash(&acc, sib)
        };
    }
    if acc == *root && *root != [0u8; 32] {
        Ok(())
    } else {
        Err(Error::BadInclusionProof)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u8) -> Vec<[u8; 32]> {
        (0..n).map(|i| leaf_hash(&[i])).collect()
    }

    #[test]
    fn small_trees_by_hand() {
        assert_eq!(root(&[]), [0u8; 32]);
        let l = leaves(3);
        assert_eq!(root(&l[..1]), l[0]);
        assert_eq!(root(&l[..2]), node_hash(&l[0], &l[1]));
        let expect = node_hash(&node_hash(&l[0], &l[1]), &node_hash(&l[2], &[0u8; 32]));
        assert_eq!(root(&l), expect);
        let mut dup = l.clone();
        dup.push(l[2]);
        assert_ne!(root(&dup), root(&l));
    }

    #[test]
    fn every_proof_verifies_for_sizes_1_to_9() {
        for n in 1..=9u8 {
            let l = leaves(n);
            let r = root(&l);
            for i in 0..l.len() {
                let p = proof(&l, i).expect("in range");
                assert_eq!(verify(&r, &l[i], &p), Ok(()), "n={n} i={i}");
                let other = (i + 1) % l.len();
                if other != i {
                    assert!(verify(&r, &l[other], &p).is_err());
                }
            }
            assert!(proof(&l, l.len()).is_none());
        }
    }

    #[test]
    fn tampered_proofs_fail() {
        let l = leaves(5);
        let r = root(&l);
        let p = proof(&l, 2).expect("in range");
        let mut bad = p.clone();
        bad.siblings[1][0] ^= 1;
        assert_eq!(verify(&r, &l[2], &bad), Err(Error::BadInclusionProof));
        let mut wide = p.clone();
        wide.index += 1 << p.siblings.len();
        assert_eq!(verify(&r, &l[2], &wide), Err(Error::BadInclusionProof));
        let mut short = p;
        short.siblings.pop();
        assert_eq!(verify(&r, &l[2], &short), Err(Error::BadInclusionProof));
        // The same 64 bytes hash differently as a leaf and as a node.
        assert_ne!(leaf_hash(&[l[0], l[1]].concat()), node_hash(&l[0], &l[1]));
        assert_eq!(
            verify(&[0u8; 32], &[0u8; 32], &MerkleProof::default()),
            Err(Error::BadInclusionProof)
        );
    }
}
