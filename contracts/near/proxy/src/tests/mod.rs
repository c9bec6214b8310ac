//! Unit tests over the shared vectors, run with near-sdk's mocked
//! blockchain: `testing_env!` executes nearcore's real host functions
//! (SHA-256, BLS12-381) and records the receipts a call creates.

mod actions;
mod checkpoints;
mod fixture;
mod members;
mod vectors;

use near_sdk::test_utils::VMContextBuilder;
use near_sdk::{testing_env, AccountId, Gas, NearToken, PromiseResult};

use crate::error::Result;
use crate::ConclaveProxy;
use fixture::{Submission, ACCOUNT, NETWORK};

/// What the shared fixture calls `proxy_types`.
pub(crate) use crate::types as proxy_types;

/// The account that sends transactions in the tests.
pub const RELAYER: &str = "relayer.testnet";
/// The proxy's balance in the tests.
pub const BALANCE: NearToken = NearToken::from_near(100);

pub fn account(s: &str) -> AccountId {
    s.parse().expect("account id")
}

fn context(predecessor: &str, deposit: NearToken) -> VMContextBuilder {
    let mut b = VMContextBuilder::new();
    b.current_account_id(account(ACCOUNT))
        .signer_account_id(account(RELAYER))
        .predecessor_account_id(account(predecessor))
        .account_balance(BALANCE)
        .attached_deposit(deposit)
        .prepaid_gas(Gas::from_tgas(300));
    b
}

/// A fresh call from the relayer (storage is kept across calls).
pub fn call() {
    testing_env!(context(RELAYER, NearToken::from_yoctonear(0)).build());
}

/// A call from the relayer with `deposit` attached and `balance` held.
pub fn call_with(deposit: NearToken, balance: NearToken) {
    let mut b = context(RELAYER, deposit);
    b.account_balance(balance);
    testing_env!(b.build());
}

/// The proxy's own callback receiving `result`.
pub fn callback(result: PromiseResult) {
    testing_env!(
        context(ACCOUNT, NearToken::from_yoctonear(0)).build(),
        near_sdk::test_vm_config(),
        near_sdk::RuntimeFeesConfig::test(),
        Default::default(),
        vec![result],
    );
}

/// The proxy at the vectors' NEAR account with the genesis set.
pub fn genesis_proxy() -> ConclaveProxy {
    call();
    let (members, quorum, _) = fixture::member_set("genesis");
    ConclaveProxy::new(
        fixture::context_id(),
        NETWORK.into(),
        members,
        Some(quorum),
        None,
    )
    .expect("genesis set is valid")
}

pub fn submit(proxy: &mut ConclaveProxy, s: &Submission) -> Result<()> {
    call();
    proxy.submit_checkpoint(
        s.epoch,
        s.height,
        s.state_root.clone(),
        s.actions_root.clone(),
        s.next_members_hash.clone(),
        s.signers.clone(),
        s.signature.clone(),
    )
}

/// The genesis proxy with the vectors' NEAR checkpoint (height 2, the
/// actions root of actions.json) accepted.
pub fn proxy_at_near_checkpoint() -> ConclaveProxy {
    let mut proxy = genesis_proxy();
    let case = fixture::checkpoint_case("near_domain");
    submit(&mut proxy, &Submission::from_case(&case)).expect("near_domain verifies");
    proxy
}

/// Events logged so far, as parsed NEP-297 JSON.
pub fn events() -> Vec<serde_json::Value> {
    near_sdk::test_utils::get_logs()
        .iter()
        .filter_map(|l| l.strip_prefix("EVENT_JSON:"))
        .map(|j| serde_json::from_str(j).expect("event json"))
        .collect()
}
