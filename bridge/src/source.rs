//! What the relayer reads from a member's node: completed checkpoints and
//! the actions of the outbox with their inclusion proofs. The node side
//! implements [`Source`] over its authenticated JSON-RPC (`conclave relay`
//! in `node/src/cli/relay.rs`); tests can implement it over anything.

use std::future::Future;

use conclave_checkpoint::{Action, CheckpointPayload, Domain, MerkleProof, Signature};

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
}
