//! Conclave's NEAR proxy: one contract per context. It accepts checkpoints
//! (state root, actions root, next member set) signed by a quorum of the
//! context's members with BLS12-381 min-pk aggregate signatures, and
//! executes the actions those checkpoints commit to: NEAR transfers,
//! NEP-141 token transfers and function calls, each at most once.
//!
//! The byte formats are those of `docs/checkpoint.md` (crate
//! `conclave-checkpoint`); the Ethereum proxy (`contracts/evm`) has the
//! same semantics.
//!
//! - [`codec`]: domain, payload, members hash, NEAR action leaf, Merkle proof.
//! - [`bls`]: hash to G2 and verification over NEAR's BLS12-381 host
//!   functions.
//! - [`members`]: admitting a member set (PoPs, quorum, hash) and the
//!   signer bitmap; [`payout`]: what an action pays and its promise.
//! - [`types`]: JSON arguments and views; [`error`]: refusals;
//!   [`events`]: NEP-297 logs.
//! - This file: the contract. Actions run as a promise followed by the
//!   private callback `on_action_done`; the action is marked in flight in
//!   between, executed when the promise succeeded, and executable again when
//!   it failed.

#![cfg_attr(not(test), deny(clippy::unwrap_used))]
// `submit_checkpoint` takes the payload fields, bitmap and signature as flat
// JSON arguments (as the EVM proxy's `submitCheckpoint` does); near-sdk's
// generated wrapper repeats the count.
#![allow(clippy::too_many_arguments)]

pub mod bls;
pub mod codec;
pub mod error;
pub mod events;
pub mod members;
pub mod payout;
pub mod types;

use near_sdk::bls12381::G1;
use near_sdk::json_types::U128;
use near_sdk::serde_json::json;
use near_sdk::store::{LazyOption, LookupMap};
use near_sdk::{
    env, near, AccountId, BorshStorageKey, PanicOnDefault, PromiseError, PromiseOrValue,
};

use codec::{PayloadFields, DOMAIN_LEN};
use error::{ProxyError, Result};
use members::{bitmap_indices, check_pops, decode_key, decode_set, registered_key, DecodedSet};
use payout::{ensure_payable, Payout, CALLBACK_GAS, PENDING_ENTRY_BYTES};
use types::{hex_array, hex_vec, to_hex, ActionArg, CheckpointView, MemberKey, ProofArg};

/// Largest member set (the signer bitmap has 256 bits; the node caps sets
/// at 128).
pub const MAX_MEMBERS: usize = 128;

#[near]
#[derive(BorshStorageKey)]
enum StorageKey {
    Members,
    Checkpoints,
    Actions,
}

/// What is kept per checkpoint height.
#[near(serializers = [borsh])]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointRecord {
    pub epoch: u64,
    pub state_root: [u8; 32],
    pub actions_root: [u8; 32],
    pub next_members_hash: [u8; 32],
}

/// Execution state of an action id.
#[near(serializers = [borsh])]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ActionStatus {
    /// The transfer or call is under way; `on_action_done` resolves it.
    InFlight,
    /// Done; never again.
    Executed,
}

/// The proxy's state.
#[near(contract_state)]
#[derive(PanicOnDefault)]
pub struct ConclaveProxy {
    context_id: [u8; 32],
    network: String,
    domain: [u8; DOMAIN_LEN],
    /// Members' keys, uncompressed G1 (96 bytes, `x || y`), bitmap order.
    members: LazyOption<Vec<[u8; 96]>>,
    member_count: u32,
    quorum: u32,
    members_hash: [u8; 32],
    /// Initial members whose PoP is still to be checked (`register_keys`);
    /// no checkpoint is accepted until it is 0.
    unverified: u32,
    epoch: u64,
    latest_height: u64,
    checkpoints: LookupMap<u64, CheckpointRecord>,
    actions: LookupMap<[u8; 32], ActionStatus>,
}

