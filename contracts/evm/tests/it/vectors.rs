//! The Solidity encodings and hash-to-curve against the shared JSON
//! vectors, and the static vector checkpoints on the vector address.

use std::path::PathBuf;

use alloy::primitives::{Address, Bytes, FixedBytes, U256};
use anyhow::{anyhow, ensure, Context};
use conclave_checkpoint::vectors::*;
use conclave_checkpoint::ChainKind;

use crate::fixture::*;

fn load<T: serde::de::DeserializeOwned>(name: &str) -> anyhow::Result<T> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../vectors")
        .join(name);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    Ok(serde_json::from_str(&text)?)
}

fn bytes(s: &str) -> anyhow::Result<Bytes> {
    Ok(from_hex(s)?.into())
}

async fn harness(
    chain: &Chain,
) -> anyhow::Result<IBLSHarness::IBLSHarnessInstance<alloy::providers::DynProvider>> {
    let (addr, _) = chain.deploy("BLSHarness", &[]).await?;
    Ok(IBLSHarness::new(addr, chain.provider.clone()))
}

#[tokio::test]
async fn hash_to_g2_keys_and_pops_match_vectors() -> anyhow::Result<()> {
    let chain = Chain::start().await?;
    let h = harness(&chain).await?;
    let file: HashToG2File = load("hash_to_g2.json")?;
    for c in &file.cases {
        let got = h
            .hashToG2(bytes(&c.msg)?, c.dst.as_bytes().to_vec().into())
            .call()
            .await?;
        ensure!(
            got == bytes(&c.point_eip2537)?,
            "hashToG2({}, {})",
            c.msg,
            c.dst
        );
    }
    let keys: KeysFile = load("keys.json")?;
    for k in &keys.keys {
        let pk = bytes(&k.pk_eip2537)?;
        ensure!(
            h.compressG1(pk.clone()).call().await? == bytes(&k.pk_compressed)?,
            "key {}",
            k.index
        );
        ensure!(
            h.verifyPop(pk.clone(), bytes(&k.pop_eip2537)?)
                .call()
                .await?,
            "PoP {}",
            k.index
        );
    }
    // A PoP is bound to its key.
    ensure!(
        !h.verifyPop(
            bytes(&keys.keys[0].pk_eip2537)?,
            bytes(&keys.keys[1].pop_eip2537)?
        )
        .call()
        .await?
    );
    // The point at infinity is never a key, whatever "PoP" comes with it.
    ensure!(
        !h.verifyPop(vec![0u8; 128].into(), vec![0u8; 256].into())
            .call()
            .await?
    );

    let members: MembersFile = load("members.json")?;
    for bad in &members.bad_registrations {
        let i = bad.bad_index as usize;
        let ok = h
            .verifyPop(bytes(&bad.pks_eip2537[i])?, bytes(&bad.pops_eip2537[i])?)
            .call()
            .await?;
        ensure!(!ok, "{}: PoP accepted", bad.name);
    }
    for set in &members.sets {
        let pks: Vec<u8> = set
            .key_indices
            .iter()
            .map(|i| from_hex(&keys.keys[*i as usize].pk_eip2537))
            .collect::<Result<Vec<_>, _>>()?
            .concat();
        let got = h.membersHash(pks.into(), set.quorum).call().await?;
        ensure!(
            got.0 == from_hex_n::<32>(&set.members_hash)?,
            "members hash {}",
            set.name
        );
    }
    Ok(())
}

