//! Typed on-chain action requests: what [`crate::request_action`] hands the
//! host. The node gives each action its unique id and commits it in the
//! height's outbox; a checkpoint carries it to the proxy contract named by
//! its domain.
//!
//! The bytes (docs/checkpoint.md, "Action requests"; big-endian):
//!
//! ```text
//! request = 0x01 (version) || domain (41) || kind (u8) || body
//! body    = 1 native: account to || u128 amount
//!         | 2 token:  account token || account to || u128 amount
//!         | 3 call:   account to || u128 value || u32 len || calldata
//! account = 0x01 || 20-byte EVM address | 0x02 || u8 len || NEAR account id
//! ```
//!
//! A domain is `kind (1 EVM, 2 NEAR) || chain id (u64) || target (32)`;
//! [`Domain::evm`] builds an EVM one. A NEAR domain's target is a SHA-256
//! of the network and account; take its 41 bytes from the context's
//! anchors (`conclave context info`) with [`Domain::from_bytes`].

/// A chain and proxy contract (41 bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Domain(pub [u8; 41]);

impl Domain {
    /// The EVM proxy at `proxy` on chain `chain_id`.
    pub fn evm(chain_id: u64, proxy: [u8; 20]) -> Self {
        let mut d = [0u8; 41];
        d[0] = 1;
        d[1..9].copy_from_slice(&chain_id.to_be_bytes());
        d[21..].copy_from_slice(&proxy);
        Domain(d)
    }

    /// A domain from its 41-byte encoding (kind 1 or 2).
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let d: [u8; 41] = bytes.try_into().ok()?;
        matches!(d[0], 1 | 2).then_some(Domain(d))
    }

    /// Whether the domain is an EVM chain (else NEAR).
    pub fn is_evm(&self) -> bool {
        self.0[0] == 1
    }
}

/// An account on the action's chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Account {
    Evm([u8; 20]),
    /// NEAR account id, 2..=64 bytes.
    Near(String),
}

/// What the action does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionKind {
    NativeTransfer {
        to: Account,
        amount: u128,
    },
    TokenTransfer {
        token: Account,
        to: Account,
        amount: u128,
    },
    /// EVM: `calldata` is the call's calldata. NEAR: see
    /// [`ActionRequest::near_call`].
    ContractCall {
        to: Account,
        value: u128,
        calldata: Vec<u8>,
    },
}

/// An action for one domain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionRequest {
    pub domain: Domain,
    pub kind: ActionKind,
}

impl ActionRequest {
    /// Pay `amount` of the chain's native coin to `to`.
    pub fn native_transfer(domain: Domain, to: Account, amount: u128) -> Self {
        Self {
            domain,
            kind: ActionKind::NativeTransfer { to, amount },
        }
    }

    /// Pay `amount` of the token at `token` to `to`.
    pub fn token_transfer(domain: Domain, token: Account, to: Account, amount: u128) -> Self {
        Self {
            domain,
            kind: ActionKind::TokenTransfer { token, to, amount },
        }
    }

    /// Call `to` with `calldata`, sending `value`.
    pub fn contract_call(domain: Domain, to: Account, value: u128, calldata: Vec<u8>) -> Self {
        Self {
            domain,
            kind: ActionKind::ContractCall {
                to,
                value,
                calldata,
            },
        }
    }

    /// Call `method` on the NEAR account `to` with `args`, attaching
    /// `deposit` yoctoNEAR (calldata `u32 len(method) || method || args`).
    pub fn near_call(domain: Domain, to: &str, method: &str, args: &[u8], deposit: u128) -> Self {
        let mut calldata = (method.len() as u32).to_be_bytes().to_vec();
        calldata.extend_from_slice(method.as_bytes());
        calldata.extend_from_slice(args);
        Self::contract_call(domain, Account::Near(to.into()), deposit, calldata)
    }

    /// The request bytes (module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![1u8];
        out.extend_from_slice(&self.domain.0);
        let put = |out: &mut Vec<u8>, a: &Account| match a {
            Account::Evm(addr) => {
                out.push(1);
                out.extend_from_slice(addr);
            }
            Account::Near(id) => {
                out.push(2);
                out.push(id.len().min(255) as u8);
                out.extend_from_slice(id.as_bytes());
            }
        };
        match &self.kind {
            ActionKind::NativeTransfer { to, amount } => {
                out.push(1);
                put(&mut out, to);
                out.extend_from_slice(&amount.to_be_bytes());
            }
            ActionKind::TokenTransfer { token, to, amount } => {
                out.push(2);
                put(&mut out, token);
                put(&mut out, to);
                out.extend_from_slice(&amount.to_be_bytes());
            }
            ActionKind::ContractCall {
                to,
                value,
                calldata,
            } => {
                out.push(3);
                put(&mut out, to);
                out.extend_from_slice(&value.to_be_bytes());
                out.extend_from_slice(&(calldata.len() as u32).to_be_bytes());
                out.extend_from_slice(calldata);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_transfer_layout() {
        let r = ActionRequest::native_transfer(
            Domain::evm(31337, [0xaa; 20]),
            Account::Evm([1; 20]),
            5,
        );
        let e = r.encode();
        assert_eq!(e.len(), 80);
        assert_eq!(e[0], 1);
        assert_eq!(e[1], 1);
        assert_eq!(&e[2..10], &31337u64.to_be_bytes());
        assert_eq!(&e[10..22], &[0u8; 12]);
        assert_eq!(&e[22..42], &[0xaa; 20]);
        assert_eq!(&e[42..44], &[1, 1]);
        assert_eq!(&e[64..80], &5u128.to_be_bytes());
    }
}
