//! Leaf encodings, one per chain kind.
//!
//! **EVM** — the ABI encoding a Solidity contract gets from
//! `abi.encode(uint8 chainKind, uint64 chainId, bytes32 target, bytes32 id,
//! uint8 kind, address token, address to, uint256 amount, bytes data)`:
//! nine 32-byte head words, the offset word of `data` (`0x120`), then
//! `len(data)` as a word and `data` right-padded to a multiple of 32.
//! Native transfer: `token = 0`, `data` empty. Token transfer: `data`
//! empty. Contract call: `token = 0`, `amount` is the value sent.
//!
//! **NEAR** — `domain (41) || id (32) || kind (u8) || u32 BE len(token) ||
//! token || u32 BE len(to) || to || u128 BE amount || u32 BE len(data) ||
//! data`, accounts as UTF-8, `token` empty unless a token transfer, `data`
//! empty unless a call.

use super::{Account, Action, ActionKind, MAX_CALLDATA};
use crate::error::{Error, Result};

/// `(token, to, amount, data)` of any action kind.
fn parts(kind: &ActionKind) -> (Option<&Account>, &Account, u128, &[u8]) {
    match kind {
        ActionKind::NativeTransfer { to, amount } => (None, to, *amount, &[]),
        ActionKind::TokenTransfer { token, to, amount } => (Some(token), to, *amount, &[]),
        ActionKind::ContractCall {
            to,
            value,
            calldata,
        } => (None, to, *value, calldata),
    }
}

fn word_u64(v: u64) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[24..].copy_from_slice(&v.to_be_bytes());
    w
}

fn word_u128(v: u128) -> [u8; 32] {
    let mut w = [0u8; 32];
    w[16..].copy_from_slice(&v.to_be_bytes());
    w
}

fn evm_word(a: Option<&Account>) -> Result<[u8; 32]> {
    let mut w = [0u8; 32];
    match a {
        None => {}
        Some(Account::Evm(addr)) => w[12..].copy_from_slice(addr),
        Some(Account::Near(_)) => return Err(Error::BadAction("NEAR account in an EVM action")),
    }
    Ok(w)
}

/// The EVM leaf encoding (module docs).
pub fn encode_evm(a: &Action) -> Result<Vec<u8>> {
    if a.domain.evm_address().is_none() {
        return Err(Error::BadAction("EVM domain target is not an address"));
    }
    let (token, to, amount, data) = parts(&a.kind);
    if data.len() > MAX_CALLDATA {
        return Err(Error::BadAction("calldata too long"));
    }
    let mut out = Vec::with_capacity(11 * 32 + data.len());
    out.extend_from_slice(&word_u64(a.domain.kind as u64));
    out.extend_from_slice(&word_u64(a.domain.chain_id));
    out.extend_from_slice(&a.domain.target);
    out.extend_from_slice(&a.id);
    out.extend_from_slice(&word_u64(u64::from(a.kind.code())));
    out.extend_from_slice(&evm_word(token)?);
    out.extend_from_slice(&evm_word(Some(to))?);
    out.extend_from_slice(&word_u128(amount));
    out.extend_from_slice(&word_u64(9 * 32));
    out.extend_from_slice(&word_u64(data.len() as u64));
    out.extend_from_slice(data);
    out.resize(out.len() + (32 - data.len() % 32) % 32, 0);
    Ok(out)
}

fn near_bytes(a: Option<&Account>) -> Result<&[u8]> {
    match a {
        None => Ok(&[]),
        Some(Account::Near(id)) if (2..=64).contains(&id.len()) => Ok(id.as_bytes()),
        Some(Account::Near(_)) => Err(Error::BadNearId { what: "account" }),
        Some(Account::Evm(_)) => Err(Error::BadAction("EVM address in a NEAR action")),
    }
}

/// The NEAR leaf encoding (module docs).
pub fn encode_near(a: &Action) -> Result<Vec<u8>> {
    let (token, to, amount, data) = parts(&a.kind);
    if data.len() > MAX_CALLDATA {
        return Err(Error::BadAction("calldata too long"));
    }
    let token = near_bytes(token)?;
    let to = near_bytes(Some(to))?;
    let mut out = Vec::with_capacity(41 + 32 + 1 + 12 + 16 + token.len() + to.len() + data.len());
    out.extend_from_slice(&a.domain.encode());
    out.extend_from_slice(&a.id);
    out.push(a.kind.code());
    for field in [token, to] {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field);
    }
    out.extend_from_slice(&amount.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    Ok(out)
}