#[tokio::test]
async fn payload_leaves_and_proofs_match_vectors() -> anyhow::Result<()> {
    let chain = Chain::start().await?;
    let h = harness(&chain).await?;
    let file: CheckpointsFile = load("checkpoints.json")?;
    let mut checked = 0;
    for case in file.valid.iter().chain(&file.invalid) {
        let p = case.payload.to_payload()?;
        let Some(addr) = p.domain.evm_address() else {
            continue;
        };
        let got = h
            .payload(
                p.domain.chain_id,
                Address::from(addr),
                FixedBytes(p.context_id),
                p.epoch,
                p.height,
                FixedBytes(p.state_root),
                FixedBytes(p.actions_root),
                FixedBytes(p.next_members_hash),
            )
            .call()
            .await?;
        ensure!(got == bytes(&case.payload_bytes)?, "payload {}", case.name);
        checked += 1;
    }
    ensure!(checked >= 10, "only {checked} EVM payloads");

    let actions: ActionsFile = load("actions.json")?;
    let root = FixedBytes(from_hex_n::<32>(&actions.root)?);
    for (i, v) in actions.actions.iter().enumerate() {
        let a = v.to_action()?;
        let Some(proxy) = a.domain.evm_address() else {
            continue;
        };
        ensure!(a.domain.kind == ChainKind::Evm);
        let leaf = h
            .actionLeaf(a.domain.chain_id, Address::from(proxy), sol_action(v)?)
            .call()
            .await?;
        ensure!(leaf.0 == from_hex_n::<32>(&v.leaf)?, "leaf {i}");
        let proof = v
            .proof
            .iter()
            .map(|s| Ok(FixedBytes(from_hex_n::<32>(s)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        ensure!(
            h.verifyProof(root, leaf, proof, U256::from(v.proof_index))
                .call()
                .await?,
            "proof {i}"
        );
    }
    for bad in &actions.invalid_proofs {
        let leaf = FixedBytes(from_hex_n::<32>(
            &actions.actions[bad.action_index as usize].leaf,
        )?);
        let proof = bad
            .proof
            .iter()
            .map(|s| Ok(FixedBytes(from_hex_n::<32>(s)?)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let ok = h
            .verifyProof(root, leaf, proof, U256::from(bad.proof_index))
            .call()
            .await?;
        ensure!(!ok, "{} accepted", bad.name);
    }
    Ok(())
}

/// The harness's Action tuple for an EVM action vector.
fn sol_action(v: &ActionVector) -> anyhow::Result<IBLSHarness::Action> {
    let addr = |s: &str| -> anyhow::Result<Address> { Ok(Address::from(from_hex_n::<20>(s)?)) };
    let kind = match v.kind.as_str() {
        "native" => 1,
        "token" => 2,
        "call" => 3,
        other => return Err(anyhow!("kind {other}")),
    };
    Ok(IBLSHarness::Action {
        id: FixedBytes(from_hex_n::<32>(&v.id)?),
        kind,
        token: v
            .token
            .as_deref()
            .map(addr)
            .transpose()?
            .unwrap_or(Address::ZERO),
        to: addr(&v.to)?,
        amount: U256::from(v.amount.parse::<u128>()?),
        data: bytes(&v.calldata)?,
    })
}

fn case_call(
    case: &CheckpointCase,
) -> anyhow::Result<(conclave_checkpoint::CheckpointPayload, U256, Bytes)> {
    let p = case.payload.to_payload()?;
    let bitmap = U256::from_be_bytes(from_hex_n::<32>(&case.signers_bitmap)?);
    Ok((p, bitmap, bytes(&case.signature_eip2537)?))
}

/// The error the proxy gives for a vector's reason (the domain is implicit
/// on chain, so a wrong domain shows as a bad signature).
fn expected(reason: &str) -> anyhow::Result<fn(&ProxyErr) -> bool> {
    Ok(match reason {
        "under_quorum" => |e| matches!(e, ProxyErr::UnderQuorum(_)),
        "wrong_domain" | "bad_signature" => |e| matches!(e, ProxyErr::BadSignature(_)),
        "wrong_epoch" => |e| matches!(e, ProxyErr::WrongEpoch(_)),
        "non_member_bit" => |e| matches!(e, ProxyErr::NonMemberBit(_)),
        other => return Err(anyhow!("no mapping for {other}")),
    })
}

#[tokio::test]
async fn vector_checkpoints_on_the_vector_address() -> anyhow::Result<()> {
    let chain = Chain::start().await?;
    let members: MembersFile = load("members.json")?;
    let checkpoints: CheckpointsFile = load("checkpoints.json")?;
    let keys = vector_keys()?;
    let set_keys = |name: &str| -> anyhow::Result<Vec<_>> {
        let set = members
            .sets
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| anyhow!("set {name}"))?;
        Ok(set
            .key_indices
            .iter()
            .map(|i| keys[*i as usize].clone())
            .collect())
    };
    let genesis = set_keys("genesis")?;
    let context = from_hex_n::<32>(&checkpoints.valid[0].payload.context_id)?;
    // First deployment of the first dev account: the vectors' proxy address.
    let (proxy, _) = deploy_proxy(&chain, context, &genesis, 0).await?;
    ensure!(proxy.address().into_array() == VECTOR_PROXY);
    ensure!(chain.chain_id == VECTOR_CHAIN_ID);

    for case in &checkpoints.invalid {
        let (p, bitmap, sig) = case_call(case)?;
        let err = submit_refusal(&proxy, &p, bitmap, sig).await?;
        let reason = case.reason.as_deref().unwrap_or_default();
        ensure!(
            expected(reason)?(&err),
            "{}: {reason} but got {err:?}",
            case.name
        );
    }
    for case in checkpoints
        .valid
        .iter()
        .filter(|c| c.member_set == "genesis" && c.payload.domain.kind == 1)
    {
        let (p, bitmap, sig) = case_call(case)?;
        let digest = proxy
            .checkpointDigest(
                p.epoch,
                p.height,
                FixedBytes(p.state_root),
                FixedBytes(p.actions_root),
                FixedBytes(p.next_members_hash),
            )
            .call()
            .await?;
        ensure!(
            digest.0 == from_hex_n::<32>(&case.digest)?,
            "{} digest",
            case.name
        );
        submit(&proxy, &p, bitmap, sig)
            .await
            .with_context(|| case.name.clone())?;
        ensure!(proxy.latestCheckpoint().call().await?.height == p.height);
    }
    // rotation_announced (height 3) commits to the rotated set.
    let rotated = set_keys("rotated")?;
    let (pks, pops) = keys_and_pops(&rotated);
    proxy
        .rotateMembers(3, pks, pops, 0)
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(proxy.epoch().call().await? == 1);
    let after = checkpoints
        .valid
        .iter()
        .find(|c| c.name == "after_rotation")
        .ok_or_else(|| anyhow!("after_rotation"))?;
    let (p, bitmap, sig) = case_call(after)?;
    submit(&proxy, &p, bitmap, sig).await?;
    let latest = proxy.latestCheckpoint().call().await?;
    ensure!(latest.height == 4 && latest.stateRoot.0 == p.state_root);
    Ok(())
}
