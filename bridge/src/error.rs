//! The bridge's errors. Each names what is wrong in words an operator can
//! act on: which URL, which chain, which account, which contract.

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong reaching a chain, reading a node or relaying.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The RPC URL does not parse.
    #[error("bad RPC URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// Nothing answers at the RPC URL, or not as a chain.
    #[error("cannot reach the chain at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The chain is not the one the caller named.
    #[error("the chain at {url} has chain id {got}, expected {expected}")]
    WrongChain {
        url: String,
        expected: u64,
        got: u64,
    },
    /// A signing key that cannot be read or parsed.
    #[error("key file {path}: {reason}")]
    Key { path: String, reason: String },
    /// The sending account cannot pay for gas.
    #[error("account {address} holds no funds on chain {chain_id}; fund it first")]
    Unfunded { address: String, chain_id: u64 },
    /// No contract at the proxy address.
    #[error("no contract at {address} on chain {chain_id}")]
    NoContract { address: String, chain_id: u64 },
    /// The proxy belongs to another context.
    #[error("the proxy at {address} serves context {got}, not {expected}")]
    WrongContext {
        address: String,
        expected: String,
        got: String,
    },
    /// The chain's fees are above the configured cap.
    #[error("the base fee {base_fee} wei is above the fee cap {cap} wei; nothing sent")]
    FeeCap { base_fee: u128, cap: u128 },
    /// A chain call failed for a reason other than a contract's refusal.
    #[error("chain RPC: {0}")]
    Rpc(String),
    /// A contract refused a call (decoded custom error, or raw revert).
    #[error("{call} refused: {reason}")]
    Refused { call: &'static str, reason: String },
    /// A sent transaction reverted on chain.
    #[error("transaction {tx} ({call}) reverted")]
    Reverted { call: &'static str, tx: String },
    /// The member's node could not be read.
    #[error("node: {0}")]
    Node(String),
    /// The node served something that does not decode.
    #[error("malformed data from the node: {0}")]
    Malformed(String),
    /// A relay configuration that cannot be used.
    #[error("relay config: {0}")]
    Config(String),
    /// NEAR: the NEAR client's error, which names what is wrong.
    #[cfg(feature = "near")]
    #[error(transparent)]
    Near(#[from] conclave_bridge_near::Error),
}

/// Every `reason` of `conclave_relay_errors_total`: [`Error::reason`]'s
/// labels and the relay's own (a reorg, a rotation that does not match, a
/// stranded action, an action that keeps failing).
pub const ERROR_REASONS: &[&str] = &[
    "config",
    "chain_rpc",
    "wrong_chain",
    "unfunded",
    "wrong_proxy",
    "fee_cap",
    "refused",
    "reverted",
    "node",
    "malformed",
    "reorg",
    "rotation_mismatch",
    "stranded",
    "action_fails",
];

impl Error {
    /// A short label for the `reason` of `conclave_relay_errors_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::BadUrl { .. } | Error::Config(_) | Error::Key { .. } => "config",
            Error::Unreachable { .. } | Error::Rpc(_) => "chain_rpc",
            Error::WrongChain { .. } => "wrong_chain",
            Error::Unfunded { .. } => "unfunded",
            Error::NoContract { .. } | Error::WrongContext { .. } => "wrong_proxy",
            Error::FeeCap { .. } => "fee_cap",
            Error::Refused { .. } => "refused",
            Error::Reverted { .. } => "reverted",
            Error::Node(_) => "node",
            Error::Malformed(_) => "malformed",
            #[cfg(feature = "near")]
            Error::Near(e) => near_reason(e),
        }
    }
}

/// The `reason` label of a NEAR client error.
#[cfg(feature = "near")]
fn near_reason(e: &conclave_bridge_near::Error) -> &'static str {
    use conclave_bridge_near::Error as N;
    match e {
        N::BadUrl { .. } | N::Key { .. } | N::BadAccount { .. } | N::ReadOnly(_) => "config",
        N::Unreachable { .. } | N::Rpc(_) | N::InvalidTx { .. } => "chain_rpc",
        N::WrongNetwork { .. } => "wrong_chain",
        N::NoAccount { .. }
        | N::NoAccessKey { .. }
        | N::NotFullAccess { .. }
        | N::InsufficientBalance { .. } => "unfunded",
        N::NoContract { .. } | N::WrongContext { .. } => "wrong_proxy",
        N::Refused { .. } => "refused",
        N::Malformed(_) => "malformed",
    }
}
