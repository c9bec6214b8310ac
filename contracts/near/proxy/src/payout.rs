//! What an action pays out: decoded and checked before anything is written,
//! then turned into the promise.

use near_sdk::json_types::U128;
use near_sdk::serde_json::json;
use near_sdk::{env, AccountId, Gas, GasWeight, NearToken, Promise};

use crate::codec;
use crate::error::{ProxyError, Result};
use crate::types::ActionArg;

/// Gas reserved for `on_action_done`.
pub const CALLBACK_GAS: Gas = Gas::from_tgas(10);
/// Minimum gas of an `ft_transfer` or a function call action; unused gas
/// of `execute_action` is added to it.
const ACTION_GAS: Gas = Gas::from_tgas(10);
/// Storage an in-flight entry adds: the record overhead (40), the prefix
/// and id (33), the status (1).
pub const PENDING_ENTRY_BYTES: u64 = 40 + 33 + 1;

/// Action kinds of the NEAR leaf encoding.
const KIND_NATIVE: u8 = 1;
const KIND_TOKEN: u8 = 2;
const KIND_CALL: u8 = 3;

/// Paying `amount` out keeps the balance above the storage stake, counting
/// `extra_bytes` about to be written.
pub fn ensure_payable(amount: u128, extra_bytes: u64) -> Result<()> {
    let stake = env::storage_byte_cost()
        .as_yoctonear()
        .saturating_mul(u128::from(env::storage_usage().saturating_add(extra_bytes)));
    let balance = env::account_balance().as_yoctonear();
    if balance.saturating_sub(stake) < amount {
        return Err(ProxyError::InsufficientBalance);
    }
    Ok(())
}

/// What an action does, checked before anything is written.
pub enum Payout {
    Native {
        to: AccountId,
        amount: u128,
    },
    Token {
        token: AccountId,
        to: AccountId,
        amount: u128,
    },
    Call {
        to: AccountId,
        method: String,
        args: Vec<u8>,
        deposit: u128,
    },
}

impl Payout {
    pub fn decode(action: &ActionArg, data: &[u8]) -> Result<Self> {
        let to: AccountId = action
            .to
            .parse()
            .map_err(|_| ProxyError::BadAction("receiver is not an account id"))?;
        match action.kind {
            KIND_NATIVE if action.token.is_empty() && data.is_empty() => Ok(Payout::Native {
                to,
                amount: action.amount.0,
            }),
            KIND_TOKEN if data.is_empty() => Ok(Payout::Token {
                token: action
                    .token
                    .parse()
                    .map_err(|_| ProxyError::BadAction("token is not an account id"))?,
                to,
                amount: action.amount.0,
            }),
            KIND_CALL if action.token.is_empty() => {
                let (method, args) = codec::split_call_data(data).ok_or(ProxyError::BadAction(
                    "call data is not len || method || args",
                ))?;
                Ok(Payout::Call {
                    to,
                    method: method.to_string(),
                    args: args.to_vec(),
                    deposit: action.amount.0,
                })
            }
            KIND_NATIVE | KIND_TOKEN | KIND_CALL => Err(ProxyError::BadAction(
                "token or data not allowed for this kind",
            )),
            _ => Err(ProxyError::BadAction("unknown kind")),
        }
    }

    /// NEAR leaving the account with the promise.
    pub fn attached(&self) -> u128 {
        match self {
            Payout::Native { amount, .. } => *amount,
            Payout::Token { .. } => 1,
            Payout::Call { deposit, .. } => *deposit,
        }
    }

    pub fn promise(self) -> Promise {
        match self {
            Payout::Native { to, amount } => {
                Promise::new(to).transfer(NearToken::from_yoctonear(amount))
            }
            Payout::Token { token, to, amount } => {
                let args = json!({ "receiver_id": to, "amount": U128(amount) });
                Promise::new(token).function_call_weight(
                    "ft_transfer",
                    args.to_string().into_bytes(),
                    NearToken::from_yoctonear(1),
                    ACTION_GAS,
                    GasWeight(1),
                )
            }
            Payout::Call {
                to,
                method,
                args,
                deposit,
            } => Promise::new(to).function_call_weight(
                method,
                args,
                NearToken::from_yoctonear(deposit),
                ACTION_GAS,
                GasWeight(1),
            ),
        }
    }
}
