//! Executing txs: the same code builds a block on the proposer and
//! re-executes it on every other member, so a block whose roots do not
//! match what honest members compute is refused.

use conclave_checkpoint::{action_id, actions::request, Action, Outbox};
use std::collections::HashMap;

use conclave_consensus::{
    verify_batch, BlockHeader, ContextId, Hash32, Height, MemberId, SenderKey, SignedTx,
};
use conclave_runtime::{App, Call, Runtime, StateView};
use jmt::storage::TreeUpdateBatch;

pub use crate::error::{ExecError, TxRejection};
use crate::store::{app_key, nonce_key, ActionRecord, Overlay, Receipt, StateReader, TxStatus};

/// Static checks of a tx that need no state.
pub fn check_tx(
    tx: &SignedTx,
    ctx: &ContextId,
    members: &[MemberId],
    max_bytes: usize,
) -> Result<(), TxRejection> {
    check_tx_with(tx, ctx, members, max_bytes, false)
}

/// [`check_tx`], skipping the signature when `verified` (this very signed
/// tx was verified before, e.g. at mempool admission).
pub fn check_tx_with(
    tx: &SignedTx,
    ctx: &ContextId,
    members: &[MemberId],
    max_bytes: usize,
    verified: bool,
) -> Result<(), TxRejection> {
    if tx.tx.context_id != *ctx {
        return Err(TxRejection::WrongContext(tx.tx.context_id));
    }
    let size = tx.encoded_len();
    if size > max_bytes {
        return Err(TxRejection::TooLarge {
            size,
            limit: max_bytes,
        });
    }
    if tx.tx.method.is_empty() || tx.tx.method.len() > 64 {
        return Err(TxRejection::BadMethod);
    }
    if !members.contains(&tx.tx.sender) {
        return Err(TxRejection::NotMember(tx.tx.sender));
    }
    if verified {
        return Ok(());
    }
    tx.verify().map_err(|_| TxRejection::BadSignature)
}

/// Which of `txs` have a good signature: known from before (`env.verified`)
/// or checked now, all the others of members in one batch. A tx marked
/// `false` is checked again alone by [`check_tx_with`], which refuses it
/// with the reason.
fn check_signatures(txs: &[SignedTx], env: &BlockEnv<'_>) -> Vec<bool> {
    let mut signed: Vec<bool> = txs
        .iter()
        .map(|tx| env.verified.is_some_and(|f| f(tx)))
        .collect();
    let mut keys: HashMap<MemberId, Option<SenderKey>> = HashMap::new();
    let mut places = Vec::new();
    let mut batch = Vec::new();
    for (at, tx) in txs.iter().enumerate() {
        if signed[at] || !env.members.contains(&tx.tx.sender) {
            continue;
        }
        let key = keys
            .entry(tx.tx.sender)
            .or_insert_with(|| tx.sender_key().ok());
        if let Some(key) = key {
            places.push(at);
            batch.push((tx, *key));
        }
    }
    let pairs: Vec<(&SignedTx, &SenderKey)> = batch.iter().map(|(tx, key)| (*tx, key)).collect();
    for (at, answer) in places.into_iter().zip(verify_batch(&pairs)) {
        signed[at] = answer.is_ok();
    }
    signed
}

/// The app's view of the state: its own namespace of the overlay.
pub struct ReadView<'o, 'a>(&'o Overlay<'a>);

impl<'o, 'a> ReadView<'o, 'a> {
    pub fn new(overlay: &'o Overlay<'a>) -> Self {
        Self(overlay)
    }
}

impl StateView for ReadView<'_, '_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, conclave_runtime::StateError> {
        self.0
            .get(&app_key(key))
            .map_err(|e| conclave_runtime::StateError::new(e.to_string()))
    }
}

/// Everything executing a block's txs produces.
pub struct Executed {
    pub receipts: Vec<Receipt>,
    pub state_root: Hash32,
    /// The root of the height's outbox (`conclave_checkpoint::Outbox`).
    pub actions_root: Hash32,
    /// The height's outbox in order: every action of every successful tx.
    pub actions: Vec<ActionRecord>,
    pub tree: TreeUpdateBatch,
    pub fuel_used: u64,
}

