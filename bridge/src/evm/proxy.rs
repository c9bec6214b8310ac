//! One context's `ConclaveProxy`: what it holds, and the calls that post
//! checkpoints and execute actions, each simulated before it is sent.

use alloy::contract::SolCallBuilder;
use alloy::primitives::{Address, Bytes, FixedBytes, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::sol_types::SolCall;
use conclave_checkpoint::{Account, ActionKind};
use conclave_evm::bindings::IConclaveProxy;

use super::{EvmChain, ProxyMembers};
use crate::chain::{Anchor, Mark};
use crate::plan::ChainView;
use crate::source::{Members, ProvenAction, SignedCheckpoint};
use crate::{Error, Result};

/// The proxy's custom errors, decoded from a revert.
pub type ProxyError = IConclaveProxy::IConclaveProxyErrors;

/// Keys whose proofs of possession `rotateMembers` checks inline, at most;
/// larger sets register them first, this many per transaction.
pub const REGISTER_BATCH: usize = 16;

pub use crate::chain::Outcome;

/// A proxy on a connected chain.
#[derive(Clone, Debug)]
pub struct Proxy {
    chain: EvmChain,
    instance: IConclaveProxy::IConclaveProxyInstance<DynProvider>,
}

impl Proxy {
    pub(super) fn new(
        chain: EvmChain,
        instance: IConclaveProxy::IConclaveProxyInstance<DynProvider>,
    ) -> Self {
        Self { chain, instance }
    }

    pub fn address(&self) -> Address {
        *self.instance.address()
    }

    pub fn chain(&self) -> &EvmChain {
        &self.chain
    }

    /// Latest checkpoint height, epoch and member-set hash.
    pub async fn view(&self) -> Result<ChainView> {
        let latest = self.instance.latestCheckpoint().call().await.map_err(rpc)?;
        let epoch = self.instance.epoch().call().await.map_err(rpc)?;
        let members_hash = self.instance.membersHash().call().await.map_err(rpc)?;
        Ok(ChainView {
            latest: latest.height,
            epoch,
            members_hash: members_hash.0,
        })
    }

    /// The `(state root, actions root)` stored for `height` (zeros: no
    /// checkpoint there).
    pub async fn roots_at(&self, height: u64) -> Result<([u8; 32], [u8; 32])> {
        let at = self
            .instance
            .checkpointAt(height)
            .call()
            .await
            .map_err(rpc)?;
        Ok((at.stateRoot.0, at.actionsRoot.0))
    }

    /// The member-set hash the checkpoint at `height` announced, if it
    /// announced one the proxy has not rotated to yet.
    pub async fn announced(&self, height: u64) -> Result<Option<[u8; 32]>> {
        if height == 0 {
            return Ok(None);
        }
        let at = self
            .instance
            .checkpointAt(height)
            .call()
            .await
            .map_err(rpc)?;
        Ok((at.nextMembersHash != B256::ZERO).then_some(at.nextMembersHash.0))
    }

    /// Rotates the proxy to `members`, which the checkpoint at `height`
    /// announced. Sets above [`REGISTER_BATCH`] keys first register their
    /// proofs of possession in batches (a PoP check costs about 150k gas),
    /// skipping keys registered already. Rotated already (by another
    /// relayer) is [`Outcome::AlreadyDone`]; the returned gas covers every
    /// transaction sent.
    pub async fn rotate_members(&self, height: u64, members: &ProxyMembers) -> Result<Outcome> {
        let mut gas = 0u64;
        let inline = members.pks.len() <= REGISTER_BATCH;
        if !inline {
            let mut todo = Vec::new();
            for (pk, pop) in members.pks.iter().zip(&members.pops) {
                let known = self
                    .instance
                    .keyRegistered(Bytes::from(pk.to_vec()))
                    .call()
                    .await
                    .map_err(rpc)?;
                if !known {
                    todo.push((pk, pop));
                }
            }
            for batch in todo.chunks(REGISTER_BATCH) {
                let pks: Vec<u8> = batch.iter().flat_map(|(k, _)| k.iter()).copied().collect();
                let pops: Vec<u8> = batch.iter().flat_map(|(_, p)| p.iter()).copied().collect();
                let call = self
                    .instance
                    .registerKeys(Bytes::from(pks), Bytes::from(pops));
                if let Outcome::Done { gas_used, .. } =
                    self.send(call, "registerKeys", |_| None).await?
                {
                    gas += gas_used;
                }
            }
        }
        let pks: Vec<u8> = members.pks.iter().flatten().copied().collect();
        let pops: Vec<u8> = if inline {
            members.pops.iter().flatten().copied().collect()
        } else {
            Vec::new()
        };
        let call = self.instance.rotateMembers(
            height,
            Bytes::from(pks),
            Bytes::from(pops),
            members.quorum,
        );
        let outcome = self
            .send(call, "rotateMembers", |e| match e {
                ProxyError::UnknownRotation(_) => {
                    Some(Outcome::AlreadyDone("no rotation pending there".into()))
                }
                _ => None,
            })
            .await?;
        Ok(match outcome {
            Outcome::Done {
                tx,
                gas_used,
                block,
            } => Outcome::Done {
                tx,
                gas_used: gas_used + gas,
                block,
            },
            other => other,
        })
    }

    pub async fn executed(&self, id: [u8; 32]) -> Result<bool> {
        self.instance
            .executed(FixedBytes(id))
            .call()
            .await
            .map_err(rpc)
    }

    /// Posts a checkpoint. A stale height (another relayer posted this one
    /// or a later one) is [`Outcome::AlreadyDone`].
    pub async fn submit_checkpoint(&self, c: &SignedCheckpoint) -> Result<Outcome> {
        let p = &c.payload;
        let call = self.instance.submitCheckpoint(
            p.epoch,
            p.height,
            FixedBytes(p.state_root),
            FixedBytes(p.actions_root),
            FixedBytes(p.next_members_hash),
            U256::from_be_bytes(c.signers),
            Bytes::from(c.signature.to_eip2537().to_vec()),
        );
        self.send(call, "submitCheckpoint", |e| match e {
            ProxyError::StaleHeight(s) => Some(Outcome::AlreadyDone(format!(
                "the proxy is at height {} already",
                s.latest
            ))),
            _ => None,
        })
        .await
    }

    /// Executes an action with its inclusion proof. Already executed is
    /// [`Outcome::AlreadyDone`]; a failing transfer or call is
    /// [`Outcome::ActionFails`].
    pub async fn execute_action(&self, a: &ProvenAction) -> Result<Outcome> {
        let action = abi_action(a)?;
        let proof = a.proof.siblings.iter().map(|s| FixedBytes(*s)).collect();
        let call = self
            .instance
            .executeAction(a.height, action, proof, U256::from(a.proof.index));
        self.send(call, "executeAction", |e| match e {
            ProxyError::AlreadyExecuted(_) => Some(Outcome::AlreadyDone("executed already".into())),
            ProxyError::TransferFailed(_) => {
                Some(Outcome::ActionFails("the transfer failed".into()))
            }
            ProxyError::CallFailed(c) => Some(Outcome::ActionFails(format!(
                "the call reverted (0x{})",
                hex::encode(&c.reason)
            ))),
            _ => None,
        })
        .await
    }

    /// Simulates `call`; a refusal that `settled` recognises is returned
    /// without sending, any other refusal is an error; else it is sent.
    async fn send<C: SolCall>(
        &self,
        call: SolCallBuilder<&DynProvider, C>,
        name: &'static str,
        settled: impl Fn(&ProxyError) -> Option<Outcome>,
    ) -> Result<Outcome> {
        if let Err(e) = call.call().await {
            return match e.as_decoded_interface_error::<ProxyError>() {
                Some(err) => settled(&err).ok_or_else(|| Error::Refused {
                    call: name,
                    reason: format!("{err:?}"),
                }),
                None if e.as_revert_data().is_some() => Err(Error::Refused {
                    call: name,
                    reason: e.to_string(),
                }),
                None => Err(rpc(e)),
            };
        }
        let tx = self
            .chain
            .with_fees(call.into_transaction_request())
            .await?;
        let pending = self
            .chain
            .provider()
            .send_transaction(tx)
            .await
            .map_err(rpc)?;
        let receipt = self.chain.wait(*pending.tx_hash(), name).await?;
        Ok(Outcome::Done {
            tx: receipt.transaction_hash.to_string(),
            gas_used: receipt.gas_used,
            block: (
                receipt.block_number.unwrap_or_default(),
                receipt.block_hash.unwrap_or_default().0,
            ),
        })
    }
}

impl Anchor for Proxy {
    fn label(&self) -> String {
        format!("evm:{}", self.chain.chain_id())
    }

    fn domain(&self) -> Result<conclave_checkpoint::Domain> {
        Ok(conclave_checkpoint::Domain::evm(
            self.chain.chain_id(),
            self.address().into_array(),
        ))
    }

    fn address(&self) -> String {
        Proxy::address(self).to_string()
    }

    async fn head(&self) -> Result<Mark> {
        let (n, h) = self.chain.head().await?;
        Ok((n, h.0))
    }

    async fn block_hash(&self, number: u64) -> Result<Option<[u8; 32]>> {
        Ok(self.chain.block_hash(number).await?.map(|h| h.0))
    }

    async fn view(&self) -> Result<ChainView> {
        Proxy::view(self).await
    }

    async fn announced(&self, height: u64) -> Result<Option<[u8; 32]>> {
        Proxy::announced(self, height).await
    }

    async fn roots_at(&self, height: u64) -> Result<([u8; 32], [u8; 32])> {
        Proxy::roots_at(self, height).await
    }

    async fn executed(&self, id: [u8; 32]) -> Result<bool> {
        Proxy::executed(self, id).await
    }

    /// The transaction whose `ActionExecuted` log names `id`.
    async fn executed_in(&self, id: [u8; 32]) -> Result<Option<String>> {
        use alloy::rpc::types::Filter;
        use alloy::sol_types::SolEvent;

        let filter = Filter::new()
            .address(self.address())
            .event_signature(IConclaveProxy::ActionExecuted::SIGNATURE_HASH)
            .topic1(FixedBytes(id))
            .from_block(0);
        let logs = self
            .chain()
            .provider()
            .get_logs(&filter)
            .await
            .map_err(|e| Error::Rpc(e.to_string()))?;
        Ok(logs
            .last()
            .and_then(|l| l.transaction_hash)
            .map(|h| h.to_string()))
    }

    async fn submit_checkpoint(&self, c: &SignedCheckpoint) -> Result<Outcome> {
        Proxy::submit_checkpoint(self, c).await
    }

    async fn rotate_members(&self, height: u64, members: &Members) -> Result<Outcome> {
        Proxy::rotate_members(self, height, &ProxyMembers::of(members)).await
    }

    async fn execute_action(&self, a: &ProvenAction) -> Result<Outcome> {
        Proxy::execute_action(self, a).await
    }
}

/// The ABI form of an EVM action.
fn abi_action(a: &ProvenAction) -> Result<IConclaveProxy::Action> {
    let evm = |acc: &Account| match acc {
        Account::Evm(addr) => Ok(Address::from(*addr)),
        Account::Near(id) => Err(Error::Malformed(format!(
            "action {} names NEAR account {id} on an EVM proxy",
            hex::encode(a.action.id)
        ))),
    };
    let (kind, token, to, amount, data) = match &a.action.kind {
        ActionKind::NativeTransfer { to, amount } => {
            (1u8, Address::ZERO, evm(to)?, *amount, Vec::new())
        }
        ActionKind::TokenTransfer { token, to, amount } => {
            (2, evm(token)?, evm(to)?, *amount, Vec::new())
        }
        ActionKind::ContractCall {
            to,
            value,
            calldata,
        } => (3, Address::ZERO, evm(to)?, *value, calldata.clone()),
    };
    Ok(IConclaveProxy::Action {
        id: FixedBytes(a.action.id),
        kind,
        token,
        to,
        amount: U256::from(amount),
        data: data.into(),
    })
}

fn rpc(e: impl std::fmt::Display) -> Error {
    Error::Rpc(e.to_string())
}
