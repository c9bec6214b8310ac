use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use super::{sha256, ContextId, Hash32, Height, MemberId, SignedTx};

/// A block header. Its hash identifies the block and is the value members
/// vote on.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BlockHeader {
    pub context_id: ContextId,
    pub height: Height,
    pub parent_hash: Hash32,
    /// Proposer's wall clock, milliseconds since the Unix epoch; strictly
    /// greater than the parent's.
    pub time_ms: u64,
    pub proposer: MemberId,
    /// Merkle root of the tx hashes, in block order.
    pub txs_root: Hash32,
    /// Root of the context's state (a Jellyfish Merkle Tree) after the block.
    pub state_root: Hash32,
    /// Merkle root of the on-chain actions the block's txs requested.
    pub actions_root: Hash32,
    /// Hash of the member set that validates the next height.
    pub members_hash: Hash32,
}

impl BlockHeader {
    pub fn hash(&self) -> Hash32 {
        sha256(&[
            b"conclave/block/v1",
            &borsh::to_vec(self).unwrap_or_default(),
        ])
    }
}

/// A block: header and the txs it orders.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Block {
    pub header: BlockHeader,
    pub txs: Vec<SignedTx>,
}

impl Block {
    pub fn hash(&self) -> Hash32 {
        self.header.hash()
    }

    pub fn height(&self) -> Height {
        self.header.height
    }

    /// The txs root this block's txs imply (compare with `header.txs_root`).
    pub fn compute_txs_root(&self) -> Hash32 {
        let leaves: Vec<Hash32> = self.txs.iter().map(SignedTx::hash).collect();
        merkle_root(&leaves)
    }
}

/// Binary Merkle root over `leaves` with distinct leaf and node prefixes
/// (second-preimage safe). An odd node is promoted unchanged. The root of no
/// leaves is all zeros.
pub fn merkle_root(leaves: &[Hash32]) -> Hash32 {
    if leaves.is_empty() {
        return Hash32::default();
    }
    let mut level: Vec<Hash32> = leaves.iter().map(|l| sha256(&[&[0u8], &l.0])).collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [a, b] => sha256(&[&[1u8], &a.0, &b.0]),
                [a] => *a,
                _ => Hash32::default(),
            })
            .collect();
    }
    level[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merkle_root_shape() {
        let a = Hash32([1; 32]);
        let b = Hash32([2; 32]);
        let c = Hash32([3; 32]);
        assert_eq!(merkle_root(&[]), Hash32::default());
        assert_ne!(merkle_root(&[a]), a, "leaves are prefixed");
        assert_ne!(merkle_root(&[a, b]), merkle_root(&[b, a]));
        assert_ne!(merkle_root(&[a, b, c]), merkle_root(&[a, b]));
        // Pinned vector: changes to the hashing scheme must be deliberate.
        assert_eq!(
            merkle_root(&[a, b]).to_hex(),
            sha256(&[&[1], &sha256(&[&[0], &a.0]).0, &sha256(&[&[0], &b.0]).0]).to_hex()
        );
    }
}
