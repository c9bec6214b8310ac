//! Test inputs from `contracts/vectors/*.json`, and NEAR-domain checkpoints
//! and outboxes signed on the fly with `conclave-checkpoint` (same keys as
//! the vectors: `ikm_i = sha256("conclave-test-vector-key" || u32 i)`).
//!
//! Shared by the unit tests (`proxy/src/tests`) and the wasm tests
//! (`wasm/tests/it`), which each provide `super::proxy_types`.

#![allow(dead_code)] // each test binary uses its own subset

use std::path::PathBuf;

use conclave_checkpoint::vectors::{
    self, ActionsFile, CheckpointCase, CheckpointsFile, HashToG2File, KeysFile, MembersFile,
};
use conclave_checkpoint::{
    Account, Action, ActionKind, CheckpointPayload, Domain, MerkleProof, SecretKey, Signature,
    SignerBitmap,
};
use near_sdk::json_types::U128;
use serde::de::DeserializeOwned;

use super::proxy_types::{ActionArg, MemberKey, ProofArg};

/// The NEAR network and proxy account of the vectors' NEAR domain.
pub const NETWORK: &str = "testnet";
pub const ACCOUNT: &str = "conclave-proxy.testnet";

fn read<T: DeserializeOwned>(name: &str) -> T {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../vectors")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

pub fn keys_file() -> KeysFile {
    read("keys.json")
}
pub fn members_file() -> MembersFile {
    read("members.json")
}
pub fn checkpoints_file() -> CheckpointsFile {
    read("checkpoints.json")
}
pub fn actions_file() -> ActionsFile {
    read("actions.json")
}
pub fn hash_to_g2_file() -> HashToG2File {
    read("hash_to_g2.json")
}

/// The context id every vector uses.
pub fn context_id() -> String {
    actions_file().context_id
}

/// Members `indices` of keys.json, with their PoPs.
pub fn member_keys(indices: &[u32]) -> Vec<MemberKey> {
    let keys = keys_file().keys;
    indices
        .iter()
        .map(|&i| {
            let k = &keys[i as usize];
            MemberKey {
                public_key: k.pk_compressed.clone(),
                pop: Some(k.pop_compressed.clone()),
            }
        })
        .collect()
}

/// A named set of members.json: its members (with PoPs) and quorum.
pub fn member_set(name: &str) -> (Vec<MemberKey>, u32, String) {
    let set = members_file()
        .sets
        .into_iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no set {name}"));
    (member_keys(&set.key_indices), set.quorum, set.members_hash)
}

/// A valid or invalid case of checkpoints.json by name.
pub fn checkpoint_case(name: &str) -> CheckpointCase {
    let file = checkpoints_file();
    file.valid
        .into_iter()
        .chain(file.invalid)
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no checkpoint case {name}"))
}

/// `submit_checkpoint`'s arguments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submission {
    pub epoch: u64,
    pub height: u64,
    pub state_root: String,
    pub actions_root: String,
    pub next_members_hash: String,
    pub signers: String,
    pub signature: String,
}

impl Submission {
    pub fn from_case(c: &CheckpointCase) -> Self {
        Submission {
            epoch: c.payload.epoch,
            height: c.payload.height,
            state_root: c.payload.state_root.clone(),
            actions_root: c.payload.actions_root.clone(),
            next_members_hash: c.payload.next_members_hash.clone(),
            signers: c.signers_bitmap.clone(),
            signature: c.signature_compressed.clone(),
        }
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "epoch": self.epoch,
            "height": self.height,
            "state_root": self.state_root,
            "actions_root": self.actions_root,
            "next_members_hash": self.next_members_hash,
            "signers": self.signers,
            "signature": self.signature,
        })
    }
}

/// The vectors' i-th secret key.
pub fn secret(i: u32) -> SecretKey {
    vectors::vector_key(i).expect("vector key")
}

/// The NEAR domain of a proxy at `account` on `network`.
pub fn near_domain(network: &str, account: &str) -> Domain {
    Domain::near(network, account).expect("valid NEAR ids")
}

/// A payload for the vectors' context.
pub fn payload(
    domain: Domain,
    epoch: u64,
    height: u64,
    actions_root: [u8; 32],
    next_members_hash: [u8; 32],
) -> CheckpointPayload {
    let mut state_root = [0u8; 32];
    state_root[..8].copy_from_slice(&height.to_be_bytes());
    state_root[31] = 0x5a;
    CheckpointPayload {
        domain,
        context_id: vectors::from_hex_n(&context_id()).expect("context id"),
        epoch,
        height,
        state_root,
        actions_root,
        next_members_hash,
    }
}

/// Signs `payload` with `signers` (bit index, key) and sets `bitmap` (which
/// may claim other bits than the signers').
pub fn sign_with_bitmap(
    payload: &CheckpointPayload,
    signers: &[SecretKey],
    bitmap: &[usize],
) -> Submission {
    let digest = payload.digest();
    let sigs: Vec<Signature> = signers.iter().map(|sk| sk.sign(&digest)).collect();
    let signature = Signature::aggregate(&sigs).expect("signatures");
    let bitmap = SignerBitmap::from_indices(bitmap.iter().copied()).expect("bitmap");
    Submission {
        epoch: payload.epoch,
        height: payload.height,
        state_root: vectors::to_hex(&payload.state_root),
        actions_root: vectors::to_hex(&payload.actions_root),
        next_members_hash: vectors::to_hex(&payload.next_members_hash),
        signers: vectors::to_hex(&bitmap.to_bytes()),
        signature: vectors::to_hex(&signature.to_compressed()),
    }
}

/// Signs `payload` by the members at `bits` of a set whose member `b` has
/// vector key `key_of(b)`.
pub fn sign(
    payload: &CheckpointPayload,
    bits: &[usize],
    key_of: impl Fn(usize) -> u32,
) -> Submission {
    let keys: Vec<SecretKey> = bits.iter().map(|&b| secret(key_of(b))).collect();
    sign_with_bitmap(payload, &keys, bits)
}

/// `execute_action`'s action argument for a NEAR action.
pub fn action_arg(a: &Action) -> ActionArg {
    let near = |acc: &Account| match acc {
        Account::Near(s) => s.clone(),
        Account::Evm(_) => panic!("EVM account in a NEAR action"),
    };
    let (kind, token, to, amount, data) = match &a.kind {
        ActionKind::NativeTransfer { to, amount } => (1, String::new(), near(to), *amount, vec![]),
        ActionKind::TokenTransfer { token, to, amount } => {
            (2, near(token), near(to), *amount, vec![])
        }
        ActionKind::ContractCall {
            to,
            value,
            calldata,
        } => (3, String::new(), near(to), *value, calldata.clone()),
    };
    ActionArg {
        id: vectors::to_hex(&a.id),
        kind,
        token,
        to,
        amount: U128(amount),
        data: vectors::to_hex(&data),
    }
}

pub fn proof_arg(p: &MerkleProof) -> ProofArg {
    ProofArg {
        index: p.index,
        siblings: p.siblings.iter().map(|s| vectors::to_hex(s)).collect(),
    }
}

/// A call's `data`: `u32 len(method) || method || args`.
pub fn call_data(method: &str, args: &[u8]) -> Vec<u8> {
    let mut out = (method.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(method.as_bytes());
    out.extend_from_slice(args);
    out
}
