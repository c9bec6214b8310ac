//! A NEAR node for the client's tests: answers the JSON-RPC methods the
//! NEAR client uses (`status`, `query` for accounts, access keys and view
//! calls, `block`, `send_tx`) on a loopback port, with requests parsed and
//! answers built from nearcore's own types (`near-jsonrpc-primitives`,
//! `near-primitives`), serialized as a NEAR node serializes them.
//!
//! It keeps accounts, access keys and contracts, and executes what it is
//! sent: each transaction is validated as nearcore validates it
//! (`ValidatedTransaction`: size limits and the signature), its nonce
//! checked against the access key, its block hash against the node's
//! blocks, its cost against the signer's balance; deploys install the
//! sent code; function calls run that code in `near-vm-runner` with the
//! protocol's costs. A failed action rolls the receipt back. Promises a
//! contract creates (the proxy's payouts and their callback) are run
//! after it: a transfer to an existing account credits it, one to a
//! missing account fails and refunds, and callbacks run in the VM with
//! their dependencies' results. Every transaction makes one new block,
//! final at once.
//!
//! What it does not do: sharding, receipts across blocks, gas price
//! changes, access-key allowances, and any action but deploy, function
//! call and transfer.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use near_crypto::{InMemorySigner, KeyFile, KeyType, PublicKey, SecretKey, Signer};
use near_jsonrpc_primitives::errors::RpcError;
use near_jsonrpc_primitives::message::Message;
use near_jsonrpc_primitives::types::blocks::{RpcBlockError, RpcBlockRequest};
use near_jsonrpc_primitives::types::query::{
    QueryResponseKind, RpcQueryError, RpcQueryRequest, RpcQueryResponse,
};
use near_jsonrpc_primitives::types::transactions::{
    RpcSendTransactionRequest, RpcTransactionError, RpcTransactionResponse,
};
use near_parameters::RuntimeConfigStore;
use near_primitives::errors::{
    ActionError, ActionErrorKind, FunctionCallError, InvalidAccessKeyError, InvalidTxError,
    TxExecutionError,
};
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::transaction::{Action, SignedTransaction, ValidatedTransaction};
use near_primitives::types::{AccountId, Balance, BlockId, BlockReference, Gas};
use near_primitives::version::{Version, PROTOCOL_VERSION};
use near_primitives::views::{
    AccessKeyPermissionView, AccessKeyView, AccountView, BlockHeaderView, BlockView, CallResult,
    ExecutionOutcomeView, ExecutionOutcomeWithIdView, ExecutionStatusView,
    FinalExecutionOutcomeView, FinalExecutionOutcomeViewEnum, FinalExecutionStatus, QueryRequest,
    SignedTransactionView, StatusResponse, StatusSyncInfo, TxExecutionStatus,
};
use near_primitives_core::account::AccountContract;
use near_primitives_core::config::ViewConfig;
use near_vm_runner::logic::mocks::mock_external::{MockAction, MockedExternal};
use near_vm_runner::logic::types::PromiseResult;
use near_vm_runner::logic::{ReturnData, VMContext};
use near_vm_runner::ContractCode;

use crate::harness::{config, fees};

/// What one byte of storage locks (NEAR's `storage_amount_per_byte`).
pub const STORAGE_PRICE: u128 = 10_000_000_000_000_000_000;
/// The gas price the node charges, in yoctoNEAR per gas (NEAR's minimum).
pub const GAS_PRICE: u128 = 100_000_000;
/// One NEAR in yoctoNEAR.
pub const NEAR: u128 = 1_000_000_000_000_000_000_000_000;

/// A contract's code and storage.
struct Contract {
    ext: MockedExternal,
}

struct Account {
    balance: u128,
    storage_usage: u64,
    keys: HashMap<PublicKey, u64>,
    contract: Option<Contract>,
}

