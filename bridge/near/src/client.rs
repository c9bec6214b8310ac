//! A NEAR RPC endpoint ([`NearClient`]) and an account that signs on it
//! ([`NearAccount`]), through `near-jsonrpc-client` and nearcore's own types.

use std::path::Path;
use std::time::Duration;

use near_crypto::{InMemorySigner, KeyFile, Signer};
use near_jsonrpc_client::errors::{JsonRpcError, JsonRpcServerError};
use near_jsonrpc_client::{methods, JsonRpcClient};
use near_jsonrpc_primitives::types::query::{QueryResponseKind, RpcQueryError};
use near_jsonrpc_primitives::types::transactions::RpcTransactionError;
use near_primitives::errors::{
    ActionErrorKind, FunctionCallError, InvalidTxError, TxExecutionError,
};
use near_primitives::hash::CryptoHash;
use near_primitives::transaction::{Action, SignedTransaction, Transaction, TransactionV0};
use near_primitives::types::{AccountId, BlockId, BlockReference, Finality, FunctionArgs};
use near_primitives::views::{
    AccessKeyPermissionView, AccountView, FinalExecutionOutcomeView, FinalExecutionStatus,
    QueryRequest, TxExecutionStatus,
};
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use crate::{Error, Result};

/// The longest one JSON-RPC request may take.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// Sends of one transaction whose nonce another sender took first.
const NONCE_RETRIES: usize = 3;

/// A NEAR node's JSON-RPC endpoint on a known network. Read-only.
#[derive(Clone)]
pub struct NearClient {
    rpc: JsonRpcClient,
    url: String,
    network: String,
}

impl std::fmt::Debug for NearClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearClient")
            .field("url", &self.url)
            .field("network", &self.network)
            .finish()
    }
}

/// A transaction that the network executed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sent {
    /// Its hash (base58, as NEAR shows it).
    pub tx: String,
    /// Gas burnt by the transaction and all its receipts.
    pub gas_burnt: u64,
    /// The block it was included in: height and hash.
    pub block: (u64, [u8; 32]),
    /// What the transaction's (first) function call returned.
    pub value: Vec<u8>,
}

