//! What can go wrong on NEAR, named so an operator can act: which URL,
//! which network, which account or key, which contract call.

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A NEAR client's errors.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The RPC URL does not parse.
    #[error("bad NEAR RPC URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    /// Nothing answers at the URL, or not as a NEAR node.
    #[error("cannot reach a NEAR node at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    /// The node serves another network than the one named.
    #[error("the NEAR node at {url} serves network {got:?}, expected {expected:?}")]
    WrongNetwork {
        url: String,
        expected: String,
        got: String,
    },
    /// A key file that cannot be read, parsed or used.
    #[error("NEAR key file {path}: {reason}")]
    Key { path: String, reason: String },
    /// Not a valid NEAR account id.
    #[error("{account:?} is not a NEAR account id: {reason}")]
    BadAccount { account: String, reason: String },
    /// The account does not exist on the network.
    #[error("NEAR account {account} does not exist on {network}")]
    NoAccount { account: String, network: String },
    /// The account has no access key for the key file's public key.
    #[error("NEAR account {account} on {network} has no access key {public_key}")]
    NoAccessKey {
        account: String,
        public_key: String,
        network: String,
    },
    /// The key is a function-call key; the relayer needs a full-access key.
    #[error("access key {public_key} of {account} is not a full-access key")]
    NotFullAccess { account: String, public_key: String },
    /// The account cannot pay for what it is asked to do.
    #[error("NEAR account {account} holds {balance} yoctoNEAR, needs {needed}; fund it first")]
    InsufficientBalance {
        account: String,
        balance: u128,
        needed: u128,
    },
    /// No contract is deployed at the proxy account.
    #[error("no contract at NEAR account {account} on {network}")]
    NoContract { account: String, network: String },
    /// The proxy serves another context.
    #[error("the NEAR proxy {account} serves context {got}, not {expected}")]
    WrongContext {
        account: String,
        expected: String,
        got: String,
    },
    /// The contract refused a call (its panic message), or a view failed in
    /// the contract.
    #[error("{call} refused: {reason}")]
    Refused { call: &'static str, reason: String },
    /// The network refused the transaction itself (bad nonce, expired block
    /// hash, signature, ...).
    #[error("{call}: transaction refused: {reason}")]
    InvalidTx { call: &'static str, reason: String },
    /// Any other RPC failure.
    #[error("NEAR RPC: {0}")]
    Rpc(String),
    /// The node answered with something that does not decode.
    #[error("malformed answer from NEAR: {0}")]
    Malformed(String),
    /// A call that needs a signing account on a read-only client.
    #[error("{0} needs a signing account (a key file)")]
    ReadOnly(&'static str),
}
