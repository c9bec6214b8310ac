//! submitCheckpoint and deployment refusals, with checkpoints signed at
//! test time for the deployed proxy's own address.

use alloy::primitives::{Bytes, FixedBytes, U256};
use anyhow::ensure;
use conclave_checkpoint::vectors::{from_hex, MembersFile};
use conclave_checkpoint::Domain;

use crate::fixture::*;

const CONTEXT: [u8; 32] = [0xc0; 32];

#[tokio::test]
async fn accepts_quorum_and_refuses_stale_forged_and_foreign() -> anyhow::Result<()> {
    let chain = Chain::start().await?;
    let keys = test_keys(4, 1)?;
    let set = member_set(&keys, 0)?;
    let (proxy, _) = deploy_proxy(&chain, CONTEXT, &keys, 0).await?;
    ensure!(proxy.quorum().call().await? == 3 && proxy.memberCount().call().await? == 4);
    ensure!(proxy.membersHash().call().await?.0 == set.hash());
    ensure!(proxy.members().call().await?.to_vec() == set.eip2537_keys());

    let mut p = payload_for(&chain, &proxy, CONTEXT, 0, 5);
    p.next_members_hash = set.hash();
    let digest = proxy
        .checkpointDigest(
            0,
            5,
            FixedBytes(p.state_root),
            FixedBytes(p.actions_root),
            FixedBytes(p.next_members_hash),
        )
        .call()
        .await?;
    ensure!(digest.0 == p.digest(), "contract and Rust digests differ");

    // Under quorum, non-member bit, bitmap over-claim, forged aggregate.
    let (b, s) = certify(&keys, &p, &[0, 1], None)?;
    ensure!(matches!(
        submit_refusal(&proxy, &p, b, s).await?,
        ProxyErr::UnderQuorum(_)
    ));
    let (b, s) = certify(&keys, &p, &[0, 1, 2], Some(&[0, 1, 2, 4]))?;
    ensure!(matches!(
        submit_refusal(&proxy, &p, b, s).await?,
        ProxyErr::NonMemberBit(_)
    ));
    let (b, s) = certify(&keys, &p, &[0, 1, 2], Some(&[0, 1, 2, 3]))?;
    ensure!(matches!(
        submit_refusal(&proxy, &p, b, s).await?,
        ProxyErr::BadSignature(_)
    ));
    let outsiders = test_keys(3, 9)?;
    let (b, s) = certify(&outsiders, &p, &[0, 1, 2], None)?;
    ensure!(matches!(
        submit_refusal(&proxy, &p, b, s).await?,
        ProxyErr::BadSignature(_)
    ));
    // Garbage that is not a G2 point at all.
    let (b, _) = certify(&keys, &p, &[0, 1, 2], None)?;
    let junk: Bytes = vec![0x5a; 256].into();
    ensure!(matches!(
        submit_refusal(&proxy, &p, b, junk).await?,
        ProxyErr::BadSignature(_)
    ));

    // Signed for another chain id, then for another contract.
    let mut other_chain = p;
    other_chain.domain = Domain::evm(1, proxy.address().into_array());
    let (b, s) = certify(&keys, &other_chain, &[0, 1, 2], None)?;
    ensure!(matches!(
        submit_refusal(&proxy, &p, b, s).await?,
        ProxyErr::BadSignature(_)
    ));
    let (twin, _) = deploy_proxy(&chain, CONTEXT, &keys, 0).await?;
    let p_twin = CheckpointPayloadExt::for_proxy(&p, &chain, &twin);
    let (b, s) = certify(&keys, &p_twin, &[0, 1, 2], None)?;
    ensure!(matches!(
        submit_refusal(&proxy, &p, b, s.clone()).await?,
        ProxyErr::BadSignature(_)
    ));
    submit(&twin, &p_twin, b, s).await?;

    // Tampered state root.
    let (b, s) = certify(&keys, &p, &[0, 2, 3], None)?;
    let mut tampered = p;
    tampered.state_root[0] ^= 1;
    ensure!(matches!(
        submit_refusal(&proxy, &tampered, b, s.clone()).await?,
        ProxyErr::BadSignature(_)
    ));

    // Accepted, then the same and a lower height are stale.
    let receipt = submit(&proxy, &p, b, s.clone()).await?;
    ensure!(receipt.logs().len() == 1, "one CheckpointSubmitted event");
    let latest = proxy.latestCheckpoint().call().await?;
    ensure!(latest.height == 5 && latest.stateRoot.0 == p.state_root);
    ensure!(matches!(
        submit_refusal(&proxy, &p, b, s).await?,
        ProxyErr::StaleHeight(_)
    ));
    let lower = payload_for(&chain, &proxy, CONTEXT, 0, 4);
    let (b, s) = certify(&keys, &lower, &[0, 1, 2, 3], None)?;
    ensure!(matches!(
        submit_refusal(&proxy, &lower, b, s).await?,
        ProxyErr::StaleHeight(_)
    ));
    // Wrong epoch.
    let future = payload_for(&chain, &proxy, CONTEXT, 1, 6);
    let (b, s) = certify(&keys, &future, &[0, 1, 2, 3], None)?;
    ensure!(matches!(
        submit_refusal(&proxy, &future, b, s).await?,
        ProxyErr::WrongEpoch(_)
    ));
    Ok(())
}

/// Re-targets a payload at another proxy.
trait CheckpointPayloadExt {
    fn for_proxy(&self, chain: &Chain, proxy: &Proxy) -> Self;
}

