//! What members of a context say to each other on its gossip topic.

use borsh::{BorshDeserialize, BorshSerialize};
use conclave_consensus::{Block, SignedTx};

/// Largest gossip payload accepted (a proposal carries its block).
pub const MAX_WIRE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, BorshSerialize, BorshDeserialize)]
pub enum Wire {
    /// A tx a member submitted to one node, for every member's mempool.
    Tx(SignedTx),
    /// A signed proposal (`codec::encode_proposal`) with the block it names.
    Proposal { proposal: Vec<u8>, block: Block },
    /// A signed vote (`codec::encode_vote`).
    Vote(Vec<u8>),
}

impl Wire {
    pub fn encode(&self) -> Vec<u8> {
        borsh::to_vec(self).unwrap_or_default()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_WIRE_BYTES {
            return Err(format!("message of {} bytes is too large", bytes.len()));
        }
        borsh::from_slice(bytes).map_err(|e| format!("malformed message: {e}"))
    }
}
