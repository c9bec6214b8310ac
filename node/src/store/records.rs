//! Records kept in the store.

use borsh::{BorshDeserialize, BorshSerialize};
use conclave_consensus::{types::sha256, ContextId, Hash32, Height, MemberId};
use serde::{Deserialize, Serialize};

/// A member as recorded in a context's genesis.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct MemberInfo {
    pub id: MemberId,
    /// Compressed BLS12-381 G1 public key (48 bytes).
    #[serde(with = "conclave_consensus::types::serde_hex::bytes")]
    pub bls_public_key: Vec<u8>,
    /// Proof of possession of the BLS key (96 bytes).
    #[serde(with = "conclave_consensus::types::serde_hex::bytes")]
    pub bls_pop: Vec<u8>,
}

/// What a context starts from. Its hash is the context id.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Genesis {
    pub app_hash: Hash32,
    /// Sorted by member id.
    pub members: Vec<MemberInfo>,
    pub created_at_ms: u64,
    /// Distinguishes contexts with identical members and app.
    pub salt: Hash32,
}

impl Genesis {
    pub fn context_id(&self) -> ContextId {
        ContextId(
            sha256(&[
                b"conclave/context/v1",
                &borsh::to_vec(self).unwrap_or_default(),
            ])
            .0,
        )
    }

    pub fn members_hash(&self) -> Hash32 {
        sha256(&[
            b"conclave/members/v1",
            &borsh::to_vec(&self.members).unwrap_or_default(),
        ])
    }

    pub fn member_ids(&self) -> Vec<MemberId> {
        self.members.iter().map(|m| m.id).collect()
    }
}

/// A context as this node knows it: genesis plus the committed tip.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ContextRecord {
    pub id: ContextId,
    pub genesis: Genesis,
    pub height: Height,
    pub last_block_hash: Hash32,
    pub state_root: Hash32,
    pub last_time_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxStatus {
    Ok,
    Failed,
}

/// The result of executing one tx.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Receipt {
    pub status: TxStatus,
    #[serde(with = "conclave_consensus::types::serde_hex::bytes")]
    pub output: Vec<u8>,
    pub error: Option<String>,
    pub events: Vec<(String, Vec<u8>)>,
    pub actions: Vec<Vec<u8>>,
    pub fuel_used: u64,
}

/// Where a tx committed and what it did.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TxRecord {
    pub context_id: ContextId,
    pub height: Height,
    pub index: u32,
    pub receipt: Receipt,
}
