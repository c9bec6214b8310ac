//! Checkpoints of a four-member context: they appear at the interval,
//! every aggregate verifies (checked here with `conclave-checkpoint`'s
//! `Verifier` on the bytes the RPC returns), they still complete with one
//! member down (3 of 4 ≥ quorum) and do not with two down; a DAO payout
//! decided in the context becomes an action whose proof verifies against
//! the checkpointed actions root.

use std::time::{Duration, Instant};

use conclave_checkpoint::bls::{ProofOfPossession, PublicKey};
use conclave_checkpoint::{
    verify_action, Account, Action, ActionKind, Certificate, CheckpointPayload, Domain, MemberSet,
    MerkleProof, Registration, Signature, SignerBitmap, Verifier,
};
use conclave_consensus::ContextId;
use conclave_node::checkpoint::view::CheckpointView;
use conclave_node::rpc::{CheckpointApiClient, ConclaveApiClient};
use conclave_tests::{http_raw, signed, wait_committed, NetOptions, TestNet, TestNode};

use crate::COMMIT_TIMEOUT;

const EVM_ANCHOR: &str = "evm:31337:0x5fbdb2315678afecb367f032d93f642f64180aa3";
const NEAR_ANCHOR: &str = "near:testnet:dao.testnet";

/// The context's BLS member set, from the genesis members a node reports.
async fn member_set(node: &TestNode, ctx: ContextId) -> MemberSet {
    let info = node.client().context_info(ctx).await.unwrap();
    let regs: Vec<Registration> = info
        .members
        .iter()
        .map(|m| Registration {
            public_key: PublicKey::from_compressed(&m.bls_public_key).unwrap(),
            pop: ProofOfPossession::from_compressed(&m.bls_pop).unwrap(),
        })
        .collect();
    MemberSet::new(&regs, 0).unwrap()
}

/// Verifies every domain of a checkpoint from the RPC's bytes alone, and
/// that its payload is the block's; returns the signer count.
async fn verify_independently(
    node: &TestNode,
    ctx: ContextId,
    set: &MemberSet,
    cp: &CheckpointView,
    domains: usize,
) -> u32 {
    assert!(cp.verifies, "node says it does not verify: {cp:?}");
    assert_eq!(cp.domains.len(), domains);
    let block = node.client().block_get(ctx, Some(cp.height)).await.unwrap();
    let mut signers = None;
    for d in &cp.domains {
        let payload =
            CheckpointPayload::decode(&hex::decode(&d.payload).unwrap()).expect("payload");
        assert_eq!(payload.context_id, ctx.0);
        assert_eq!(payload.height, cp.height);
        assert_eq!(payload.epoch, 0);
        assert_eq!(payload.state_root, block.header.state_root.0);
        assert_eq!(payload.actions_root, block.header.actions_root.0);
        assert_eq!(payload.next_members_hash, set.hash());
        assert_eq!(hex::encode(payload.digest()), d.digest);
        let bitmap: [u8; 32] = hex::decode(&d.signers_bitmap).unwrap().try_into().unwrap();
        let cert = Certificate {
            signers: SignerBitmap::from_bytes(bitmap),
            signature: Signature::from_compressed(&hex::decode(&d.signature).unwrap()).unwrap(),
        };
        let sig_eip = Signature::from_eip2537(&hex::decode(&d.signature_eip2537).unwrap());
        assert_eq!(sig_eip.unwrap(), cert.signature, "both encodings agree");
        Verifier {
            domain: payload.domain,
            epoch: 0,
            members: set,
        }
        .verify(&payload, &cert)
        .unwrap_or_else(|e| panic!("checkpoint {} does not verify: {e}", cp.height));
        let n = cert.signers.count();
        assert_eq!(*signers.get_or_insert(n), n, "same signers on every domain");
        assert_eq!(d.signers.len() as u32, n);
    }
    signers.unwrap()
}

/// Commits one kv tx through `node` and returns its height.
async fn one_tx(node: &TestNode, ctx: ContextId, i: usize) -> u64 {
    let s = crate::commit_set(node, ctx, &format!("k{i}"), &i.to_string()).await;
    s.height.unwrap()
}

