//! One context's NEAR proxy: what it holds (view calls), and the calls
//! that deploy it, post checkpoints, execute actions and rotate members.
//!
//! NEAR has no `eth_call` for a state-changing call, so each submission is
//! preceded by the view that tells whether it is already done (the proxy's
//! latest height, an action's status); a refusal that still comes back
//! meaning "already done" (another relayer was first between the view and
//! the transaction) is [`Submitted::AlreadyDone`], not an error, and a
//! refused transaction changes nothing on the proxy.

use std::sync::Arc;

use conclave_checkpoint::{
    Action, CheckpointPayload, Domain, MerkleProof, Registration, Signature,
};
use near_primitives::action::{DeployContractAction, FunctionCallAction};
use near_primitives::gas::Gas;
use near_primitives::transaction::Action as TxAction;
use near_primitives::types::{AccountId, Balance};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::args::{self, hex32, to_hex};
use crate::client::{NearAccount, NearClient, Sent};
use crate::{Error, Result};

/// Members whose PoPs `new` and `rotate_members` check inline, at most (a
/// PoP costs about 9.7 TGas of the 300 a call may use); larger sets
/// register them with `register_keys`, this many per transaction.
pub const REGISTER_BATCH: usize = 25;
/// Gas attached to every function call: NEAR's per-transaction maximum;
/// what is not burnt is refunded.
pub const CALL_GAS_TGAS: u64 = 300;
/// What one byte of contract storage locks, in yoctoNEAR (NEAR's
/// `storage_amount_per_byte`, 10^19).
pub const STORAGE_PRICE_PER_BYTE: u128 = 10_000_000_000_000_000_000;
/// Deposit sent with `register_keys` per key: the storage of its record,
/// with room to spare (what is left stays in the proxy's funds).
const REGISTER_DEPOSIT_PER_KEY: u128 = 2 * STORAGE_PRICE_PER_BYTE * 100;

/// What became of a submission.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Submitted {
    /// Sent and final.
    Done(Sent),
    /// The proxy has it already (another relayer was first).
    AlreadyDone(String),
    /// The action's payout fails (an empty proxy, a missing receiver, a
    /// panicking callee): the action stays executable.
    ActionFails(String),
}

/// A proxy's member-set state and latest checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProxyState {
    /// Height of the latest accepted checkpoint (0: none).
    pub latest: u64,
    pub epoch: u64,
    pub members_hash: [u8; 32],
}

/// A checkpoint as the proxy stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub epoch: u64,
    pub state_root: [u8; 32],
    pub actions_root: [u8; 32],
    pub next_members_hash: [u8; 32],
}

/// The proxy's `CheckpointView`.
#[derive(Deserialize)]
struct CheckpointView {
    epoch: u64,
    state_root: String,
    actions_root: String,
    next_members_hash: String,
}

/// A NEAR proxy of one context; with a sending account, it can be fed.
#[derive(Clone, Debug)]
pub struct NearProxy {
    client: NearClient,
    id: AccountId,
    sender: Option<Arc<NearAccount>>,
}

impl NearProxy {
    /// The proxy at `id`, checked to be a Conclave proxy serving `context`
    /// (its `context_id` view). `sender` signs the calls; without one the
    /// proxy can only be read.
    pub async fn open(
        client: NearClient,
        id: AccountId,
        context: [u8; 32],
        sender: Option<Arc<NearAccount>>,
    ) -> Result<Self> {
        let got: String = match client.view(&id, "context_id", &json!({})).await {
            Ok(v) => v,
            Err(Error::Refused { reason, .. }) => {
                return Err(Error::Refused {
                    call: "context_id",
                    reason: format!("{id} is not a Conclave proxy ({reason})"),
                })
            }
            Err(e) => return Err(e),
        };
        if hex32(&got)? != context {
            return Err(Error::WrongContext {
                account: id.to_string(),
                expected: hex::encode(context),
                got,
            });
        }
        Ok(Self { client, id, sender })
    }

    pub fn account_id(&self) -> &AccountId {
        &self.id
    }

    pub fn client(&self) -> &NearClient {
        &self.client
    }

    /// The account that signs this proxy's calls, if any.
    pub fn sender(&self) -> Option<&Arc<NearAccount>> {
        self.sender.as_ref()
    }

    /// The domain checkpoints for this proxy are signed for.
    pub fn domain(&self) -> Result<Domain> {
        Domain::near(self.client.network(), self.id.as_str())
            .map_err(|e| Error::Malformed(format!("NEAR domain of {}: {e}", self.id)))
    }

