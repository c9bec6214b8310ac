//! Contract bindings, deployment and checkpoint signing shared by the tests.

use alloy::network::{EthereumWallet, TransactionBuilder};
use alloy::primitives::{Address, Bytes, FixedBytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::rpc::types::{TransactionReceipt, TransactionRequest};
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::{SolInterface, SolValue};
use anyhow::{anyhow, ensure, Context};
use conclave_checkpoint::{
    sign_checkpoint, CheckpointPayload, Domain, MemberSet, Registration, SecretKey, Signature,
};

use conclave_evm::anvil::{Anvil, DEV_KEY};

pub use conclave_evm::bindings::*;

pub type ProxyErr = IConclaveProxy::IConclaveProxyErrors;
pub type Proxy = IConclaveProxy::IConclaveProxyInstance<DynProvider>;

/// A running chain with a funded deployer.
pub struct Chain {
    pub provider: DynProvider,
    pub chain_id: u64,
    _anvil: Anvil,
}

impl Chain {
    pub async fn start() -> anyhow::Result<Chain> {
        let anvil = Anvil::start().await?;
        let signer: PrivateKeySigner = DEV_KEY.parse()?;
        let provider = ProviderBuilder::new()
            .wallet(EthereumWallet::from(signer))
            .connect_http(anvil.url.parse()?)
            .erased();
        let chain_id = provider.get_chain_id().await?;
        Ok(Chain {
            provider,
            chain_id,
            _anvil: anvil,
        })
    }

    /// Deploys `name` from the embedded artifacts with ABI-encoded `args`.
    pub async fn deploy(
        &self,
        name: &str,
        args: &[u8],
    ) -> anyhow::Result<(Address, TransactionReceipt)> {
        let code = [conclave_evm::artifact(name)?.bytecode, args.to_vec()].concat();
        let tx = TransactionRequest::default().with_deploy_code(code);
        let receipt = self
            .provider
            .send_transaction(tx)
            .await?
            .get_receipt()
            .await?;
        ensure!(receipt.status(), "deploying {name} reverted");
        let addr = receipt.contract_address.context("no contract address")?;
        Ok((addr, receipt))
    }

    /// The revert of deploying `name` (eth_call of the creation).
    pub async fn deploy_revert<E: SolInterface>(
        &self,
        name: &str,
        args: &[u8],
    ) -> anyhow::Result<E> {
        let code = [conclave_evm::artifact(name)?.bytecode, args.to_vec()].concat();
        let tx = TransactionRequest::default().with_deploy_code(code);
        match self.provider.call(tx).await {
            Ok(_) => Err(anyhow!("deploying {name} succeeded")),
            Err(e) => e
                .as_error_resp()
                .and_then(|r| r.as_decoded_interface_error::<E>())
                .ok_or_else(|| anyhow!("undecodable revert: {e}")),
        }
    }

    pub async fn send_value(&self, to: Address, wei: u128) -> anyhow::Result<()> {
        let tx = TransactionRequest::default()
            .with_to(to)
            .with_value(U256::from(wei));
        let r = self
            .provider
            .send_transaction(tx)
            .await?
            .get_receipt()
            .await?;
        ensure!(r.status(), "value transfer reverted");
        Ok(())
    }

    pub async fn balance(&self, who: Address) -> anyhow::Result<U256> {
        Ok(self.provider.get_balance(who).await?)
    }
}

/// Concatenated EIP-2537 keys and PoPs of `keys`.
pub fn keys_and_pops(keys: &[SecretKey]) -> (Bytes, Bytes) {
    let pks: Vec<u8> = keys
        .iter()
        .flat_map(|k| k.public_key().to_eip2537())
        .collect();
    let pops: Vec<u8> = keys
        .iter()
        .flat_map(|k| k.prove_possession().as_signature().to_eip2537())
        .collect();
    (pks.into(), pops.into())
}

pub fn member_set(keys: &[SecretKey], quorum: u32) -> anyhow::Result<MemberSet> {
    let regs: Vec<Registration> = keys
        .iter()
        .map(|k| Registration {
            public_key: k.public_key(),
            pop: k.prove_possession(),
        })
        .collect();
    Ok(MemberSet::new(&regs, quorum)?)
}

pub fn proxy_args(context: [u8; 32], pks: &Bytes, pops: &Bytes, quorum: u32) -> Vec<u8> {
    (B256::from(context), pks.clone(), pops.clone(), quorum, 0u64).abi_encode_params()
}

/// Deploys a proxy for `keys`.
pub async fn deploy_proxy(
    chain: &Chain,
    context: [u8; 32],
    keys: &[SecretKey],
    quorum: u32,
) -> anyhow::Result<(Proxy, TransactionReceipt)> {
    let (pks, pops) = keys_and_pops(keys);
    let (addr, receipt) = chain
        .deploy("ConclaveProxy", &proxy_args(context, &pks, &pops, quorum))
        .await?;
    Ok((IConclaveProxy::new(addr, chain.provider.clone()), receipt))
}

/// Deterministic secret keys for tests (distinct from the vector keys).
pub fn test_keys(n: usize, salt: u8) -> anyhow::Result<Vec<SecretKey>> {
    (0..n)
        .map(|i| {
            let mut ikm = [salt; 32];
            ikm[..8].copy_from_slice(&(i as u64).to_be_bytes());
            Ok(SecretKey::from_seed(&ikm)?)
        })
        .collect()
}

/// A payload for `proxy` at `height` with the given roots.
pub fn payload_for(
    chain: &Chain,
    proxy: &Proxy,
    context: [u8; 32],
    epoch: u64,
    height: u64,
) -> CheckpointPayload {
    CheckpointPayload {
        domain: Domain::evm(chain.chain_id, proxy.address().into_array()),
        context_id: context,
        epoch,
        height,
        state_root: conclave_checkpoint::merkle::leaf_hash(&height.to_be_bytes()),
        actions_root: [0u8; 32],
        next_members_hash: [0u8; 32],
    }
}

/// Bitmap (as uint256) and aggregate signature (EIP-2537) by `signers`
/// (indices into `keys`, which are also their member positions unless
/// `bits` overrides the bitmap).
pub fn certify(
    keys: &[SecretKey],
    payload: &CheckpointPayload,
    signers: &[usize],
    bits: Option<&[usize]>,
) -> anyhow::Result<(U256, Bytes)> {
    let sigs: Vec<Signature> = signers
        .iter()
        .map(|i| sign_checkpoint(&keys[*i], payload))
        .collect();
    let agg = Signature::aggregate(&sigs)?;
    let bitmap =
        conclave_checkpoint::SignerBitmap::from_indices(bits.unwrap_or(signers).iter().copied())?;
    Ok((
        U256::from_be_bytes(bitmap.to_bytes()),
        agg.to_eip2537().to_vec().into(),
    ))
}

/// The call that submits `payload` with a certificate.
pub fn submit_call<'a>(
    proxy: &'a Proxy,
    p: &CheckpointPayload,
    bitmap: U256,
    sig: Bytes,
) -> alloy::contract::SolCallBuilder<&'a DynProvider, IConclaveProxy::submitCheckpointCall> {
    proxy.submitCheckpoint(
        p.epoch,
        p.height,
        FixedBytes(p.state_root),
        FixedBytes(p.actions_root),
        FixedBytes(p.next_members_hash),
        bitmap,
        sig,
    )
}

/// Submits and waits for the receipt; fails if it reverted.
pub async fn submit(
    proxy: &Proxy,
    p: &CheckpointPayload,
    bitmap: U256,
    sig: Bytes,
) -> anyhow::Result<TransactionReceipt> {
    let r = submit_call(proxy, p, bitmap, sig)
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(r.status(), "submitCheckpoint reverted");
    Ok(r)
}

/// The custom error a refused submission reverts with.
pub async fn submit_refusal(
    proxy: &Proxy,
    p: &CheckpointPayload,
    bitmap: U256,
    sig: Bytes,
) -> anyhow::Result<ProxyErr> {
    refusal(submit_call(proxy, p, bitmap, sig).call().await)
}

/// Decodes the proxy error of a call that must revert.
pub fn refusal<T: std::fmt::Debug>(
    res: Result<T, alloy::contract::Error>,
) -> anyhow::Result<ProxyErr> {
    match res {
        Ok(v) => Err(anyhow!("call succeeded: {v:?}")),
        Err(e) => e
            .as_decoded_interface_error::<ProxyErr>()
            .ok_or_else(|| anyhow!("undecodable revert: {e}")),
    }
}