impl CheckpointPayloadExt for conclave_checkpoint::CheckpointPayload {
    fn for_proxy(&self, chain: &Chain, proxy: &Proxy) -> Self {
        Self {
            domain: Domain::evm(chain.chain_id, proxy.address().into_array()),
            ..*self
        }
    }
}

#[tokio::test]
async fn deployment_refuses_keys_without_valid_pop() -> anyhow::Result<()> {
    let chain = Chain::start().await?;
    let members: MembersFile = serde_json::from_str(&std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../vectors/members.json"),
    )?)?;
    for bad in &members.bad_registrations {
        let pks: Vec<u8> = bad
            .pks_eip2537
            .iter()
            .map(|s| from_hex(s))
            .collect::<Result<Vec<_>, _>>()?
            .concat();
        let pops: Vec<u8> = bad
            .pops_eip2537
            .iter()
            .map(|s| from_hex(s))
            .collect::<Result<Vec<_>, _>>()?
            .concat();
        let args = proxy_args(CONTEXT, &pks.into(), &pops.into(), bad.quorum);
        let err: ProxyErr = chain.deploy_revert("ConclaveProxy", &args).await?;
        ensure!(
            err == ProxyErr::BadPop(IConclaveProxy::BadPop {
                index: U256::from(bad.bad_index)
            }),
            "{}: {err:?}",
            bad.name
        );
    }
    let keys = test_keys(3, 2)?;
    let (pks, pops) = keys_and_pops(&keys);
    // Infinity key with infinity "PoP" (the pairing alone would accept it).
    let inf_pks: Bytes = [pks.to_vec(), vec![0u8; 128]].concat().into();
    let inf_pops: Bytes = [pops.to_vec(), vec![0u8; 256]].concat().into();
    let err: ProxyErr = chain
        .deploy_revert(
            "ConclaveProxy",
            &proxy_args(CONTEXT, &inf_pks, &inf_pops, 0),
        )
        .await?;
    ensure!(
        matches!(err, ProxyErr::BadPop(ref e) if e.index == U256::from(3)),
        "{err:?}"
    );
    // The same key twice.
    let dup_pks: Bytes = [pks.to_vec(), pks[..128].to_vec()].concat().into();
    let dup_pops: Bytes = [pops.to_vec(), pops[..256].to_vec()].concat().into();
    let err: ProxyErr = chain
        .deploy_revert(
            "ConclaveProxy",
            &proxy_args(CONTEXT, &dup_pks, &dup_pops, 0),
        )
        .await?;
    ensure!(
        matches!(err, ProxyErr::DuplicateMember(ref e) if e.index == U256::from(3)),
        "{err:?}"
    );
    // Quorum above the member count; no members; PoPs missing.
    let err: ProxyErr = chain
        .deploy_revert("ConclaveProxy", &proxy_args(CONTEXT, &pks, &pops, 4))
        .await?;
    ensure!(matches!(err, ProxyErr::InvalidQuorum(_)), "{err:?}");
    let err: ProxyErr = chain
        .deploy_revert(
            "ConclaveProxy",
            &proxy_args(CONTEXT, &Bytes::new(), &Bytes::new(), 0),
        )
        .await?;
    ensure!(matches!(err, ProxyErr::InvalidMembers(_)), "{err:?}");
    let err: ProxyErr = chain
        .deploy_revert(
            "ConclaveProxy",
            &proxy_args(CONTEXT, &pks, &pops.slice(..512), 0),
        )
        .await?;
    ensure!(matches!(err, ProxyErr::InvalidMembers(_)), "{err:?}");
    // The honest keys deploy.
    let (proxy, _) = deploy_proxy(&chain, CONTEXT, &keys, 0).await?;
    ensure!(proxy.memberCount().call().await? == 3 && proxy.quorum().call().await? == 3);
    Ok(())
}

/// A proxy deployed after its context's member set changed starts at the
/// context's epoch: that epoch's checkpoints pass, earlier ones do not.
#[tokio::test]
async fn a_proxy_deployed_later_starts_at_the_sets_epoch() -> anyhow::Result<()> {
    let chain = Chain::start().await?;
    let keys = test_keys(4, 3)?;
    let set = member_set(&keys, 0)?;
    let (pks, pops) = keys_and_pops(&keys);
    let args = (
        alloy::primitives::B256::from(CONTEXT),
        pks,
        pops,
        0u32,
        3u64,
    );
    let (addr, _) = chain
        .deploy(
            "ConclaveProxy",
            &alloy::sol_types::SolValue::abi_encode_params(&args),
        )
        .await?;
    let proxy = IConclaveProxy::new(addr, chain.provider.clone());
    ensure!(proxy.epoch().call().await? == 3);
    let mut p = payload_for(&chain, &proxy, CONTEXT, 0, 5);
    p.next_members_hash = set.hash();
    let (b, s) = certify(&keys, &p, &[0, 1, 2], None)?;
    ensure!(matches!(
        submit_refusal(&proxy, &p, b, s).await?,
        ProxyErr::WrongEpoch(ref e) if e.expected == 3 && e.got == 0
    ));
    p.epoch = 3;
    let (b, s) = certify(&keys, &p, &[0, 1, 2], None)?;
    submit(&proxy, &p, b, s).await?;
    ensure!(proxy.latestCheckpoint().call().await?.height == 5);
    Ok(())
}
