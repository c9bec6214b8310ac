//! `execute_action`: inclusion, at most once, the promises each kind
//! creates, the in-flight state and its callback, the storage stake.

use conclave_checkpoint::vectors::{from_hex_n, to_hex};
use conclave_checkpoint::{action_id, Account, Action, ActionKind, Outbox};
use near_sdk::mock::MockAction;
use near_sdk::test_utils::get_created_receipts;
use near_sdk::{Gas, NearToken, PromiseResult};

use super::fixture::{self, near_domain, ACCOUNT, NETWORK};
use super::{call, call_with, callback, proxy_at_near_checkpoint, submit};
use crate::error::ProxyError;
use crate::types::{ActionArg, ProofArg};
use crate::ConclaveProxy;

/// actions.json's NEAR action (index 3: 5 yoctoNEAR to alice.testnet) and
/// its proof against the root the NEAR checkpoint at height 2 carries.
fn near_vector_action() -> (ActionArg, ProofArg) {
    let file = fixture::actions_file();
    let v = &file.actions[3];
    assert_eq!(v.domain.kind, 2);
    let action = v.to_action().expect("action");
    (
        fixture::action_arg(&action),
        fixture::proof_arg(&v.to_proof().expect("proof")),
    )
}

fn execute(
    proxy: &mut ConclaveProxy,
    height: u64,
    a: &ActionArg,
    p: &ProofArg,
) -> Result<(), ProxyError> {
    call();
    proxy.execute_action(height, a.clone(), p.clone())
}

/// The method names of function-call actions in receipts to `receiver`.
fn calls_to(receiver: &str) -> Vec<(String, Vec<u8>, NearToken)> {
    get_created_receipts()
        .iter()
        .filter(|r| r.receiver_id.as_str() == receiver)
        .flat_map(|r| r.actions.clone())
        .filter_map(|a| match a {
            MockAction::FunctionCallWeight {
                method_name,
                args,
                attached_deposit,
                ..
            } => Some((
                String::from_utf8(method_name).expect("utf8"),
                args,
                attached_deposit,
            )),
            _ => None,
        })
        .collect()
}

fn transfers_to(receiver: &str) -> Vec<NearToken> {
    get_created_receipts()
        .iter()
        .filter(|r| r.receiver_id.as_str() == receiver)
        .flat_map(|r| r.actions.clone())
        .filter_map(|a| match a {
            MockAction::Transfer { deposit, .. } => Some(deposit),
            _ => None,
        })
        .collect()
}

#[test]
fn vector_action_pays_out_once() {
    let mut proxy = proxy_at_near_checkpoint();
    let (a, p) = near_vector_action();
    execute(&mut proxy, 2, &a, &p).expect("included");

    assert_eq!(
        transfers_to("alice.testnet"),
        vec![NearToken::from_yoctonear(5)]
    );
    let cb = calls_to(ACCOUNT);
    assert_eq!(cb.len(), 1);
    assert_eq!(cb[0].0, "on_action_done");
    let args: serde_json::Value = serde_json::from_slice(&cb[0].1).expect("json");
    assert_eq!(args["id"], a.id);
    assert_eq!(proxy.action_status(a.id.clone()), Ok("in_flight".into()));
    assert_eq!(proxy.is_executed(a.id.clone()), Ok(false));
    // In flight: not again until resolved.
    assert_eq!(execute(&mut proxy, 2, &a, &p), Err(ProxyError::InFlight));

    callback(PromiseResult::Successful(vec![]));
    assert_eq!(proxy.on_action_done(a.id.clone()), Ok(true));
    assert_eq!(proxy.is_executed(a.id.clone()), Ok(true));
    assert_eq!(
        super::events().last().expect("event")["event"],
        "action_executed"
    );
    assert_eq!(
        execute(&mut proxy, 2, &a, &p),
        Err(ProxyError::AlreadyExecuted)
    );
    assert!(transfers_to("alice.testnet").is_empty());
}

