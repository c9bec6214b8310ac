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

/// An encoded checkpoint domain (`conclave_checkpoint::Domain`, 41 bytes:
/// kind, chain id, target): a proxy contract the context anchors to. Hex
/// in JSON.
impl MemberInfo {
    /// The identity of the member holding `key` and `bls`: its id, BLS
    /// public key and proof of possession of it.
    pub fn of(key: &ed25519_dalek::SigningKey, bls: &conclave_checkpoint::SecretKey) -> Self {
        Self {
            id: MemberId(key.verifying_key().to_bytes()),
            bls_public_key: bls.public_key().to_compressed().to_vec(),
            bls_pop: bls
                .prove_possession()
                .as_signature()
                .to_compressed()
                .to_vec(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, BorshSerialize, BorshDeserialize)]
pub struct AnchorDomain(pub [u8; 41]);

impl Serialize for AnchorDomain {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.0))
    }
}

impl<'de> Deserialize<'de> for AnchorDomain {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = conclave_consensus::types::serde_hex::bytes::deserialize(d)?;
        v.try_into()
            .map(AnchorDomain)
            .map_err(|_| serde::de::Error::custom("an anchor domain is 41 bytes"))
    }
}

/// Checkpoint interval of a genesis that names none.
pub const DEFAULT_CHECKPOINT_INTERVAL: u64 = 10;

fn default_checkpoint_interval() -> u64 {
    DEFAULT_CHECKPOINT_INTERVAL
}

/// What a context starts from. Its hash is the context id.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Genesis {
    pub app_hash: Hash32,
    /// Sorted by member id. This order is the order of checkpoint signer
    /// bitmaps and of the BLS members hash.
    pub members: Vec<MemberInfo>,
    pub created_at_ms: u64,
    /// Distinguishes contexts with identical members and app.
    pub salt: Hash32,
    /// Proxy contracts this context's checkpoints are signed for (one
    /// payload per domain). None: checkpoints use the unanchored domain.
    #[serde(default)]
    pub anchors: Vec<AnchorDomain>,
    /// Every height divisible by this is a checkpoint height (and so is
    /// every height whose block emitted actions).
    #[serde(default = "default_checkpoint_interval")]
    pub checkpoint_interval: u64,
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

/// One action of a height's outbox, as committed.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ActionRecord {
    /// `conclave_checkpoint::action_id(context, height, index)`.
    pub id: [u8; 32],
    /// The guest's request (`conclave_checkpoint::actions::request`):
    /// domain and kind.
    pub request: Vec<u8>,
    /// The tx that emitted it.
    pub tx: Hash32,
}

/// A completed checkpoint: the payload fields shared by every domain, and
/// one aggregate certificate per domain.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CheckpointRecord {
    pub height: Height,
    pub epoch: u64,
    pub state_root: Hash32,
    pub actions_root: Hash32,
    pub next_members_hash: [u8; 32],
    pub certificates: Vec<DomainCertificate>,
}

/// The aggregate for one domain: signer bitmap and compressed signature.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct DomainCertificate {
    pub domain: AnchorDomain,
    pub signers: [u8; 32],
    pub signature: [u8; 96],
}

/// Where a tx committed and what it did.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct TxRecord {
    pub context_id: ContextId,
    pub height: Height,
    pub index: u32,
    pub receipt: Receipt,
}

/// [`TxRecord`] by reference, for writing without cloning the receipt:
/// encodes to the same bytes.
#[derive(BorshSerialize)]
pub(crate) struct TxRecordRef<'a> {
    pub context_id: &'a ContextId,
    pub height: Height,
    pub index: u32,
    pub receipt: &'a Receipt,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_record_ref_encodes_like_tx_record() {
        let receipt = Receipt {
            status: TxStatus::Failed,
            output: b"out".to_vec(),
            error: Some("e".into()),
            events: vec![("ev".into(), b"data".to_vec())],
            actions: vec![b"act".to_vec()],
            fuel_used: 77,
        };
        let owned = TxRecord {
            context_id: ContextId([3; 32]),
            height: Height(9),
            index: 2,
            receipt: receipt.clone(),
        };
        let by_ref = TxRecordRef {
            context_id: &owned.context_id,
            height: owned.height,
            index: owned.index,
            receipt: &receipt,
        };
        assert_eq!(
            borsh::to_vec(&owned).unwrap(),
            borsh::to_vec(&by_ref).unwrap()
        );
    }
}
