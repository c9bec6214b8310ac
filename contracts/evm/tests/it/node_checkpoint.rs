//! A checkpoint made by the node's own collector (`conclave_node::
//! checkpoint`: payload fields, members hash, bitmap in member order,
//! aggregation of gossiped shares) is accepted by the proxy, and an action
//! of the node's outbox executes against it.

use alloy::primitives::{Address, FixedBytes, U256};
use anyhow::{ensure, Context as _};
use conclave_checkpoint::{action_id, Account, Action, ActionKind, Domain, Outbox, Signature};
use conclave_consensus::{ContextId, Hash32, MemberId};
use conclave_node::checkpoint::{Collector, Params};

use crate::fixture::*;

const CONTEXT: [u8; 32] = [0xc0; 32];
const ETHER: u128 = 1_000_000_000_000_000_000;

#[tokio::test]
async fn proxy_accepts_a_node_made_checkpoint_and_executes_its_action() -> anyhow::Result<()> {
    let chain = Chain::start().await?;
    let keys = test_keys(4, 0x5c)?;
    let (proxy, _) = deploy_proxy(&chain, CONTEXT, &keys, 0).await?;
    chain.send_value(*proxy.address(), 2 * ETHER).await?;
    let domain = Domain::evm(chain.chain_id, proxy.address().into_array());

    // The outbox of height 2: one payout, as exec builds it.
    let recipient = Address::from([0x42; 20]);
    let action = Action {
        id: action_id(&CONTEXT, 2, 0),
        domain,
        kind: ActionKind::NativeTransfer {
            to: Account::Evm(recipient.into_array()),
            amount: ETHER,
        },
    };
    let outbox = Outbox::new(vec![action.clone()])?;

    let set = member_set(&keys, 0)?;
    let params = std::sync::Arc::new(Params {
        context: ContextId(CONTEXT),
        members: (0..4u8).map(|i| MemberId([i + 1; 32])).collect(),
        next_members_hash: set.hash(),
        set,
        domains: vec![domain],
        interval: 10,
        epoch: 0,
    });
    let mut nodes: Vec<Collector> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| Collector::new(params.members[i], k.clone(), 0))
        .collect();
    let state_root = Hash32([0x57; 32]);
    let actions_root = Hash32(outbox.root());
    // Members 1 and 3 commit and gossip; member 0 aggregates (2 is down,
    // so the round completes at member 0's resend tick).
    let mut shares = Vec::new();
    for i in [1usize, 3] {
        let step = nodes[i].on_commit(2, state_root, actions_root, 1, params.clone());
        shares.push(step.gossip.context("a share")?);
    }
    ensure!(nodes[0]
        .on_commit(2, state_root, actions_root, 1, params.clone())
        .completed
        .is_none());
    for s in shares {
        ensure!(
            nodes[0].on_share(s, Some(&params))?.completed.is_none(),
            "a quorum waits for the last member's share or the tick"
        );
    }
    let record = nodes[0]
        .settle_waiting()
        .into_iter()
        .find_map(|step| step.completed.map(|(r, _)| r))
        .context("3 of 4 complete the checkpoint at the tick")?;
    let cert = &record.certificates[0];
    let payload = params.payload(domain, 2, state_root, actions_root);
    let sig = Signature::from_compressed(&cert.signature)?;
    submit(
        &proxy,
        &payload,
        U256::from_be_bytes(cert.signers),
        sig.to_eip2537().to_vec().into(),
    )
    .await?;
    ensure!(proxy.latestCheckpoint().call().await?.height == 2);

    let proof = outbox.proof(0).context("proof")?;
    let r = proxy
        .executeAction(
            2,
            IConclaveProxy::Action {
                id: FixedBytes(action.id),
                kind: 1,
                token: Address::ZERO,
                to: recipient,
                amount: U256::from(ETHER),
                data: Vec::new().into(),
            },
            proof.siblings.iter().map(|s| FixedBytes(*s)).collect(),
            U256::from(proof.index),
        )
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(r.status(), "executeAction reverted");
    ensure!(chain.balance(recipient).await? == U256::from(ETHER));
    Ok(())
}
