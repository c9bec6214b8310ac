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

pub mod anvil;

use std::fmt;

/// Errors reading an embedded artifact.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A local anvil could not be started or did not answer.
    #[error("anvil: {0}")]
    Anvil(String),
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

/// ABI bindings of the proxy (used by the relayer, `conclave anchor` and
/// the tests) and of the test doubles.
pub mod bindings {
    // The generated call builders mirror Solidity signatures (the payload
    // has eight fields), so they exceed clippy's argument count.
    #![allow(clippy::too_many_arguments)]

    alloy::sol! {
        #[sol(rpc)]
        #[derive(Debug, PartialEq, Eq)]
        interface IConclaveProxy {
            struct Action { bytes32 id; uint8 kind; address token; address to; uint256 amount; bytes data; }

            error InvalidMembers();
            error InvalidQuorum(uint256 quorum, uint256 members);
            error BadPop(uint256 index);
            error DuplicateMember(uint256 index);
            error WrongEpoch(uint64 expected, uint64 got);
            error StaleHeight(uint64 latest, uint64 got);
            error NonMemberBit();
            error UnderQuorum(uint256 signers, uint256 quorum);
            error BadSignature();
            error UnknownCheckpoint();
            error AlreadyExecuted(bytes32 id);
            error BadProof();
            error UnknownKind(uint8 kind);
            error TransferFailed();
            error CallFailed(bytes reason);
            error Reentrancy();
            error UnknownRotation();
            error MembersHashMismatch();

            event CheckpointSubmitted(uint64 indexed height, uint64 epoch, bytes32 stateRoot, bytes32 actionsRoot, bytes32 nextMembersHash);
            event MembersRotated(uint64 indexed epoch, bytes32 membersHash, uint16 memberCount, uint16 quorum);
            event ActionExecuted(bytes32 indexed id, uint64 indexed height);

            function submitCheckpoint(uint64 signedEpoch, uint64 height, bytes32 stateRoot, bytes32 actionsRoot, bytes32 nextMembersHash, uint256 signers, bytes signature) external;
            function checkpointDigest(uint64 signedEpoch, uint64 height, bytes32 stateRoot, bytes32 actionsRoot, bytes32 nextMembersHash) external view returns (bytes32);
            function executeAction(uint64 checkpointHeight, Action action, bytes32[] proof, uint256 index) external;
            function rotateMembers(uint64 checkpointHeight, bytes pks, bytes pops, uint32 requestedQuorum) external;
            function registerKeys(bytes pks, bytes pops) external;
            function keyRegistered(bytes pk) external view returns (bool);
            function latestCheckpoint() external view returns (uint64 height, bytes32 stateRoot, bytes32 actionsRoot);
            function checkpointAt(uint64 height) external view returns (bytes32 stateRoot, bytes32 actionsRoot, bytes32 nextMembersHash);
            function membersHash() external view returns (bytes32);
            function quorum() external view returns (uint16);
            function epoch() external view returns (uint64);
            function memberCount() external view returns (uint16);
            function members() external view returns (bytes);
            function executed(bytes32 id) external view returns (bool);
            function contextId() external view returns (bytes32);
        }

        #[sol(rpc)]
        interface IBLSHarness {
            struct Action { bytes32 id; uint8 kind; address token; address to; uint256 amount; bytes data; }
            function expandMessageXmd(bytes message, bytes dst) external view returns (bytes);
            function hashToG2(bytes message, bytes dst) external view returns (bytes);
            function compressG1(bytes pk) external pure returns (bytes);
            function verifyPop(bytes pk, bytes pop) external view returns (bool);
            function verify(bytes pk, bytes message, bytes sig) external view returns (bool);
            function payload(uint64 chainId, address proxy, bytes32 contextId, uint64 epoch, uint64 height, bytes32 stateRoot, bytes32 actionsRoot, bytes32 nextMembersHash) external pure returns (bytes);
            function membersHash(bytes pks, uint32 quorum) external pure returns (bytes32);
            function actionLeaf(uint64 chainId, address proxy, Action a) external pure returns (bytes32);
            function verifyProof(bytes32 root, bytes32 leaf, bytes32[] proof, uint256 index) external pure returns (bool);
        }

        #[sol(rpc)]
        interface ITestToken {
            function mint(address to, uint256 amount) external;
            function balanceOf(address who) external view returns (uint256);
        }

        #[sol(rpc)]
        interface IReentrantReceiver {
            function arm(address t, bytes d) external;
            function received() external view returns (uint256);
        }

        #[sol(rpc)]
        interface IRevertingReceiver {
            function setOpen(bool o) external;
            function value() external view returns (uint256);
            function received() external view returns (uint256);
            function poke(uint256 v) external payable;
        }
    }
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
