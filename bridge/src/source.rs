//! What the relayer reads from a member's node: completed checkpoints and
//! the actions of the outbox with their inclusion proofs. The node side
//! implements [`Source`] over its authenticated JSON-RPC (`conclave relay`
//! in `node/src/cli/relay.rs`); tests can implement it over anything.

use std::future::Future;

use conclave_checkpoint::{
    Action, CheckpointPayload, Domain, MemberSet, MerkleProof, Registration, Signature,
};

use crate::Result;

/// One domain's copy of a completed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedCheckpoint {
    /// The signed payload: domain, epoch, height, roots, next members hash.
    pub payload: CheckpointPayload,
    /// Signer bitmap (a big-endian uint256, bit `i` for member `i`).
    pub signers: [u8; 32],
    /// The aggregate signature.
    pub signature: Signature,
}

/// An action of the outbox, with what a proxy needs to execute it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProvenAction {
    pub action: Action,
    /// Height of the block that emitted it; its checkpoint is at that
    /// height (docs/checkpoint.md).
    pub height: u64,
    pub proof: MerkleProof,
}

/// A member set as a proxy installs it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Members {
    /// The context's member-set epoch of these keys.
    pub epoch: u64,
    /// BLS keys with their proofs of possession, in member-id order (the
    /// order of checkpoint signer bitmaps).
    pub keys: Vec<Registration>,
}

impl Members {
    /// The checkpoint members hash of these keys with the default quorum:
    /// what a proxy holds for them, and what a checkpoint announcing them
    /// carries. Checks every proof of possession.
    pub fn hash(&self) -> Result<[u8; 32]> {
        MemberSet::new(&self.keys, 0)
            .map(|s| s.hash())
            .map_err(|e| {
                crate::Error::Malformed(format!("member set of epoch {}: {e}", self.epoch))
            })
    }
}

/// A member's node, as the relayer sees it.
pub trait Source: Sync {
    /// Completed checkpoints above `after` for `domain`, ascending, at most
    /// `limit`.
    fn checkpoints(
        &self,
        domain: &Domain,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<SignedCheckpoint>>> + Send;

    /// Heights above `after` whose block emitted at least one action for
    /// `domain`, ascending, with those actions (proofs included), at most
    /// `limit` actions.
    fn actions(
        &self,
        domain: &Domain,
        after: u64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<ProvenAction>>> + Send;

    /// The context's committed height.
    fn tip(&self) -> impl Future<Output = Result<u64>> + Send;

    /// The member set that validates and signs `height` (a proxy rotates
    /// to it after the checkpoint of `height - 1` announced it).
    fn members_at(&self, height: u64) -> impl Future<Output = Result<Members>> + Send;
}
