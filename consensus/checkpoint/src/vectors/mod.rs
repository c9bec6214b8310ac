//! Deterministic test vectors shared by this crate, the Solidity proxy and
//! the NEAR proxy (`contracts/vectors/*.json`).
//!
//! [`generate`] builds every file from fixed seeds; the example
//! `gen_vectors` writes them, and the integration tests check that the
//! committed files verify, fail for their stated reasons, and regenerate
//! byte for byte. Hex strings carry a `0x` prefix.

mod build;
mod cases;
mod types;

pub use build::{vector_key, vector_keys, VECTOR_CHAIN_ID, VECTOR_PROXY, VECTOR_TOKEN};
pub use types::*;

use crate::error::{Error, Result};

/// `0x`-prefixed lowercase hex.
pub fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Decodes `0x`-prefixed hex.
pub fn from_hex(s: &str) -> Result<Vec<u8>> {
    hex::decode(s.trim_start_matches("0x")).map_err(|_| Error::BadHex)
}

/// Decodes `0x`-prefixed hex of exactly `N` bytes.
pub fn from_hex_n<const N: usize>(s: &str) -> Result<[u8; N]> {
    let v = from_hex(s)?;
    v.as_slice().try_into().map_err(|_| Error::BadLength {
        what: "hex field",
        expected: N,
        got: v.len(),
    })
}

/// Every vector file, as `(file name, pretty JSON with trailing newline)`.
pub fn generate() -> Result<Vec<(&'static str, String)>> {
    let ctx = build::Ctx::new()?;
    let json = |v: serde_json::Result<String>| v.map(|s| s + "\n").unwrap_or_default();
    Ok(vec![
        (
            "keys.json",
            json(serde_json::to_string_pretty(&build::keys_file(&ctx))),
        ),
        (
            "members.json",
            json(serde_json::to_string_pretty(&build::members_file(&ctx)?)),
        ),
        (
            "checkpoints.json",
            json(serde_json::to_string_pretty(&cases::checkpoints_file(
                &ctx,
            )?)),
        ),
        (
            "actions.json",
            json(serde_json::to_string_pretty(&cases::actions_file(&ctx)?)),
        ),
        (
            "hash_to_g2.json",
            json(serde_json::to_string_pretty(&cases::hash_to_g2_file(&ctx)?)),
        ),
    ])
}