impl NearClient {
    /// Connects to the node at `url` and asks its status: it must answer as
    /// a NEAR node, and serve `expected_network` when given.
    pub async fn connect(url: &str, expected_network: Option<&str>) -> Result<Self> {
        let parsed = reqwest::Url::parse(url).map_err(|e| Error::BadUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(Error::BadUrl {
                url: url.to_owned(),
                reason: format!("scheme {:?} is not http or https", parsed.scheme()),
            });
        }
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            reqwest::header::HeaderValue::from_static("application/json"),
        );
        // A node that accepts a request and never answers would otherwise
        // hold the relayer forever.
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(RPC_TIMEOUT)
            .build()
            .map_err(|e| Error::Rpc(format!("building the HTTP client: {e}")))?;
        let rpc = JsonRpcClient::with(http).connect(parsed);
        let status = rpc
            .call(methods::status::RpcStatusRequest)
            .await
            .map_err(|e| Error::Unreachable {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        if let Some(expected) = expected_network {
            if expected != status.chain_id {
                return Err(Error::WrongNetwork {
                    url: url.to_owned(),
                    expected: expected.to_owned(),
                    got: status.chain_id,
                });
            }
        }
        Ok(Self {
            rpc,
            url: url.to_owned(),
            network: status.chain_id,
        })
    }

    /// The network's name (the node's `chain_id`: `mainnet`, `testnet`,
    /// ...); part of the domain a NEAR proxy's checkpoints are signed for.
    pub fn network(&self) -> &str {
        &self.network
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// The account, or [`Error::NoAccount`].
    pub async fn account(&self, id: &AccountId) -> Result<AccountView> {
        let res = self
            .query(QueryRequest::ViewAccount {
                account_id: id.clone(),
            })
            .await;
        match res {
            Ok(QueryResponseKind::ViewAccount(a)) => Ok(a),
            Ok(other) => Err(Error::Malformed(format!("view_account answered {other:?}"))),
            Err(QueryFailure::Query(RpcQueryError::UnknownAccount { .. })) => {
                Err(Error::NoAccount {
                    account: id.to_string(),
                    network: self.network.clone(),
                })
            }
            Err(e) => Err(e.into_error("view_account")),
        }
    }

    /// Calls the view method `method` of `contract` with JSON `args` and
    /// decodes its JSON result. A panic in the contract is
    /// [`Error::Refused`]; no code at `contract` is [`Error::NoContract`].
    pub async fn view<T: DeserializeOwned>(
        &self,
        contract: &AccountId,
        method: &'static str,
        args: &serde_json::Value,
    ) -> Result<T> {
        let res = self
            .query(QueryRequest::CallFunction {
                account_id: contract.clone(),
                method_name: method.to_owned(),
                args: FunctionArgs::from(args.to_string().into_bytes()),
            })
            .await;
        let result = match res {
            Ok(QueryResponseKind::CallResult(r)) => r.result,
            Ok(other) => {
                return Err(Error::Malformed(format!("{method} answered {other:?}")));
            }
            Err(QueryFailure::Query(RpcQueryError::NoContractCode { .. })) => {
                return Err(Error::NoContract {
                    account: contract.to_string(),
                    network: self.network.clone(),
                });
            }
            Err(QueryFailure::Query(RpcQueryError::UnknownAccount { .. })) => {
                return Err(Error::NoAccount {
                    account: contract.to_string(),
                    network: self.network.clone(),
                });
            }
            Err(QueryFailure::Query(RpcQueryError::ContractExecutionError {
                vm_error, ..
            })) => {
                return Err(Error::Refused {
                    call: method,
                    reason: vm_error,
                });
            }
            Err(e) => return Err(e.into_error(method)),
        };
        serde_json::from_slice(&result)
            .map_err(|e| Error::Malformed(format!("{method} returned {e}")))
    }

    /// The latest final block: height and hash.
    pub async fn final_head(&self) -> Result<(u64, [u8; 32])> {
        let block = self
            .rpc
            .call(methods::block::RpcBlockRequest {
                block_reference: BlockReference::Finality(Finality::Final),
            })
            .await
            .map_err(rpc)?;
        Ok((block.header.height, block.header.hash.0))
    }

    /// The hash of the block at `height`, if the node has one there (NEAR
    /// skips heights).
    pub async fn block_hash(&self, height: u64) -> Result<Option<[u8; 32]>> {
        match self
            .rpc
            .call(methods::block::RpcBlockRequest {
                block_reference: BlockReference::BlockId(BlockId::Height(height)),
            })
            .await
        {
            Ok(b) => Ok(Some(b.header.hash.0)),
            Err(JsonRpcError::ServerError(JsonRpcServerError::HandlerError(
                near_jsonrpc_primitives::types::blocks::RpcBlockError::UnknownBlock { .. },
            ))) => Ok(None),
            Err(e) => Err(rpc(e)),
        }
    }

    async fn query(
        &self,
        request: QueryRequest,
    ) -> std::result::Result<QueryResponseKind, QueryFailure> {
        let res = self
            .rpc
            .call(methods::query::RpcQueryRequest {
                block_reference: BlockReference::Finality(Finality::Final),
                request,
            })
            .await;
        match res {
            Ok(r) => Ok(r.kind),
            Err(JsonRpcError::ServerError(JsonRpcServerError::HandlerError(e))) => {
                Err(QueryFailure::Query(e))
            }
            Err(e) => Err(QueryFailure::Other(e.to_string())),
        }
    }
}

/// A failed query: the node's reason, or the transport's.
enum QueryFailure {
    Query(RpcQueryError),
    Other(String),
}

impl QueryFailure {
    fn into_error(self, call: &'static str) -> Error {
        match self {
            QueryFailure::Query(e) => Error::Rpc(format!("{call}: {e}")),
            QueryFailure::Other(e) => Error::Rpc(format!("{call}: {e}")),
        }
    }
}

/// Reads a NEAR key file (`{"account_id", "public_key", "secret_key"}`,
/// or `private_key` as near-cli writes it) and checks that its public key
/// is the secret key's.
pub fn read_key_file(path: &Path) -> Result<KeyFile> {
    let key_err = |reason: String| Error::Key {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| key_err(e.to_string()))?;
    let key: KeyFile = serde_json::from_str(&text).map_err(|e| {
        key_err(format!(
            "not a NEAR key file ({{\"account_id\", \"public_key\", \"secret_key\"}}): {e}"
        ))
    })?;
    if key.secret_key.public_key() != key.public_key {
        return Err(key_err(format!(
            "public_key {} is not the secret key's ({})",
            key.public_key,
            key.secret_key.public_key()
        )));
    }
    Ok(key)
}

/// An account with a full-access key on a connected network: signs and
/// sends transactions, one at a time (nonces come from the chain).
pub struct NearAccount {
    client: NearClient,
    signer: Signer,
    id: AccountId,
    public_key: near_crypto::PublicKey,
    sending: Mutex<()>,
}

impl std::fmt::Debug for NearAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearAccount")
            .field("account", &self.id)
            .field("public_key", &self.public_key)
            .field("client", &self.client)
            .finish()
    }
}

