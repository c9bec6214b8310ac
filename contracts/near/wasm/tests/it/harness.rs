//! One proxy account in `near-vm-runner` with a mocked external (storage,
//! receipts): each call runs the lowered wasm as the protocol would, with
//! the latest protocol version's costs.

use std::rc::Rc;
use std::sync::Arc;

use conclave_near_wasm::PROXY_WASM;
use near_parameters::vm::{Config, VMKind};
use near_parameters::{RuntimeConfigStore, RuntimeFeesConfig};
use near_primitives_core::account::AccountContract;
use near_primitives_core::types::{Balance, Gas};
use near_primitives_core::version::PROTOCOL_VERSION;
use near_vm_runner::logic::mocks::mock_external::MockedExternal;
use near_vm_runner::logic::types::PromiseResult;
use near_vm_runner::logic::{VMContext, VMOutcome};
use near_vm_runner::ContractCode;

use crate::fixture::ACCOUNT;

pub const RELAYER: &str = "relayer.testnet";

pub struct Chain {
    pub ext: MockedExternal,
    pub config: Arc<Config>,
    pub fees: Arc<RuntimeFeesConfig>,
    pub balance: Balance,
    pub storage_usage: u64,
}

/// How one call went.
pub struct Call {
    pub outcome: VMOutcome,
}

impl Call {
    pub fn ok(self) -> Self {
        if let Some(err) = &self.outcome.aborted {
            panic!("call aborted: {err}\nlogs: {:?}", self.outcome.logs);
        }
        self
    }

    pub fn error(&self) -> String {
        self.outcome
            .aborted
            .as_ref()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    pub fn tgas(&self) -> f64 {
        self.outcome.burnt_gas.as_gas() as f64 / 1e12
    }

    pub fn json(&self) -> serde_json::Value {
        match &self.outcome.return_data {
            near_vm_runner::logic::ReturnData::Value(v) => {
                serde_json::from_slice(v).expect("json return value")
            }
            other => panic!("no value returned: {other:?}"),
        }
    }
}

/// The latest protocol's wasm config, on wasmtime (the one VM compiled in).
pub fn config() -> Arc<Config> {
    config_at(PROTOCOL_VERSION)
}

/// The wasm config of `protocol_version`, on wasmtime.
pub fn config_at(protocol_version: u32) -> Arc<Config> {
    let store = RuntimeConfigStore::new(None);
    let mut config = store
        .get_config(protocol_version)
        .wasm_config
        .as_ref()
        .clone();
    config.vm_kind = VMKind::Wasmtime;
    Arc::new(config)
}

/// The latest protocol's action fees (receipts, transfers, calls).
pub fn fees() -> Arc<RuntimeFeesConfig> {
    let store = RuntimeConfigStore::new(None);
    store.get_config(PROTOCOL_VERSION).fees.clone()
}

impl Chain {
    pub fn new() -> Self {
        Chain {
            ext: MockedExternal::with_code(ContractCode::new(PROXY_WASM.to_vec(), None)),
            config: config(),
            fees: fees(),
            balance: Balance::from_near(100),
            storage_usage: PROXY_WASM.len() as u64 + 200,
        }
    }

    fn context(
        &self,
        predecessor: &str,
        input: Vec<u8>,
        deposit: Balance,
        results: Vec<PromiseResult>,
    ) -> VMContext {
        VMContext {
            current_account_id: ACCOUNT.parse().expect("account"),
            signer_account_id: RELAYER.parse().expect("account"),
            signer_account_pk: vec![0; 33],
            predecessor_account_id: predecessor.parse().expect("account"),
            refund_to_account_id: RELAYER.parse().expect("account"),
            input: Rc::from(input),
            promise_results: results.into(),
            block_height: 100,
            block_timestamp: 1_700_000_000_000_000_000,
            epoch_height: 1,
            account_balance: self.balance,
            account_locked_balance: Balance::ZERO,
            storage_usage: self.storage_usage,
            account_contract: AccountContract::None,
            attached_deposit: deposit,
            prepaid_gas: Gas::from_teragas(300),
            random_seed: vec![7; 32],
            view_config: None,
            output_data_receivers: vec![],
        }
    }

    /// Calls `method` with JSON `args`; state and storage usage carry over
    /// when it succeeds.
    pub fn call_full(
        &mut self,
        predecessor: &str,
        method: &str,
        args: serde_json::Value,
        deposit: Balance,
        results: Vec<PromiseResult>,
    ) -> Call {
        let context = self.context(predecessor, args.to_string().into_bytes(), deposit, results);
        let gas_counter = context.make_gas_counter(&self.config);
        let saved = self.ext.fake_trie.clone();
        let prepared =
            near_vm_runner::prepare(&self.ext, self.config.clone(), None, gas_counter, method);
        let outcome = near_vm_runner::run(prepared, &mut self.ext, &context, self.fees.clone())
            .expect("the VM itself did not fail");
        if outcome.aborted.is_some() {
            // A failed receipt changes nothing.
            self.ext.fake_trie = saved;
        } else {
            self.storage_usage = outcome.storage_usage;
            self.balance = outcome.balance;
        }
        Call { outcome }
    }

    pub fn call(&mut self, method: &str, args: serde_json::Value) -> Call {
        self.call_full(RELAYER, method, args, Balance::ZERO, vec![])
    }
}
