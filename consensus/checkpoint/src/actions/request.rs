//! The action request: the bytes a guest app passes to the host's
//! `onchain_action`. The node decodes it, gives the action its
//! [`super::action_id`] and puts it in the height's outbox.
//!
//! Encoding (big-endian integers):
//!
//! ```text
//! request = version (u8 = 1) || domain (41) || kind (u8) || body
//! body    = kind 1 (native):  account to || u128 amount
//!         | kind 2 (token):   account token || account to || u128 amount
//!         | kind 3 (call):    account to || u128 value || u32 len || calldata
//! account = 0x01 || 20-byte EVM address
//!         | 0x02 || u8 len || NEAR account id (UTF-8, 2..=64 bytes)
//! ```
//!
//! Nothing may follow the body. A request must also fit its domain's leaf
//! encoding (an EVM domain takes EVM accounts, a NEAR domain NEAR ones, the
//! unanchored domain none), so [`decode`] refuses what [`super::Outbox`]
//! would refuse.

use super::{Account, Action, ActionKind, MAX_CALLDATA};
use crate::domain::{Domain, DOMAIN_LEN};
use crate::error::{Error, Result};

/// The request format version this module reads and writes.
pub const REQUEST_VERSION: u8 = 1;
/// Largest encoded request accepted.
pub const MAX_REQUEST_LEN: usize = 1 + DOMAIN_LEN + 1 + 3 * 66 + 16 + 4 + MAX_CALLDATA;

fn put_account(out: &mut Vec<u8>, a: &Account) {
    match a {
        Account::Evm(addr) => {
            out.push(1);
            out.extend_from_slice(addr);
        }
        Account::Near(id) => {
            out.push(2);
            out.push(id.len().min(255) as u8);
            out.extend_from_slice(id.as_bytes());
        }
    }
}