#[near]
impl ConclaveProxy {
    /// Deploys the proxy for `context_id` (hex, 32 bytes) on `network`
    /// (e.g. `mainnet`, `testnet`; part of the domain members sign for).
    /// Every PoP given must verify; `quorum` defaults to `floor(2n/3) + 1`.
    /// A set too large for one transaction's PoP checks (about 9.7 TGas
    /// each) may omit PoPs: the proxy then accepts no checkpoint until
    /// `register_keys` has verified each missing one. `initial_epoch` is
    /// the context's member-set epoch of these keys (default 0): a proxy
    /// deployed after membership changes starts where its context is.
    #[init]
    #[handle_result]
    pub fn new(
        context_id: String,
        network: String,
        members: Vec<MemberKey>,
        quorum: Option<u32>,
        initial_epoch: Option<u64>,
    ) -> Result<Self> {
        let context_id = hex_array::<32>(&context_id, "context_id")?;
        if network.is_empty() || network.len() > 64 {
            return Err(ProxyError::BadNetwork);
        }
        let set = decode_set(&members, quorum.unwrap_or(0))?;
        let unverified = check_pops(&members, &set)?.len() as u32;
        let account = env::current_account_id();
        let domain = codec::near_domain(&network, account.as_str());
        let mut proxy = ConclaveProxy {
            context_id,
            network,
            domain,
            members: LazyOption::new(StorageKey::Members, None),
            member_count: 0,
            quorum: 0,
            members_hash: [0u8; 32],
            unverified,
            epoch: initial_epoch.unwrap_or(0),
            latest_height: 0,
            checkpoints: LookupMap::new(StorageKey::Checkpoints),
            actions: LookupMap::new(StorageKey::Actions),
        };
        proxy.install(set);
        Ok(proxy)
    }

    /// Verifies and records proofs of possession: of initial members whose
    /// PoP `new` did not get, and of the keys of a coming rotation, for sets
    /// too large to check in one transaction. The attached deposit must
    /// cover the storage written.
    #[payable]
    #[handle_result]
    pub fn register_keys(&mut self, keys: Vec<MemberKey>) -> Result<()> {
        let before = env::storage_usage();
        let members = self.members.get().clone().unwrap_or_default();
        for (index, key) in keys.iter().enumerate() {
            let (compressed, pk) = decode_key(key, index)?;
            let pop = key
                .pop
                .as_deref()
                .ok_or(ProxyError::BadPop(index))
                .and_then(|p| hex_array::<96>(p, "pop").map_err(|_| ProxyError::BadPop(index)))?;
            let pop = bls::decompress_signature(&pop).ok_or(ProxyError::BadPop(index))?;
            if !bls::verify_pop(&compressed, &pk, &pop) {
                return Err(ProxyError::BadPop(index));
            }
            let fresh = !env::storage_write(&registered_key(&compressed), &[]);
            if fresh && self.unverified > 0 && members.contains(&pk.0) {
                self.unverified -= 1;
            }
        }
        let added = env::storage_usage().saturating_sub(before);
        let cost = env::storage_byte_cost().saturating_mul(u128::from(added));
        if env::attached_deposit() < cost {
            return Err(ProxyError::InsufficientDeposit);
        }
        Ok(())
    }

    /// Accepts the checkpoint at `height` if a quorum of the current members
    /// signed its payload for this contract (`signers`: 32-byte bitmap,
    /// `signature`: 96-byte compressed aggregate, both hex).
    #[handle_result]
    pub fn submit_checkpoint(
        &mut self,
        epoch: u64,
        height: u64,
        state_root: String,
        actions_root: String,
        next_members_hash: String,
        signers: String,
        signature: String,
    ) -> Result<()> {
        let fields = PayloadFields {
            epoch,
            height,
            state_root: hex_array(&state_root, "state_root")?,
            actions_root: hex_array(&actions_root, "actions_root")?,
            next_members_hash: hex_array(&next_members_hash, "next_members_hash")?,
        };
        let bitmap = hex_array::<32>(&signers, "signers")?;
        let signature = hex_array::<96>(&signature, "signature")?;

        if self.unverified > 0 {
            return Err(ProxyError::UnverifiedMembers(self.unverified));
        }
        if epoch != self.epoch {
            return Err(ProxyError::WrongEpoch {
                expected: self.epoch,
                got: epoch,
            });
        }
        if height <= self.latest_height {
            return Err(ProxyError::StaleHeight {
                latest: self.latest_height,
                got: height,
            });
        }
        let signer_indices = bitmap_indices(&bitmap, self.member_count as usize)?;
        let count = signer_indices.len() as u32;
        if count < self.quorum {
            return Err(ProxyError::UnderQuorum {
                signers: count,
                quorum: self.quorum,
            });
        }
        let keys = self.members.get().as_deref().unwrap_or_default();
        let signer_keys: Vec<G1> = signer_indices
            .iter()
            .filter_map(|&i| keys.get(i).map(|k| G1::new(*k)))
            .collect();
        let aggregate = bls::aggregate_keys(&signer_keys).ok_or(ProxyError::BadSignature)?;
        let signature = bls::decompress_signature(&signature).ok_or(ProxyError::BadSignature)?;
        let digest = env::sha256_array(codec::payload(&self.domain, &self.context_id, &fields));
        if !bls::verify(&aggregate, &digest, bls::SIG_DST, &signature) {
            return Err(ProxyError::BadSignature);
        }

        self.latest_height = height;
        self.checkpoints.insert(
            height,
            CheckpointRecord {
                epoch,
                state_root: fields.state_root,
                actions_root: fields.actions_root,
                next_members_hash: fields.next_members_hash,
            },
        );
        events::emit(
            "checkpoint",
            json!({
                "height": height,
                "epoch": epoch,
                "state_root": to_hex(&fields.state_root),
                "actions_root": to_hex(&fields.actions_root),
                "next_members_hash": to_hex(&fields.next_members_hash),
                "signers": count,
            }),
        );
        Ok(())
    }

