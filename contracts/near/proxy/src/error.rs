//! The proxy's refusals. A method that returns one panics with its message
//! (`#[handle_result]`), so the transaction fails and changes nothing.

use near_sdk::{env, FunctionError};

/// Why a call was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProxyError {
    /// An argument is not valid hex of the expected length.
    BadHex(&'static str),
    /// Member count outside `1..=MAX_MEMBERS`.
    InvalidMembers(usize),
    /// Quorum of 0 after resolution, or above the member count.
    InvalidQuorum { quorum: u32, members: usize },
    /// The network name is empty or longer than 64 bytes.
    BadNetwork,
    /// Member `index`'s key is malformed or infinity, or its proof of
    /// possession is missing (and the key was not registered) or invalid.
    BadPop(usize),
    /// Member `index` repeats an earlier key.
    DuplicateMember(usize),
    /// The checkpoint was signed for another member-set epoch.
    WrongEpoch { expected: u64, got: u64 },
    /// The checkpoint height is not above the latest one.
    StaleHeight { latest: u64, got: u64 },
    /// The signer bitmap names an index at or above the member count.
    NonMemberBit,
    /// Fewer signers than the quorum.
    UnderQuorum { signers: u32, quorum: u32 },
    /// The aggregate signature does not verify (forged, tampered, or signed
    /// for another chain, contract or context).
    BadSignature,
    /// No checkpoint is stored at that height.
    UnknownCheckpoint(u64),
    /// The action is not under that checkpoint's actions root (bad proof,
    /// tampered fields, or an action for another domain).
    BadProof,
    /// The action was executed already.
    AlreadyExecuted,
    /// A transfer or call of this action is under way.
    InFlight,
    /// The action's fields do not form a NEAR action of its kind.
    BadAction(&'static str),
    /// Paying out would take the balance below the storage stake.
    InsufficientBalance,
    /// No checkpoint of the current epoch at that height announces a new set.
    UnknownRotation,
    /// The new set's hash differs from the announced one.
    MembersHashMismatch,
    /// A deposit below what the storage written costs.
    InsufficientDeposit,
    /// Initial members' PoPs still to be registered.
    UnverifiedMembers(u32),
}

impl std::fmt::Display for ProxyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProxyError::BadHex(what) => write!(f, "BadHex: {what}"),
            ProxyError::InvalidMembers(n) => write!(f, "InvalidMembers: {n} members"),
            ProxyError::InvalidQuorum { quorum, members } => {
                write!(f, "InvalidQuorum: {quorum} of {members}")
            }
            ProxyError::BadNetwork => f.write_str("BadNetwork"),
            ProxyError::BadPop(i) => write!(f, "BadPop: member {i}"),
            ProxyError::DuplicateMember(i) => write!(f, "DuplicateMember: member {i}"),
            ProxyError::WrongEpoch { expected, got } => {
                write!(f, "WrongEpoch: expected {expected}, got {got}")
            }
            ProxyError::StaleHeight { latest, got } => {
                write!(f, "StaleHeight: latest {latest}, got {got}")
            }
            ProxyError::NonMemberBit => f.write_str("NonMemberBit"),
            ProxyError::UnderQuorum { signers, quorum } => {
                write!(f, "UnderQuorum: {signers} signers, quorum {quorum}")
            }
            ProxyError::BadSignature => f.write_str("BadSignature"),
            ProxyError::UnknownCheckpoint(h) => write!(f, "UnknownCheckpoint: height {h}"),
            ProxyError::BadProof => f.write_str("BadProof"),
            ProxyError::AlreadyExecuted => f.write_str("AlreadyExecuted"),
            ProxyError::InFlight => f.write_str("InFlight"),
            ProxyError::BadAction(why) => write!(f, "BadAction: {why}"),
            ProxyError::InsufficientBalance => f.write_str("InsufficientBalance"),
            ProxyError::UnknownRotation => f.write_str("UnknownRotation"),
            ProxyError::MembersHashMismatch => f.write_str("MembersHashMismatch"),
            ProxyError::InsufficientDeposit => f.write_str("InsufficientDeposit"),
            ProxyError::UnverifiedMembers(n) => write!(f, "UnverifiedMembers: {n} PoPs missing"),
        }
    }
}

impl FunctionError for ProxyError {
    fn panic(&self) -> ! {
        env::panic_str(&self.to_string())
    }
}

/// Result of the proxy's methods.
pub type Result<T> = std::result::Result<T, ProxyError>;
