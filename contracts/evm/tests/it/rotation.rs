//! rotateMembers: only to the set a current-epoch checkpoint announced,
//! only with valid PoPs; afterwards only the new set signs.

use alloy::primitives::{Bytes, U256};
use anyhow::ensure;

use crate::fixture::*;

const CONTEXT: [u8; 32] = [0x70; 32];

#[tokio::test]
async fn rotation_to_announced_set_only() -> anyhow::Result<()> {
    let chain = Chain::start().await?;
    let old = test_keys(4, 4)?;
    let new = test_keys(5, 5)?;
    let old_set = member_set(&old, 0)?;
    let new_set = member_set(&new, 0)?;
    let (proxy, _) = deploy_proxy(&chain, CONTEXT, &old, 0).await?;
    let (pks, pops) = keys_and_pops(&new);

    // Height 1 keeps the set; height 2 announces the new one.
    let mut p1 = payload_for(&chain, &proxy, CONTEXT, 0, 1);
    p1.next_members_hash = old_set.hash();
    let (b, s) = certify(&old, &p1, &[0, 1, 2], None)?;
    submit(&proxy, &p1, b, s).await?;
    ensure!(proxy.checkpointAt(1).call().await?.nextMembersHash.0 == [0u8; 32]);
    let unknown = proxy.rotateMembers(1, pks.clone(), pops.clone(), 0);
    ensure!(matches!(
        refusal(unknown.call().await)?,
        ProxyErr::UnknownRotation(_)
    ));

    let mut p2 = payload_for(&chain, &proxy, CONTEXT, 0, 2);
    p2.next_members_hash = new_set.hash();
    let (b, s) = certify(&old, &p2, &[1, 2, 3], None)?;
    submit(&proxy, &p2, b, s).await?;
    ensure!(proxy.checkpointAt(2).call().await?.nextMembersHash.0 == new_set.hash());

    // Another quorum or another key list does not match the announced hash.
    let other_quorum = proxy.rotateMembers(2, pks.clone(), pops.clone(), 5);
    ensure!(matches!(
        refusal(other_quorum.call().await)?,
        ProxyErr::MembersHashMismatch(_)
    ));
    let (short_pks, short_pops) = keys_and_pops(&new[..4]);
    let fewer = proxy.rotateMembers(2, short_pks, short_pops, 0);
    ensure!(matches!(
        refusal(fewer.call().await)?,
        ProxyErr::MembersHashMismatch(_)
    ));
    // The right keys with a swapped PoP: the hash matches, the PoP check refuses.
    let mut swapped = pops.to_vec();
    let (a, rest) = swapped.split_at_mut(256);
    a.swap_with_slice(&mut rest[..256]);
    let bad_pop = proxy.rotateMembers(2, pks.clone(), Bytes::from(swapped), 0);
    ensure!(
        refusal(bad_pop.call().await)?
            == ProxyErr::BadPop(IConclaveProxy::BadPop { index: U256::ZERO })
    );

    proxy
        .rotateMembers(2, pks.clone(), pops.clone(), 0)
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(proxy.epoch().call().await? == 1);
    ensure!(proxy.membersHash().call().await?.0 == new_set.hash());
    ensure!(proxy.memberCount().call().await? == 5 && proxy.quorum().call().await? == 4);
    ensure!(proxy.members().call().await?.to_vec() == new_set.eip2537_keys());
    let replay = proxy.rotateMembers(2, pks, pops, 0);
    ensure!(matches!(
        refusal(replay.call().await)?,
        ProxyErr::UnknownRotation(_)
    ));

    // The old set can no longer sign: neither its epoch nor the new one.
    let old_epoch = payload_for(&chain, &proxy, CONTEXT, 0, 3);
    let (b, s) = certify(&old, &old_epoch, &[0, 1, 2, 3], None)?;
    ensure!(matches!(
        submit_refusal(&proxy, &old_epoch, b, s).await?,
        ProxyErr::WrongEpoch(_)
    ));
    let mut p3 = payload_for(&chain, &proxy, CONTEXT, 1, 3);
    p3.next_members_hash = new_set.hash();
    let (b, s) = certify(&old, &p3, &[0, 1, 2, 3], None)?;
    ensure!(matches!(
        submit_refusal(&proxy, &p3, b, s).await?,
        ProxyErr::BadSignature(_)
    ));
    // The new set signs epoch 1.
    let (b, s) = certify(&new, &p3, &[0, 1, 3, 4], None)?;
    submit(&proxy, &p3, b, s).await?;
    ensure!(proxy.latestCheckpoint().call().await?.height == 3);
    Ok(())
}

#[tokio::test]
async fn rotation_with_keys_registered_beforehand() -> anyhow::Result<()> {
    let chain = Chain::start().await?;
    let old = test_keys(4, 8)?;
    let new = test_keys(6, 9)?;
    let new_set = member_set(&new, 0)?;
    let (proxy, _) = deploy_proxy(&chain, CONTEXT, &old, 0).await?;
    let mut p = payload_for(&chain, &proxy, CONTEXT, 0, 1);
    p.next_members_hash = new_set.hash();
    let (b, s) = certify(&old, &p, &[0, 1, 2], None)?;
    submit(&proxy, &p, b, s).await?;
    let (pks, pops) = keys_and_pops(&new);

    // No PoPs inline and none registered: refused at the first key.
    let bare = proxy.rotateMembers(1, pks.clone(), Bytes::new(), 0);
    ensure!(
        refusal(bare.call().await)?
            == ProxyErr::BadPop(IConclaveProxy::BadPop { index: U256::ZERO })
    );
    // Registration checks each PoP too.
    let mut bad = pops.to_vec();
    bad[256 * 2 + 100] ^= 1;
    let r = proxy
        .registerKeys(pks.clone(), Bytes::from(bad))
        .call()
        .await;
    ensure!(matches!(refusal(r)?, ProxyErr::BadPop(ref e) if e.index == U256::from(2)));
    // Register in two batches, then rotate without PoPs.
    let (a_pks, a_pops) = keys_and_pops(&new[..3]);
    let (b_pks, b_pops) = keys_and_pops(&new[3..]);
    proxy
        .registerKeys(a_pks, a_pops)
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(proxy.keyRegistered(pks.slice(..128)).call().await?);
    ensure!(
        !proxy
            .keyRegistered(pks.slice(128 * 3..128 * 4))
            .call()
            .await?
    );
    let partial = proxy.rotateMembers(1, pks.clone(), Bytes::new(), 0);
    ensure!(
        refusal(partial.call().await)?
            == ProxyErr::BadPop(IConclaveProxy::BadPop {
                index: U256::from(3)
            })
    );
    proxy
        .registerKeys(b_pks, b_pops)
        .send()
        .await?
        .get_receipt()
        .await?;
    let r = proxy
        .rotateMembers(1, pks, Bytes::new(), 0)
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(r.status());
    ensure!(
        proxy.epoch().call().await? == 1 && proxy.membersHash().call().await?.0 == new_set.hash()
    );
    let p2 = payload_for(&chain, &proxy, CONTEXT, 1, 2);
    let (b, s) = certify(&new, &p2, &[0, 1, 2, 3, 4], None)?;
    submit(&proxy, &p2, b, s).await?;
    Ok(())
}