impl NearAccount {
    /// Opens the account of `key` on `client`'s network: the account must
    /// exist and hold `key` as a full-access key. Nothing is sent.
    pub async fn open(client: NearClient, key: KeyFile) -> Result<Self> {
        let id = key.account_id.clone();
        let public_key = key.public_key.clone();
        let account = Self {
            signer: InMemorySigner::from_secret_key(id.clone(), key.secret_key),
            client,
            id,
            public_key,
            sending: Mutex::new(()),
        };
        account.client.account(&account.id).await?;
        let permission = account.access_key().await?.1;
        if permission != AccessKeyPermissionView::FullAccess {
            return Err(Error::NotFullAccess {
                account: account.id.to_string(),
                public_key: account.public_key.to_string(),
            });
        }
        Ok(account)
    }

    pub fn client(&self) -> &NearClient {
        &self.client
    }

    pub fn id(&self) -> &AccountId {
        &self.id
    }

    /// The account's liquid balance, in yoctoNEAR.
    pub async fn balance(&self) -> Result<u128> {
        Ok(self.client.account(&self.id).await?.amount.as_yoctonear())
    }

    /// Refuses to go on when the account holds less than `needed`.
    pub async fn ensure_balance(&self, needed: u128) -> Result<()> {
        let balance = self.balance().await?;
        if balance < needed.max(1) {
            return Err(Error::InsufficientBalance {
                account: self.id.to_string(),
                balance,
                needed: needed.max(1),
            });
        }
        Ok(())
    }

    /// The access key's nonce and permission.
    async fn access_key(&self) -> Result<(u64, AccessKeyPermissionView)> {
        let res = self
            .client
            .query(QueryRequest::ViewAccessKey {
                account_id: self.id.clone(),
                public_key: self.public_key.clone(),
            })
            .await;
        match res {
            Ok(QueryResponseKind::AccessKey(k)) => Ok((k.nonce, k.permission)),
            Ok(other) => Err(Error::Malformed(format!(
                "view_access_key answered {other:?}"
            ))),
            Err(QueryFailure::Query(RpcQueryError::UnknownAccessKey { .. })) => {
                Err(Error::NoAccessKey {
                    account: self.id.to_string(),
                    public_key: self.public_key.to_string(),
                    network: self.client.network.clone(),
                })
            }
            Err(QueryFailure::Query(RpcQueryError::UnknownAccount { .. })) => {
                Err(Error::NoAccount {
                    account: self.id.to_string(),
                    network: self.client.network.clone(),
                })
            }
            Err(e) => Err(e.into_error("view_access_key")),
        }
    }

