//! Ethereum through alloy: one signing account on one chain, and the
//! `ConclaveProxy` contracts it deploys and feeds.
//!
//! Every state-changing call is simulated first (`eth_call` against the
//! latest block): a refusal costs no gas and comes back as the proxy's
//! decoded custom error, so the relayer can tell "already done" (someone
//! else's relayer was first) from a real failure. Transactions are
//! EIP-1559, with the fee capped by `max_fee_per_gas` when set, and count
//! as done after `confirmations` blocks.

mod proxy;

use std::time::Duration;

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolValue;
use conclave_evm::bindings::IConclaveProxy;

pub use proxy::{Outcome, Proxy, REGISTER_BATCH};

use crate::{Error, Result};

/// The longest one JSON-RPC request to the chain may take.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(30);

/// Polls in a row that find a sent transaction unknown to the chain (not
/// mined, not pending) before it counts as dropped.
const DROPPED_AFTER: u32 = 3;

/// How to reach a chain and pay for transactions on it.
#[derive(Clone, Debug)]
pub struct EvmConfig {
    /// JSON-RPC URL of an Ethereum node.
    pub rpc: String,
    /// Hex private key of the sending account (`0x` optional).
    pub key: String,
    /// The chain id the caller expects; refused if the node reports another.
    pub chain_id: Option<u64>,
    /// Highest `maxFeePerGas` to offer, in wei (None: the node's estimate).
    pub max_fee_per_gas: Option<u128>,
    /// Blocks on top of a transaction's before it counts as done (1: its
    /// own block).
    pub confirmations: u64,
    /// How long to wait for a receipt.
    pub receipt_timeout: Duration,
    /// How often to ask for a receipt (None: 50 ms from a node on this
    /// machine, such as anvil with instant mining; 2 s from a remote one).
    pub poll_interval: Option<Duration>,
}

impl EvmConfig {
    /// A config with defaults: one confirmation, a 60 s receipt timeout, no
    /// fee cap, any chain id.
    pub fn new(rpc: impl Into<String>, key: impl Into<String>) -> Self {
        Self {
            rpc: rpc.into(),
            key: key.into(),
            chain_id: None,
            max_fee_per_gas: None,
            confirmations: 1,
            receipt_timeout: Duration::from_secs(60),
            poll_interval: None,
        }
    }
}

/// Reads a hex private key from a file (whitespace and `0x` allowed).
pub fn read_key_file(path: &std::path::Path) -> Result<String> {
    let key = std::fs::read_to_string(path).map_err(|e| Error::Key {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let key = key.trim().to_owned();
    key.parse::<PrivateKeySigner>().map_err(|e| Error::Key {
        path: path.display().to_string(),
        reason: format!("not a secp256k1 private key in hex: {e}"),
    })?;
    Ok(key)
}

/// A member set as a proxy stores it: keys and PoPs in EIP-2537 encoding,
/// in member order (the signer bitmap's order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyMembers {
    pub pks: Vec<[u8; 128]>,
    pub pops: Vec<[u8; 256]>,
    /// 0 for the default `floor(2n/3) + 1`.
    pub quorum: u32,
    /// The context's member-set epoch of these keys.
    pub epoch: u64,
}

impl ProxyMembers {
    /// `members` in the proxy's encoding (EIP-2537 points), default quorum.
    pub fn of(members: &crate::source::Members) -> Self {
        Self {
            pks: members
                .keys
                .iter()
                .map(|r| r.public_key.to_eip2537())
                .collect(),
            pops: members
                .keys
                .iter()
                .map(|r| r.pop.as_signature().to_eip2537())
                .collect(),
            quorum: 0,
            epoch: members.epoch,
        }
    }
}

/// A connected chain with its signing account.
#[derive(Clone)]
pub struct EvmChain {
    provider: DynProvider,
    account: Address,
    chain_id: u64,
    config: EvmConfig,
}

impl std::fmt::Debug for EvmChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EvmChain")
            .field("rpc", &self.config.rpc)
            .field("chain_id", &self.chain_id)
            .field("account", &self.account)
            .finish()
    }
}

