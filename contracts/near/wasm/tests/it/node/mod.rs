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
use near_primitives::errors::FunctionCallError;
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::transaction::{Action, SignedTransaction};
use near_primitives::types::{AccountId, Balance, BlockId, BlockReference};
use near_primitives::version::{Version, PROTOCOL_VERSION};
use near_primitives::views::{
    AccessKeyPermissionView, AccessKeyView, AccountView, BlockHeaderView, BlockView, CallResult,
    FinalExecutionOutcomeViewEnum, QueryRequest, StatusResponse, StatusSyncInfo, TxExecutionStatus,
};
use near_vm_runner::logic::mocks::mock_external::MockedExternal;
use near_vm_runner::logic::ReturnData;
use near_vm_runner::ContractCode;

use exec::{context, run};

mod exec;

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
