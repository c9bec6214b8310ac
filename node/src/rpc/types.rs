//! Shapes of JSON-RPC results.

use conclave_consensus::{BlockHeader, ContextId, Hash32, MemberId};
use serde::{Deserialize, Serialize};

use crate::store::MemberInfo;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeStatus {
    pub version: String,
    pub member_id: MemberId,
    #[serde(with = "conclave_consensus::types::serde_hex::bytes")]
    pub bls_public_key: Vec<u8>,
    #[serde(with = "conclave_consensus::types::serde_hex::bytes")]
    pub bls_pop: Vec<u8>,
    pub contexts: usize,
    pub uptime_secs: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Health {
    /// False while something keeps the node from doing its work.
    pub ok: bool,
    /// What, one line each (a context that cannot write to disk, say).
    #[serde(default)]
    pub problems: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContextSummary {
    pub context_id: ContextId,
    pub app_hash: Hash32,
    pub height: u64,
    pub last_block_hash: Hash32,
    pub state_root: Hash32,
    pub members: Vec<MemberInfo>,
    pub members_hash: Hash32,
    pub pending_txs: Option<usize>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TxSubmitted {
    pub tx_hash: Hash32,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TxStatusView {
    pub tx_hash: Hash32,
    /// `pending`, `committed` (ran to completion), `failed` (committed, the
    /// app call failed) or `unknown`.
    pub status: String,
    pub context_id: Option<ContextId>,
    pub height: Option<u64>,
    pub index: Option<u32>,
    /// The output as UTF-8 when it is valid UTF-8.
    pub output: Option<String>,
    pub output_hex: Option<String>,
    pub error: Option<String>,
    pub events: Vec<EventView>,
    pub fuel_used: Option<u64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventView {
    pub name: String,
    pub data: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateValue {
    pub context_id: ContextId,
    pub key: String,
    pub value: Option<String>,
    pub value_hex: Option<String>,
    pub height: u64,
    pub state_root: Hash32,
    /// borsh-encoded `SparseMerkleProof<Sha256>` (hex) of the namespaced key
    /// `0x01 ‖ key` against `state_root`.
    pub proof: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ViewResult {
    pub height: u64,
    pub output: Option<String>,
    pub output_hex: Option<String>,
    pub error: Option<String>,
    pub fuel_used: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct BlockView {
    pub hash: Hash32,
    pub header: BlockHeader,
    pub txs: Vec<Hash32>,
    pub certificate_round: i64,
    pub signers: Vec<MemberId>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ContextCreated {
    pub context_id: ContextId,
    pub app_hash: Hash32,
    /// One per other member: whether its node installed the context.
    #[serde(default)]
    pub offers: Vec<crate::onboarding::OfferOutcome>,
}

/// A member token from `auth_login`, for `Authorization: Bearer <token>`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoginToken {
    pub token: String,
    pub expires_ms: u64,
}