impl EvmChain {
    /// Connects and checks the chain id; nothing is sent.
    pub async fn connect(config: EvmConfig) -> Result<Self> {
        let url = config.rpc.parse::<url::Url>().map_err(|e| Error::BadUrl {
            url: config.rpc.clone(),
            reason: e.to_string(),
        })?;
        let signer: PrivateKeySigner = config.key.parse().map_err(|e| Error::Key {
            path: "(given)".into(),
            reason: format!("{e}"),
        })?;
        let account = signer.address();
        // A node that accepts a request and never answers would otherwise
        // hold the relayer forever.
        let http = alloy::transports::http::reqwest::Client::builder()
            .timeout(RPC_TIMEOUT)
            .build()
            .map_err(|e| Error::Rpc(format!("building the HTTP client: {e}")))?;
        // Nonces come from the chain's pending count for every transaction
        // (not a local counter): a transaction dropped by a reorg or sent by
        // another process never leaves the relayer stuck on a stale nonce.
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .with_gas_estimation()
            .with_simple_nonce_management()
            .fetch_chain_id()
            .wallet(EthereumWallet::from(signer))
            .connect_reqwest(http, url)
            .erased();
        let chain_id = provider
            .get_chain_id()
            .await
            .map_err(|e| Error::Unreachable {
                url: config.rpc.clone(),
                reason: e.to_string(),
            })?;
        if let Some(expected) = config.chain_id {
            if expected != chain_id {
                return Err(Error::WrongChain {
                    url: config.rpc.clone(),
                    expected,
                    got: chain_id,
                });
            }
        }
        let client = provider.client();
        let poll = config.poll_interval.unwrap_or(if client.is_local() {
            Duration::from_millis(50)
        } else {
            Duration::from_secs(2)
        });
        client.set_poll_interval(poll);
        Ok(Self {
            provider,
            account,
            chain_id,
            config,
        })
    }

    pub fn chain_id(&self) -> u64 {
        self.chain_id
    }

    /// The sending account.
    pub fn account(&self) -> Address {
        self.account
    }

    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    pub fn config(&self) -> &EvmConfig {
        &self.config
    }

    pub async fn balance(&self, who: Address) -> Result<U256> {
        self.provider.get_balance(who).await.map_err(rpc)
    }

    pub async fn block_number(&self) -> Result<u64> {
        self.provider.get_block_number().await.map_err(rpc)
    }

    /// The latest block's number and hash.
    pub async fn head(&self) -> Result<(u64, B256)> {
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(rpc)?
            .ok_or_else(|| Error::Rpc("the chain has no latest block".into()))?;
        Ok((block.header.number, block.header.hash))
    }

    /// The hash of block `number`, if the chain has it.
    pub async fn block_hash(&self, number: u64) -> Result<Option<B256>> {
        Ok(self
            .provider
            .get_block_by_number(number.into())
            .await
            .map_err(rpc)?
            .map(|b| b.header.hash))
    }

    /// Refuses to go on when the sending account holds nothing.
    pub async fn ensure_funded(&self) -> Result<()> {
        if self.balance(self.account).await?.is_zero() {
            return Err(Error::Unfunded {
                address: self.account.to_string(),
                chain_id: self.chain_id,
            });
        }
        Ok(())
    }

    /// Sends `wei` from the account to `to`; returns the transaction.
    pub async fn send_value(&self, to: Address, wei: u128) -> Result<B256> {
        let tx = TransactionRequest::default()
            .with_from(self.account)
            .with_to(to)
            .with_value(U256::from(wei));
        Ok(self.send(tx, "transfer").await?.transaction_hash)
    }