/// What the node holds.
pub struct State {
    network: String,
    accounts: BTreeMap<AccountId, Account>,
    /// `(height, hash)` of every block, oldest first.
    blocks: Vec<(u64, CryptoHash)>,
    /// Every transaction the node accepted (validated and executed).
    pub accepted: Vec<SignedTransaction>,
}

/// A running node.
#[derive(Clone)]
pub struct Node {
    pub state: Arc<Mutex<State>>,
    pub url: String,
}

/// A key file's contents for `account`, from a fixed seed.
pub fn key_for(account: &str, seed: &str) -> KeyFile {
    let account_id: AccountId = account.parse().expect("account id");
    let secret_key = SecretKey::from_seed(KeyType::ED25519, seed);
    KeyFile {
        account_id,
        public_key: secret_key.public_key(),
        secret_key,
    }
}

impl Node {
    /// Starts a node for `network` on a loopback port.
    pub async fn start(network: &str) -> Node {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr: SocketAddr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(State {
            network: network.to_owned(),
            accounts: BTreeMap::new(),
            blocks: vec![(1, hash(&1u64.to_le_bytes()))],
            accepted: Vec::new(),
        }));
        let served = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = served.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| answer(state.clone(), req));
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Node {
            state,
            url: format!("http://{addr}"),
        }
    }

    /// Creates `account` holding `near` NEAR with `key` as its full-access
    /// key (when given).
    pub fn create_account(&self, account: &str, balance: u128, key: Option<&PublicKey>) {
        let mut s = self.state.lock().expect("state");
        s.accounts.insert(
            account.parse().expect("account id"),
            Account {
                balance,
                storage_usage: 182,
                keys: key.map(|k| (k.clone(), 0)).into_iter().collect(),
                contract: None,
            },
        );
    }

    pub fn balance(&self, account: &str) -> u128 {
        let s = self.state.lock().expect("state");
        s.accounts
            .get(&account.parse::<AccountId>().expect("account id"))
            .map_or(0, |a| a.balance)
    }

    /// The code deployed at `account`.
    pub fn code(&self, account: &str) -> Option<Vec<u8>> {
        let s = self.state.lock().expect("state");
        s.accounts
            .get(&account.parse::<AccountId>().expect("account id"))
            .and_then(|a| a.contract.as_ref())
            .and_then(|c| c.ext.code.as_ref().map(|c| c.code().to_vec()))
    }

    /// How many transactions the node accepted.
    pub fn accepted(&self) -> usize {
        self.state.lock().expect("state").accepted.len()
    }

    /// The method names of the function calls the node accepted, in order.
    pub fn calls(&self) -> Vec<String> {
        let s = self.state.lock().expect("state");
        s.accepted
            .iter()
            .flat_map(|t| t.transaction.actions().to_vec())
            .filter_map(|a| match a {
                Action::FunctionCall(f) => Some(f.method_name.clone()),
                _ => None,
            })
            .collect()
    }
}

/// A signer for a key file, to send transactions by hand.
pub fn signer(key: &KeyFile) -> Signer {
    InMemorySigner::from_secret_key(key.account_id.clone(), key.secret_key.clone())
}

async fn answer(
    state: Arc<Mutex<State>>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let message = match serde_json::from_slice::<Message>(&body) {
        Ok(Message::Request(r)) => {
            let result = {
                let mut s = state.lock().expect("state");
                s.handle(&r.method, r.params)
            };
            Message::response(r.id, result)
        }
        _ => Message::error(RpcError::parse_error("not a JSON-RPC request".into())),
    };
    let json = serde_json::to_vec(&message).expect("serialisable");
    Ok(Response::new(Full::new(Bytes::from(json))))
}

fn to_value<T: serde::Serialize>(v: T) -> Result<serde_json::Value, RpcError> {
    serde_json::to_value(v).map_err(|e| RpcError::serialization_error(e.to_string()))
}

fn parse<T: serde::de::DeserializeOwned>(params: serde_json::Value) -> Result<T, RpcError> {
    serde_json::from_value(params).map_err(|e| RpcError::parse_error(e.to_string()))
}

