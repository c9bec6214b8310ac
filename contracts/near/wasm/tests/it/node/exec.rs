//! How the test node executes a transaction: nearcore's validation, the
//! nonce, block hash and balance checks, then deploys, transfers and
//! function calls in `near-vm-runner`, each receipt atomic, and the
//! receipts a contract creates (payouts, then their callbacks).

use std::collections::HashMap;
use std::rc::Rc;

use near_parameters::RuntimeConfigStore;
use near_primitives::errors::{
    ActionError, ActionErrorKind, FunctionCallError, InvalidAccessKeyError, InvalidTxError,
    TxExecutionError,
};
use near_primitives::hash::{hash, CryptoHash};
use near_primitives::transaction::{Action, SignedTransaction, ValidatedTransaction};
use near_primitives::types::{AccountId, Balance, Gas};
use near_primitives::version::PROTOCOL_VERSION;
use near_primitives::views::{
    ExecutionOutcomeView, ExecutionOutcomeWithIdView, ExecutionStatusView,
    FinalExecutionOutcomeView, FinalExecutionStatus, SignedTransactionView,
};
use near_primitives_core::account::AccountContract;
use near_primitives_core::config::ViewConfig;
use near_vm_runner::logic::mocks::mock_external::{MockAction, MockedExternal};
use near_vm_runner::logic::types::PromiseResult;
use near_vm_runner::logic::{ReturnData, VMContext};
use near_vm_runner::ContractCode;

use super::{Account, Contract, State, GAS_PRICE, STORAGE_PRICE};
use crate::harness::{config, fees};

impl State {
    /// Validates and executes a signed transaction in a new block.
    pub(super) fn send(
        &mut self,
        signed: SignedTransaction,
    ) -> Result<FinalExecutionOutcomeView, InvalidTxError> {
        let runtime = RuntimeConfigStore::new(None);
        let validated = ValidatedTransaction::new(
            runtime.get_config(PROTOCOL_VERSION),
            signed,
            PROTOCOL_VERSION,
        )
        .map_err(|(e, _)| e)?;
        let signed = validated.into_signed_tx();
        let tx = &signed.transaction;
        let signer_id = tx.signer_id().clone();
        let receiver_id = tx.receiver_id().clone();
        if !self.blocks.iter().any(|b| &b.1 == tx.block_hash()) {
            return Err(InvalidTxError::Expired);
        }
        let signer =
            self.accounts
                .get_mut(&signer_id)
                .ok_or(InvalidTxError::SignerDoesNotExist {
                    signer_id: signer_id.clone(),
                })?;
        let ak_nonce =
            *signer
                .keys
                .get(tx.public_key())
                .ok_or(InvalidTxError::InvalidAccessKeyError(
                    InvalidAccessKeyError::AccessKeyNotFound {
                        account_id: signer_id.clone(),
                        public_key: Box::new(tx.public_key().clone()),
                    },
                ))?;
        let nonce = tx.nonce().nonce();
        if nonce <= ak_nonce {
            return Err(InvalidTxError::InvalidNonce {
                tx_nonce: nonce,
                ak_nonce,
            });
        }
        let mut prepaid: u128 = 0;
        let mut deposits: u128 = 0;
        for a in tx.actions() {
            match a {
                Action::FunctionCall(f) => {
                    prepaid += u128::from(f.gas.as_gas());
                    deposits += f.deposit.as_yoctonear();
                }
                Action::Transfer(t) => deposits += t.deposit.as_yoctonear(),
                Action::DeployContract(_) => {}
                other => return Err(InvalidTxError::ActionsValidation(
                    near_primitives::errors::ActionsValidationError::UnsupportedProtocolFeature {
                        protocol_feature: format!("{other:?} in the test node"),
                        version: PROTOCOL_VERSION,
                    },
                )),
            }
        }
        let cost = prepaid * GAS_PRICE + deposits;
        if signer.balance < cost {
            return Err(InvalidTxError::NotEnoughBalance {
                signer_id: signer_id.clone(),
                balance: Balance::from_yoctonear(signer.balance),
                cost: Balance::from_yoctonear(cost),
            });
        }
        signer.keys.insert(tx.public_key().clone(), nonce);
        signer.balance -= cost;
        let (_, block_hash) = self.new_block();
        let tx_hash = signed.get_hash();
        let receipt_id = hash(&[tx_hash.as_ref(), b"receipt"].concat());
        let actions = tx.actions().to_vec();
        let (status, mut outcomes, burnt) =
            self.apply(&signer_id, &receiver_id, &actions, receipt_id);
        // Unused gas is refunded, and deposits of a failed receipt.
        let refund = (prepaid * GAS_PRICE).saturating_sub(u128::from(burnt) * GAS_PRICE)
            + if matches!(status, ExecutionStatusView::Failure(_)) {
                deposits
            } else {
                0
            };
        if let Some(s) = self.accounts.get_mut(&signer_id) {
            s.balance += refund;
        }
        let final_status = match &status {
            ExecutionStatusView::Failure(e) => FinalExecutionStatus::Failure(e.clone()),
            ExecutionStatusView::SuccessValue(v) => FinalExecutionStatus::SuccessValue(v.clone()),
            _ => FinalExecutionStatus::SuccessValue(vec![]),
        };
        let tx_outcome = ExecutionOutcomeWithIdView {
            proof: vec![],
            block_hash,
            id: tx_hash,
            outcome: ExecutionOutcomeView {
                logs: vec![],
                receipt_ids: vec![receipt_id],
                gas_burnt: Gas::from_gas(0),
                tokens_burnt: Balance::ZERO,
                executor_id: signer_id.clone(),
                status: ExecutionStatusView::SuccessReceiptId(receipt_id),
                metadata: Default::default(),
            },
        };
        outcomes.iter_mut().for_each(|o| o.block_hash = block_hash);
        let view = FinalExecutionOutcomeView {
            status: final_status,
            transaction: SignedTransactionView::from(signed.clone()),
            transaction_outcome: tx_outcome,
            receipts_outcome: outcomes,
        };
        self.accepted.push(signed);
        Ok(view)
    }

