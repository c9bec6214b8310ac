use std::fmt;
use std::str::FromStr;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::serde_hex::{decode_exact, digits, HexVisitor};

macro_rules! hex32 {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, BorshSerialize, BorshDeserialize)]
        pub struct $name(pub [u8; 32]);

        impl $name {
            pub fn as_bytes(&self) -> &[u8; 32] {
                &self.0
            }
            pub fn to_hex(&self) -> String {
                digits(&self.0, &mut [0u8; 64]).to_owned()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(digits(&self.0, &mut [0u8; 64]))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({}…)", stringify!($name), &hex::encode(&self.0[..6]))
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                decode_exact(s.strip_prefix("0x").unwrap_or(s)).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(digits(&self.0, &mut [0u8; 64]))
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_str(HexVisitor(decode_exact)).map(Self)
            }
        }
    };
}

hex32!(
    /// A 32-byte hash (SHA-256 unless stated otherwise).
    Hash32
);
hex32!(
    /// A context's id: the hash of its genesis.
    ContextId
);
hex32!(
    /// A member's identity: its ed25519 public key. Members sign transactions
    /// and consensus votes with the matching secret key.
    MemberId
);

/// A block height within one context. Height 0 is the genesis state; the
/// first block is height 1.
#[derive(
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Default,
    Debug,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(transparent)]
pub struct Height(pub u64);

impl fmt::Display for Height {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl malachitebft_core_types::Height for Height {
    const ZERO: Self = Height(0);
    const INITIAL: Self = Height(1);

    fn increment_by(&self, n: u64) -> Self {
        Height(self.0.saturating_add(n))
    }

    fn decrement_by(&self, n: u64) -> Option<Self> {
        self.0.checked_sub(n).map(Height)
    }

    fn as_u64(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_roundtrip_and_errors() {
        let id = ContextId([7; 32]);
        let parsed: ContextId = id.to_hex().parse().unwrap();
        assert_eq!(parsed, id);
        assert!("zz".parse::<ContextId>().is_err());
        assert!("abcd"
            .parse::<ContextId>()
            .unwrap_err()
            .contains("32 bytes"));
        let json = serde_json_like(&id);
        assert_eq!(json.len(), 64);
    }

    /// The stack-built digits are `hex::encode`'s, and every way in
    /// (`0x`, JSON, upper case) reads them back; bad input says why.
    #[test]
    fn ids_read_and_write_the_hex_they_always_did() {
        let id = Hash32(std::array::from_fn(|i| (i * 37 + 5) as u8));
        assert_eq!(id.to_hex(), hex::encode(id.0));
        assert_eq!(id.to_string(), hex::encode(id.0));
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", hex::encode(id.0)));
        assert_eq!(serde_json::from_str::<Hash32>(&json).unwrap(), id);
        let upper = format!("\"0x{}\"", hex::encode_upper(id.0));
        assert_eq!(serde_json::from_str::<Hash32>(&upper).unwrap(), id);
        // An escaped string is read from its unescaped copy.
        let escaped = json.replacen('a', "\\u0061", 1);
        assert_ne!(escaped, json);
        assert_eq!(serde_json::from_str::<Hash32>(&escaped).unwrap(), id);

        let bad_digit = format!("{}g", &hex::encode(id.0)[..63]);
        assert!(bad_digit
            .parse::<Hash32>()
            .unwrap_err()
            .starts_with("invalid hex"));
        assert!("abc"
            .parse::<Hash32>()
            .unwrap_err()
            .starts_with("invalid hex"));
        let long = hex::encode([1u8; 33]);
        assert_eq!(
            long.parse::<Hash32>().unwrap_err(),
            "expected 32 bytes, got 33"
        );
        assert!(serde_json::from_str::<Hash32>("7").is_err());
        assert!(serde_json::from_str::<Hash32>(&format!("\"{long}\"")).is_err());
    }

    fn serde_json_like(id: &ContextId) -> String {
        id.to_string()
    }
}