/// Block-level inputs of execution.
pub struct BlockEnv<'a> {
    pub context_id: ContextId,
    /// The context's genesis (membership txs start from its member set).
    pub genesis: &'a crate::store::Genesis,
    /// The members that validate this height: only they may send txs.
    pub members: &'a [MemberId],
    pub height: Height,
    pub time_ms: u64,
    pub max_tx_bytes: usize,
    /// Says whether a signed tx was verified already (signature checks
    /// dominate re-execution otherwise); `None` verifies every tx.
    pub verified: Option<&'a dyn Fn(&SignedTx) -> bool>,
    /// When building (not `strict`), stop adding txs once executing them
    /// has taken this long: the rest wait for the next block, and members
    /// re-execute it in time. Counted from the start of execution, not of
    /// the build: time spent waiting for a core is not the block's.
    pub budget: Option<std::time::Duration>,
}

/// Executes `txs` in order on top of the parent state. A sender's txs must
/// carry consecutive nonces (last + 1, last + 2, ...). With `strict`, an
/// invalid tx is an error (validating a proposal); otherwise it is skipped
/// and reported in `rejected` (building one).
pub fn execute(
    runtime: &Runtime,
    app: &App,
    state: &StateReader,
    env: &BlockEnv<'_>,
    txs: Vec<SignedTx>,
    strict: bool,
    rejected: &mut Vec<(SignedTx, TxRejection)>,
) -> Result<(Vec<SignedTx>, Executed), ExecError> {
    let parent = Height(env.height.0.saturating_sub(1));
    let mut overlay = Overlay::new(state, parent);
    let mut receipts = Vec::with_capacity(txs.len());
    let mut included = Vec::with_capacity(txs.len());
    let mut actions: Vec<ActionRecord> = Vec::new();
    let mut outbox: Vec<Action> = Vec::new();
    let mut fuel_used = 0u64;
    // The validators of this height, as guests see them (`members_read`).
    let member_ids: Vec<[u8; 32]> = env.members.iter().map(|m| *m.as_bytes()).collect();
    let deadline = env.budget.map(|b| std::time::Instant::now() + b);
    let signed = check_signatures(&txs, env);
    for (index, (tx, known)) in txs.into_iter().zip(signed).enumerate() {
        if !strict && deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            break;
        }
        let check = check_tx_with(&tx, &env.context_id, env.members, env.max_tx_bytes, known)
            .and_then(|()| {
                let last = overlay.nonce(&tx.tx.sender).unwrap_or(u64::MAX);
                if tx.tx.nonce <= last {
                    Err(TxRejection::StaleNonce {
                        got: tx.tx.nonce,
                        last,
                    })
                } else if tx.tx.nonce != last.saturating_add(1) {
                    Err(TxRejection::NonceGap {
                        got: tx.tx.nonce,
                        last,
                    })
                } else {
                    Ok(())
                }
            });
        if let Err(reason) = check {
            if strict {
                return Err(ExecError::InvalidTx { index, reason });
            }
            rejected.push((tx, reason));
            continue;
        }
        // The nonce is used whatever the call does (the app cannot read the
        // node namespace, so writing it first changes nothing for it).
        overlay.put(
            nonce_key(&tx.tx.sender),
            Some(borsh::to_vec(&tx.tx.nonce).unwrap_or_default()),
        );
        if crate::members::is_membership_method(&tx.tx.method) {
            let current = crate::members::read(&overlay, env.genesis)?;
            let applied = if tx.tx.method == crate::anchors::METHOD_ANCHOR {
                crate::anchors::apply(
                    env.genesis,
                    &crate::anchors::read(&overlay)?,
                    &current,
                    &tx.tx.args,
                    env.height,
                )
            } else {
                crate::members::apply(
                    &current,
                    &tx.tx.sender,
                    &tx.tx.method,
                    &tx.tx.args,
                    env.height,
                    |m| crate::members::check_member_keys(m).map_err(|e| e.to_string()),
                )
            };
            receipts.push(match applied {
                Ok(a) => {
                    overlay.extend(a.writes);
                    Receipt {
                        status: TxStatus::Ok,
                        output: a.output,
                        error: None,
                        events: vec![("membership".into(), tx.tx.method.as_bytes().to_vec())],
                        actions: Vec::new(),
                        fuel_used: 0,
                    }
                }
                Err(error) => Receipt {
                    status: TxStatus::Failed,
                    output: Vec::new(),
                    error: Some(error),
                    events: Vec::new(),
                    actions: Vec::new(),
                    fuel_used: 0,
                },
            });
            included.push(tx);
            continue;
        }
        let call = Call {
            method: &tx.tx.method,
            args: &tx.tx.args,
            caller: *tx.tx.sender.as_bytes(),
            context_id: *env.context_id.as_bytes(),
            block_height: env.height.0,
            block_time_ms: env.time_ms,
            members: &member_ids,
            read_only: false,
        };
        let outcome = runtime.call(app, call, &ReadView(&overlay))?;
        fuel_used = fuel_used.saturating_add(outcome.fuel_used);
        // Each action request must decode and fit its chain, or the tx
        // fails (its writes, events and actions are dropped).
        let result = outcome
            .result
            .map_err(|f| f.to_string())
            .and_then(|output| {
                let mut made = Vec::with_capacity(outcome.actions.len());
                for (i, bytes) in outcome.actions.iter().enumerate() {
                    let (domain, kind) = request::decode(bytes)
                        .map_err(|e| format!("invalid on-chain action {i}: {e}"))?;
                    let index = (outbox.len() + made.len()) as u32;
                    let id = action_id(env.context_id.as_bytes(), env.height.0, index);
                    made.push((id, Action { id, domain, kind }));
                }
                Ok((output, made))
            });
        let receipt = match result {
            Ok((output, made)) => {
                for (k, v) in outcome.writes {
                    overlay.put(app_key(&k), v);
                }
                let tx_hash = tx.hash();
                for ((id, action), bytes) in made.into_iter().zip(&outcome.actions) {
                    actions.push(ActionRecord {
                        id,
                        request: bytes.clone(),
                        tx: tx_hash,
                    });
                    outbox.push(action);
                }
                Receipt {
                    status: TxStatus::Ok,
                    output,
                    error: None,
                    events: outcome
                        .events
                        .into_iter()
                        .map(|e| (e.name, e.data))
                        .collect(),
                    actions: outcome.actions,
                    fuel_used: outcome.fuel_used,
                }
            }
            Err(failure) => Receipt {
                status: TxStatus::Failed,
                output: Vec::new(),
                error: Some(failure),
                events: Vec::new(),
                actions: Vec::new(),
                fuel_used: outcome.fuel_used,
            },
        };
        receipts.push(receipt);
        included.push(tx);
    }
    let (state_root, tree) = state.compute_update(overlay.into_writes(), env.height.0)?;
    // Every action was checked against its leaf encoding above.
    let actions_root = Outbox::new(outbox)
        .map(|o| Hash32(o.root()))
        .map_err(|e| ExecError::Outbox(e.to_string()))?;
    Ok((
        included,
        Executed {
            receipts,
            state_root,
            actions_root,
            actions,
            tree,
            fuel_used,
        },
    ))
}

/// Checks that `header`'s state and actions roots are what executing its
/// txs yields (its txs root is checked against the txs themselves).
pub fn roots_match(header: &BlockHeader, ex: &Executed) -> Result<(), String> {
    if header.state_root != ex.state_root {
        return Err(format!(
            "state_root mismatch: header {}, executed {}",
            header.state_root, ex.state_root
        ));
    }
    if header.actions_root != ex.actions_root {
        return Err("actions_root mismatch".into());
    }
    Ok(())
}