    /// Latest checkpoint height, epoch and member-set hash.
    pub async fn state(&self) -> Result<ProxyState> {
        let latest: Option<Value> = self.view("latest_checkpoint", json!({})).await?;
        let latest = latest
            .as_ref()
            .and_then(|v| v["height"].as_u64())
            .unwrap_or(0);
        let epoch: u64 = self.view("epoch", json!({})).await?;
        let members_hash: String = self.view("members_hash", json!({})).await?;
        Ok(ProxyState {
            latest,
            epoch,
            members_hash: hex32(&members_hash)?,
        })
    }

    /// The checkpoint stored at `height`, if any.
    pub async fn checkpoint_at(&self, height: u64) -> Result<Option<StoredCheckpoint>> {
        let v: Option<CheckpointView> = self
            .view("checkpoint_at", json!({ "height": height }))
            .await?;
        v.map(|v| {
            Ok(StoredCheckpoint {
                epoch: v.epoch,
                state_root: hex32(&v.state_root)?,
                actions_root: hex32(&v.actions_root)?,
                next_members_hash: hex32(&v.next_members_hash)?,
            })
        })
        .transpose()
    }

    /// The member-set hash the checkpoint at `height` announced, if the
    /// proxy has not rotated to it yet (what `rotate_members` accepts).
    pub async fn announced(&self, height: u64) -> Result<Option<[u8; 32]>> {
        if height == 0 {
            return Ok(None);
        }
        let Some(c) = self.checkpoint_at(height).await? else {
            return Ok(None);
        };
        let state = self.state().await?;
        Ok(
            (c.epoch == state.epoch && c.next_members_hash != state.members_hash)
                .then_some(c.next_members_hash),
        )
    }

    /// `none`, `in_flight` or `executed`.
    pub async fn action_status(&self, id: [u8; 32]) -> Result<String> {
        self.view("action_status", json!({ "id": to_hex(&id) }))
            .await
    }

    pub async fn executed(&self, id: [u8; 32]) -> Result<bool> {
        self.view("is_executed", json!({ "id": to_hex(&id) })).await
    }

    /// Posts a checkpoint. At or below the proxy's latest height (another
    /// relayer posted it or a later one) it is [`Submitted::AlreadyDone`]
    /// and nothing is sent.
    pub async fn submit_checkpoint(
        &self,
        payload: &CheckpointPayload,
        signers: &[u8; 32],
        signature: &Signature,
    ) -> Result<Submitted> {
        let latest = self.state().await?.latest;
        if payload.height <= latest {
            return Ok(Submitted::AlreadyDone(format!(
                "the proxy is at height {latest} already"
            )));
        }
        let args = args::submit_checkpoint(payload, signers, signature);
        self.call("submit_checkpoint", args, 0).await
    }

    /// Executes an action with its inclusion proof in the checkpoint at
    /// `height`. Executed or in flight already is
    /// [`Submitted::AlreadyDone`]; a payout the proxy cannot make, or whose
    /// receipt fails, is [`Submitted::ActionFails`] (executable again).
    pub async fn execute_action(
        &self,
        height: u64,
        action: &Action,
        proof: &MerkleProof,
    ) -> Result<Submitted> {
        match self.action_status(action.id).await?.as_str() {
            "executed" => return Ok(Submitted::AlreadyDone("executed already".into())),
            "in_flight" => return Ok(Submitted::AlreadyDone("in flight".into())),
            _ => {}
        }
        let args = args::execute_action(height, action, proof)?;
        let outcome = self.call("execute_action", args, 0).await?;
        if let Submitted::Done(sent) = &outcome {
            // The payout is a promise resolved by `on_action_done`; with the
            // transaction final, so are its receipts.
            if self.action_status(action.id).await? == "none" {
                return Ok(Submitted::ActionFails(format!(
                    "the payout's receipt failed in {}; the action is executable again",
                    sent.tx
                )));
            }
        }
        Ok(outcome)
    }

    /// Rotates the proxy to `keys`, which the checkpoint at `height`
    /// announced. Sets above [`REGISTER_BATCH`] keys first register their
    /// PoPs in batches, skipping keys registered already. Rotated already
    /// (by another relayer) is [`Submitted::AlreadyDone`].
    pub async fn rotate_members(&self, height: u64, keys: &[Registration]) -> Result<Submitted> {
        let inline = keys.len() <= REGISTER_BATCH;
        let mut gas = 0;
        if !inline {
            gas = self.register_missing(keys).await?;
        }
        let args = args::rotate_members(height, keys, inline);
        let outcome = self.call("rotate_members", args, 0).await?;
        Ok(match outcome {
            Submitted::Done(mut sent) => {
                sent.gas_burnt += gas;
                Submitted::Done(sent)
            }
            other => other,
        })
    }