    /// The proxy at `address`, checked to be a contract serving `context`.
    pub async fn proxy(&self, address: Address, context: [u8; 32]) -> Result<Proxy> {
        let code = self.provider.get_code_at(address).await.map_err(rpc)?;
        if code.is_empty() {
            return Err(Error::NoContract {
                address: address.to_string(),
                chain_id: self.chain_id,
            });
        }
        let instance = IConclaveProxy::new(address, self.provider.clone());
        let got = instance
            .contextId()
            .call()
            .await
            .map_err(|e| Error::Refused {
                call: "contextId",
                reason: format!("not a Conclave proxy ({e})"),
            })?;
        if got.0 != context {
            return Err(Error::WrongContext {
                address: address.to_string(),
                expected: hex::encode(context),
                got: hex::encode(got.0),
            });
        }
        Ok(Proxy::new(self.clone(), instance))
    }

    /// Deploys a `ConclaveProxy` for `context` with `members`; returns its
    /// address. Simulated first: bad keys or PoPs are refused before any
    /// gas is spent.
    pub async fn deploy_proxy(&self, context: [u8; 32], members: &ProxyMembers) -> Result<Address> {
        self.ensure_funded().await?;
        let pks: Vec<u8> = members.pks.iter().flatten().copied().collect();
        let pops: Vec<u8> = members.pops.iter().flatten().copied().collect();
        let args = (
            B256::from(context),
            Bytes::from(pks),
            Bytes::from(pops),
            members.quorum,
            members.epoch,
        )
            .abi_encode_params();
        let artifact = conclave_evm::artifact("ConclaveProxy")
            .map_err(|e| Error::Config(format!("proxy artifact: {e}")))?;
        let code = [artifact.bytecode, args].concat();
        let tx = TransactionRequest::default()
            .with_from(self.account)
            .with_deploy_code(code);
        if let Err(e) = self.provider.call(tx.clone()).await {
            let reason = e
                .as_error_resp()
                .and_then(|r| r.as_decoded_interface_error::<proxy::ProxyError>())
                .map_or_else(|| e.to_string(), |err| format!("{err:?}"));
            return Err(Error::Refused {
                call: "deploy ConclaveProxy",
                reason,
            });
        }
        let receipt = self.send(tx, "deploy ConclaveProxy").await?;
        receipt
            .contract_address
            .ok_or_else(|| Error::Rpc("deploy receipt without a contract address".into()))
    }

    /// Sends a transaction with capped EIP-1559 fees and waits for its
    /// receipt and the configured confirmations; a revert is an error.
    pub(crate) async fn send(
        &self,
        tx: TransactionRequest,
        call: &'static str,
    ) -> Result<TransactionReceipt> {
        let tx = self.with_fees(tx).await?;
        let pending = self.provider.send_transaction(tx).await.map_err(rpc)?;
        self.wait(*pending.tx_hash(), call).await
    }

    /// EIP-1559 fees from the node's estimate, held under the cap.
    pub(crate) async fn with_fees(&self, tx: TransactionRequest) -> Result<TransactionRequest> {
        let est = self.provider.estimate_eip1559_fees().await.map_err(rpc)?;
        let (max_fee, tip) = capped_fees(
            est.max_fee_per_gas,
            est.max_priority_fee_per_gas,
            self.config.max_fee_per_gas,
            self.base_fee().await?,
        )?;
        Ok(tx
            .with_max_fee_per_gas(max_fee)
            .with_max_priority_fee_per_gas(tip))
    }

    async fn base_fee(&self) -> Result<u128> {
        let block = self
            .provider
            .get_block_by_number(alloy::eips::BlockNumberOrTag::Latest)
            .await
            .map_err(rpc)?;
        Ok(block
            .and_then(|b| b.header.base_fee_per_gas)
            .map_or(0, u128::from))
    }