    /// Applies a transaction's actions to `receiver` as one receipt, then
    /// the receipts its function calls created. Returns the first receipt's
    /// status, every receipt's outcome and the gas burnt.
    fn apply(
        &mut self,
        signer: &AccountId,
        receiver: &AccountId,
        actions: &[Action],
        receipt_id: CryptoHash,
    ) -> (ExecutionStatusView, Vec<ExecutionOutcomeWithIdView>, u64) {
        let fail = |index: usize, kind: ActionErrorKind| {
            ExecutionStatusView::Failure(TxExecutionError::ActionError(ActionError {
                index: Some(index as u64),
                kind,
            }))
        };
        let Some(account) = self.accounts.get_mut(receiver) else {
            let status = fail(
                0,
                ActionErrorKind::AccountDoesNotExist {
                    account_id: receiver.clone(),
                },
            );
            return (
                status.clone(),
                vec![outcome_of(receipt_id, status, vec![], 0, receiver)],
                0,
            );
        };
        // The receipt is atomic: keep what to restore.
        let saved = (
            account.balance,
            account.storage_usage,
            account
                .contract
                .as_ref()
                .map(|c| (c.ext.fake_trie.clone(), c.ext.code.clone(), c.ext.code_hash)),
        );
        let mut logs = Vec::new();
        let mut burnt = 0u64;
        let mut value = vec![];
        let mut receipts = Vec::new();
        let mut failure = None;
        for (i, action) in actions.iter().enumerate() {
            match action {
                Action::DeployContract(d) => {
                    if signer != receiver {
                        failure = Some(fail(
                            i,
                            ActionErrorKind::ActorNoPermission {
                                account_id: receiver.clone(),
                                actor_id: signer.clone(),
                            },
                        ));
                        break;
                    }
                    let code = ContractCode::new(d.code.clone(), None);
                    let old = account
                        .contract
                        .take()
                        .map(|c| c.ext.fake_trie)
                        .unwrap_or_default();
                    let mut ext = MockedExternal::with_code(code);
                    ext.fake_trie = old;
                    account.storage_usage += d.code.len() as u64;
                    account.contract = Some(Contract { ext });
                }
                Action::Transfer(t) => account.balance += t.deposit.as_yoctonear(),
                Action::FunctionCall(f) => {
                    let Some(contract) = account.contract.as_mut() else {
                        failure = Some(fail(
                            i,
                            ActionErrorKind::FunctionCallError(FunctionCallError::ExecutionError(
                                "no contract code".into(),
                            )),
                        ));
                        break;
                    };
                    account.balance += f.deposit.as_yoctonear();
                    let ctx = context(
                        signer,
                        receiver,
                        &Account {
                            balance: account.balance,
                            storage_usage: account.storage_usage,
                            keys: HashMap::new(),
                            contract: None,
                        },
                        f.args.clone(),
                        f.deposit.as_yoctonear(),
                        vec![],
                        false,
                    );
                    contract.ext.action_log.clear();
                    let out = run(&mut contract.ext, &ctx, &f.method_name);
                    burnt += out.burnt_gas.as_gas();
                    logs.extend(out.logs.clone());
                    if let Some(e) = out.aborted {
                        failure = Some(fail(
                            i,
                            ActionErrorKind::FunctionCallError(FunctionCallError::ExecutionError(
                                e.to_string(),
                            )),
                        ));
                        break;
                    }
                    account.balance = out.balance.as_yoctonear();
                    account.storage_usage = out.storage_usage;
                    if let ReturnData::Value(v) = out.return_data {
                        value = v;
                    }
                    receipts.extend(std::mem::take(&mut contract.ext.action_log));
                }
                _ => unreachable!("refused when validated"),
            }
        }
        if failure.is_none() {
            let locked = u128::from(account.storage_usage) * STORAGE_PRICE;
            if account.balance < locked {
                failure = Some(fail(
                    actions.len().saturating_sub(1),
                    ActionErrorKind::LackBalanceForState {
                        account_id: receiver.clone(),
                        amount: Balance::from_yoctonear(locked - account.balance),
                    },
                ));
            }
        }
        if let Some(status) = failure {
            account.balance = saved.0;
            account.storage_usage = saved.1;
            match saved.2 {
                Some((trie, code, code_hash)) => {
                    if let Some(c) = account.contract.as_mut() {
                        c.ext.fake_trie = trie;
                        c.ext.code = code;
                        c.ext.code_hash = code_hash;
                    }
                }
                None => account.contract = None,
            }
            return (
                status.clone(),
                vec![outcome_of(receipt_id, status, logs, burnt, receiver)],
                burnt,
            );
        }
        let status = ExecutionStatusView::SuccessValue(value);
        let mut outcomes = vec![outcome_of(
            receipt_id,
            status.clone(),
            logs,
            burnt,
            receiver,
        )];
        burnt += self.run_receipts(receiver, receipts, receipt_id, &mut outcomes);
        (status, outcomes, burnt)
    }

