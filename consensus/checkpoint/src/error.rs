//! The crate's error type.

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can be wrong with a key, a checkpoint, a member set or an
/// action. Each variant has a stable snake_case [`Error::reason`] that the
/// JSON test vectors name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A byte string had the wrong length for what it encodes.
    #[error("{what}: expected {expected} bytes, got {got}")]
    BadLength {
        /// What was being decoded.
        what: &'static str,
        /// Required length.
        expected: usize,
        /// Length received.
        got: usize,
    },
    /// A curve point's bytes are not a valid encoding (flags, padding, field
    /// element out of range, not on the curve).
    #[error("{what}: invalid point encoding")]
    BadPoint {
        /// Which point.
        what: &'static str,
    },
    /// A point is on the curve but not in the prime-order subgroup.
    #[error("{what}: point not in the subgroup")]
    NotInSubgroup {
        /// Which point.
        what: &'static str,
    },
    /// A public key or signature is the point at infinity.
    #[error("{what}: point at infinity")]
    Infinity {
        /// Which point.
        what: &'static str,
    },
    /// A secret key could not be derived or decoded.
    #[error("invalid secret key")]
    BadSecretKey,
    /// A member's proof of possession does not verify (rogue-key defence).
    #[error("member {index}: proof of possession does not verify")]
    BadPop {
        /// Position of the member in the registration list.
        index: usize,
    },
    /// The same public key appears twice in a member set.
    #[error("member {index}: duplicate public key")]
    DuplicateMember {
        /// Position of the second occurrence.
        index: usize,
    },
    /// A member set with no members or more than [`crate::MAX_MEMBERS`].
    #[error("member set size {size} outside 1..={max}")]
    MemberCount {
        /// Members given.
        size: usize,
        /// Upper bound.
        max: usize,
    },
    /// A quorum of zero or above the member count.
    #[error("quorum {quorum} outside 1..={members}")]
    InvalidQuorum {
        /// Quorum given.
        quorum: u32,
        /// Member count.
        members: usize,
    },
    /// The signer bitmap names a bit at or above the member count.
    #[error("signer bitmap names bit {bit}, member set has {members}")]
    NonMemberBit {
        /// Lowest offending bit.
        bit: usize,
        /// Member count.
        members: usize,
    },
    /// Fewer signers than the quorum.
    #[error("{signers} signers, quorum is {quorum}")]
    UnderQuorum {
        /// Signers in the bitmap.
        signers: u32,
        /// Required quorum.
        quorum: u32,
    },
    /// The checkpoint names another chain or another contract.
    #[error("checkpoint is for another chain or contract")]
    WrongDomain,
    /// The checkpoint names another member-set epoch.
    #[error("checkpoint epoch {got}, verifier is at {expected}")]
    WrongEpoch {
        /// Epoch the verifier is at.
        expected: u64,
        /// Epoch in the payload.
        got: u64,
    },
    /// The aggregate signature does not verify for the payload and signers.
    #[error("aggregate signature does not verify")]
    BadSignature,
    /// The payload does not start with the V1 domain tag.
    #[error("payload tag is not CONCLAVE-CHECKPOINT-V1")]
    BadTag,
    /// Unknown chain kind byte.
    #[error("unknown chain kind {0}")]
    UnknownChainKind(u8),
    /// A NEAR network or account id outside the allowed lengths.
    #[error("invalid NEAR {what}")]
    BadNearId {
        /// `network` or `account`.
        what: &'static str,
    },
    /// An action's account does not belong to its domain's chain kind, or
    /// its fields do not fit the chain's encoding.
    #[error("action does not fit its target chain: {0}")]
    BadAction(&'static str),
    /// A Merkle proof does not lead to the root.
    #[error("inclusion proof does not verify")]
    BadInclusionProof,
    /// A vector file's hex string does not decode.
    #[error("invalid hex string")]
    BadHex,
    /// Nothing to aggregate, or signatures given for a non-member.
    #[error("cannot aggregate: {0}")]
    Aggregate(&'static str),
}

impl Error {
    /// Stable machine-readable name, used by the JSON vectors.
    pub fn reason(&self) -> &'static str {
        match self {
            Error::BadLength { .. } => "bad_length",
            Error::BadPoint { .. } => "bad_point",
            Error::NotInSubgroup { .. } => "not_in_subgroup",
            Error::Infinity { .. } => "infinity",
            Error::BadSecretKey => "bad_secret_key",
            Error::BadPop { .. } => "bad_pop",
            Error::DuplicateMember { .. } => "duplicate_member",
            Error::MemberCount { .. } => "member_count",
            Error::InvalidQuorum { .. } => "invalid_quorum",
            Error::NonMemberBit { .. } => "non_member_bit",
            Error::UnderQuorum { .. } => "under_quorum",
            Error::WrongDomain => "wrong_domain",
            Error::WrongEpoch { .. } => "wrong_epoch",
            Error::BadSignature => "bad_signature",
            Error::BadTag => "bad_tag",
            Error::UnknownChainKind(_) => "unknown_chain_kind",
            Error::BadNearId { .. } => "bad_near_id",
            Error::BadAction(_) => "bad_action",
            Error::BadInclusionProof => "bad_inclusion_proof",
            Error::BadHex => "bad_hex",
            Error::Aggregate(_) => "aggregate",
        }
    }
}