    /// Waits for the receipt of `hash`, then for `confirmations` blocks
    /// counting its own, asking the node every poll interval; a revert is
    /// an error.
    ///
    /// It asks the node itself rather than alloy's pending-transaction
    /// watcher: the watcher remembers the transactions of the blocks it has
    /// seen, also after the chain drops those blocks, so a transaction sent
    /// again after a reorg (same nonce, same bytes, same hash) is reported
    /// mined at once and its receipt then found missing.
    pub(crate) async fn wait(&self, hash: B256, call: &'static str) -> Result<TransactionReceipt> {
        let poll = self.provider.client().poll_interval();
        let deadline = tokio::time::Instant::now() + self.config.receipt_timeout;
        let confirmations = self.config.confirmations.max(1);
        let waiting = |e: alloy::transports::TransportError| {
            Error::Rpc(format!("waiting for {call} {hash}: {e}"))
        };
        let mut unknown = 0u32;
        loop {
            let receipt = self
                .provider
                .get_transaction_receipt(hash)
                .await
                .map_err(waiting)?;
            if receipt.is_none() {
                // Dropped (a reorg removed its block and nobody mined it
                // again, or the pool evicted it): no receipt is coming, the
                // next pass decides afresh. A few misses in a row, in case
                // the node answering is not the one that took it.
                let known = self
                    .provider
                    .get_transaction_by_hash(hash)
                    .await
                    .map_err(waiting)?
                    .is_some();
                unknown = if known { 0 } else { unknown + 1 };
                if unknown >= DROPPED_AFTER {
                    return Err(Error::Rpc(format!(
                        "{call} {hash} was dropped: the chain no longer knows it"
                    )));
                }
            }
            if let Some(receipt) = receipt {
                if !receipt.status() {
                    return Err(Error::Reverted {
                        call,
                        tx: hash.to_string(),
                    });
                }
                let (Some(mined), Some(block)) = (receipt.block_number, receipt.block_hash) else {
                    return Err(Error::Rpc(format!(
                        "the receipt of {call} {hash} names no block"
                    )));
                };
                let head = self.provider.get_block_number().await.map_err(waiting)?;
                if head.saturating_add(1) >= mined.saturating_add(confirmations) {
                    // With confirmations to wait for, the block may have been
                    // replaced meanwhile: it counts only if still on the chain.
                    if confirmations == 1 || self.block_hash(mined).await? == Some(block) {
                        return Ok(receipt);
                    }
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Rpc(format!(
                    "{call} {hash}: not mined with {confirmations} confirmation(s) within {:?}",
                    self.config.receipt_timeout
                )));
            }
            tokio::time::sleep(poll).await;
        }
    }
}

/// `(maxFeePerGas, maxPriorityFeePerGas)` from an estimate, under `cap`.
/// Refuses when the current base fee alone is above the cap: such a
/// transaction would sit unmined.
pub fn capped_fees(
    max_fee: u128,
    tip: u128,
    cap: Option<u128>,
    base_fee: u128,
) -> Result<(u128, u128)> {
    let Some(cap) = cap else {
        return Ok((max_fee, tip));
    };
    if base_fee > cap {
        return Err(Error::FeeCap { base_fee, cap });
    }
    let max_fee = max_fee.min(cap);
    Ok((max_fee, tip.min(max_fee - base_fee)))
}

fn rpc(e: impl std::fmt::Display) -> Error {
    Error::Rpc(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_stay_under_the_cap_and_a_base_fee_above_it_is_refused() {
        assert_eq!(capped_fees(100, 10, None, 50).unwrap(), (100, 10));
        assert_eq!(capped_fees(100, 10, Some(80), 50).unwrap(), (80, 10));
        // The tip shrinks so base fee + tip fits the cap.
        assert_eq!(capped_fees(100, 40, Some(80), 50).unwrap(), (80, 30));
        assert!(matches!(
            capped_fees(100, 10, Some(40), 50),
            Err(Error::FeeCap {
                base_fee: 50,
                cap: 40
            })
        ));
    }

    #[test]
    fn key_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        std::fs::write(
            &good,
            "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80\n",
        )
        .unwrap();
        assert!(read_key_file(&good).is_ok());
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "not a key").unwrap();
        let err = read_key_file(&bad).unwrap_err().to_string();
        assert!(err.contains("bad") && err.contains("private key"), "{err}");
        assert!(read_key_file(&dir.path().join("missing")).is_err());
    }
}