#[test]
fn failed_payout_leaves_the_action_executable() {
    let mut proxy = proxy_at_near_checkpoint();
    let (a, p) = near_vector_action();
    execute(&mut proxy, 2, &a, &p).expect("included");
    callback(PromiseResult::Failed);
    assert_eq!(proxy.on_action_done(a.id.clone()), Ok(false));
    assert_eq!(proxy.action_status(a.id.clone()), Ok("none".into()));
    assert_eq!(
        super::events().last().expect("event")["event"],
        "action_failed"
    );
    execute(&mut proxy, 2, &a, &p).expect("retry");
    assert_eq!(
        transfers_to("alice.testnet"),
        vec![NearToken::from_yoctonear(5)]
    );
}

/// actions.json's refused proofs, applied to the NEAR action the way they
/// were made for action 1: a flipped sibling bit, another index, a
/// truncated path, an index beyond the depth, another action's path. The
/// vectors' own refused proofs (EVM leaves) fail too.
#[test]
fn bad_inclusion_proofs() {
    let mut proxy = proxy_at_near_checkpoint();
    let (a, p) = near_vector_action();
    let file = fixture::actions_file();
    let names: Vec<&str> = file
        .invalid_proofs
        .iter()
        .map(|b| b.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "flipped_sibling",
            "wrong_index",
            "truncated",
            "index_out_of_range",
            "other_actions_proof"
        ]
    );
    let mut flipped = p.clone();
    let first = flipped.siblings[0].clone();
    let nibble = if first.ends_with('0') { "1" } else { "0" };
    flipped.siblings[0].replace_range(first.len() - 1.., nibble);
    let mut wrong_index = p.clone();
    wrong_index.index = 2;
    let mut truncated = p.clone();
    truncated.siblings.pop();
    let mut out_of_range = p.clone();
    out_of_range.index = 3 + 8;
    let other = fixture::proof_arg(&file.actions[2].to_proof().expect("proof"));
    for bad in [flipped, wrong_index, truncated, out_of_range, other] {
        assert_eq!(
            execute(&mut proxy, 2, &a, &bad),
            Err(ProxyError::BadProof),
            "{bad:?}"
        );
    }
    for bad in &file.invalid_proofs {
        let proof = fixture::proof_arg(&bad.to_proof().expect("proof"));
        assert_eq!(
            execute(&mut proxy, 2, &a, &proof),
            Err(ProxyError::BadProof),
            "{}",
            bad.name
        );
    }
    // Tampered fields.
    let mut more = a.clone();
    more.amount.0 += 1;
    assert_eq!(execute(&mut proxy, 2, &more, &p), Err(ProxyError::BadProof));
    let mut other_to = a.clone();
    other_to.to = "mallory.testnet".into();
    assert_eq!(
        execute(&mut proxy, 2, &other_to, &p),
        Err(ProxyError::BadProof)
    );
    // No checkpoint there.
    assert_eq!(
        execute(&mut proxy, 1, &a, &p),
        Err(ProxyError::UnknownCheckpoint(1))
    );
    assert_eq!(proxy.action_status(a.id.clone()), Ok("none".into()));
    assert!(get_created_receipts().is_empty());
}

