//! Checkpoints and actions as the RPC shows them. Every checkpoint is
//! checked here with `conclave_checkpoint::Verifier`, as a proxy would.

use conclave_checkpoint::actions::request;
use conclave_checkpoint::{
    Account, Action, ActionKind, Certificate, ChainKind, Domain, Outbox, Signature, SignerBitmap,
    Verifier,
};
use conclave_consensus::{ContextId, Hash32, MemberId};
use serde::{Deserialize, Serialize};

use super::Params;
use crate::store::{ActionPosition, ActionRecord, CheckpointRecord, Store, StoreError};

/// A domain, readable and encoded.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DomainView {
    /// `evm`, `near` or `unanchored`.
    pub kind: String,
    pub chain_id: u64,
    /// Hex of the 32-byte target.
    pub target: String,
    /// The EVM proxy address, for an EVM domain.
    pub evm_address: Option<String>,
    /// Hex of the 41-byte encoding.
    pub encoded: String,
}

impl DomainView {
    pub fn of(d: &Domain) -> Self {
        Self {
            kind: match d.kind {
                ChainKind::Evm => "evm",
                ChainKind::Near => "near",
                ChainKind::Unanchored => "unanchored",
            }
            .into(),
            chain_id: d.chain_id,
            target: hex::encode(d.target),
            evm_address: d.evm_address().map(|a| format!("0x{}", hex::encode(a))),
            encoded: hex::encode(d.encode()),
        }
    }
}

/// A checkpoint's copy for one domain, with its aggregate.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DomainCheckpointView {
    pub domain: DomainView,
    /// Hex of the 217-byte payload.
    pub payload: String,
    /// `sha256(payload)`: the message members signed.
    pub digest: String,
    /// Hex of the 32-byte signer bitmap (a big-endian uint256).
    pub signers_bitmap: String,
    /// Signers' member ids, in bitmap order.
    pub signers: Vec<MemberId>,
    /// Aggregate signature, compressed (96 bytes).
    pub signature: String,
    /// Aggregate signature in EIP-2537 encoding (256 bytes).
    pub signature_eip2537: String,
    /// Whether the aggregate verifies against the context's member set.
    pub verifies: bool,
    /// Why it does not, if it does not.
    pub error: Option<String>,
}

/// A completed checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointView {
    pub context_id: ContextId,
    pub height: u64,
    pub epoch: u64,
    pub state_root: Hash32,
    pub actions_root: Hash32,
    pub next_members_hash: String,
    /// Hash of the current member set (`conclave_checkpoint::MemberSet`).
    pub members_hash: String,
    pub member_count: usize,
    pub quorum: u32,
    pub domains: Vec<DomainCheckpointView>,
    /// Every domain's aggregate verifies.
    pub verifies: bool,
}

pub fn checkpoint_view(p: &Params, rec: &CheckpointRecord) -> CheckpointView {
    let domains: Vec<_> = rec
        .certificates
        .iter()
        .map(|c| {
            let bitmap = SignerBitmap::from_bytes(c.signers);
            let signers = bitmap
                .indices()
                .filter_map(|i| p.members.get(i).copied())
                .collect();
            let sig = Signature::from_compressed(&c.signature);
            let domain = Domain::decode(&c.domain.0);
            let (payload, check) = match (&domain, &sig) {
                (Ok(d), Ok(s)) => {
                    let mut payload = p.payload(*d, rec.height.0, rec.state_root, rec.actions_root);
                    payload.epoch = rec.epoch;
                    payload.next_members_hash = rec.next_members_hash;
                    let cert = Certificate {
                        signers: bitmap,
                        signature: *s,
                    };
                    let verifier = Verifier {
                        domain: *d,
                        epoch: p.epoch,
                        members: &p.set,
                    };
                    let check = verifier.verify(&payload, &cert).map_err(|e| e.to_string());
                    (Some(payload), check)
                }
                (Err(e), _) => (None, Err(format!("domain: {e}"))),
                (_, Err(e)) => (None, Err(format!("signature: {e}"))),
            };
            DomainCheckpointView {
                domain: domain
                    .as_ref()
                    .map(DomainView::of)
                    .unwrap_or_else(|_| DomainView {
                        kind: "invalid".into(),
                        chain_id: 0,
                        target: String::new(),
                        evm_address: None,
                        encoded: hex::encode(c.domain.0),
                    }),
                payload: payload.map(|p| hex::encode(p.encode())).unwrap_or_default(),
                digest: payload.map(|p| hex::encode(p.digest())).unwrap_or_default(),
                signers_bitmap: hex::encode(c.signers),
                signers,
                signature: hex::encode(c.signature),
                signature_eip2537: sig.map(|s| hex::encode(s.to_eip2537())).unwrap_or_default(),
                verifies: check.is_ok(),
                error: check.err(),
            }
        })
        .collect();
    CheckpointView {
        context_id: p.context,
        height: rec.height.0,
        epoch: rec.epoch,
        state_root: rec.state_root,
        actions_root: rec.actions_root,
        next_members_hash: hex::encode(rec.next_members_hash),
        members_hash: hex::encode(p.set.hash()),
        member_count: p.members.len(),
        quorum: p.set.quorum(),
        verifies: !domains.is_empty() && domains.iter().all(|d| d.verifies),
        domains,
    }
}