impl State {
    fn head(&self) -> (u64, CryptoHash) {
        *self.blocks.last().expect("a genesis block")
    }

    fn new_block(&mut self) -> (u64, CryptoHash) {
        let height = self.head().0 + 1;
        let block = (height, hash(&height.to_le_bytes()));
        self.blocks.push(block);
        block
    }

    fn handle(
        &mut self,
        method: &str,
        params: serde_json::Value,
    ) -> Result<serde_json::Value, RpcError> {
        match method {
            "status" => to_value(self.status()),
            "block" => {
                let req: RpcBlockRequest = parse(params)?;
                let found = match req.block_reference {
                    BlockReference::Finality(_) => Some(self.head()),
                    BlockReference::BlockId(BlockId::Height(h)) => {
                        self.blocks.iter().find(|b| b.0 == h).copied()
                    }
                    BlockReference::BlockId(BlockId::Hash(x)) => {
                        self.blocks.iter().find(|b| b.1 == x).copied()
                    }
                    BlockReference::SyncCheckpoint(_) => None,
                };
                match found {
                    Some((height, hash)) => to_value(block_view(height, hash)),
                    None => Err(RpcBlockError::UnknownBlock {
                        error_message: "no such block".into(),
                    }
                    .into()),
                }
            }
            "query" => {
                let req: RpcQueryRequest = parse(params)?;
                let (block_height, block_hash) = self.head();
                let kind = self.query(req.request).map_err(RpcError::from)?;
                to_value(RpcQueryResponse {
                    kind,
                    block_height,
                    block_hash,
                })
            }
            "send_tx" | "broadcast_tx_commit" => {
                let req: RpcSendTransactionRequest = parse(params)?;
                let outcome = self.send(req.signed_transaction).map_err(|context| {
                    RpcError::from(RpcTransactionError::InvalidTransaction { context })
                })?;
                to_value(RpcTransactionResponse {
                    final_execution_outcome: Some(
                        FinalExecutionOutcomeViewEnum::FinalExecutionOutcome(outcome),
                    ),
                    final_execution_status: TxExecutionStatus::Final,
                })
            }
            other => Err(RpcError::method_not_found(other.to_owned())),
        }
    }

    fn status(&self) -> StatusResponse {
        let (height, hash) = self.head();
        StatusResponse {
            version: Version {
                version: "conclave-test-node".into(),
                build: "test".into(),
                commit: "none".into(),
                rustc_version: String::new(),
            },
            chain_id: self.network.clone(),
            protocol_version: PROTOCOL_VERSION,
            latest_protocol_version: PROTOCOL_VERSION,
            rpc_addr: None,
            validators: vec![],
            sync_info: StatusSyncInfo {
                latest_block_hash: hash,
                latest_block_height: height,
                latest_state_root: CryptoHash::default(),
                latest_block_time: near_time::Utc::UNIX_EPOCH,
                syncing: false,
                earliest_block_hash: None,
                earliest_block_height: None,
                earliest_block_time: None,
                epoch_id: None,
                epoch_start_height: None,
            },
            validator_account_id: None,
            validator_public_key: None,
            node_public_key: PublicKey::empty(KeyType::ED25519),
            node_key: None,
            uptime_sec: 1,
            genesis_hash: self.blocks[0].1,
            detailed_debug_status: None,
        }
    }

