//! The lowered wasm under NEAR's preparation and VM.

use conclave_near_wasm::{PROXY_WASM, UNLOWERED_WASM};
use near_parameters::vm::VMKind;
use near_primitives_core::types::Balance;
use near_vm_runner::logic::mocks::mock_external::MockAction;
use near_vm_runner::logic::types::PromiseResult;
use serde_json::json;

use crate::fixture::{self, Submission, ACCOUNT, NETWORK};
use crate::harness::{config, config_at, Chain};

/// Init arguments for the vectors' genesis set.
pub fn genesis_init() -> serde_json::Value {
    let (members, quorum, _) = fixture::member_set("genesis");
    json!({
        "context_id": fixture::context_id(),
        "network": NETWORK,
        "members": members,
        "quorum": quorum,
    })
}

/// Protocol 84 (`reftypes_bulk_memory`) is the first to accept
/// bulk-memory and reference-types instructions, which rustc now emits; the
/// lowered module passes NEAR's preparation before and after it.
#[test]
fn passes_nears_preparation() {
    const BEFORE_BULK_MEMORY: u32 = 83;
    let latest = config();
    let older = config_at(BEFORE_BULK_MEMORY);
    assert!(!older.reftypes_bulk_memory && latest.reftypes_bulk_memory);
    for config in [&latest, &older] {
        let prepared =
            near_vm_runner::prepare::prepare_contract(PROXY_WASM, config, VMKind::Wasmtime);
        assert!(prepared.is_ok(), "{prepared:?}");
    }
    let raw = near_vm_runner::prepare::prepare_contract(UNLOWERED_WASM, &older, VMKind::Wasmtime);
    assert!(
        raw.is_err(),
        "protocol {BEFORE_BULK_MEMORY} accepted the unlowered module"
    );
    println!(
        "wasm: {} bytes lowered, {} bytes as rustc emits it",
        PROXY_WASM.len(),
        UNLOWERED_WASM.len()
    );
    assert!(PROXY_WASM.len() < 512 * 1024);
}

#[test]
fn checkpoint_and_native_action_end_to_end() {
    let mut chain = Chain::new();
    let init = chain.call("new", genesis_init()).ok();
    println!("new (4 members, 4 PoPs): {:.2} TGas", init.tgas());
    assert_eq!(
        chain.call("members_hash", json!({})).ok().json(),
        json!(fixture::member_set("genesis").2)
    );

    let case = fixture::checkpoint_case("near_domain");
    let submit = chain
        .call("submit_checkpoint", Submission::from_case(&case).json())
        .ok();
    println!("submit_checkpoint (3 of 4 sign): {:.2} TGas", submit.tgas());
    if std::env::var_os("CONCLAVE_NEAR_GAS_PROFILE").is_some() {
        println!("{:?}", submit.outcome.profile);
    }
    assert!(submit
        .outcome
        .logs
        .iter()
        .any(|l| l.starts_with("EVENT_JSON:") && l.contains("\"checkpoint\"")));
    let latest = chain.call("latest_checkpoint", json!({})).ok().json();
    assert_eq!(latest["height"], 2);
    assert_eq!(latest["actions_root"], json!(case.payload.actions_root));

    // Refusals abort the call with the error's message.
    let again = chain.call("submit_checkpoint", Submission::from_case(&case).json());
    assert!(again.error().contains("StaleHeight"), "{}", again.error());

    // The vectors' NEAR action: 5 yoctoNEAR to alice.testnet.
    let file = fixture::actions_file();
    let v = &file.actions[3];
    let action = fixture::action_arg(&v.to_action().expect("action"));
    let proof = fixture::proof_arg(&v.to_proof().expect("proof"));
    let args = json!({ "checkpoint_height": 2, "action": action, "proof": proof });
    chain.ext.action_log.clear();
    let exec = chain.call("execute_action", args.clone()).ok();
    println!(
        "execute_action (native, 5 leaves): {:.2} TGas burnt, {:.2} TGas used (with the callback's)",
        exec.tgas(),
        exec.outcome.used_gas.as_gas() as f64 / 1e12,
    );
    let log = &chain.ext.action_log;
    assert!(log.iter().any(|a| matches!(a,
        MockAction::CreateReceipt { receiver_id, .. } if receiver_id.as_str() == "alice.testnet")));
    assert!(log.iter().any(|a| matches!(a,
        MockAction::Transfer { deposit, .. } if *deposit == Balance::from_yoctonear(5))));
    assert!(log.iter().any(|a| matches!(a,
        MockAction::CreateReceipt { receiver_id, receipt_indices } if receiver_id.as_str() == ACCOUNT && receipt_indices.len() == 1)));
    assert!(log.iter().any(|a| matches!(a,
        MockAction::FunctionCallWeight { method_name, .. } if method_name == b"on_action_done")));
    let status = chain
        .call("action_status", json!({ "id": action.id }))
        .ok()
        .json();
    assert_eq!(status, "in_flight");
    let busy = chain.call("execute_action", args.clone());
    assert!(busy.error().contains("InFlight"), "{}", busy.error());

    // Only the proxy itself may resolve it.
    let outsider = chain.call_full(
        "mallory.testnet",
        "on_action_done",
        json!({ "id": action.id }),
        Balance::ZERO,
        vec![PromiseResult::Successful(vec![].into())],
    );
    assert!(outsider.error().contains("private"), "{}", outsider.error());
    let done = chain
        .call_full(
            ACCOUNT,
            "on_action_done",
            json!({ "id": action.id }),
            Balance::ZERO,
            vec![PromiseResult::Successful(vec![].into())],
        )
        .ok();
    assert_eq!(done.json(), json!(true));
    println!("on_action_done: {:.2} TGas", done.tgas());
    let executed = chain
        .call("is_executed", json!({ "id": action.id }))
        .ok()
        .json();
    assert_eq!(executed, json!(true));
    let twice = chain.call("execute_action", args);
    assert!(
        twice.error().contains("AlreadyExecuted"),
        "{}",
        twice.error()
    );
}

#[test]
fn bad_pop_at_init_aborts() {
    let mut chain = Chain::new();
    let mut init = genesis_init();
    let pop1 = init["members"][1]["pop"].clone();
    init["members"][2]["pop"] = pop1;
    let call = chain.call("new", init);
    assert!(
        call.error().contains("BadPop: member 2"),
        "{}",
        call.error()
    );
}