    /// Executes `action` if it is under the actions root of the checkpoint
    /// at `checkpoint_height` and was never executed. The action is marked
    /// in flight until `on_action_done` sees the outcome of its promise.
    #[handle_result]
    pub fn execute_action(
        &mut self,
        checkpoint_height: u64,
        action: ActionArg,
        proof: ProofArg,
    ) -> Result<()> {
        let record = self
            .checkpoints
            .get(&checkpoint_height)
            .ok_or(ProxyError::UnknownCheckpoint(checkpoint_height))?;
        let id = hex_array::<32>(&action.id, "action.id")?;
        match self.actions.get(&id) {
            Some(ActionStatus::Executed) => return Err(ProxyError::AlreadyExecuted),
            Some(ActionStatus::InFlight) => return Err(ProxyError::InFlight),
            None => {}
        }
        let data = hex_vec(&action.data, "action.data")?;
        let siblings = proof
            .siblings
            .iter()
            .map(|s| hex_array::<32>(s, "proof.siblings"))
            .collect::<Result<Vec<_>>>()?;
        let encoding = codec::near_leaf_encoding(
            &self.domain,
            &id,
            action.kind,
            &action.token,
            &action.to,
            action.amount.0,
            &data,
        );
        let leaf = codec::leaf_hash(&encoding);
        if !codec::verify_inclusion(&record.actions_root, &leaf, &siblings, proof.index) {
            return Err(ProxyError::BadProof);
        }

        let payout = Payout::decode(&action, &data)?;
        ensure_payable(payout.attached(), PENDING_ENTRY_BYTES)?;
        self.actions.insert(id, ActionStatus::InFlight);
        let promise = payout.promise();
        let _ = promise.then(
            Self::ext(env::current_account_id())
                .with_static_gas(CALLBACK_GAS)
                .with_unused_gas_weight(0)
                .on_action_done(to_hex(&id)),
        );
        events::emit(
            "action_started",
            json!({ "id": to_hex(&id), "checkpoint_height": checkpoint_height }),
        );
        Ok(())
    }

    /// Resolves an action in flight: executed when its promise succeeded,
    /// executable again when it failed. Returns whether it succeeded.
    #[private]
    #[handle_result]
    pub fn on_action_done(&mut self, id: String) -> Result<bool> {
        let key = hex_array::<32>(&id, "id")?;
        let ok = match env::promise_result_checked(0, 0) {
            Ok(_) | Err(PromiseError::TooLong(_)) => true,
            Err(_) => false,
        };
        if ok {
            self.actions.insert(key, ActionStatus::Executed);
            events::emit("action_executed", json!({ "id": id }));
        } else {
            self.actions.remove(&key);
            events::emit("action_failed", json!({ "id": id }));
        }
        Ok(ok)
    }

    /// Replaces the member set with the one announced (as its hash) by the
    /// checkpoint at `checkpoint_height`, signed by the current set.
    /// `quorum` defaults to `floor(2n/3) + 1`; it is part of the hash.
    #[handle_result]
    pub fn rotate_members(
        &mut self,
        checkpoint_height: u64,
        members: Vec<MemberKey>,
        quorum: Option<u32>,
    ) -> Result<()> {
        let record = self
            .checkpoints
            .get(&checkpoint_height)
            .ok_or(ProxyError::UnknownRotation)?;
        if record.epoch != self.epoch || record.next_members_hash == self.members_hash {
            return Err(ProxyError::UnknownRotation);
        }
        let announced = record.next_members_hash;
        let set = decode_set(&members, quorum.unwrap_or(0))?;
        if set.hash != announced {
            return Err(ProxyError::MembersHashMismatch);
        }
        if let Some(&index) = check_pops(&members, &set)?.first() {
            return Err(ProxyError::BadPop(index));
        }
        self.install(set);
        self.epoch += 1;
        events::emit(
            "members_rotated",
            json!({
                "epoch": self.epoch,
                "members_hash": to_hex(&self.members_hash),
                "member_count": self.member_count,
                "quorum": self.quorum,
            }),
        );
        Ok(())
    }