    fn query(&self, request: QueryRequest) -> Result<QueryResponseKind, RpcQueryError> {
        let (block_height, block_hash) = self.head();
        let unknown = |id: &AccountId| RpcQueryError::UnknownAccount {
            requested_account_id: id.clone(),
            block_height,
            block_hash,
        };
        match request {
            QueryRequest::ViewAccount { account_id } => {
                let a = self
                    .accounts
                    .get(&account_id)
                    .ok_or_else(|| unknown(&account_id))?;
                Ok(QueryResponseKind::ViewAccount(AccountView {
                    amount: Balance::from_yoctonear(a.balance),
                    locked: Balance::ZERO,
                    code_hash: a
                        .contract
                        .as_ref()
                        .map_or(CryptoHash::default(), |c| c.ext.code_hash),
                    storage_usage: a.storage_usage,
                    storage_paid_at: 0,
                    global_contract_hash: None,
                    global_contract_account_id: None,
                    state: Default::default(),
                    bootstrap_nonce: None,
                }))
            }
            QueryRequest::ViewAccessKey {
                account_id,
                public_key,
            } => {
                let a = self
                    .accounts
                    .get(&account_id)
                    .ok_or_else(|| unknown(&account_id))?;
                let nonce = a
                    .keys
                    .get(&public_key)
                    .ok_or(RpcQueryError::UnknownAccessKey {
                        public_key,
                        block_height,
                        block_hash,
                    })?;
                Ok(QueryResponseKind::AccessKey(AccessKeyView {
                    nonce: *nonce,
                    permission: AccessKeyPermissionView::FullAccess,
                }))
            }
            QueryRequest::CallFunction {
                account_id,
                method_name,
                args,
            } => {
                let a = self
                    .accounts
                    .get(&account_id)
                    .ok_or_else(|| unknown(&account_id))?;
                let Some(contract) = &a.contract else {
                    return Err(RpcQueryError::NoContractCode {
                        contract_account_id: account_id,
                        block_height,
                        block_hash,
                    });
                };
                // A view runs on a copy: nothing it does is kept.
                let code = contract.ext.code.as_deref().expect("code").code().to_vec();
                let mut ext = MockedExternal::with_code(ContractCode::new(code, None));
                ext.fake_trie = contract.ext.fake_trie.clone();
                let ctx = context(&account_id, &account_id, a, args.to_vec(), 0, vec![], true);
                let outcome = run(&mut ext, &ctx, &method_name);
                match outcome.aborted {
                    Some(e) => Err(RpcQueryError::ContractExecutionError {
                        vm_error: e.to_string(),
                        error: FunctionCallError::ExecutionError(e.to_string()),
                        block_height,
                        block_hash,
                    }),
                    None => Ok(QueryResponseKind::CallResult(CallResult {
                        result: match outcome.return_data {
                            ReturnData::Value(v) => v,
                            _ => vec![],
                        },
                        logs: outcome.logs,
                    })),
                }
            }
            other => Err(RpcQueryError::InternalError {
                error_message: format!("the test node does not answer {other:?}"),
            }),
        }
    }

