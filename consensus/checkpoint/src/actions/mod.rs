//! The actions outbox: on-chain effects the context asks its proxies to
//! perform, committed by a checkpoint's `actions_root`.
//!
//! Each action has one canonical leaf encoding, chosen by its domain's
//! chain kind (see [`leaf`]); the leaf hash is `sha256(0x00 || encoding)`
//! and the tree over all of a height's actions, in outbox order, is the
//! binary tree of [`crate::merkle`].

pub mod leaf;
pub mod request;

use sha2::{Digest, Sha256};

use crate::domain::{ChainKind, Domain};
use crate::error::Result;
use crate::merkle::{self, MerkleProof};

/// Largest calldata an action may carry.
pub const MAX_CALLDATA: usize = 64 * 1024;
/// Tag that opens the action-id preimage.
pub const ACTION_ID_TAG: [u8; 32] = *b"CONCLAVE-ACTION-ID-V1\0\0\0\0\0\0\0\0\0\0\0";

/// Unique id of the `index`-th action emitted at `height` in `context_id`:
/// `sha256(ACTION_ID_TAG || context_id || u64 BE height || u32 BE index)`.
pub fn action_id(context_id: &[u8; 32], height: u64, index: u32) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(ACTION_ID_TAG);
    h.update(context_id);
    h.update(height.to_be_bytes());
    h.update(index.to_be_bytes());
    h.finalize().into()
}

/// An account on the action's chain.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Account {
    /// 20-byte EVM address.
    Evm([u8; 20]),
    /// NEAR account id (2..=64 bytes).
    Near(String),
}

/// What an action does.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ActionKind {
    /// Pay the chain's native coin (wei, yoctoNEAR).
    NativeTransfer {
        /// Recipient.
        to: Account,
        /// Amount in the smallest unit.
        amount: u128,
    },
    /// Pay a fungible token (ERC-20, NEP-141).
    TokenTransfer {
        /// Token contract.
        token: Account,
        /// Recipient.
        to: Account,
        /// Amount in token units.
        amount: u128,
    },
    /// Call a contract, attaching `value` native coin.
    ContractCall {
        /// Callee.
        to: Account,
        /// Native coin attached.
        value: u128,
        /// EVM: calldata. NEAR: `u32 BE len(method) || method || args`.
        calldata: Vec<u8>,
    },
}

impl ActionKind {
    /// The kind code in leaf encodings: 1 native, 2 token, 3 call.
    pub fn code(&self) -> u8 {
        match self {
            ActionKind::NativeTransfer { .. } => 1,
            ActionKind::TokenTransfer { .. } => 2,
            ActionKind::ContractCall { .. } => 3,
        }
    }
}

/// One outbox entry.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Action {
    /// Unique id ([`action_id`]); proxies execute each id at most once.
    pub id: [u8; 32],
    /// Chain and proxy that must perform it.
    pub domain: Domain,
    /// What to do.
    pub kind: ActionKind,
}

impl Action {
    /// The canonical encoding for the domain's chain kind.
    pub fn encode(&self) -> Result<Vec<u8>> {
        match self.domain.kind {
            ChainKind::Evm => leaf::encode_evm(self),
            ChainKind::Near => leaf::encode_near(self),
            ChainKind::Unanchored => Err(crate::error::Error::BadAction(
                "an action needs an EVM or NEAR domain",
            )),
        }
    }

    /// The leaf hash `sha256(0x00 || encode())`.
    pub fn leaf_hash(&self) -> Result<[u8; 32]> {
        Ok(merkle::leaf_hash(&self.encode()?))
    }
}

/// The actions of one checkpoint with their tree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbox {
    actions: Vec<Action>,
    leaves: Vec<[u8; 32]>,
}

impl Outbox {
    /// Encodes every action; refuses one that does not fit its chain.
    pub fn new(actions: Vec<Action>) -> Result<Self> {
        let leaves = actions
            .iter()
            .map(Action::leaf_hash)
            .collect::<Result<Vec<_>>>()?;
        Ok(Outbox { actions, leaves })
    }

    /// The actions, in order.
    pub fn actions(&self) -> &[Action] {
        &self.actions
    }

    /// Leaf hashes, in order.
    pub fn leaves(&self) -> &[[u8; 32]] {
        &self.leaves
    }

    /// The `actions_root` (all zeros when empty).
    pub fn root(&self) -> [u8; 32] {
        merkle::root(&self.leaves)
    }

    /// Inclusion proof of the `index`-th action.
    pub fn proof(&self, index: usize) -> Option<MerkleProof> {
        merkle::proof(&self.leaves, index)
    }
}

/// Checks that `action` is committed by `actions_root` at `proof`.
pub fn verify_action(actions_root: &[u8; 32], action: &Action, proof: &MerkleProof) -> Result<()> {
    merkle::verify(actions_root, &action.leaf_hash()?, proof)
}

#[cfg(test)]
mod tests;
