//! Signing, aggregating and verifying checkpoints.
//!
//! A [`Certificate`] is the signer bitmap plus the aggregate of the
//! signers' signatures over [`CheckpointPayload::digest`]. A [`Verifier`]
//! holds what a proxy contract holds (its domain, the current epoch and
//! member set) and checks, in this order: domain, epoch, bitmap within the
//! set, signer count ≥ quorum, `fast_aggregate_verify`.

use crate::bitmap::SignerBitmap;
use crate::bls::{SecretKey, Signature};
use crate::domain::Domain;
use crate::error::{Error, Result};
use crate::members::MemberSet;
use crate::payload::CheckpointPayload;

/// A member's share: its signature over the payload digest.
pub fn sign_checkpoint(sk: &SecretKey, payload: &CheckpointPayload) -> Signature {
    sk.sign(&payload.digest())
}

/// An aggregate signature with the bitmap of who signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// Who signed.
    pub signers: SignerBitmap,
    /// Sum of their signatures.
    pub signature: Signature,
}

impl Certificate {
    /// Aggregates shares `(member index, signature)`, checking each share
    /// against its member first so that one bad share cannot spoil the
    /// aggregate unnoticed. Duplicate indices are refused.
    pub fn aggregate(
        members: &MemberSet,
        payload: &CheckpointPayload,
        shares: &[(usize, Signature)],
    ) -> Result<Certificate> {
        let msg = payload.digest();
        let mut signers = SignerBitmap::default();
        let mut sigs = Vec::with_capacity(shares.len());
        for (index, sig) in shares {
            let pk = members.members().get(*index).ok_or(Error::NonMemberBit {
                bit: *index,
                members: members.len(),
            })?;
            if signers.contains(*index) {
                return Err(Error::Aggregate("duplicate share"));
            }
            if !sig.verify(&msg, pk) {
                return Err(Error::BadSignature);
            }
            signers = SignerBitmap::from_indices(signers.indices().chain([*index]))?;
            sigs.push(*sig);
        }
        Ok(Certificate {
            signers,
            signature: Signature::aggregate(&sigs)?,
        })
    }
}

/// What a chain-side verifier knows: its own domain, the current epoch and
/// the current member set.
#[derive(Clone, Copy, Debug)]
pub struct Verifier<'a> {
    /// The verifier's own chain and contract.
    pub domain: Domain,
    /// Current member-set epoch.
    pub epoch: u64,
    /// Current member set.
    pub members: &'a MemberSet,
}

impl Verifier<'_> {
    /// Checks a certified checkpoint (module docs give the order).
    pub fn verify(&self, payload: &CheckpointPayload, cert: &Certificate) -> Result<()> {
        if payload.domain != self.domain {
            return Err(Error::WrongDomain);
        }
        if payload.epoch != self.epoch {
            return Err(Error::WrongEpoch {
                expected: self.epoch,
                got: payload.epoch,
            });
        }
        cert.signers.check_within(self.members.len())?;
        let signers = cert.signers.count();
        if signers < self.members.quorum() {
            return Err(Error::UnderQuorum {
                signers,
                quorum: self.members.quorum(),
            });
        }
        let pks: Vec<_> = cert
            .signers
            .indices()
            .filter_map(|i| self.members.members().get(i))
            .collect();
        if cert
            .signature
            .fast_aggregate_verify(&payload.digest(), &pks)
        {
            Ok(())
        } else {
            Err(Error::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests;