/// One action of an outbox.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ActionView {
    /// Hex of the 32-byte id.
    pub id: String,
    pub context_id: ContextId,
    pub height: u64,
    pub index: u32,
    /// The tx that emitted it.
    pub tx: Hash32,
    pub domain: DomainView,
    /// `native_transfer`, `token_transfer` or `contract_call`.
    pub kind: String,
    pub to: String,
    pub token: Option<String>,
    /// Amount (or value sent with a call), decimal.
    pub amount: String,
    /// Calldata (hex), for a call.
    pub calldata: Option<String>,
    /// Hex of the action request (`domain || kind || body`,
    /// docs/checkpoint.md): the whole action but its id, for clients that
    /// rebuild it (the relayer).
    pub request: String,
    /// Hex of the leaf encoding for its chain (docs/checkpoint.md).
    pub leaf_encoding: String,
    /// `sha256(0x00 || leaf_encoding)`.
    pub leaf_hash: String,
    /// Height of the checkpoint that commits it, once there is one.
    pub checkpoint_height: Option<u64>,
}

fn account(a: &Account) -> String {
    match a {
        Account::Evm(addr) => format!("0x{}", hex::encode(addr)),
        Account::Near(id) => id.clone(),
    }
}

/// The action a record holds.
pub fn action_of(rec: &ActionRecord) -> Result<Action, String> {
    let (domain, kind) =
        request::decode(&rec.request).map_err(|e| format!("stored action: {e}"))?;
    Ok(Action {
        id: rec.id,
        domain,
        kind,
    })
}

pub fn action_view(
    pos: &ActionPosition,
    rec: &ActionRecord,
    checkpoint_height: Option<u64>,
) -> Result<ActionView, String> {
    let action = action_of(rec)?;
    let encoding = action.encode().map_err(|e| e.to_string())?;
    let (kind, to, token, amount, calldata) = match &action.kind {
        ActionKind::NativeTransfer { to, amount } => ("native_transfer", to, None, amount, None),
        ActionKind::TokenTransfer { token, to, amount } => {
            ("token_transfer", to, Some(account(token)), amount, None)
        }
        ActionKind::ContractCall {
            to,
            value,
            calldata,
        } => (
            "contract_call",
            to,
            None,
            value,
            Some(hex::encode(calldata)),
        ),
    };
    Ok(ActionView {
        id: hex::encode(rec.id),
        context_id: pos.context,
        height: pos.height.0,
        index: pos.index,
        tx: rec.tx,
        domain: DomainView::of(&action.domain),
        kind: kind.into(),
        to: account(to),
        token,
        amount: amount.to_string(),
        calldata,
        request: hex::encode(&rec.request),
        leaf_hash: hex::encode(conclave_checkpoint::merkle::leaf_hash(&encoding)),
        leaf_encoding: hex::encode(encoding),
        checkpoint_height,
    })
}

/// An action with its inclusion proof.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ActionProofView {
    pub action: ActionView,
    /// The actions root of the action's height (its block header's).
    pub actions_root: Hash32,
    /// Position of the leaf; bit k set means the level-k node is a right
    /// child.
    pub proof_index: u64,
    /// Siblings from the leaf level up (hex).
    pub proof: Vec<String>,
    /// The checkpoint that commits it, once complete.
    pub checkpoint: Option<CheckpointView>,
}

/// Builds the proof of the action at `pos` from its height's outbox.
pub fn action_proof(
    store: &Store,
    p: &Params,
    pos: &ActionPosition,
) -> Result<Result<ActionProofView, String>, StoreError> {
    let records = store.actions_at(&pos.context, pos.height)?;
    let checkpoint = store.checkpoint(&pos.context, pos.height)?;
    let actions: Result<Vec<Action>, String> = records.iter().map(action_of).collect();
    let built = actions.and_then(|a| Outbox::new(a).map_err(|e| e.to_string()));
    Ok(built.and_then(|outbox| {
        let rec = records
            .get(pos.index as usize)
            .ok_or_else(|| format!("no action {} at height {}", pos.index, pos.height))?;
        let proof = outbox
            .proof(pos.index as usize)
            .ok_or_else(|| format!("no proof for action {}", pos.index))?;
        Ok(ActionProofView {
            action: action_view(pos, rec, checkpoint.as_ref().map(|c| c.height.0))?,
            actions_root: Hash32(outbox.root()),
            proof_index: proof.index,
            proof: proof.siblings.iter().map(hex::encode).collect(),
            checkpoint: checkpoint.map(|c| checkpoint_view(p, &c)),
        })
    }))
}
