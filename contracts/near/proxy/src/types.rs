//! JSON arguments and views. Byte strings travel as hex (`0x` optional).

use near_sdk::json_types::U128;
use near_sdk::near;

use crate::error::{ProxyError, Result};

/// A member's BLS public key (48-byte compressed G1, hex) and its proof of
/// possession (96-byte compressed G2, hex). `pop` may be omitted for a key
/// registered beforehand with `register_keys`.
#[near(serializers = [json])]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberKey {
    pub public_key: String,
    #[serde(default)]
    pub pop: Option<String>,
}

/// An action as committed in the actions root; the domain is the
/// contract's own. Kinds: 1 native transfer, 2 NEP-141 transfer (`token`
/// set), 3 function call (`data = u32 len(method) || method || args`, the
/// deposit is `amount`).
#[near(serializers = [json])]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ActionArg {
    pub id: String,
    pub kind: u8,
    #[serde(default)]
    pub token: String,
    pub to: String,
    pub amount: U128,
    #[serde(default)]
    pub data: String,
}

/// An inclusion proof: siblings from the leaf level up, and the leaf index.
#[near(serializers = [json])]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofArg {
    pub index: u64,
    pub siblings: Vec<String>,
}

/// A stored checkpoint.
#[near(serializers = [json])]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointView {
    pub height: u64,
    pub epoch: u64,
    pub state_root: String,
    pub actions_root: String,
    pub next_members_hash: String,
}

/// `0x`-prefixed lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Decodes hex of exactly `N` bytes.
pub fn hex_array<const N: usize>(s: &str, what: &'static str) -> Result<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(strip(s), &mut out).map_err(|_| ProxyError::BadHex(what))?;
    Ok(out)
}

/// Decodes hex of any length.
pub fn hex_vec(s: &str, what: &'static str) -> Result<Vec<u8>> {
    hex::decode(strip(s)).map_err(|_| ProxyError::BadHex(what))
}

fn strip(s: &str) -> &str {
    s.strip_prefix("0x").unwrap_or(s)
}
