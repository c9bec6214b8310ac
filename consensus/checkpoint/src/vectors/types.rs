//! The JSON shapes of the vector files, with decoders back to the crate's
//! types.

use serde::{Deserialize, Serialize};

use super::{from_hex, from_hex_n, to_hex};
use crate::actions::{Account, Action, ActionKind};
use crate::domain::{ChainKind, Domain};
use crate::error::{Error, Result};
use crate::merkle::MerkleProof;
use crate::payload::CheckpointPayload;

/// `keys.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeysFile {
    /// What the file holds.
    pub description: String,
    /// DST of checkpoint signatures.
    pub sig_dst: String,
    /// DST of proofs of possession.
    pub pop_dst: String,
    /// The keys.
    pub keys: Vec<KeyVector>,
}

/// One key with every encoding of its public key and PoP.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyVector {
    /// Position in the file.
    pub index: u32,
    /// 32-byte IKM given to KeyGen.
    pub ikm: String,
    /// Resulting scalar.
    pub secret_key: String,
    /// Public key, 48 bytes.
    pub pk_compressed: String,
    /// Public key, 96 bytes.
    pub pk_uncompressed: String,
    /// Public key, 128 bytes.
    pub pk_eip2537: String,
    /// PoP, 96 bytes.
    pub pop_compressed: String,
    /// PoP, 192 bytes.
    pub pop_uncompressed: String,
    /// PoP, 256 bytes.
    pub pop_eip2537: String,
}

/// `members.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembersFile {
    /// What the file holds.
    pub description: String,
    /// Valid member sets.
    pub sets: Vec<MemberSetVector>,
    /// Registrations that must be refused.
    pub bad_registrations: Vec<BadRegistration>,
}

/// A valid member set.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberSetVector {
    /// Referenced by checkpoint cases.
    pub name: String,
    /// Indices into `keys.json`, in member order.
    pub key_indices: Vec<u32>,
    /// Quorum (already resolved from the default).
    pub quorum: u32,
    /// Members-hash preimage.
    pub preimage: String,
    /// Members hash.
    pub members_hash: String,
}

/// A registration list that must be refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRegistration {
    /// Case name.
    pub name: String,
    /// Why it is bad.
    pub description: String,
    /// Public keys, EIP-2537.
    pub pks_eip2537: Vec<String>,
    /// PoPs, EIP-2537.
    pub pops_eip2537: Vec<String>,
    /// Requested quorum (0 = default).
    pub quorum: u32,
    /// Expected error reason.
    pub reason: String,
    /// Index of the refused member.
    pub bad_index: u32,
    /// For the rogue key: a message and the attacker's lone signature that
    /// `fast_aggregate_verify` accepts for all the listed keys, showing what
    /// the PoP check prevents.
    pub forgery: Option<Forgery>,
}

/// A forged aggregate enabled by a rogue key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forgery {
    /// Signed message.
    pub message: String,
    /// Signature, EIP-2537.
    pub signature_eip2537: String,
}

/// A domain, with its human-readable source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainVector {
    /// 1 EVM, 2 NEAR.
    pub kind: u8,
    /// EVM chain id, 0 for NEAR.
    pub chain_id: u64,
    /// 32-byte target.
    pub target: String,
    /// EVM proxy address, if EVM.
    pub evm_address: Option<String>,
    /// NEAR network, if NEAR.
    pub near_network: Option<String>,
    /// NEAR account, if NEAR.
    pub near_account: Option<String>,
    /// 41-byte encoding.
    pub encoded: String,
}

impl DomainVector {
    /// From a domain (NEAR names given separately since they are hashed).
    pub fn new(d: &Domain, near: Option<(&str, &str)>) -> Self {
        DomainVector {
            kind: d.kind as u8,
            chain_id: d.chain_id,
            target: to_hex(&d.target),
            evm_address: d.evm_address().map(|a| to_hex(&a)),
            near_network: near.map(|n| n.0.to_owned()),
            near_account: near.map(|n| n.1.to_owned()),
            encoded: to_hex(&d.encode()),
        }
    }

    /// Rebuilds the domain from its source fields.
    pub fn to_domain(&self) -> Result<Domain> {
        match ChainKind::from_byte(self.kind)? {
            ChainKind::Evm => {
                let addr = self.evm_address.as_deref().ok_or(Error::WrongDomain)?;
                Ok(Domain::evm(self.chain_id, from_hex_n(addr)?))
            }
            ChainKind::Near => {
                let net = self.near_network.as_deref().ok_or(Error::WrongDomain)?;
                let acc = self.near_account.as_deref().ok_or(Error::WrongDomain)?;
                Domain::near(net, acc)
            }
            ChainKind::Unanchored => Ok(Domain::unanchored()),
        }
    }
}

/// Payload fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PayloadVector {
    /// Target domain.
    pub domain: DomainVector,
    /// Context id.
    pub context_id: String,
    /// Epoch.
    pub epoch: u64,
    /// Height.
    pub height: u64,
    /// State root.
    pub state_root: String,
    /// Actions root.
    pub actions_root: String,
    /// Next members hash.
    pub next_members_hash: String,
}