    /// Runs the receipts a call of `contract` created (`log`: the VM's
    /// action log): transfers and calls to other accounts, then callbacks
    /// to `contract` with their dependencies' results.
    fn run_receipts(
        &mut self,
        contract: &AccountId,
        log: Vec<MockAction>,
        parent: CryptoHash,
        outcomes: &mut Vec<ExecutionOutcomeWithIdView>,
    ) -> u64 {
        struct Receipt {
            receiver: AccountId,
            deps: Vec<usize>,
            transfer: u128,
            calls: Vec<(String, Vec<u8>, u128)>,
        }
        // The mock numbers a receipt by its position in the action log.
        let mut receipts: Vec<Receipt> = Vec::new();
        let mut number: HashMap<u64, usize> = HashMap::new();
        for (position, a) in log.into_iter().enumerate() {
            match a {
                MockAction::CreateReceipt {
                    receipt_indices,
                    receiver_id,
                } => {
                    number.insert(position as u64, receipts.len());
                    receipts.push(Receipt {
                        receiver: receiver_id,
                        deps: receipt_indices.iter().map(|i| number[i]).collect(),
                        transfer: 0,
                        calls: vec![],
                    })
                }
                MockAction::Transfer {
                    receipt_index,
                    deposit,
                } => {
                    receipts[number[&receipt_index]].transfer += deposit.as_yoctonear();
                }
                MockAction::FunctionCallWeight {
                    receipt_index,
                    method_name,
                    args,
                    attached_deposit,
                    ..
                } => {
                    receipts[number[&receipt_index]].calls.push((
                        String::from_utf8(method_name).expect("utf-8 method"),
                        args,
                        attached_deposit.as_yoctonear(),
                    ));
                }
                other => panic!("the test node does not run {other:?}"),
            }
        }
        let mut results: Vec<Option<Vec<u8>>> = Vec::new();
        let mut burnt = 0;
        for (i, r) in receipts.into_iter().enumerate() {
            let id = hash(&[parent.as_ref(), &(i as u64).to_le_bytes()].concat());
            let paid = r.transfer + r.calls.iter().map(|c| c.2).sum::<u128>();
            let (result, status, logs) = if &r.receiver == contract && !r.calls.is_empty() {
                // A callback: runs with its dependencies' results.
                let deps: Vec<PromiseResult> = r
                    .deps
                    .iter()
                    .map(|&d| promise_result(&results[d]))
                    .collect();
                let account = self
                    .accounts
                    .get_mut(contract)
                    .expect("the contract's account");
                let c = account.contract.as_mut().expect("the contract");
                let (method, args, _) = &r.calls[0];
                let ctx = context(
                    contract,
                    contract,
                    &Account {
                        balance: account.balance,
                        storage_usage: account.storage_usage,
                        keys: HashMap::new(),
                        contract: None,
                    },
                    args.clone(),
                    0,
                    deps,
                    false,
                );
                let saved = c.ext.fake_trie.clone();
                c.ext.action_log.clear();
                let out = run(&mut c.ext, &ctx, method);
                burnt += out.burnt_gas.as_gas();
                match out.aborted {
                    Some(e) => {
                        c.ext.fake_trie = saved;
                        let msg = e.to_string();
                        (
                            None,
                            ExecutionStatusView::Failure(TxExecutionError::ActionError(
                                ActionError {
                                    index: Some(0),
                                    kind: ActionErrorKind::FunctionCallError(
                                        FunctionCallError::ExecutionError(msg),
                                    ),
                                },
                            )),
                            out.logs,
                        )
                    }
                    None => {
                        account.balance = out.balance.as_yoctonear();
                        account.storage_usage = out.storage_usage;
                        let v = match out.return_data {
                            ReturnData::Value(v) => v,
                            _ => vec![],
                        };
                        (
                            Some(v.clone()),
                            ExecutionStatusView::SuccessValue(v),
                            out.logs,
                        )
                    }
                }
            } else {
                // A transfer (or a call, which no other account here can
                // take): credited if the receiver exists, else refunded.
                match self.accounts.get_mut(&r.receiver) {
                    Some(a) if r.calls.is_empty() => {
                        a.balance += r.transfer;
                        (
                            Some(Vec::new()),
                            ExecutionStatusView::SuccessValue(vec![]),
                            vec![],
                        )
                    }
                    _ => {
                        if let Some(c) = self.accounts.get_mut(contract) {
                            c.balance += paid;
                        }
                        let kind = ActionErrorKind::AccountDoesNotExist {
                            account_id: r.receiver.clone(),
                        };
                        (
                            None,
                            ExecutionStatusView::Failure(TxExecutionError::ActionError(
                                ActionError {
                                    index: Some(0),
                                    kind,
                                },
                            )),
                            vec![],
                        )
                    }
                }
            };
            results.push(result);
            outcomes.push(outcome_of(id, status, logs, 0, &r.receiver));
        }
        burnt
    }
}

