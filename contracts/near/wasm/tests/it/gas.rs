//! Gas per checkpoint and per member setup for 4, 10, 30 and 100 members
//! (vector keys 0..n, quorum `floor(2n/3) + 1`), in the VM with the latest
//! protocol's costs. `cargo test --manifest-path contracts/near/Cargo.toml
//! -p conclave-near-wasm --test it gas -- --nocapture` prints the table of
//! `contracts/near/GAS.md`.

use conclave_checkpoint::vectors::{from_hex_n, to_hex};
use near_primitives_core::types::Balance;
use serde_json::json;

use crate::fixture::{self, near_domain, ACCOUNT, NETWORK};
use crate::harness::Chain;

/// PoPs verified per `register_keys` transaction (about 8.3 TGas each).
const BATCH: usize = 25;
/// NEAR's limit on gas burnt by one function call.
const MAX_TGAS: f64 = 300.0;

struct Row {
    n: usize,
    quorum: usize,
    setup: String,
    quorum_signs: f64,
    all_sign: f64,
    all_sign_no_actions: f64,
    execute: f64,
    checkpoint_bytes: u64,
}

fn member(i: usize) -> serde_json::Value {
    let sk = fixture::secret(i as u32);
    json!({
        "public_key": to_hex(&sk.public_key().to_compressed()),
        "pop": to_hex(&sk.prove_possession().as_signature().to_compressed()),
    })
}

fn measure(n: usize) -> Row {
    let quorum = 2 * n / 3 + 1;
    let mut chain = Chain::new();
    let members: Vec<serde_json::Value> = (0..n).map(member).collect();
    // Up to BATCH PoPs are checked by `new`; a larger set is deployed
    // without PoPs and verified by `register_keys` in batches.
    let inline = n <= BATCH;
    let init_members: Vec<serde_json::Value> = if inline {
        members.clone()
    } else {
        members
            .iter()
            .map(|m| json!({ "public_key": m["public_key"] }))
            .collect()
    };
    let init = chain
        .call(
            "new",
            json!({
                "context_id": fixture::context_id(),
                "network": NETWORK,
                "members": init_members,
            }),
        )
        .ok();
    assert!(init.tgas() < MAX_TGAS, "init {n}: {}", init.tgas());
    let setup = if inline {
        format!("{:.1} (new)", init.tgas())
    } else {
        let mut batches = Vec::new();
        for batch in members.chunks(BATCH) {
            let call = chain
                .call_full(
                    crate::harness::RELAYER,
                    "register_keys",
                    json!({ "keys": batch }),
                    Balance::from_near(1),
                    vec![],
                )
                .ok();
            assert!(call.tgas() < MAX_TGAS);
            batches.push(call.tgas());
        }
        assert_eq!(chain.call("unverified_members", json!({})).ok().json(), 0);
        format!(
            "{:.1} (new {:.1} + register_keys {})",
            batches.iter().sum::<f64>() + init.tgas(),
            init.tgas(),
            batches
                .iter()
                .map(|t| format!("{t:.1}"))
                .collect::<Vec<_>>()
                .join(" + "),
        )
    };

    let hash: [u8; 32] = from_hex_n(
        chain
            .call("members_hash", json!({}))
            .ok()
            .json()
            .as_str()
            .expect("hex"),
    )
    .expect("hash");
    let domain = near_domain(NETWORK, ACCOUNT);
    let key = |b: usize| b as u32;

    // Height 1: a quorum signs, with an outbox of 8 native transfers.
    let ctx = from_hex_n(&fixture::context_id()).expect("ctx");
    let actions: Vec<conclave_checkpoint::Action> = (0..8u32)
        .map(|i| conclave_checkpoint::Action {
            id: conclave_checkpoint::action_id(&ctx, 1, i),
            domain,
            kind: conclave_checkpoint::ActionKind::NativeTransfer {
                to: conclave_checkpoint::Account::Near(format!("payee{i}.testnet")),
                amount: 1_000,
            },
        })
        .collect();
    let outbox = conclave_checkpoint::Outbox::new(actions).expect("outbox");
    let signers: Vec<usize> = (0..quorum).collect();
    let p1 = fixture::payload(domain, 0, 1, outbox.root(), hash);
    let quorum_signs = chain
        .call(
            "submit_checkpoint",
            fixture::sign(&p1, &signers, key).json(),
        )
        .ok()
        .tgas();
    let all: Vec<usize> = (0..n).collect();
    let p2 = fixture::payload(domain, 0, 2, outbox.root(), hash);
    let all_sign = chain
        .call("submit_checkpoint", fixture::sign(&p2, &all, key).json())
        .ok()
        .tgas();
    let p3 = fixture::payload(domain, 0, 3, [0u8; 32], hash);
    let storage_before = chain.storage_usage;
    let all_sign_no_actions = chain
        .call("submit_checkpoint", fixture::sign(&p3, &all, key).json())
        .ok()
        .tgas();
    let checkpoint_bytes = chain.storage_usage - storage_before;
    let execute = chain
        .call(
            "execute_action",
            json!({
                "checkpoint_height": 1,
                "action": fixture::action_arg(&outbox.actions()[5]),
                "proof": fixture::proof_arg(&outbox.proof(5).expect("proof")),
            }),
        )
        .ok()
        .tgas();
    Row {
        n,
        quorum,
        setup,
        quorum_signs,
        all_sign,
        all_sign_no_actions,
        execute,
        checkpoint_bytes,
    }
}

#[test]
fn gas_per_member_count() {
    let sizes: &[usize] = if std::env::var_os("CONCLAVE_NEAR_GAS_ALL").is_some() {
        &[4, 10, 30, 100]
    } else {
        &[4, 30]
    };
    println!("| members | quorum | member setup, TGas | submit: quorum signs | submit: all sign | submit: all sign, no actions | execute_action (native, 8 leaves) | storage per checkpoint, bytes |");
    println!("|---|---|---|---|---|---|---|---|");
    for &n in sizes {
        let r = measure(n);
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            r.n,
            r.quorum,
            r.setup,
            r.quorum_signs,
            r.all_sign,
            r.all_sign_no_actions,
            r.execute,
            r.checkpoint_bytes
        );
        // A checkpoint costs a handful of TGas whatever the set size.
        assert!(r.all_sign < 30.0, "{n} members: {} TGas", r.all_sign);
    }
}
