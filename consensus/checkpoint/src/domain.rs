//! The target domain: which chain and which proxy contract a checkpoint or
//! an action is for. Fixed-size so contracts rebuild it cheaply.
//!
//! Encoding (41 bytes): `kind (u8) || chain_id (u64 BE) || target (32)`.
//! - EVM (`kind = 1`): `chain_id` is the EIP-155 chain id, `target` is the
//!   proxy address left-padded with 12 zero bytes (its ABI word).
//! - NEAR (`kind = 2`): `chain_id` is 0, `target` is
//!   `sha256(u8 len(network) || network || u8 len(account) || account)`,
//!   e.g. network `mainnet`, account `dao.conclave.near`.
//! - Unanchored (`kind = 0`): `chain_id` 0, `target` 32 zero bytes. The
//!   domain of a context that anchors nowhere: its members still sign
//!   checkpoints (so they exist and verify off chain), but no proxy ever
//!   accepts one, since a proxy only accepts its own EVM or NEAR domain,
//!   and no action can target it.

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Encoded length of a [`Domain`].
pub const DOMAIN_LEN: usize = 41;

/// The chain family of a domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ChainKind {
    /// No chain: checkpoints of a context without anchors.
    Unanchored = 0,
    /// Ethereum and EVM chains.
    Evm = 1,
    /// NEAR Protocol.
    Near = 2,
}

impl ChainKind {
    /// Decodes the kind byte.
    pub fn from_byte(b: u8) -> Result<Self> {
        match b {
            0 => Ok(ChainKind::Unanchored),
            1 => Ok(ChainKind::Evm),
            2 => Ok(ChainKind::Near),
            other => Err(Error::UnknownChainKind(other)),
        }
    }
}

/// A chain plus a proxy contract on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Domain {
    /// Chain family.
    pub kind: ChainKind,
    /// EVM chain id; 0 for NEAR.
    pub chain_id: u64,
    /// Contract identity (see module docs).
    pub target: [u8; 32],
}

impl Domain {
    /// The unanchored domain (module docs).
    pub fn unanchored() -> Self {
        Domain {
            kind: ChainKind::Unanchored,
            chain_id: 0,
            target: [0u8; 32],
        }
    }

    /// An EVM proxy at `proxy` on chain `chain_id`.
    pub fn evm(chain_id: u64, proxy: [u8; 20]) -> Self {
        let mut target = [0u8; 32];
        target[12..].copy_from_slice(&proxy);
        Domain {
            kind: ChainKind::Evm,
            chain_id,
            target,
        }
    }

    /// A NEAR proxy account on a NEAR network.
    pub fn near(network: &str, account: &str) -> Result<Self> {
        if network.is_empty() || network.len() > 64 {
            return Err(Error::BadNearId { what: "network" });
        }
        if account.len() < 2 || account.len() > 64 {
            return Err(Error::BadNearId { what: "account" });
        }
        let mut h = Sha256::new();
        h.update([network.len() as u8]);
        h.update(network.as_bytes());
        h.update([account.len() as u8]);
        h.update(account.as_bytes());
        Ok(Domain {
            kind: ChainKind::Near,
            chain_id: 0,
            target: h.finalize().into(),
        })
    }

    /// The proxy address, for an EVM domain.
    pub fn evm_address(&self) -> Option<[u8; 20]> {
        let mut a = [0u8; 20];
        a.copy_from_slice(&self.target[12..]);
        (self.kind == ChainKind::Evm && self.target[..12] == [0u8; 12]).then_some(a)
    }

    /// The 41-byte encoding.
    pub fn encode(&self) -> [u8; DOMAIN_LEN] {
        let mut out = [0u8; DOMAIN_LEN];
        out[0] = self.kind as u8;
        out[1..9].copy_from_slice(&self.chain_id.to_be_bytes());
        out[9..].copy_from_slice(&self.target);
        out
    }

    /// Decodes the 41-byte encoding.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != DOMAIN_LEN {
            return Err(Error::BadLength {
                what: "domain",
                expected: DOMAIN_LEN,
                got: bytes.len(),
            });
        }
        let kind = ChainKind::from_byte(bytes[0])?;
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[1..9]);
        let mut target = [0u8; 32];
        target.copy_from_slice(&bytes[9..]);
        let d = Domain {
            kind,
            chain_id: u64::from_be_bytes(id),
            target,
        };
        if kind == ChainKind::Unanchored && d != Domain::unanchored() {
            return Err(Error::BadAction(
                "unanchored domain with a chain id or target",
            ));
        }
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evm_domain_layout() {
        let d = Domain::evm(31337, [0xab; 20]);
        let e = d.encode();
        assert_eq!(e[0], 1);
        assert_eq!(&e[1..9], &31337u64.to_be_bytes());
        assert_eq!(&e[9..21], &[0u8; 12]);
        assert_eq!(&e[21..], &[0xab; 20]);
        assert_eq!(Domain::decode(&e), Ok(d));
        assert_eq!(d.evm_address(), Some([0xab; 20]));
    }

    #[test]
    fn near_domain_hashes_network_and_account() {
        let a = Domain::near("testnet", "dao.testnet").expect("valid");
        let b = Domain::near("mainnet", "dao.testnet").expect("valid");
        assert_ne!(a, b);
        assert_eq!(a.chain_id, 0);
        assert_eq!(a.evm_address(), None);
        assert_eq!(Domain::decode(&a.encode()), Ok(a));
        assert!(Domain::near("", "dao").is_err());
        assert!(Domain::near("testnet", &"x".repeat(65)).is_err());
    }

    #[test]
    fn unanchored_domain_is_kind_zero_and_all_zero() {
        let u = Domain::unanchored();
        assert_eq!(u.encode(), [0u8; DOMAIN_LEN]);
        assert_eq!(Domain::decode(&[0u8; DOMAIN_LEN]), Ok(u));
        assert_eq!(u.evm_address(), None);
        let mut e = [0u8; DOMAIN_LEN];
        e[8] = 1;
        assert!(Domain::decode(&e).is_err(), "unanchored with a chain id");
    }

    #[test]
    fn decode_rejects_unknown_kind_and_length() {
        let mut e = Domain::evm(1, [1; 20]).encode();
        e[0] = 3;
        assert_eq!(Domain::decode(&e), Err(Error::UnknownChainKind(3)));
        assert!(matches!(
            Domain::decode(&e[..40]),
            Err(Error::BadLength { .. })
        ));
    }
}
