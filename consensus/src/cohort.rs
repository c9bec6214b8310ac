//! Cohorts (docs/cohorts.md, the first of its steps): contexts whose next
//! heights have the same validators decide them in one consensus instance,
//! the cohort's. This module is what a cohort height agrees on and what shows
//! that one context's block was decided in one: the cohort's id, its value
//! (one entry per context), the root its votes name, and the path from one
//! entry to that root, which with the cohort's commit certificate is the
//! context block's certificate. Nothing in the node runs cohorts yet.
//!
//! A cohort's engine is a context's ([`crate::Engine`]) with the cohort's id
//! where a context's id goes, so its votes are signed over the cohort id. A
//! cohort id is a hash with a preimage domain of its own (a context id is
//! its genesis's hash under `conclave/context/v1`), so no cohort vote is
//! valid as any context's vote, nor the other way round.

use borsh::{BorshDeserialize, BorshSerialize};
use malachitebft_core_types::{CertificateError, CommitCertificate, ThresholdParams};
use thiserror::Error;

use crate::context::{ConclaveContext, ValidatorSet};
use crate::engine::verify_commit_certificate;
use crate::types::{merkle_leaf, merkle_parent, merkle_root, sha256, ContextId, Hash32, Height};

const COHORT_DOMAIN: &[u8] = b"conclave/cohort/v1";
const LEAF_DOMAIN: &[u8] = b"conclave/cohort-leaf/v1";

/// Entries in one cohort value, at most: a cohort height carries the blocks of
/// the contexts with txs ready, and a node keeps a few thousand contexts.
pub const MAX_COHORT_ENTRIES: usize = 4096;

/// The id of the cohort of the contexts whose next height is validated by
/// the member set with hash `members_hash` (what a block header names for
/// its next height): what the cohort's engine and votes use where a
/// context's own use its id.
pub fn cohort_id(members_hash: &Hash32) -> ContextId {
    ContextId(sha256(&[COHORT_DOMAIN, &members_hash.0]).0)
}

/// One context's block in a cohort height.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CohortEntry {
    pub context: ContextId,
    /// The context's height the block is at: its tip plus one.
    pub height: Height,
    /// The block's hash (its header's).
    pub block: Hash32,
}

impl CohortEntry {
    /// The entry's leaf in the cohort value's Merkle tree.
    pub fn leaf(&self) -> Hash32 {
        sha256(&[
            LEAF_DOMAIN,
            &self.context.0,
            &self.height.0.to_le_bytes(),
            &self.block.0,
        ])
    }
}

/// Why a cohort value is refused.
#[derive(Clone, Debug, Error, PartialEq, Eq)]
pub enum CohortError {
    #[error("a cohort value carries at least one block")]
    Empty,
    #[error("a cohort value carries at most {MAX_COHORT_ENTRIES} blocks, not {0}")]
    TooMany(usize),
    #[error("context {0} twice in a cohort value")]
    Duplicate(ContextId),
    #[error("a cohort value's entries are in context id order")]
    Unordered,
}

/// What a cohort height decides: one block for each of some of the cohort's
/// contexts, in context id order, each context at most once. Its [`id`]
/// is what the cohort's votes name.
///
/// [`id`]: CohortValue::id
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize)]
pub struct CohortValue {
    entries: Vec<CohortEntry>,
}

impl CohortValue {
    /// The value of `entries`, put in context id order; refused if empty,
    /// too long, or naming a context twice.
    pub fn new(mut entries: Vec<CohortEntry>) -> Result<Self, CohortError> {
        entries.sort_by_key(|e| e.context);
        Self::checked(entries)
    }

    /// `entries` as they are, if they make a value: what decoding takes, so
    /// that a value has one encoding.
    fn checked(entries: Vec<CohortEntry>) -> Result<Self, CohortError> {
        if entries.is_empty() {
            return Err(CohortError::Empty);
        }
        if entries.len() > MAX_COHORT_ENTRIES {
            return Err(CohortError::TooMany(entries.len()));
        }
        for pair in entries.windows(2) {
            match pair[0].context.cmp(&pair[1].context) {
                std::cmp::Ordering::Less => {}
                std::cmp::Ordering::Equal => return Err(CohortError::Duplicate(pair[0].context)),
                std::cmp::Ordering::Greater => return Err(CohortError::Unordered),
            }
        }
        Ok(Self { entries })
    }

    pub fn entries(&self) -> &[CohortEntry] {
        &self.entries
    }

    /// The entry of `context`, if the value carries one.
    pub fn entry(&self, context: &ContextId) -> Option<&CohortEntry> {
        self.position(context).map(|i| &self.entries[i])
    }