    /// Validates and executes a signed transaction in a new block.
    fn send(
        &mut self,
        signed: SignedTransaction,
    ) -> Result<FinalExecutionOutcomeView, InvalidTxError> {
        let runtime = RuntimeConfigStore::new(None);
        let validated = ValidatedTransaction::new(
            runtime.get_config(PROTOCOL_VERSION),
            signed,
            PROTOCOL_VERSION,
        )
        .map_err(|(e, _)| e)?;
        let signed = validated.into_signed_tx();
        let tx = &signed.transaction;
        let signer_id = tx.signer_id().clone();
        let receiver_id = tx.receiver_id().clone();
        if !self.blocks.iter().any(|b| &b.1 == tx.block_hash()) {
            return Err(InvalidTxError::Expired);
        }
        let signer =
            self.accounts
                .get_mut(&signer_id)
                .ok_or(InvalidTxError::SignerDoesNotExist {
                    signer_id: signer_id.clone(),
                })?;
        let ak_nonce =
            *signer
                .keys
                .get(tx.public_key())
                .ok_or(InvalidTxError::InvalidAccessKeyError(
                    InvalidAccessKeyError::AccessKeyNotFound {
                        account_id: signer_id.clone(),
                        public_key: Box::new(tx.public_key().clone()),
                    },
                ))?;
        let nonce = tx.nonce().nonce();
        if nonce <= ak_nonce {
            return Err(InvalidTxError::InvalidNonce {
                tx_nonce: nonce,
                ak_nonce,
            });
        }
        let mut prepaid: u128 = 0;
        let mut deposits: u128 = 0;
        for a in tx.actions() {
            match a {
                Action::FunctionCall(f) => {
                    prepaid += u128::from(f.gas.as_gas());
                    deposits += f.deposit.as_yoctonear();
                }
                Action::Transfer(t) => deposits += t.deposit.as_yoctonear(),
                Action::DeployContract(_) => {}
                other => return Err(InvalidTxError::ActionsValidation(
                    near_primitives::errors::ActionsValidationError::UnsupportedProtocolFeature {
                        protocol_feature: format!("{other:?} in the test node"),
                        version: PROTOCOL_VERSION,
                    },
                )),
            }
        }
        let cost = prepaid * GAS_PRICE + deposits;
        if signer.balance < cost {
            return Err(InvalidTxError::NotEnoughBalance {
                signer_id: signer_id.clone(),
                balance: Balance::from_yoctonear(signer.balance),
                cost: Balance::from_yoctonear(cost),
            });
        }
        signer.keys.insert(tx.public_key().clone(), nonce);
        signer.balance -= cost;
        let (_, block_hash) = self.new_block();
        let tx_hash = signed.get_hash();
        let receipt_id = hash(&[tx_hash.as_ref(), b"receipt"].concat());
        let actions = tx.actions().to_vec();
        let (status, mut outcomes, burnt) =
            self.apply(&signer_id, &receiver_id, &actions, receipt_id);
        // Unused gas is refunded, and deposits of a failed receipt.
        let refund = (prepaid * GAS_PRICE).saturating_sub(u128::from(burnt) * GAS_PRICE)
            + if matches!(status, ExecutionStatusView::Failure(_)) {
                deposits
            } else {
                0
            };
        if let Some(s) = self.accounts.get_mut(&signer_id) {
            s.balance += refund;
        }
        let final_status = match &status {
            ExecutionStatusView::Failure(e) => FinalExecutionStatus::Failure(e.clone()),
            ExecutionStatusView::SuccessValue(v) => FinalExecutionStatus::SuccessValue(v.clone()),
            _ => FinalExecutionStatus::SuccessValue(vec![]),
        };
        let tx_outcome = ExecutionOutcomeWithIdView {
            proof: vec![],
            block_hash,
            id: tx_hash,
            outcome: ExecutionOutcomeView {
                logs: vec![],
                receipt_ids: vec![receipt_id],
                gas_burnt: Gas::from_gas(0),
                tokens_burnt: Balance::ZERO,
                executor_id: signer_id.clone(),
                status: ExecutionStatusView::SuccessReceiptId(receipt_id),
                metadata: Default::default(),
            },
        };
        outcomes.iter_mut().for_each(|o| o.block_hash = block_hash);
        let view = FinalExecutionOutcomeView {
            status: final_status,
            transaction: SignedTransactionView::from(signed.clone()),
            transaction_outcome: tx_outcome,
            receipts_outcome: outcomes,
        };
        self.accepted.push(signed);
        Ok(view)
    }