    /// Registers the PoPs of `keys` the proxy does not know yet; returns
    /// the gas burnt.
    pub async fn register_missing(&self, keys: &[Registration]) -> Result<u64> {
        let mut todo = Vec::new();
        for k in keys {
            let known: bool = self
                .view(
                    "key_registered",
                    json!({ "public_key": to_hex(&k.public_key.to_compressed()) }),
                )
                .await?;
            if !known {
                todo.push(*k);
            }
        }
        let mut gas = 0;
        for batch in todo.chunks(REGISTER_BATCH) {
            let deposit = REGISTER_DEPOSIT_PER_KEY * batch.len() as u128;
            if let Submitted::Done(sent) = self
                .call("register_keys", args::register_keys(batch), deposit)
                .await?
            {
                gas += sent.gas_burnt;
            }
        }
        Ok(gas)
    }

    async fn view<T: serde::de::DeserializeOwned>(
        &self,
        method: &'static str,
        args: Value,
    ) -> Result<T> {
        self.client.view(&self.id, method, &args).await
    }

    /// Sends `method(args)` to the proxy; a refusal that [`settled`]
    /// recognises is returned as its outcome, any other is an error.
    async fn call(&self, method: &'static str, args: Value, deposit: u128) -> Result<Submitted> {
        let sender = self.sender.as_ref().ok_or(Error::ReadOnly(method))?;
        match sender
            .send(
                &self.id,
                vec![function_call(method, &args, deposit)],
                method,
            )
            .await
        {
            Ok(sent) => Ok(Submitted::Done(sent)),
            Err(Error::Refused { call, reason }) => {
                settled(method, &reason).ok_or(Error::Refused { call, reason })
            }
            Err(e) => Err(e),
        }
    }
}

/// What the proxy's refusal of `method` (its panic message, `reason`)
/// means for a relayer: done already (another relayer was first:
/// `StaleHeight`, `AlreadyExecuted`, `InFlight`, `UnknownRotation`), an
/// action the proxy cannot pay now (`InsufficientBalance`), or `None`: a
/// real refusal.
pub fn settled(method: &str, reason: &str) -> Option<Submitted> {
    let done = || Some(Submitted::AlreadyDone(reason.to_owned()));
    match method {
        "submit_checkpoint" if reason.contains("StaleHeight") => done(),
        "execute_action" if reason.contains("AlreadyExecuted") || reason.contains("InFlight") => {
            done()
        }
        "execute_action" if reason.contains("InsufficientBalance") => Some(Submitted::ActionFails(
            "the proxy cannot pay it (InsufficientBalance)".into(),
        )),
        "rotate_members" if reason.contains("UnknownRotation") => done(),
        _ => None,
    }
}

/// A function call action with [`CALL_GAS_TGAS`] attached.
pub fn function_call(method: &str, args: &Value, deposit: u128) -> TxAction {
    TxAction::FunctionCall(Box::new(FunctionCallAction {
        method_name: method.to_owned(),
        args: args.to_string().into_bytes(),
        gas: Gas::from_teragas(CALL_GAS_TGAS),
        deposit: Balance::from_yoctonear(deposit),
    }))
}

impl NearAccount {
    /// Deploys `code` (the proxy's wasm, [`crate::PROXY_WASM`]) to this
    /// account and initialises it for `context` with `keys` (the context's
    /// member set of `epoch`) in one transaction: if `new` refuses (a bad
    /// PoP, a proxy there already), nothing is deployed. Sets above
    /// [`REGISTER_BATCH`] are deployed without PoPs and register them
    /// afterwards. Returns the proxy, with this account as its sender.
    pub async fn deploy_proxy(
        self: &Arc<Self>,
        code: &[u8],
        context: [u8; 32],
        keys: &[Registration],
        epoch: u64,
    ) -> Result<NearProxy> {
        // The code's storage is locked from the account's balance.
        self.ensure_balance(STORAGE_PRICE_PER_BYTE * code.len() as u128)
            .await?;
        let inline = keys.len() <= REGISTER_BATCH;
        let init = args::init(&context, self.client().network(), keys, epoch, inline);
        self.send(
            self.id(),
            vec![
                TxAction::DeployContract(DeployContractAction {
                    code: code.to_vec(),
                }),
                function_call("new", &init, 0),
            ],
            "deploy and new",
        )
        .await?;
        let proxy = NearProxy::open(
            self.client().clone(),
            self.id().clone(),
            context,
            Some(self.clone()),
        )
        .await?;
        if !inline {
            proxy.register_missing(keys).await?;
        }
        Ok(proxy)
    }
}