    /// Adds the attached NEAR to the context's funds.
    #[payable]
    pub fn deposit(&mut self) {
        events::emit(
            "deposit",
            json!({
                "from": env::predecessor_account_id(),
                "amount": U128(env::attached_deposit().as_yoctonear()),
            }),
        );
    }

    /// NEP-141 receiver: keeps every token sent with `ft_transfer_call`.
    pub fn ft_on_transfer(
        &mut self,
        sender_id: AccountId,
        amount: U128,
        msg: String,
    ) -> PromiseOrValue<U128> {
        let _ = msg;
        events::emit(
            "token_deposit",
            json!({
                "token": env::predecessor_account_id(),
                "from": sender_id,
                "amount": amount,
            }),
        );
        PromiseOrValue::Value(U128(0))
    }

    // ------------------------------------------------------------------
    // Views
    // ------------------------------------------------------------------

    /// The checkpoint at the greatest height, if any.
    pub fn latest_checkpoint(&self) -> Option<CheckpointView> {
        self.checkpoint_at(self.latest_height)
    }

    /// The checkpoint stored at `height`.
    pub fn checkpoint_at(&self, height: u64) -> Option<CheckpointView> {
        self.checkpoints.get(&height).map(|r| CheckpointView {
            height,
            epoch: r.epoch,
            state_root: to_hex(&r.state_root),
            actions_root: to_hex(&r.actions_root),
            next_members_hash: to_hex(&r.next_members_hash),
        })
    }

    /// The state root at `height`.
    pub fn state_root_at(&self, height: u64) -> Option<String> {
        self.checkpoints.get(&height).map(|r| to_hex(&r.state_root))
    }

    /// The members' keys, uncompressed G1 hex, in bitmap order.
    pub fn members(&self) -> Vec<String> {
        self.members
            .get()
            .as_deref()
            .unwrap_or_default()
            .iter()
            .map(|k| to_hex(k))
            .collect()
    }

    pub fn member_count(&self) -> u32 {
        self.member_count
    }

    /// Initial members whose PoP is still to be registered.
    pub fn unverified_members(&self) -> u32 {
        self.unverified
    }

    pub fn quorum(&self) -> u32 {
        self.quorum
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    pub fn members_hash(&self) -> String {
        to_hex(&self.members_hash)
    }

    pub fn context_id(&self) -> String {
        to_hex(&self.context_id)
    }

    pub fn network(&self) -> String {
        self.network.clone()
    }

    /// The 41-byte target domain members sign for.
    pub fn domain(&self) -> String {
        to_hex(&self.domain)
    }

    /// Whether the action `id` was executed.
    #[handle_result]
    pub fn is_executed(&self, id: String) -> Result<bool> {
        let id = hex_array::<32>(&id, "id")?;
        Ok(self.actions.get(&id) == Some(&ActionStatus::Executed))
    }

    /// `"none"`, `"in_flight"` or `"executed"`.
    #[handle_result]
    pub fn action_status(&self, id: String) -> Result<String> {
        let id = hex_array::<32>(&id, "id")?;
        Ok(match self.actions.get(&id) {
            None => "none",
            Some(ActionStatus::InFlight) => "in_flight",
            Some(ActionStatus::Executed) => "executed",
        }
        .to_string())
    }

    /// Whether `public_key` (compressed hex) was registered with a PoP.
    #[handle_result]
    pub fn key_registered(&self, public_key: String) -> Result<bool> {
        let compressed = hex_array::<48>(&public_key, "public_key")?;
        Ok(env::storage_has_key(&registered_key(&compressed)))
    }

    /// The digest members sign for these fields on this proxy.
    #[handle_result]
    pub fn checkpoint_digest(
        &self,
        epoch: u64,
        height: u64,
        state_root: String,
        actions_root: String,
        next_members_hash: String,
    ) -> Result<String> {
        let fields = PayloadFields {
            epoch,
            height,
            state_root: hex_array(&state_root, "state_root")?,
            actions_root: hex_array(&actions_root, "actions_root")?,
            next_members_hash: hex_array(&next_members_hash, "next_members_hash")?,
        };
        let payload = codec::payload(&self.domain, &self.context_id, &fields);
        Ok(to_hex(&env::sha256_array(payload)))
    }
}

impl ConclaveProxy {
    fn install(&mut self, set: DecodedSet) {
        self.member_count = set.keys.len() as u32;
        self.quorum = set.quorum;
        self.members_hash = set.hash;
        self.members.set(Some(set.keys));
    }
}

#[cfg(test)]
mod tests;