/// Waits until `node` holds a checkpoint at `height`.
async fn wait_checkpoint(node: &TestNode, ctx: ContextId, height: u64) -> CheckpointView {
    let c = node.client();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(cp) = c.checkpoint_get(ctx, height).await {
            return cp;
        }
        assert!(
            Instant::now() < deadline,
            "no checkpoint at height {height}; log:\n{}",
            node.log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn metric(text: &str, series: &str) -> Option<i64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_checkpoints_at_interval_verify_and_survive_f1_not_f2() {
    let opts = NetOptions {
        anchors: vec![EVM_ANCHOR.into(), NEAR_ANCHOR.into()],
        checkpoint_interval: 2,
        ..Default::default()
    };
    let mut net = TestNet::start_with(4, opts).await;
    let ctx = net.context;
    let set = member_set(&net.nodes[0], ctx).await;

    // Heights 1..=4 at least: checkpoints at 2 and 4 on every member.
    let mut i = 0;
    let mut tip = 0;
    while tip < 4 {
        tip = one_tx(&net.nodes[i % 4], ctx, i).await;
        i += 1;
    }
    for node in &net.nodes {
        for h in [2, 4] {
            let cp = wait_checkpoint(node, ctx, h).await;
            let signers = verify_independently(node, ctx, &set, &cp, 2).await;
            assert!(signers >= 3, "height {h}: {signers} signers");
        }
        // Only interval heights (no actions in kv).
        let list = node
            .client()
            .checkpoint_list(ctx, None, None)
            .await
            .unwrap();
        assert!(list.iter().all(|c| c.height % 2 == 0), "{list:?}");
        assert!(list.len() >= 2);
    }
    // Metrics.
    let (_, text) = http_raw(net.nodes[0].metrics, "GET", "/metrics", b"");
    let label = format!("{{context=\"{ctx}\"}}");
    let cp_height = metric(&text, &format!("conclave_checkpoint_height{label}")).unwrap();
    assert!(cp_height >= 4 && cp_height % 2 == 0, "{text}");
    assert!(metric(&text, &format!("conclave_checkpoint_signers{label}")).unwrap() >= 3);
    assert_eq!(
        metric(&text, &format!("conclave_actions_pending{label}")),
        Some(0)
    );

    // One member down: three of four still complete new checkpoints.
    net.nodes[3].kill9();
    let target = tip + 4;
    while tip < target {
        tip = one_tx(&net.nodes[i % 3], ctx, i).await;
        i += 1;
    }
    let last_even = tip - tip % 2;
    for node in &net.nodes[..3] {
        let cp = wait_checkpoint(node, ctx, last_even).await;
        let signers = verify_independently(node, ctx, &set, &cp, 2).await;
        assert_eq!(signers, 3, "the dead member did not sign");
    }

    // Two down: consensus halts and no checkpoint completes.
    net.nodes[2].kill9();
    let before: Vec<_> = {
        let mut v = Vec::new();
        for n in &net.nodes[..2] {
            v.push(
                n.client()
                    .checkpoint_latest(ctx)
                    .await
                    .unwrap()
                    .map(|c| c.height),
            );
        }
        v
    };
    let keys = net.nodes[0].keys();
    let c = net.nodes[0].client();
    let nonce = c.context_nonce(ctx, keys.member_id()).await.unwrap();
    let pending = c
        .tx_submit(signed(
            &keys,
            ctx,
            nonce,
            "set",
            r#"{"key":"x","value":"1"}"#,
        ))
        .await
        .unwrap()
        .tx_hash;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (n, b) in net.nodes[..2].iter().zip(&before) {
            let now = n
                .client()
                .checkpoint_latest(ctx)
                .await
                .unwrap()
                .map(|c| c.height);
            assert_eq!(&now, b, "no checkpoint without a quorum");
            assert_eq!(n.client().context_info(ctx).await.unwrap().height, tip);
        }
    }
    assert_eq!(c.tx_status(pending).await.unwrap().status, "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_dao_payout_is_an_action_with_a_verifying_proof() {
    let opts = NetOptions {
        app: "dao".into(),
        anchors: vec![EVM_ANCHOR.into()],
        // Far away: the action's own height must be a checkpoint.
        checkpoint_interval: 1000,
        ..NetOptions::default()
    };
    let net = TestNet::start_with(4, opts).await;
    let ctx = net.context;
    let set = member_set(&net.nodes[0], ctx).await;

    let call = |i: usize, method: &'static str, args: String| {
        let node = &net.nodes[i];
        async move {
            let keys = node.keys();
            let c = node.client();
            let nonce = c.context_nonce(ctx, keys.member_id()).await.unwrap();
            let h = c
                .tx_submit(signed(&keys, ctx, nonce, method, &args))
                .await
                .unwrap()
                .tx_hash;
            wait_committed(&c, h, COMMIT_TIMEOUT).await
        }
    };
    let s = call(0, "configure", r#"{"threshold":3}"#.into()).await;
    assert_eq!(s.status, "committed", "{s:?}");
    // A malformed proposal fails its tx and changes nothing.
    let bad = call(
        1,
        "propose",
        r#"{"domain":{"evm":{"chain_id":31337,"proxy":"0x1234"}},"action":{"native":{"to":"0x00","amount":"1"}}}"#.into(),
    )
    .await;
    assert_eq!(bad.status, "failed", "{bad:?}");
    let to = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
    let propose = format!(
        r#"{{"domain":{{"evm":{{"chain_id":31337,"proxy":"0x5fbdb2315678afecb367f032d93f642f64180aa3"}}}},"action":{{"native":{{"to":"{to}","amount":"1000000000000000000"}}}},"description":"grant"}}"#
    );
    let s = call(0, "propose", propose).await;
    assert_eq!(s.status, "committed", "{s:?}");
    assert!(s.output.as_deref().unwrap().contains(r#""executed":false"#));
    let s = call(1, "vote", r#"{"id":0}"#.into()).await;
    assert_eq!(s.status, "committed", "{s:?}");
    assert!(net.nodes[0]
        .client()
        .action_list(ctx, None, None)
        .await
        .unwrap()
        .is_empty());
    let s = call(2, "vote", r#"{"id":0}"#.into()).await;
    assert_eq!(s.status, "committed", "{s:?}");
    assert!(s.output.as_deref().unwrap().contains(r#""executed":true"#));
    let action_height = s.height.unwrap();
    // A fourth vote is refused by the app: the action is requested once.
    let s = call(3, "vote", r#"{"id":0}"#.into()).await;
    assert_eq!(s.status, "failed");

    for node in &net.nodes {
        let c = node.client();
        let actions = c.action_list(ctx, None, None).await.unwrap();
        assert_eq!(actions.len(), 1, "{actions:?}");
        let a = &actions[0];
        assert_eq!(a.height, action_height);
        assert_eq!(a.index, 0);
        assert_eq!(a.kind, "native_transfer");
        assert_eq!(a.to, to);
        assert_eq!(a.amount, "1000000000000000000");
        // The checkpoint of the action's own height (not an interval one).
        let cp = wait_checkpoint(node, ctx, action_height).await;
        assert!(verify_independently(node, ctx, &set, &cp, 1).await >= 3);
        let p = c.action_proof(ctx, a.id.clone()).await.unwrap();
        assert_eq!(p.actions_root, cp.actions_root);
        // Rebuild the action from what we asked for, and verify its proof
        // against the checkpointed root.
        let id: [u8; 32] = hex::decode(&a.id).unwrap().try_into().unwrap();
        let action = Action {
            id,
            domain: Domain::evm(31337, hex_addr("5fbdb2315678afecb367f032d93f642f64180aa3")),
            kind: ActionKind::NativeTransfer {
                to: Account::Evm(hex_addr(&to[2..])),
                amount: 1_000_000_000_000_000_000,
            },
        };
        assert_eq!(
            id,
            conclave_checkpoint::action_id(&ctx.0, action_height, 0),
            "id = action_id(context, height, index)"
        );
        let proof = MerkleProof {
            index: p.proof_index,
            siblings: p
                .proof
                .iter()
                .map(|s| hex::decode(s).unwrap().try_into().unwrap())
                .collect(),
        };
        verify_action(&cp.actions_root.0, &action, &proof).expect("proof verifies");
        let mut other = action.clone();
        other.kind = ActionKind::NativeTransfer {
            to: Account::Evm(hex_addr(&to[2..])),
            amount: 2,
        };
        assert!(verify_action(&cp.actions_root.0, &other, &proof).is_err());
        // Unknown ids and bad params are clear errors.
        let e = c
            .action_proof(ctx, hex::encode([7u8; 32]))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no action"), "{e}");
        let e = c.action_proof(ctx, "xyz".into()).await.unwrap_err();
        assert!(e.to_string().contains("not hex"), "{e}");
        let e = c.checkpoint_get(ContextId([1; 32]), 1).await.unwrap_err();
        assert!(e.to_string().contains("unknown context"), "{e}");
    }
}

fn hex_addr(h: &str) -> [u8; 20] {
    hex::decode(h).unwrap().try_into().unwrap()
}
