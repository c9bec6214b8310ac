//! The relayer's NEAR client (`conclave-bridge-near`) against a NEAR node
//! (`node/`) that executes what it is sent in `near-vm-runner` with this
//! crate's wasm: deploy and `new`, checkpoints, actions, rotations, the
//! refusals, and every bad input the client must name.

use std::sync::Arc;

use conclave_bridge_near::client::read_key_file;
use conclave_bridge_near::{Error, NearAccount, NearClient, NearProxy, Submitted, PROXY_WASM};
use conclave_checkpoint::vectors::from_hex_n;
use conclave_checkpoint::{
    action_id, Account, Action, ActionKind, CheckpointPayload, MemberSet, Outbox, Registration,
    Signature, SignerBitmap,
};

use crate::fixture::{self, ACCOUNT, NETWORK};
use crate::node::{key_for, Node, NEAR};

pub const RELAYER: &str = "relayer.testnet";
pub const ALICE: &str = "alice.testnet";

/// Vector key `i` with its proof of possession.
pub fn registration(i: u32) -> Registration {
    let sk = fixture::secret(i);
    Registration {
        public_key: sk.public_key(),
        pop: sk.prove_possession(),
    }
}

pub fn context() -> [u8; 32] {
    from_hex_n(&fixture::context_id()).expect("context id")
}

/// `payload` signed by the vector keys `keys`, claiming bits `bits`.
pub fn sign(payload: &CheckpointPayload, keys: &[u32], bits: &[usize]) -> ([u8; 32], Signature) {
    let digest = payload.digest();
    let sigs: Vec<Signature> = keys
        .iter()
        .map(|&k| fixture::secret(k).sign(&digest))
        .collect();
    let bitmap = SignerBitmap::from_indices(bits.iter().copied()).expect("bitmap");
    (
        bitmap.to_bytes(),
        Signature::aggregate(&sigs).expect("signatures"),
    )
}

