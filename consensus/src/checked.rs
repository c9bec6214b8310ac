//! The vote signatures an engine has already checked (or made) at its
//! current height.
//!
//! malachite builds a commit certificate from the precommits it accepted and
//! asks for it to be verified at the decision, and again when the height is
//! finalized: every signature in it was checked when its vote arrived.
//! It also hands this node's own votes and proposals back to be checked
//! like any other member's, right after this node signed them. A
//! signature found here with the same key and the same signed bytes is
//! known good; anything else is verified in full.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use ed25519_dalek::VerifyingKey;

use crate::codec;
use crate::context::Sig;

/// At most this many entries; past it the record starts over (a height
/// with that many distinct votes is far outside normal operation, and
/// forgetting only costs verifications).
const MAX_ENTRIES: usize = 4096;

/// Signatures known good, by signer key and signature, with the bytes
/// they sign.
#[derive(Default)]
pub(crate) struct CheckedVotes {
    known: HashMap<([u8; 32], [u8; 64]), Vec<u8>>,
    /// Signatures verified in full by [`Self::check`], ever (counted
    /// through a shared reference: certificate checks only read).
    checks: AtomicU64,
}

impl CheckedVotes {
    /// `sig` by `key` over `bytes` verified (or was made by this node).
    pub(crate) fn record(&mut self, key: &VerifyingKey, sig: &Sig, bytes: Vec<u8>) {
        if self.known.len() >= MAX_ENTRIES {
            self.known.clear();
        }
        self.known.insert((key.to_bytes(), sig.0), bytes);
    }

    /// Whether `sig` by `key` over `bytes` is known good.
    pub(crate) fn holds(&self, key: &VerifyingKey, sig: &Sig, bytes: &[u8]) -> bool {
        self.known
            .get(&(key.to_bytes(), sig.0))
            .is_some_and(|held| held.as_slice() == bytes)
    }

    /// Whether `sig` by `key` over `bytes` is good: known, or verified in
    /// full now (and counted).
    pub(crate) fn check(&self, key: &VerifyingKey, sig: &Sig, bytes: &[u8]) -> bool {
        if self.holds(key, sig, bytes) {
            return true;
        }
        self.checks.fetch_add(1, Ordering::Relaxed);
        codec::verify(key, bytes, sig)
    }

    pub(crate) fn checks(&self) -> u64 {
        self.checks.load(Ordering::Relaxed)
    }

    /// A new height: what was checked before concerns past heights only.
    pub(crate) fn clear(&mut self) {
        self.known.clear();
    }
}

#[cfg(test)]
mod tests {
    use ed25519_dalek::SigningKey;

    use super::CheckedVotes;
    use crate::codec;

    #[test]
    fn only_the_same_key_signature_and_bytes_are_known() {
        let a = SigningKey::from_bytes(&[1; 32]);
        let b = SigningKey::from_bytes(&[2; 32]);
        let sig = codec::sign(&a, b"vote");
        let mut checked = CheckedVotes::default();
        checked.record(&a.verifying_key(), &sig, b"vote".to_vec());
        assert!(checked.holds(&a.verifying_key(), &sig, b"vote"));
        // The same signature presented for other bytes, or under another
        // key, is not known: it must be verified (and fails).
        assert!(!checked.holds(&a.verifying_key(), &sig, b"other vote"));
        assert!(!checked.holds(&b.verifying_key(), &sig, b"vote"));
        checked.clear();
        assert!(!checked.holds(&a.verifying_key(), &sig, b"vote"));
    }

    /// What the engine does with a commit certificate: signatures it holds
    /// as checked count without a new verification; a forged signature, or
    /// a checked one moved onto another vote, still fails.
    #[test]
    #[allow(clippy::result_large_err)] // malachite's error type, see engine.rs
    fn a_certificate_passes_on_checked_votes_and_fails_on_anything_else() {
        use malachitebft_core_types::{CommitCertificate, Round};

        use crate::codec::{precommit_for, vote_sign_bytes};
        use crate::engine::commit_certificate;
        use crate::types::{ContextId, Hash32, Height, MemberId};
        use crate::{ConclaveContext, ValidatorSet};

        let ctx = ContextId([9; 32]);
        let keys: Vec<SigningKey> = (1..=4u8)
            .map(|i| SigningKey::from_bytes(&[i; 32]))
            .collect();
        let ids: Vec<MemberId> = keys
            .iter()
            .map(|k| MemberId(k.verifying_key().to_bytes()))
            .collect();
        let validators = ValidatorSet::from_members(&ids).unwrap();
        let certificate = |value: u8| {
            let mut cert = CommitCertificate::<ConclaveContext> {
                height: Height(3),
                round: Round::new(0),
                value_id: Hash32([value; 32]),
                commit_signatures: Vec::new(),
            };
            for key in &keys[..3] {
                let signature = codec::commit_signature(&ctx, &cert, key);
                cert.commit_signatures.push(signature);
            }
            cert
        };
        let good = certificate(1);
        let mut checked = CheckedVotes::default();
        for (s, key) in good.commit_signatures.iter().zip(&keys) {
            let bytes = vote_sign_bytes(&ctx, &precommit_for(&good, s.address));
            checked.record(&key.verifying_key(), &s.signature, bytes);
        }
        let check = |cert: &CommitCertificate<ConclaveContext>, checked: &CheckedVotes| {
            commit_certificate(&ctx, cert, &validators, Default::default(), checked)
        };
        assert!(check(&good, &checked).is_ok());
        assert!(check(&good, &CheckedVotes::default()).is_ok());

        // A forged signature in place of a checked one.
        let mut forged = good.clone();
        forged.commit_signatures[2].signature = crate::context::Sig([7; 64]);
        assert!(check(&forged, &checked).is_err());

        // The checked signatures of value 1 presented for value 2.
        let mut moved = certificate(2);
        moved.commit_signatures = good.commit_signatures.clone();
        assert!(check(&moved, &checked).is_err());
    }
}