/// Encodes a request (module docs).
pub fn encode(domain: &Domain, kind: &ActionKind) -> Vec<u8> {
    let mut out = vec![REQUEST_VERSION];
    out.extend_from_slice(&domain.encode());
    out.push(kind.code());
    match kind {
        ActionKind::NativeTransfer { to, amount } => {
            put_account(&mut out, to);
            out.extend_from_slice(&amount.to_be_bytes());
        }
        ActionKind::TokenTransfer { token, to, amount } => {
            put_account(&mut out, token);
            put_account(&mut out, to);
            out.extend_from_slice(&amount.to_be_bytes());
        }
        ActionKind::ContractCall {
            to,
            value,
            calldata,
        } => {
            put_account(&mut out, to);
            out.extend_from_slice(&value.to_be_bytes());
            out.extend_from_slice(&(calldata.len() as u32).to_be_bytes());
            out.extend_from_slice(calldata);
        }
    }
    out
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.buf.len() < n {
            return Err(Error::BadAction("action request is truncated"));
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u32(&mut self) -> Result<u32> {
        let mut b = [0u8; 4];
        b.copy_from_slice(self.take(4)?);
        Ok(u32::from_be_bytes(b))
    }

    fn u128(&mut self) -> Result<u128> {
        let mut b = [0u8; 16];
        b.copy_from_slice(self.take(16)?);
        Ok(u128::from_be_bytes(b))
    }

    fn account(&mut self) -> Result<Account> {
        match self.u8()? {
            1 => {
                let mut a = [0u8; 20];
                a.copy_from_slice(self.take(20)?);
                Ok(Account::Evm(a))
            }
            2 => {
                let len = self.u8()? as usize;
                let id = std::str::from_utf8(self.take(len)?)
                    .map_err(|_| Error::BadNearId { what: "account" })?;
                Ok(Account::Near(id.to_owned()))
            }
            _ => Err(Error::BadAction("unknown account tag in action request")),
        }
    }
}

/// Decodes and checks a request (module docs).
pub fn decode(bytes: &[u8]) -> Result<(Domain, ActionKind)> {
    if bytes.len() > MAX_REQUEST_LEN {
        return Err(Error::BadAction("action request too long"));
    }
    let mut r = Reader { buf: bytes };
    if r.u8()? != REQUEST_VERSION {
        return Err(Error::BadAction("unknown action request version"));
    }
    let domain = Domain::decode(r.take(DOMAIN_LEN)?)?;
    let kind = match r.u8()? {
        1 => ActionKind::NativeTransfer {
            to: r.account()?,
            amount: r.u128()?,
        },
        2 => ActionKind::TokenTransfer {
            token: r.account()?,
            to: r.account()?,
            amount: r.u128()?,
        },
        3 => {
            let to = r.account()?;
            let value = r.u128()?;
            let len = r.u32()? as usize;
            if len > MAX_CALLDATA {
                return Err(Error::BadAction("calldata too long"));
            }
            ActionKind::ContractCall {
                to,
                value,
                calldata: r.take(len)?.to_vec(),
            }
        }
        _ => return Err(Error::BadAction("unknown action kind")),
    };
    if !r.buf.is_empty() {
        return Err(Error::BadAction("trailing bytes after the action request"));
    }
    // Refuse now what the leaf encoding would refuse later.
    Action {
        id: [0u8; 32],
        domain,
        kind: kind.clone(),
    }
    .encode()?;
    Ok((domain, kind))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cases() -> Vec<(Domain, ActionKind)> {
        let evm = Domain::evm(31337, [0xaa; 20]);
        let near = Domain::near("testnet", "dao.testnet").expect("valid");
        vec![
            (
                evm,
                ActionKind::NativeTransfer {
                    to: Account::Evm([1; 20]),
                    amount: 5,
                },
            ),
            (
                evm,
                ActionKind::TokenTransfer {
                    token: Account::Evm([2; 20]),
                    to: Account::Evm([3; 20]),
                    amount: u128::MAX,
                },
            ),
            (
                evm,
                ActionKind::ContractCall {
                    to: Account::Evm([4; 20]),
                    value: 0,
                    calldata: vec![0xde, 0xad],
                },
            ),
            (
                near,
                ActionKind::NativeTransfer {
                    to: Account::Near("bob.testnet".into()),
                    amount: 7,
                },
            ),
        ]
    }

    #[test]
    fn round_trips() {
        for (d, k) in cases() {
            let bytes = encode(&d, &k);
            assert_eq!(decode(&bytes), Ok((d, k)));
        }
    }

    #[test]
    fn layout_of_a_native_transfer() {
        let (d, k) = cases().remove(0);
        let e = encode(&d, &k);
        assert_eq!(e[0], 1);
        assert_eq!(&e[1..42], &d.encode());
        assert_eq!(e[42], 1);
        assert_eq!(e[43], 1);
        assert_eq!(&e[44..64], &[1; 20]);
        assert_eq!(&e[64..80], &5u128.to_be_bytes());
        assert_eq!(e.len(), 80);
    }

    #[test]
    fn refuses_malformed_requests() {
        let (d, k) = cases().remove(0);
        let good = encode(&d, &k);
        assert!(decode(&[]).is_err());
        assert!(decode(&good[..good.len() - 1]).is_err(), "truncated");
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err(), "trailing");
        let mut version = good.clone();
        version[0] = 2;
        assert!(decode(&version).is_err(), "version");
        let mut kind = good.clone();
        kind[42] = 9;
        assert!(decode(&kind).is_err(), "kind");
        // A NEAR account in an EVM action.
        let mixed = encode(
            &d,
            &ActionKind::NativeTransfer {
                to: Account::Near("bob.testnet".into()),
                amount: 1,
            },
        );
        assert!(decode(&mixed).is_err(), "account of another chain");
        // No action may target the unanchored domain.
        let unanchored = encode(&Domain::unanchored(), &k);
        assert!(decode(&unanchored).is_err(), "unanchored");
    }
}