/// An outbox at height 3 with one action per kind for this proxy and one
/// for another NEAR proxy, signed by the genesis set.
fn outbox_checkpoint(proxy: &mut ConclaveProxy) -> Outbox {
    let ctx = from_hex_n(&fixture::context_id()).expect("ctx");
    let mine = near_domain(NETWORK, ACCOUNT);
    let near = |s: &str| Account::Near(s.into());
    let actions = vec![
        Action {
            id: action_id(&ctx, 3, 0),
            domain: mine,
            kind: ActionKind::TokenTransfer {
                token: near("usdc.testnet"),
                to: near("bob.testnet"),
                amount: 250,
            },
        },
        Action {
            id: action_id(&ctx, 3, 1),
            domain: mine,
            kind: ActionKind::ContractCall {
                to: near("dao.testnet"),
                value: 3,
                calldata: fixture::call_data("vote", br#"{"proposal":7}"#),
            },
        },
        Action {
            id: action_id(&ctx, 3, 2),
            domain: near_domain(NETWORK, "other-proxy.testnet"),
            kind: ActionKind::NativeTransfer {
                to: near("alice.testnet"),
                amount: 1,
            },
        },
        Action {
            id: action_id(&ctx, 3, 3),
            domain: mine,
            kind: ActionKind::NativeTransfer {
                to: near("whale.testnet"),
                amount: NearToken::from_near(90).as_yoctonear(),
            },
        },
    ];
    let outbox = Outbox::new(actions).expect("outbox");
    let (_, _, hash) = fixture::member_set("genesis");
    let p = fixture::payload(mine, 0, 3, outbox.root(), from_hex_n(&hash).expect("hash"));
    submit(proxy, &fixture::sign(&p, &[0, 1, 2], |b| b as u32)).expect("checkpoint 3");
    outbox
}

fn arg_at(outbox: &Outbox, i: usize) -> (ActionArg, ProofArg) {
    (
        fixture::action_arg(&outbox.actions()[i]),
        fixture::proof_arg(&outbox.proof(i).expect("proof")),
    )
}

#[test]
fn token_transfer_attaches_one_yocto() {
    let mut proxy = proxy_at_near_checkpoint();
    let outbox = outbox_checkpoint(&mut proxy);
    let (a, p) = arg_at(&outbox, 0);
    execute(&mut proxy, 3, &a, &p).expect("included");
    let calls = calls_to("usdc.testnet");
    assert_eq!(calls.len(), 1);
    let (method, args, deposit) = &calls[0];
    assert_eq!(method, "ft_transfer");
    assert_eq!(*deposit, NearToken::from_yoctonear(1));
    let args: serde_json::Value = serde_json::from_slice(args).expect("json");
    assert_eq!(
        args,
        serde_json::json!({"receiver_id": "bob.testnet", "amount": "250"})
    );
    assert_eq!(calls_to(ACCOUNT)[0].0, "on_action_done");
}

#[test]
fn contract_call_passes_method_args_and_deposit() {
    let mut proxy = proxy_at_near_checkpoint();
    let outbox = outbox_checkpoint(&mut proxy);
    let (a, p) = arg_at(&outbox, 1);
    execute(&mut proxy, 3, &a, &p).expect("included");
    let receipts = get_created_receipts();
    let call_receipt = receipts
        .iter()
        .find(|r| r.receiver_id.as_str() == "dao.testnet")
        .expect("call receipt");
    match &call_receipt.actions[..] {
        [MockAction::FunctionCallWeight {
            method_name,
            args,
            attached_deposit,
            prepaid_gas,
            ..
        }] => {
            assert_eq!(method_name, b"vote");
            assert_eq!(args, br#"{"proposal":7}"#);
            assert_eq!(*attached_deposit, NearToken::from_yoctonear(3));
            assert!(*prepaid_gas >= Gas::from_tgas(10));
        }
        other => panic!("unexpected actions {other:?}"),
    }
}

#[test]
fn action_for_another_domain_is_refused() {
    let mut proxy = proxy_at_near_checkpoint();
    let outbox = outbox_checkpoint(&mut proxy);
    // Its proof is valid for its own leaf, but the contract rebuilds the
    // leaf with its own domain.
    let (a, p) = arg_at(&outbox, 2);
    assert_eq!(execute(&mut proxy, 3, &a, &p), Err(ProxyError::BadProof));
    assert!(get_created_receipts().is_empty());
}

#[test]
fn payout_may_not_touch_the_storage_stake() {
    let mut proxy = proxy_at_near_checkpoint();
    let outbox = outbox_checkpoint(&mut proxy);
    let (a, p) = arg_at(&outbox, 3);
    // The mocked account uses 300 KiB of storage (3.072 NEAR staked): a
    // balance 1 milliNEAR above the payout cannot pay it, 100 NEAR can.
    let payout = NearToken::from_near(90);
    call_with(
        NearToken::from_yoctonear(0),
        payout.saturating_add(NearToken::from_millinear(1)),
    );
    assert_eq!(
        proxy.execute_action(3, a.clone(), p.clone()),
        Err(ProxyError::InsufficientBalance)
    );
    assert_eq!(proxy.action_status(a.id.clone()), Ok("none".into()));
    assert!(get_created_receipts().is_empty());
    call_with(NearToken::from_yoctonear(0), NearToken::from_near(100));
    proxy
        .execute_action(3, a, p)
        .expect("enough above the stake");
    assert_eq!(transfers_to("whale.testnet"), vec![payout]);
}

#[test]
fn ids_match_the_vectors() {
    let file = fixture::actions_file();
    let ctx = from_hex_n(&file.context_id).expect("ctx");
    for (i, a) in file.actions.iter().enumerate() {
        assert_eq!(a.id, to_hex(&action_id(&ctx, file.height, i as u32)));
    }
}

/// A checkpoint at height 3 whose outbox is the one raw leaf `encoding`
/// (the root of a one-leaf tree is the leaf).
fn single_leaf_checkpoint(proxy: &mut ConclaveProxy, encoding: &[u8]) {
    let root = crate::codec::leaf_hash(encoding);
    let (_, _, hash) = fixture::member_set("genesis");
    let p = fixture::payload(
        near_domain(NETWORK, ACCOUNT),
        0,
        3,
        root,
        from_hex_n(&hash).expect("hash"),
    );
    submit(proxy, &fixture::sign(&p, &[0, 1, 2], |b| b as u32)).expect("checkpoint 3");
}

/// Leaves that a quorum signed but that are no valid NEAR action are
/// refused without a promise: unknown kind, a transfer with data, bad
/// account ids, call data that is not `len || method || args`.
#[test]
fn malformed_actions_are_refused() {
    let domain = crate::codec::near_domain(NETWORK, ACCOUNT);
    let id = [7u8; 32];
    let cases: [(u8, &str, &str, &[u8], &str); 5] = [
        (9, "", "bob.testnet", b"", "unknown kind"),
        (
            1,
            "",
            "bob.testnet",
            b"\x00\x00\x00\x00",
            "token or data not allowed for this kind",
        ),
        (
            1,
            "",
            "Not An Account",
            b"",
            "receiver is not an account id",
        ),
        (
            2,
            "bad token!",
            "bob.testnet",
            b"",
            "token is not an account id",
        ),
        (
            3,
            "",
            "dao.testnet",
            b"\x00\x00\x00\x09vote",
            "call data is not len || method || args",
        ),
    ];
    for (kind, token, to, data, why) in cases {
        let mut proxy = proxy_at_near_checkpoint();
        let encoding = crate::codec::near_leaf_encoding(&domain, &id, kind, token, to, 5, data);
        single_leaf_checkpoint(&mut proxy, &encoding);
        let a = ActionArg {
            id: to_hex(&id),
            kind,
            token: token.into(),
            to: to.into(),
            amount: near_sdk::json_types::U128(5),
            data: to_hex(data),
        };
        let p = ProofArg {
            index: 0,
            siblings: vec![],
        };
        assert_eq!(
            execute(&mut proxy, 3, &a, &p),
            Err(ProxyError::BadAction(why))
        );
        assert_eq!(proxy.action_status(a.id.clone()), Ok("none".into()));
        assert!(get_created_receipts().is_empty());
    }
}

#[test]
fn deposits_are_logged() {
    let mut proxy = proxy_at_near_checkpoint();
    call_with(NearToken::from_near(2), NearToken::from_near(102));
    proxy.deposit();
    let ev = super::events().pop().expect("event");
    assert_eq!(ev["event"], "deposit");
    assert_eq!(
        ev["data"][0]["amount"],
        NearToken::from_near(2).as_yoctonear().to_string()
    );
    call();
    let kept = proxy.ft_on_transfer(
        super::account("alice.testnet"),
        near_sdk::json_types::U128(42),
        String::new(),
    );
    assert!(matches!(
        kept,
        near_sdk::PromiseOrValue::Value(near_sdk::json_types::U128(0))
    ));
    let ev = super::events().pop().expect("event");
    assert_eq!(ev["event"], "token_deposit");
    assert_eq!(ev["data"][0]["token"], super::RELAYER);
}