    /// Applies a transaction's actions to `receiver` as one receipt, then
    /// the receipts its function calls created. Returns the first receipt's
    /// status, every receipt's outcome and the gas burnt.
    fn apply(
        &mut self,
        signer: &AccountId,
        receiver: &AccountId,
        actions: &[Action],
        receipt_id: CryptoHash,
    ) -> (ExecutionStatusView, Vec<ExecutionOutcomeWithIdView>, u64) {
        let fail = |index: usize, kind: ActionErrorKind| {
            ExecutionStatusView::Failure(TxExecutionError::ActionError(ActionError {
                index: Some(index as u64),
                kind,
            }))
        };
        let Some(account) = self.accounts.get_mut(receiver) else {
            let status = fail(
                0,
                ActionErrorKind::AccountDoesNotExist {
                    account_id: receiver.clone(),
                },
            );
            return (
                status.clone(),
                vec![outcome_of(receipt_id, status, vec![], 0, receiver)],
                0,
            );
        };
        // The receipt is atomic: keep what to restore.
        let saved = (
            account.balance,
            account.storage_usage,
            account
                .contract
                .as_ref()
                .map(|c| (c.ext.fake_trie.clone(), c.ext.code.clone(), c.ext.code_hash)),
        );
        let mut logs = Vec::new();
        let mut burnt = 0u64;
        let mut value = vec![];
        let mut receipts = Vec::new();
        let mut failure = None;
        for (i, action) in actions.iter().enumerate() {
            match action {
                Action::DeployContract(d) => {
                    if signer != receiver {
                        failure = Some(fail(
                            i,
                            ActionErrorKind::ActorNoPermission {
                                account_id: receiver.clone(),
                                actor_id: signer.clone(),
                            },
                        ));
                        break;
                    }
                    let code = ContractCode::new(d.code.clone(), None);
                    let old = account
                        .contract
                        .take()
                        .map(|c| c.ext.fake_trie)
                        .unwrap_or_default();
                    let mut ext = MockedExternal::with_code(code);
                    ext.fake_trie = old;
                    account.storage_usage += d.code.len() as u64;
                    account.contract = Some(Contract { ext });
                }
                Action::Transfer(t) => account.balance += t.deposit.as_yoctonear(),
                Action::FunctionCall(f) => {
                    let Some(contract) = account.contract.as_mut() else {
                        failure = Some(fail(
                            i,
                            ActionErrorKind::FunctionCallError(FunctionCallError::ExecutionError(
                                "no contract code".into(),
                            )),
                        ));
                        break;
                    };
                    account.balance += f.deposit.as_yoctonear();
                    let ctx = context(
                        signer,
                        receiver,
                        &Account {
                            balance: account.balance,
                            storage_usage: account.storage_usage,
                            keys: HashMap::new(),
                            contract: None,
                        },
                        f.args.clone(),
                        f.deposit.as_yoctonear(),
                        vec![],
                        false,
                    );
                    contract.ext.action_log.clear();
                    let out = run(&mut contract.ext, &ctx, &f.method_name);
                    burnt += out.burnt_gas.as_gas();
                    logs.extend(out.logs.clone());
                    if let Some(e) = out.aborted {
                        failure = Some(fail(
                            i,
                            ActionErrorKind::FunctionCallError(FunctionCallError::ExecutionError(
                                e.to_string(),
                            )),
                        ));
                        break;
                    }
                    account.balance = out.balance.as_yoctonear();
                    account.storage_usage = out.storage_usage;
                    if let ReturnData::Value(v) = out.return_data {
                        value = v;
                    }
                    receipts.extend(std::mem::take(&mut contract.ext.action_log));
                }
                _ => unreachable!("refused when validated"),
            }
        }
        if failure.is_none() {
            let locked = u128::from(account.storage_usage) * STORAGE_PRICE;
            if account.balance < locked {
                failure = Some(fail(
                    actions.len().saturating_sub(1),
                    ActionErrorKind::LackBalanceForState {
                        account_id: receiver.clone(),
                        amount: Balance::from_yoctonear(locked - account.balance),
                    },
                ));
            }
        }
        if let Some(status) = failure {
            account.balance = saved.0;
            account.storage_usage = saved.1;
            match saved.2 {
                Some((trie, code, code_hash)) => {
                    if let Some(c) = account.contract.as_mut() {
                        c.ext.fake_trie = trie;
                        c.ext.code = code;
                        c.ext.code_hash = code_hash;
                    }
                }
                None => account.contract = None,
            }
            return (
                status.clone(),
                vec![outcome_of(receipt_id, status, logs, burnt, receiver)],
                burnt,
            );
        }
        let status = ExecutionStatusView::SuccessValue(value);
        let mut outcomes = vec![outcome_of(
            receipt_id,
            status.clone(),
            logs,
            burnt,
            receiver,
        )];
        burnt += self.run_receipts(receiver, receipts, receipt_id, &mut outcomes);
        (status, outcomes, burnt)
    }