    /// Signs `actions` to `receiver` with the next nonce and a recent final
    /// block hash, sends it and waits until it and its receipts are final.
    /// A contract's refusal is [`Error::Refused`] with its message.
    pub async fn send(
        &self,
        receiver: &AccountId,
        actions: Vec<Action>,
        call: &'static str,
    ) -> Result<Sent> {
        let _one_at_a_time = self.sending.lock().await;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (nonce, _) = self.access_key().await?;
            let (_, block_hash) = self.client.final_head().await?;
            let tx = Transaction::V0(TransactionV0 {
                signer_id: self.id.clone(),
                public_key: self.public_key.clone(),
                nonce: nonce + 1,
                receiver_id: receiver.clone(),
                block_hash: CryptoHash(block_hash),
                actions: actions.clone(),
            });
            let (hash, _) = tx.get_hash_and_size();
            let signed = SignedTransaction::new(self.signer.sign(hash.as_ref()), tx);
            let res = self
                .client
                .rpc
                .call(methods::send_tx::RpcSendTransactionRequest {
                    signed_transaction: signed,
                    wait_until: TxExecutionStatus::Final,
                })
                .await;
            match res {
                Ok(r) => {
                    let outcome = r
                        .final_execution_outcome
                        .map(|o| o.into_outcome())
                        .ok_or_else(|| {
                            Error::Rpc(format!("{call} {hash}: the node returned no outcome"))
                        })?;
                    return self.settle(outcome, call).await;
                }
                Err(JsonRpcError::ServerError(JsonRpcServerError::HandlerError(
                    RpcTransactionError::InvalidTransaction { context },
                ))) => {
                    // Another sender with this key took the nonce: again,
                    // with a fresh one.
                    if matches!(context, InvalidTxError::InvalidNonce { .. })
                        && attempt < NONCE_RETRIES
                    {
                        continue;
                    }
                    return Err(self.invalid_tx(call, context));
                }
                Err(e) => return Err(Error::Rpc(format!("{call}: {e}"))),
            }
        }
    }

    fn invalid_tx(&self, call: &'static str, context: InvalidTxError) -> Error {
        match context {
            InvalidTxError::NotEnoughBalance { balance, cost, .. } => Error::InsufficientBalance {
                account: self.id.to_string(),
                balance: balance.as_yoctonear(),
                needed: cost.as_yoctonear(),
            },
            InvalidTxError::LackBalanceForState { amount, .. } => Error::InsufficientBalance {
                account: self.id.to_string(),
                balance: 0,
                needed: amount.as_yoctonear(),
            },
            other => Error::InvalidTx {
                call,
                reason: format!("{other:?}"),
            },
        }
    }

    /// The outcome of an executed transaction: its value, or why it failed.
    async fn settle(&self, outcome: FinalExecutionOutcomeView, call: &'static str) -> Result<Sent> {
        let tx = outcome.transaction_outcome.id;
        let value = match outcome.status {
            FinalExecutionStatus::SuccessValue(v) => v,
            FinalExecutionStatus::Failure(TxExecutionError::ActionError(a)) => {
                return Err(match a.kind {
                    ActionErrorKind::FunctionCallError(FunctionCallError::ExecutionError(msg)) => {
                        Error::Refused { call, reason: msg }
                    }
                    ActionErrorKind::LackBalanceForState { amount, .. } => {
                        Error::InsufficientBalance {
                            account: self.id.to_string(),
                            balance: self.balance().await.unwrap_or(0),
                            needed: amount.as_yoctonear(),
                        }
                    }
                    other => Error::Refused {
                        call,
                        reason: format!("{other:?} (transaction {tx})"),
                    },
                });
            }
            FinalExecutionStatus::Failure(TxExecutionError::InvalidTxError(e)) => {
                return Err(self.invalid_tx(call, e));
            }
            other => {
                return Err(Error::Rpc(format!(
                    "{call} {tx}: not executed with finality: {other:?}"
                )));
            }
        };
        let gas_burnt = std::iter::once(&outcome.transaction_outcome)
            .chain(&outcome.receipts_outcome)
            .map(|o| o.outcome.gas_burnt.as_gas())
            .sum();
        let block_hash = outcome.transaction_outcome.block_hash;
        let height = self.block_height(block_hash).await?;
        Ok(Sent {
            tx: tx.to_string(),
            gas_burnt,
            block: (height, block_hash.0),
            value,
        })
    }

    async fn block_height(&self, hash: CryptoHash) -> Result<u64> {
        let block = self
            .client
            .rpc
            .call(methods::block::RpcBlockRequest {
                block_reference: BlockReference::BlockId(BlockId::Hash(hash)),
            })
            .await
            .map_err(rpc)?;
        Ok(block.header.height)
    }
}

fn rpc(e: impl std::fmt::Display) -> Error {
    Error::Rpc(e.to_string())
}
