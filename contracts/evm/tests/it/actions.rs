//! executeAction: native and ERC-20 transfers, calls, refusals, and a
//! failed call that stays executable.

use alloy::primitives::{Address, FixedBytes, U256};
use alloy::sol_types::SolCall;
use anyhow::ensure;
use conclave_checkpoint::{action_id, Account, Action, ActionKind, Domain, MerkleProof, Outbox};

use crate::fixture::*;

const CONTEXT: [u8; 32] = [0xac; 32];
const ETHER: u128 = 1_000_000_000_000_000_000;

fn sol_action(a: &Action) -> IConclaveProxy::Action {
    let addr = |acc: &Account| match acc {
        Account::Evm(a) => Address::from(*a),
        Account::Near(_) => Address::ZERO,
    };
    let (kind, token, to, amount, data) = match &a.kind {
        ActionKind::NativeTransfer { to, amount } => (1, Address::ZERO, addr(to), *amount, vec![]),
        ActionKind::TokenTransfer { token, to, amount } => {
            (2, addr(token), addr(to), *amount, vec![])
        }
        ActionKind::ContractCall {
            to,
            value,
            calldata,
        } => (3, Address::ZERO, addr(to), *value, calldata.clone()),
    };
    IConclaveProxy::Action {
        id: FixedBytes(a.id),
        kind,
        token,
        to,
        amount: U256::from(amount),
        data: data.into(),
    }
}

fn proof_words(p: &MerkleProof) -> Vec<FixedBytes<32>> {
    p.siblings.iter().map(|s| FixedBytes(*s)).collect()
}

#[tokio::test]
async fn transfers_calls_and_refusals() -> anyhow::Result<()> {
    let chain = Chain::start().await?;
    let keys = test_keys(4, 3)?;
    let set = member_set(&keys, 0)?;
    let (proxy, _) = deploy_proxy(&chain, CONTEXT, &keys, 0).await?;
    let (token_addr, _) = chain.deploy("TestToken", &[]).await?;
    let (recv_addr, _) = chain.deploy("RevertingReceiver", &[]).await?;
    let token = ITestToken::new(token_addr, chain.provider.clone());
    let receiver = IRevertingReceiver::new(recv_addr, chain.provider.clone());
    chain.send_value(*proxy.address(), 10 * ETHER).await?;
    token
        .mint(*proxy.address(), U256::from(1000))
        .send()
        .await?
        .get_receipt()
        .await?;

    let here = Domain::evm(chain.chain_id, proxy.address().into_array());
    let recipient = Address::from([0x77; 20]);
    let to = |a: Address| Account::Evm(a.into_array());
    let poke = IRevertingReceiver::pokeCall { v: U256::from(42) }.abi_encode();
    let id = |i| action_id(&CONTEXT, 1, i);
    let actions = vec![
        Action {
            id: id(0),
            domain: here,
            kind: ActionKind::NativeTransfer {
                to: to(recipient),
                amount: ETHER,
            },
        },
        Action {
            id: id(1),
            domain: here,
            kind: ActionKind::TokenTransfer {
                token: to(token_addr),
                to: to(recipient),
                amount: 300,
            },
        },
        Action {
            id: id(2),
            domain: here,
            kind: ActionKind::ContractCall {
                to: to(recv_addr),
                value: 5,
                calldata: poke,
            },
        },
        Action {
            id: id(3),
            domain: here,
            kind: ActionKind::NativeTransfer {
                to: to(recv_addr),
                amount: 7,
            },
        },
        Action {
            id: id(4),
            domain: Domain::evm(1, here.evm_address().unwrap_or_default()),
            kind: ActionKind::NativeTransfer {
                to: to(recipient),
                amount: 1,
            },
        },
    ];
    let outbox = Outbox::new(actions.clone())?;
    let mut p = payload_for(&chain, &proxy, CONTEXT, 0, 1);
    p.actions_root = outbox.root();
    p.next_members_hash = set.hash();
    let (b, s) = certify(&keys, &p, &[0, 1, 2], None)?;
    submit(&proxy, &p, b, s).await?;

    let proof = |i: usize| {
        outbox
            .proof(i)
            .ok_or_else(|| anyhow::anyhow!("no proof {i}"))
    };
    let exec = |i: usize, pr: MerkleProof| {
        proxy.executeAction(
            1,
            sol_action(&actions[i]),
            proof_words(&pr),
            U256::from(pr.index),
        )
    };

    // Native transfer, once.
    exec(0, proof(0)?).send().await?.get_receipt().await?;
    ensure!(chain.balance(recipient).await? == U256::from(ETHER));
    ensure!(proxy.executed(FixedBytes(id(0))).call().await?);
    ensure!(matches!(
        refusal(exec(0, proof(0)?).call().await)?,
        ProxyErr::AlreadyExecuted(_)
    ));
    // ERC-20 transfer.
    exec(1, proof(1)?).send().await?.get_receipt().await?;
    ensure!(token.balanceOf(recipient).call().await? == U256::from(300));
    ensure!(token.balanceOf(*proxy.address()).call().await? == U256::from(700));

    // Bad inclusion proofs.
    let mut flipped = proof(2)?;
    flipped.siblings[0][0] ^= 1;
    ensure!(matches!(
        refusal(exec(2, flipped).call().await)?,
        ProxyErr::BadProof(_)
    ));
    let mut wrong_index = proof(2)?;
    wrong_index.index = 3;
    ensure!(matches!(
        refusal(exec(2, wrong_index).call().await)?,
        ProxyErr::BadProof(_)
    ));
    ensure!(matches!(
        refusal(exec(2, proof(3)?).call().await)?,
        ProxyErr::BadProof(_)
    ));
    // An action for another chain id is committed, but not for this proxy.
    ensure!(matches!(
        refusal(exec(4, proof(4)?).call().await)?,
        ProxyErr::BadProof(_)
    ));
    // Unknown checkpoint.
    let pr = proof(2)?;
    let unknown = proxy.executeAction(
        99,
        sol_action(&actions[2]),
        proof_words(&pr),
        U256::from(pr.index),
    );
    ensure!(matches!(
        refusal(unknown.call().await)?,
        ProxyErr::UnknownCheckpoint(_)
    ));

    // A reverting call and a refused payment leave the actions executable.
    ensure!(matches!(
        refusal(exec(2, proof(2)?).call().await)?,
        ProxyErr::CallFailed(_)
    ));
    let r = exec(2, proof(2)?)
        .gas(1_000_000)
        .send()
        .await?
        .get_receipt()
        .await?;
    ensure!(!r.status(), "the failing call must revert on chain");
    ensure!(!proxy.executed(FixedBytes(id(2))).call().await?);
    ensure!(matches!(
        refusal(exec(3, proof(3)?).call().await)?,
        ProxyErr::TransferFailed(_)
    ));
    receiver.setOpen(true).send().await?.get_receipt().await?;
    let r = exec(2, proof(2)?).send().await?.get_receipt().await?;
    ensure!(r.status());
    exec(3, proof(3)?).send().await?.get_receipt().await?;
    ensure!(receiver.value().call().await? == U256::from(42));
    ensure!(receiver.received().call().await? == U256::from(12));
    ensure!(
        proxy.executed(FixedBytes(id(2))).call().await?
            && proxy.executed(FixedBytes(id(3))).call().await?
    );
    ensure!(matches!(
        refusal(exec(2, proof(2)?).call().await)?,
        ProxyErr::AlreadyExecuted(_)
    ));
    Ok(())
}