    /// Runs the receipts a call of `contract` created (`log`: the VM's
    /// action log): transfers and calls to other accounts, then callbacks
    /// to `contract` with their dependencies' results.
    fn run_receipts(
        &mut self,
        contract: &AccountId,
        log: Vec<MockAction>,
        parent: CryptoHash,
        outcomes: &mut Vec<ExecutionOutcomeWithIdView>,
    ) -> u64 {
        struct Receipt {
            receiver: AccountId,
            deps: Vec<usize>,
            transfer: u128,
            calls: Vec<(String, Vec<u8>, u128)>,
        }
        // The mock numbers a receipt by its position in the action log.
        let mut receipts: Vec<Receipt> = Vec::new();
        let mut number: HashMap<u64, usize> = HashMap::new();
        for (position, a) in log.into_iter().enumerate() {
            match a {
                MockAction::CreateReceipt {
                    receipt_indices,
                    receiver_id,
                } => {
                    number.insert(position as u64, receipts.len());
                    receipts.push(Receipt {
                        receiver: receiver_id,
                        deps: receipt_indices.iter().map(|i| number[i]).collect(),
                        transfer: 0,
                        calls: vec![],
                    })
                }
                MockAction::Transfer {
                    receipt_index,
                    deposit,
                } => {
                    receipts[number[&receipt_index]].transfer += deposit.as_yoctonear();
                }
                MockAction::FunctionCallWeight {
                    receipt_index,
                    method_name,
                    args,
                    attached_deposit,
                    ..
                } => {
                    receipts[number[&receipt_index]].calls.push((
                        String::from_utf8(method_name).expect("utf-8 method"),
                        args,
                        attached_deposit.as_yoctonear(),
                    ));
                }
                other => panic!("the test node does not run {other:?}"),
            }
        }
        let mut results: Vec<Option<Vec<u8>>> = Vec::new();
        let mut burnt = 0;
        for (i, r) in receipts.into_iter().enumerate() {
            let id = hash(&[parent.as_ref(), &(i as u64).to_le_bytes()].concat());
            let paid = r.transfer + r.calls.iter().map(|c| c.2).sum::<u128>();
            let (result, status, logs) = if &r.receiver == contract && !r.calls.is_empty() {
                // A callback: runs with its dependencies' results.
                let deps: Vec<PromiseResult> = r
                    .deps
                    .iter()
                    .map(|&d| promise_result(&results[d]))
                    .collect();
                let account = self
                    .accounts
                    .get_mut(contract)
                    .expect("the contract's account");
                let c = account.contract.as_mut().expect("the contract");
                let (method, args, _) = &r.calls[0];
                let ctx = context(
                    contract,
                    contract,
                    &Account {
                        balance: account.balance,
                        storage_usage: account.storage_usage,
                        keys: HashMap::new(),
                        contract: None,
                    },
                    args.clone(),
                    0,
                    deps,
                    false,
                );
                let saved = c.ext.fake_trie.clone();
                c.ext.action_log.clear();
                let out = run(&mut c.ext, &ctx, method);
                burnt += out.burnt_gas.as_gas();
                match out.aborted {
                    Some(e) => {
                        c.ext.fake_trie = saved;
                        let msg = e.to_string();
                        (
                            None,
                            ExecutionStatusView::Failure(TxExecutionError::ActionError(
                                ActionError {
                                    index: Some(0),
                                    kind: ActionErrorKind::FunctionCallError(
                                        FunctionCallError::ExecutionError(msg),
                                    ),
                                },
                            )),
                            out.logs,
                        )
                    }
                    None => {
                        account.balance = out.balance.as_yoctonear();
                        account.storage_usage = out.storage_usage;
                        let v = match out.return_data {
                            ReturnData::Value(v) => v,
                            _ => vec![],
                        };
                        (
                            Some(v.clone()),
                            ExecutionStatusView::SuccessValue(v),
                            out.logs,
                        )
                    }
                }
            } else {
                // A transfer (or a call, which no other account here can
                // take): credited if the receiver exists, else refunded.
                match self.accounts.get_mut(&r.receiver) {
                    Some(a) if r.calls.is_empty() => {
                        a.balance += r.transfer;
                        (
                            Some(Vec::new()),
                            ExecutionStatusView::SuccessValue(vec![]),
                            vec![],
                        )
                    }
                    _ => {
                        if let Some(c) = self.accounts.get_mut(contract) {
                            c.balance += paid;
                        }
                        let kind = ActionErrorKind::AccountDoesNotExist {
                            account_id: r.receiver.clone(),
                        };
                        (
                            None,
                            ExecutionStatusView::Failure(TxExecutionError::ActionError(
                                ActionError {
                                    index: Some(0),
                                    kind,
                                },
                            )),
                            vec![],
                        )
                    }
                }
            };
            results.push(result);
            outcomes.push(outcome_of(id, status, logs, 0, &r.receiver));
        }
        burnt
    }
}