/// A node with the proxy's account (50 NEAR), a relayer (10 NEAR) and
/// alice (1 NEAR); the proxy deployed there with vector keys 0..=3.
pub async fn deployed() -> (Node, NearClient, NearProxy) {
    let node = Node::start(NETWORK).await;
    let owner_key = key_for(ACCOUNT, "owner");
    node.create_account(ACCOUNT, 50 * NEAR, Some(&owner_key.public_key));
    let relayer_key = key_for(RELAYER, "relayer");
    node.create_account(RELAYER, 10 * NEAR, Some(&relayer_key.public_key));
    node.create_account(ALICE, NEAR, None);
    let client = NearClient::connect(&node.url, Some(NETWORK)).await.unwrap();
    let owner = Arc::new(NearAccount::open(client.clone(), owner_key).await.unwrap());
    let genesis: Vec<Registration> = (0..4).map(registration).collect();
    owner
        .deploy_proxy(PROXY_WASM, context(), &genesis, 0)
        .await
        .unwrap();
    let relayer = Arc::new(
        NearAccount::open(client.clone(), relayer_key)
            .await
            .unwrap(),
    );
    let proxy = NearProxy::open(
        client.clone(),
        ACCOUNT.parse().unwrap(),
        context(),
        Some(relayer),
    )
    .await
    .unwrap();
    (node, client, proxy)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_named_and_nothing_is_sent() {
    let node = Node::start(NETWORK).await;
    let err = NearClient::connect("not a url", None).await.unwrap_err();
    assert!(matches!(err, Error::BadUrl { .. }), "{err}");
    let err = NearClient::connect("ftp://127.0.0.1:1", None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::BadUrl { .. }), "{err}");
    // A port nothing listens on: bound, then released.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let err = NearClient::connect(&format!("http://{dead}"), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unreachable { .. }), "{err}");
    let err = NearClient::connect(&node.url, Some("mainnet"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::WrongNetwork { got, .. } if got == NETWORK),
        "{err}"
    );
    let client = NearClient::connect(&node.url, None).await.unwrap();
    assert_eq!(client.network(), NETWORK);

    // Key files.
    let dir = std::env::temp_dir().join(format!("conclave-near-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let garbage = dir.join("garbage.json");
    std::fs::write(&garbage, "ed25519:not json").unwrap();
    assert!(matches!(read_key_file(&garbage), Err(Error::Key { .. })));
    let mut mixed = key_for(RELAYER, "relayer");
    mixed.public_key = key_for(RELAYER, "other").public_key;
    let mixed_path = dir.join("mixed.json");
    std::fs::write(&mixed_path, serde_json::to_string(&mixed).unwrap()).unwrap();
    let err = read_key_file(&mixed_path).err().unwrap();
    assert!(err.to_string().contains("not the secret key's"), "{err}");
    let good = key_for(RELAYER, "relayer");
    let good_path = dir.join("good.json");
    std::fs::write(&good_path, serde_json::to_string(&good).unwrap()).unwrap();
    assert_eq!(
        read_key_file(&good_path).unwrap().public_key,
        good.public_key
    );
    // near-cli writes `private_key`.
    let cli_style = serde_json::json!({
        "account_id": RELAYER,
        "public_key": good.public_key,
        "private_key": good.secret_key,
    });
    std::fs::write(&good_path, cli_style.to_string()).unwrap();
    assert_eq!(
        read_key_file(&good_path).unwrap().account_id.as_str(),
        RELAYER
    );

    // No such account; an account without that key.
    let err = NearAccount::open(client.clone(), key_for(RELAYER, "relayer"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoAccount { .. }), "{err}");
    node.create_account(
        RELAYER,
        10 * NEAR,
        Some(&key_for(RELAYER, "other").public_key),
    );
    let err = NearAccount::open(client.clone(), key_for(RELAYER, "relayer"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoAccessKey { .. }), "{err}");

    // Not a proxy: no code there.
    let err = NearProxy::open(client.clone(), RELAYER.parse().unwrap(), context(), None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoContract { .. }), "{err}");

    // An account too poor to deploy the proxy's code is refused first.
    let poor = key_for("poor.testnet", "poor");
    node.create_account("poor.testnet", NEAR / 10, Some(&poor.public_key));
    let poor = Arc::new(NearAccount::open(client.clone(), poor).await.unwrap());
    let genesis: Vec<Registration> = (0..4).map(registration).collect();
    let err = poor
        .deploy_proxy(PROXY_WASM, context(), &genesis, 0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InsufficientBalance { .. }), "{err}");
    assert_eq!(node.accepted(), 0, "nothing may be sent on bad input");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_refuses_a_bad_signature_a_used_nonce_and_an_unfunded_signer() {
    use near_jsonrpc_client::methods::send_tx::RpcSendTransactionRequest;
    use near_primitives::transaction::{SignedTransaction, Transaction, TransactionV0};
    use near_primitives::views::TxExecutionStatus;

    let (node, client, proxy) = deployed().await;
    let rpc = near_jsonrpc_client::JsonRpcClient::connect(&node.url);
    let key = key_for(RELAYER, "relayer");
    let (_, head) = client.final_head().await.unwrap();
    let tx = |nonce: u64| {
        Transaction::V0(TransactionV0 {
            signer_id: key.account_id.clone(),
            public_key: key.public_key.clone(),
            nonce,
            receiver_id: ACCOUNT.parse().unwrap(),
            block_hash: near_primitives::hash::CryptoHash(head),
            actions: vec![conclave_bridge_near::proxy::function_call(
                "deposit",
                &serde_json::json!({}),
                1,
            )],
        })
    };
    let before = node.accepted();
    // Signed by another key than the one it names.
    let t = tx(1_000);
    let (hash, _) = t.get_hash_and_size();
    let forged = SignedTransaction::new(
        crate::node::signer(&key_for(RELAYER, "other")).sign(hash.as_ref()),
        t,
    );
    let err = rpc
        .call(RpcSendTransactionRequest {
            signed_transaction: forged,
            wait_until: TxExecutionStatus::Final,
        })
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("InvalidSignature"), "{err:?}");
    // A nonce at or below the access key's.
    let t = tx(0);
    let (hash, _) = t.get_hash_and_size();
    let stale = SignedTransaction::new(crate::node::signer(&key).sign(hash.as_ref()), t);
    let err = rpc
        .call(RpcSendTransactionRequest {
            signed_transaction: stale,
            wait_until: TxExecutionStatus::Final,
        })
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("InvalidNonce"), "{err:?}");
    assert_eq!(node.accepted(), before);

    // An account that cannot pay for the gas it attaches: the client
    // names the shortfall.
    let broke = key_for("broke.testnet", "broke");
    node.create_account("broke.testnet", 1, Some(&broke.public_key));
    let broke = Arc::new(NearAccount::open(client.clone(), broke).await.unwrap());
    let as_broke = NearProxy::open(client, ACCOUNT.parse().unwrap(), context(), Some(broke))
        .await
        .unwrap();
    let state = proxy.state().await.unwrap();
    let payload = fixture::payload(
        fixture::near_domain(NETWORK, ACCOUNT),
        0,
        1,
        [0; 32],
        state.members_hash,
    );
    let (bits, sig) = sign(&payload, &[0, 1, 2], &[0, 1, 2]);
    let err = as_broke
        .submit_checkpoint(&payload, &bits, &sig)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InsufficientBalance { .. }), "{err}");
    assert_eq!(node.accepted(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deploy_checkpoint_and_actions_run_in_the_proxy_wasm() {
    let (node, client, proxy) = deployed().await;
    // The account holds the proxy's code, deployed and initialised in one
    // transaction.
    assert_eq!(node.code(ACCOUNT).as_deref(), Some(PROXY_WASM));
    assert_eq!(node.calls(), ["new"]);
    let genesis: Vec<Registration> = (0..4).map(registration).collect();
    let state = proxy.state().await.unwrap();
    assert_eq!(
        state.members_hash,
        MemberSet::new(&genesis, 0).unwrap().hash()
    );
    assert_eq!((state.latest, state.epoch), (0, 0));
    let domain = proxy.domain().unwrap();
    assert_eq!(domain, fixture::near_domain(NETWORK, ACCOUNT));
    let on_chain: String = client
        .view(proxy.account_id(), "domain", &serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(on_chain, format!("0x{}", hex::encode(domain.encode())));
    let err = NearProxy::open(client.clone(), ACCOUNT.parse().unwrap(), [9; 32], None)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::WrongContext { .. }), "{err}");
    // `new` again: refused by the contract, nothing deployed twice.
    let owner = Arc::new(
        NearAccount::open(client.clone(), key_for(ACCOUNT, "owner"))
            .await
            .unwrap(),
    );
    let err = owner
        .deploy_proxy(PROXY_WASM, context(), &genesis, 0)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Refused { .. }), "{err}");

    // Height 2 emitted two actions: 3 NEAR to alice, 1 yocto to a missing
    // account.
    let pay = Action {
        id: action_id(&context(), 2, 0),
        domain,
        kind: ActionKind::NativeTransfer {
            to: Account::Near(ALICE.into()),
            amount: 3 * NEAR,
        },
    };
    let lost = Action {
        id: action_id(&context(), 2, 1),
        domain,
        kind: ActionKind::NativeTransfer {
            to: Account::Near("ghost.testnet".into()),
            amount: 1,
        },
    };
    let outbox = Outbox::new(vec![pay.clone(), lost.clone()]).unwrap();
    let payload = fixture::payload(domain, 0, 2, outbox.root(), state.members_hash);
    let (bits, sig) = sign(&payload, &[0, 1, 2], &[0, 1, 2]);

    // Forged: a tampered state root, an under-quorum bitmap.
    let mut tampered = payload;
    tampered.state_root = [0xee; 32];
    let err = proxy
        .submit_checkpoint(&tampered, &bits, &sig)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("BadSignature"), "{err}");
    let (two, sig2) = sign(&payload, &[0, 1], &[0, 1]);
    let err = proxy
        .submit_checkpoint(&payload, &two, &sig2)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("UnderQuorum"), "{err}");
    assert_eq!(proxy.state().await.unwrap().latest, 0);

    match proxy
        .submit_checkpoint(&payload, &bits, &sig)
        .await
        .unwrap()
    {
        Submitted::Done(sent) => assert!(sent.gas_burnt > 0 && sent.block.0 > 0),
        other => panic!("{other:?}"),
    }
    let stored = proxy.checkpoint_at(2).await.unwrap().unwrap();
    assert_eq!(stored.actions_root, outbox.root());
    assert_eq!(proxy.state().await.unwrap().latest, 2);
    // Posted already: settled from the view, nothing sent.
    let sent = node.accepted();
    assert!(matches!(
        proxy
            .submit_checkpoint(&payload, &bits, &sig)
            .await
            .unwrap(),
        Submitted::AlreadyDone(_)
    ));
    assert_eq!(node.accepted(), sent);

    // A forged action (the amount raised) does not prove.
    let mut greedy = pay.clone();
    greedy.kind = ActionKind::NativeTransfer {
        to: Account::Near(ALICE.into()),
        amount: 30 * NEAR,
    };
    let err = proxy
        .execute_action(2, &greedy, &outbox.proof(0).unwrap())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("BadProof"), "{err}");

    let alice = node.balance(ALICE);
    let done = proxy
        .execute_action(2, &pay, &outbox.proof(0).unwrap())
        .await
        .unwrap();
    assert!(matches!(done, Submitted::Done(_)), "{done:?}");
    assert_eq!(node.balance(ALICE), alice + 3 * NEAR);
    assert!(proxy.executed(pay.id).await.unwrap());
    let sent = node.accepted();
    assert!(matches!(
        proxy
            .execute_action(2, &pay, &outbox.proof(0).unwrap())
            .await
            .unwrap(),
        Submitted::AlreadyDone(_)
    ));
    assert_eq!(node.accepted(), sent);
    assert_eq!(node.balance(ALICE), alice + 3 * NEAR);

    // A payout whose receipt fails: executable again, reported as failing.
    let failed = proxy
        .execute_action(2, &lost, &outbox.proof(1).unwrap())
        .await
        .unwrap();
    assert!(matches!(failed, Submitted::ActionFails(_)), "{failed:?}");
    assert_eq!(proxy.action_status(lost.id).await.unwrap(), "none");

    // The refusals a relayer meets when another one wins the race between
    // its view and its transaction, as the proxy's wasm words them, settle
    // as "done": sent as they would be, bypassing the views.
    let raw = Arc::new(
        NearAccount::open(client.clone(), key_for(RELAYER, "relayer"))
            .await
            .unwrap(),
    );
    let stale = conclave_bridge_near::args::submit_checkpoint(&payload, &bits, &sig);
    let again =
        conclave_bridge_near::args::execute_action(2, &pay, &outbox.proof(0).unwrap()).unwrap();
    for (method, args, name) in [
        ("submit_checkpoint", stale, "StaleHeight"),
        ("execute_action", again, "AlreadyExecuted"),
    ] {
        let call = conclave_bridge_near::proxy::function_call(method, &args, 0);
        let err = raw
            .send(proxy.account_id(), vec![call], "raw")
            .await
            .unwrap_err();
        let Error::Refused { reason, .. } = err else {
            panic!("{method}: {err}");
        };
        assert!(reason.contains(name), "{method}: {reason}");
        assert!(
            matches!(
                conclave_bridge_near::proxy::settled(method, &reason),
                Some(Submitted::AlreadyDone(_))
            ),
            "{method}: {reason}"
        );
        // A real refusal does not settle.
        assert!(
            conclave_bridge_near::proxy::settled(method, "Smart contract panicked: BadProof")
                .is_none()
        );
    }
    assert_eq!(node.balance(ALICE), alice + 3 * NEAR, "paid once");

    // And through the proxy: no rotation is pending, so another relayer
    // rotated first.
    let sent = node.accepted();
    let rotated = proxy.rotate_members(2, &genesis).await.unwrap();
    assert!(matches!(rotated, Submitted::AlreadyDone(_)), "{rotated:?}");
    assert_eq!(node.accepted(), sent + 1, "that one was sent and refused");
}
