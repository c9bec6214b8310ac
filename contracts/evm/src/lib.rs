//! Conclave's Ethereum proxy contract, as compiled artifacts.
//!
//! The Solidity lives in `sol/`: `BLS.sol` (BLS12-381 over the EIP-2537
//! precompiles, RFC 9380 hash-to-G2), `Checkpoint.sol` (payload, members
//! hash and action-leaf encodings of `conclave-checkpoint`), `KeyStore.sol`
//! (members' keys kept as contract code), `ConclaveProxy.sol` (one proxy per
//! context), `BLSHarness.sol` (exposes the libraries for vector tests) and
//! `TestToken.sol`, `RevertingReceiver.sol` and `ReentrantReceiver.sol` (test doubles). `build.rs` compiles
//! them with solcjs; this crate embeds the resulting ABI and bytecode so
//! nothing is pasted by hand. Tests against anvil are in `tests/it`.

use std::fmt;

/// Errors reading an embedded artifact.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No artifact of that name was compiled.
    #[error("no artifact named {0}")]
    Unknown(String),
    /// The artifact JSON lacks a field or is malformed.
    #[error("artifact {name}: {reason}")]
    Malformed {
        /// Contract name.
        name: String,
        /// What is wrong.
        reason: String,
    },
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! artifacts {
    ($($name:literal),* $(,)?) => {
        /// `(contract name, artifact JSON)` of every compiled contract.
        pub const ARTIFACTS: &[(&str, &str)] = &[
            $(($name, include_str!(concat!(env!("OUT_DIR"), "/artifacts/", $name, ".json"))),)*
        ];
    };
}

artifacts!(
    "ConclaveProxy",
    "BLSHarness",
    "TestToken",
    "RevertingReceiver",
    "ReentrantReceiver",
);

/// One compiled contract.
#[derive(Clone)]
pub struct Artifact {
    /// Contract name.
    pub name: String,
    /// The JSON ABI.
    pub abi: serde_json::Value,
    /// Creation bytecode (constructor arguments are appended to it).
    pub bytecode: Vec<u8>,
    /// Runtime bytecode.
    pub deployed_bytecode: Vec<u8>,
}

impl fmt::Debug for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Artifact")
            .field("name", &self.name)
            .field("bytecode_len", &self.bytecode.len())
            .field("deployed_len", &self.deployed_bytecode.len())
            .finish()
    }
}

/// Loads the artifact of contract `name`.
pub fn artifact(name: &str) -> Result<Artifact> {
    let (_, json) = ARTIFACTS
        .iter()
        .find(|(n, _)| *n == name)
        .ok_or_else(|| Error::Unknown(name.to_owned()))?;
    let malformed = |reason: &str| Error::Malformed {
        name: name.to_owned(),
        reason: reason.to_owned(),
    };
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| malformed(&e.to_string()))?;
    let code = |field: &str| -> Result<Vec<u8>> {
        let s = v[field].as_str().ok_or_else(|| malformed(field))?;
        hex::decode(s.trim_start_matches("0x")).map_err(|e| malformed(&e.to_string()))
    };
    Ok(Artifact {
        name: name.to_owned(),
        abi: v["abi"].clone(),
        bytecode: code("bytecode")?,
        deployed_bytecode: code("deployedBytecode")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_artifact_has_code_and_abi() {
        for (name, _) in ARTIFACTS {
            let a = artifact(name).expect("embedded artifact parses");
            assert!(!a.bytecode.is_empty(), "{name} has no bytecode");
            assert!(
                a.abi.as_array().is_some_and(|abi| !abi.is_empty()),
                "{name} has no ABI"
            );
        }
        // EIP-170: the proxy must fit in a contract.
        let proxy = artifact("ConclaveProxy").expect("proxy");
        assert!(proxy.deployed_bytecode.len() <= 24_576);
        assert!(matches!(artifact("Nope"), Err(Error::Unknown(_))));
    }
}