/// A receipt's outcome (its block is set when the transaction's is known).
fn outcome_of(
    id: CryptoHash,
    status: ExecutionStatusView,
    logs: Vec<String>,
    gas: u64,
    executor: &AccountId,
) -> ExecutionOutcomeWithIdView {
    ExecutionOutcomeWithIdView {
        proof: vec![],
        block_hash: CryptoHash::default(),
        id,
        outcome: ExecutionOutcomeView {
            logs,
            receipt_ids: vec![],
            gas_burnt: Gas::from_gas(gas),
            tokens_burnt: Balance::from_yoctonear(u128::from(gas) * GAS_PRICE),
            executor_id: executor.clone(),
            status,
            metadata: Default::default(),
        },
    }
}

/// A receipt's result as a callback sees it (`None`: failed).
fn promise_result(r: &Option<Vec<u8>>) -> PromiseResult {
    match r {
        Some(v) => PromiseResult::Successful(v.clone().into()),
        None => PromiseResult::Failed,
    }
}

fn block_view(height: u64, hash: CryptoHash) -> BlockView {
    BlockView {
        author: "test.near".parse().expect("account id"),
        header: BlockHeaderView {
            height,
            hash,
            ..BlockHeaderView::default()
        },
        chunks: vec![],
    }
}

/// The VM context of a call of `receiver` by `predecessor`.
fn context(
    predecessor: &AccountId,
    receiver: &AccountId,
    account: &Account,
    input: Vec<u8>,
    deposit: u128,
    results: Vec<PromiseResult>,
    view: bool,
) -> VMContext {
    VMContext {
        current_account_id: receiver.clone(),
        signer_account_id: predecessor.clone(),
        signer_account_pk: vec![0; 33],
        predecessor_account_id: predecessor.clone(),
        refund_to_account_id: predecessor.clone(),
        input: Rc::from(input),
        promise_results: results.into(),
        block_height: 100,
        block_timestamp: 1_700_000_000_000_000_000,
        epoch_height: 1,
        account_balance: Balance::from_yoctonear(account.balance),
        account_locked_balance: Balance::ZERO,
        storage_usage: account.storage_usage,
        account_contract: AccountContract::None,
        attached_deposit: Balance::from_yoctonear(deposit),
        prepaid_gas: Gas::from_teragas(300),
        random_seed: vec![7; 32],
        view_config: view.then(|| ViewConfig {
            max_gas_burnt: Gas::from_teragas(300),
        }),
        output_data_receivers: vec![],
    }
}

fn run(
    ext: &mut MockedExternal,
    ctx: &VMContext,
    method: &str,
) -> near_vm_runner::logic::VMOutcome {
    let config = config();
    let gas_counter = ctx.make_gas_counter(&config);
    let prepared = near_vm_runner::prepare(ext, config, None, gas_counter, method);
    near_vm_runner::run(prepared, ext, ctx, fees()).expect("the VM itself did not fail")
}