    fn position(&self, context: &ContextId) -> Option<usize> {
        self.entries
            .binary_search_by_key(context, |e| e.context)
            .ok()
    }

    fn leaves(&self) -> Vec<Hash32> {
        self.entries.iter().map(CohortEntry::leaf).collect()
    }

    /// The value's id, which the cohort's votes name: the Merkle root of its
    /// entries' leaves (`types::merkle_root`, the tree of a block's txs).
    pub fn id(&self) -> Hash32 {
        merkle_root(&self.leaves())
    }

    /// The path from `context`'s entry to [`Self::id`], if the value
    /// carries one.
    pub fn path(&self, context: &ContextId) -> Option<CohortPath> {
        let index = self.position(context)?;
        let mut level: Vec<Hash32> = self.leaves().iter().map(merkle_leaf).collect();
        let mut at = index;
        let mut siblings = Vec::new();
        while level.len() > 1 {
            let sibling = at ^ 1;
            if sibling < level.len() {
                siblings.push(level[sibling]);
            }
            level = level.chunks(2).map(merkle_parent).collect();
            at /= 2;
        }
        Some(CohortPath {
            index: u32::try_from(index).ok()?,
            count: u32::try_from(self.entries.len()).ok()?,
            siblings,
        })
    }
}

impl BorshDeserialize for CohortValue {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let len = u32::deserialize_reader(reader)? as usize;
        if len > MAX_COHORT_ENTRIES {
            let e = CohortError::TooMany(len);
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e));
        }
        let entries = (0..len)
            .map(|_| CohortEntry::deserialize_reader(reader))
            .collect::<std::io::Result<Vec<_>>>()?;
        Self::checked(entries).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }
}

/// Where one entry sits in a cohort value's tree: its index among `count`
/// entries and the siblings from its leaf up (none at a level where it is
/// the odd one out). About `log2(count)` hashes; it shows nothing of the
/// other entries.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct CohortPath {
    pub index: u32,
    pub count: u32,
    pub siblings: Vec<Hash32>,
}

impl CohortPath {
    /// The root that `entry` reaches along this path; `None` if the path
    /// does not fit its own shape (an index past the count, a count out of
    /// bounds, too few or too many siblings).
    pub fn root(&self, entry: &CohortEntry) -> Option<Hash32> {
        let (mut at, mut len) = (self.index as usize, self.count as usize);
        if at >= len || len > MAX_COHORT_ENTRIES {
            return None;
        }
        let mut node = merkle_leaf(&entry.leaf());
        let mut siblings = self.siblings.iter();
        while len > 1 {
            let sibling = at ^ 1;
            if sibling < len {
                let other = siblings.next()?;
                node = if at % 2 == 0 {
                    merkle_parent(&[node, *other])
                } else {
                    merkle_parent(&[*other, node])
                };
            }
            at /= 2;
            len = len.div_ceil(2);
        }
        siblings.next().is_none().then_some(node)
    }
}

/// Why a context block's cohort certificate is refused.
#[derive(Debug, Error)]
pub enum CohortCertificateError {
    #[error("the path does not lead from the block's entry to the value the cohort decided")]
    NotDecided,
    #[error("the cohort's commit certificate does not check: {0}")]
    Commit(Box<CertificateError<ConclaveContext>>),
}

/// What shows that a context's block was decided in a cohort height: the
/// cohort's commit certificate (its precommits over the cohort value's id)
/// and the path from the block's entry to that id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CohortCertificate {
    pub commit: CommitCertificate<ConclaveContext>,
    pub path: CohortPath,
}

/// Checks that `entry`'s block was decided in a height of the cohort of
/// `members_hash` (the hash its context's parent block names for the next
/// height), whose validators are `validators`: the path leads from the
/// entry to the value the certificate's precommits name, and those are
/// valid precommits of more than 2/3 of `validators`, signed over the
/// cohort's id. What a member catching up on that one context, or a reader
/// of it, has is enough.
pub fn verify_cohort_certificate(
    members_hash: &Hash32,
    entry: &CohortEntry,
    cert: &CohortCertificate,
    validators: &ValidatorSet,
    thresholds: ThresholdParams,
) -> Result<(), CohortCertificateError> {
    if cert.path.root(entry) != Some(cert.commit.value_id) {
        return Err(CohortCertificateError::NotDecided);
    }
    let cohort = cohort_id(members_hash);
    verify_commit_certificate(&cohort, &cert.commit, validators, thresholds)
        .map_err(|e| CohortCertificateError::Commit(Box::new(e)))
}

#[cfg(test)]
#[path = "cohort_tests.rs"]
mod tests;