impl PayloadVector {
    /// Rebuilds the payload.
    pub fn to_payload(&self) -> Result<CheckpointPayload> {
        Ok(CheckpointPayload {
            domain: self.domain.to_domain()?,
            context_id: from_hex_n(&self.context_id)?,
            epoch: self.epoch,
            height: self.height,
            state_root: from_hex_n(&self.state_root)?,
            actions_root: from_hex_n(&self.actions_root)?,
            next_members_hash: from_hex_n(&self.next_members_hash)?,
        })
    }
}

/// `checkpoints.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointsFile {
    /// What the file holds.
    pub description: String,
    /// Cases that verify.
    pub valid: Vec<CheckpointCase>,
    /// Cases that must be refused, each with its reason.
    pub invalid: Vec<CheckpointCase>,
}

/// A certified checkpoint and the verifier it is checked by.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointCase {
    /// Case name.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// Member set (by name in `members.json`) of the verifier.
    pub member_set: String,
    /// The verifier's own domain.
    pub verifier_domain: DomainVector,
    /// The verifier's epoch.
    pub verifier_epoch: u64,
    /// Payload fields.
    pub payload: PayloadVector,
    /// 217-byte encoding.
    pub payload_bytes: String,
    /// `sha256(payload_bytes)`, the signed message.
    pub digest: String,
    /// Hash-to-G2 of the digest under the signature DST (EIP-2537).
    pub message_point_eip2537: String,
    /// Bits set in the bitmap.
    pub signer_indices: Vec<u32>,
    /// 32-byte bitmap.
    pub signers_bitmap: String,
    /// Aggregate, 96 bytes.
    pub signature_compressed: String,
    /// Aggregate, EIP-2537.
    pub signature_eip2537: String,
    /// Expected error reason for invalid cases.
    pub reason: Option<String>,
}

/// `actions.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionsFile {
    /// What the file holds.
    pub description: String,
    /// Context the ids derive from.
    pub context_id: String,
    /// Height the ids derive from.
    pub height: u64,
    /// Actions in outbox order.
    pub actions: Vec<ActionVector>,
    /// Root over all leaves.
    pub root: String,
    /// Root of an empty outbox.
    pub empty_root: String,
    /// Proofs that must be refused.
    pub invalid_proofs: Vec<BadProof>,
}

/// One action with its leaf and proof.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionVector {
    /// Action id.
    pub id: String,
    /// Target domain.
    pub domain: DomainVector,
    /// `native`, `token` or `call`.
    pub kind: String,
    /// Token contract (token transfers).
    pub token: Option<String>,
    /// Recipient or callee: `0x` address or NEAR account.
    pub to: String,
    /// Amount or value, decimal.
    pub amount: String,
    /// Calldata (calls).
    pub calldata: String,
    /// Leaf encoding.
    pub encoding: String,
    /// Leaf hash.
    pub leaf: String,
    /// Proof index.
    pub proof_index: u64,
    /// Proof siblings, leaf level first.
    pub proof: Vec<String>,
}

fn account(s: &str, kind: ChainKind) -> Result<Account> {
    match kind {
        ChainKind::Evm => Ok(Account::Evm(from_hex_n(s)?)),
        ChainKind::Near => Ok(Account::Near(s.to_owned())),
        ChainKind::Unanchored => Err(Error::BadAction("no accounts on the unanchored domain")),
    }
}

impl ActionVector {
    /// Rebuilds the action.
    pub fn to_action(&self) -> Result<Action> {
        let domain = self.domain.to_domain()?;
        let amount: u128 = self
            .amount
            .parse()
            .map_err(|_| Error::BadAction("amount is not a decimal u128"))?;
        let to = account(&self.to, domain.kind)?;
        let kind = match self.kind.as_str() {
            "native" => ActionKind::NativeTransfer { to, amount },
            "token" => ActionKind::TokenTransfer {
                token: account(
                    self.token.as_deref().ok_or(Error::BadAction("no token"))?,
                    domain.kind,
                )?,
                to,
                amount,
            },
            "call" => ActionKind::ContractCall {
                to,
                value: amount,
                calldata: from_hex(&self.calldata)?,
            },
            _ => return Err(Error::BadAction("unknown kind")),
        };
        Ok(Action {
            id: from_hex_n(&self.id)?,
            domain,
            kind,
        })
    }

    /// The proof.
    pub fn to_proof(&self) -> Result<MerkleProof> {
        proof(self.proof_index, &self.proof)
    }
}

/// A proof that must be refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadProof {
    /// Case name.
    pub name: String,
    /// Which action it claims to prove.
    pub action_index: u32,
    /// Claimed index.
    pub proof_index: u64,
    /// Claimed siblings.
    pub proof: Vec<String>,
    /// Expected error reason.
    pub reason: String,
}

impl BadProof {
    /// The proof.
    pub fn to_proof(&self) -> Result<MerkleProof> {
        proof(self.proof_index, &self.proof)
    }
}

fn proof(index: u64, siblings: &[String]) -> Result<MerkleProof> {
    Ok(MerkleProof {
        index,
        siblings: siblings
            .iter()
            .map(|s| from_hex_n(s))
            .collect::<Result<_>>()?,
    })
}

/// `hash_to_g2.json`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashToG2File {
    /// What the file holds.
    pub description: String,
    /// Cases.
    pub cases: Vec<HashToG2Case>,
}

/// One hash-to-curve input and output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HashToG2Case {
    /// Message (hex).
    pub msg: String,
    /// DST (ASCII).
    pub dst: String,
    /// Output point, EIP-2537.
    pub point_eip2537: String,
}