#[tokio::test]
async fn reentrant_payee_cannot_execute_twice() -> anyhow::Result<()> {
    let chain = Chain::start().await?;
    let keys = test_keys(4, 10)?;
    let (proxy, _) = deploy_proxy(&chain, CONTEXT, &keys, 0).await?;
    let (thief_addr, _) = chain.deploy("ReentrantReceiver", &[]).await?;
    let thief = IReentrantReceiver::new(thief_addr, chain.provider.clone());
    chain.send_value(*proxy.address(), ETHER).await?;
    let here = Domain::evm(chain.chain_id, proxy.address().into_array());
    let pay = |i: u32, amount| Action {
        id: action_id(&CONTEXT, 1, i),
        domain: here,
        kind: ActionKind::NativeTransfer {
            to: Account::Evm(thief_addr.into_array()),
            amount,
        },
    };
    let actions = vec![pay(0, 10), pay(1, 20)];
    let outbox = Outbox::new(actions.clone())?;
    let mut p = payload_for(&chain, &proxy, CONTEXT, 0, 1);
    p.actions_root = outbox.root();
    let (b, s) = certify(&keys, &p, &[0, 1, 2], None)?;
    submit(&proxy, &p, b, s).await?;
    let call = |i: usize| -> anyhow::Result<IConclaveProxy::executeActionCall> {
        let pr = outbox
            .proof(i)
            .ok_or_else(|| anyhow::anyhow!("proof {i}"))?;
        Ok(IConclaveProxy::executeActionCall {
            checkpointHeight: 1,
            action: sol_action(&actions[i]),
            proof: proof_words(&pr),
            index: U256::from(pr.index),
        })
    };
    let exec = |c: IConclaveProxy::executeActionCall| {
        proxy.executeAction(c.checkpointHeight, c.action, c.proof, c.index)
    };

    // Paid for action 0, the payee re-enters for action 0 again, then for action 1.
    for reentry in [0, 1] {
        thief
            .arm(*proxy.address(), call(reentry)?.abi_encode().into())
            .send()
            .await?
            .get_receipt()
            .await?;
        ensure!(matches!(
            refusal(exec(call(0)?).call().await)?,
            ProxyErr::TransferFailed(_)
        ));
        let r = exec(call(0)?)
            .gas(1_000_000)
            .send()
            .await?
            .get_receipt()
            .await?;
        ensure!(!r.status(), "re-entry {reentry} must make the payment fail");
    }
    ensure!(!proxy.executed(FixedBytes(actions[0].id)).call().await?);
    ensure!(!proxy.executed(FixedBytes(actions[1].id)).call().await?);
    ensure!(thief.received().call().await? == U256::ZERO);
    // Disarmed, each action pays once.
    thief
        .arm(Address::ZERO, Default::default())
        .send()
        .await?
        .get_receipt()
        .await?;
    exec(call(0)?).send().await?.get_receipt().await?;
    exec(call(1)?).send().await?.get_receipt().await?;
    ensure!(thief.received().call().await? == U256::from(30));
    ensure!(matches!(
        refusal(exec(call(1)?).call().await)?,
        ProxyErr::AlreadyExecuted(_)
    ));
    Ok(())
}