/// A receipt's outcome (its block is set when the transaction's is known).
fn outcome_of(
    id: CryptoHash,
    status: ExecutionStatusView,
    logs: Vec<String>,
    gas: u64,
    executor: &AccountId,
) -> ExecutionOutcomeWithIdView {
    ExecutionOutcomeWithIdView {
        proof: vec![],
        block_hash: CryptoHash::default(),
        id,
        outcome: ExecutionOutcomeView {
            logs,
            receipt_ids: vec![],
            gas_burnt: Gas::from_gas(gas),
            tokens_burnt: Balance::from_yoctonear(u128::from(gas) * GAS_PRICE),
            executor_id: executor.clone(),
            status,
            metadata: Default::default(),
        },
    }
}

/// A receipt's result as a callback sees it (`None`: failed).
fn promise_result(r: &Option<Vec<u8>>) -> PromiseResult {
    match r {
        Some(v) => PromiseResult::Successful(v.clone().into()),
        None => PromiseResult::Failed,
    }
}

/// The VM context of a call of `receiver` by `predecessor`.
pub(super) fn context(
    predecessor: &AccountId,
    receiver: &AccountId,
    account: &Account,
    input: Vec<u8>,
    deposit: u128,
    results: Vec<PromiseResult>,
    view: bool,
) -> VMContext {
    VMContext {
        current_account_id: receiver.clone(),
        signer_account_id: predecessor.clone(),
        signer_account_pk: vec![0; 33],
        predecessor_account_id: predecessor.clone(),
        refund_to_account_id: predecessor.clone(),
        input: Rc::from(input),
        promise_results: results.into(),
        block_height: 100,
        block_timestamp: 1_700_000_000_000_000_000,
        epoch_height: 1,
        account_balance: Balance::from_yoctonear(account.balance),
        account_locked_balance: Balance::ZERO,
        storage_usage: account.storage_usage,
        account_contract: AccountContract::None,
        attached_deposit: Balance::from_yoctonear(deposit),
        prepaid_gas: Gas::from_teragas(300),
        random_seed: vec![7; 32],
        view_config: view.then(|| ViewConfig {
            max_gas_burnt: Gas::from_teragas(300),
        }),
        output_data_receivers: vec![],
    }
}

pub(super) fn run(
    ext: &mut MockedExternal,
    ctx: &VMContext,
    method: &str,
) -> near_vm_runner::logic::VMOutcome {
    let config = config();
    let gas_counter = ctx.make_gas_counter(&config);
    let prepared = near_vm_runner::prepare(ext, config, None, gas_counter, method);
    near_vm_runner::run(prepared, ext, ctx, fees()).expect("the VM itself did not fail")
}
