//! Double-sign protection from the chain itself, as CometBFT's
//! `double_sign_check_height`: this node's own precommits in commit
//! certificates at positions its sign guard has not recorded were signed
//! by another process holding the same key (a copied home, a restored
//! backup, a failover started too early). Signing again could equivocate,
//! so the context stops signing until the operator, having made sure that
//! only one process holds the key, restarts it with the check off.

use conclave_consensus::codec::StoredCertificate;
use conclave_consensus::sign_policy::{SignPosition, SignStep};
use conclave_consensus::{Height, MemberId};

use crate::sign_guard::LastSigned;

/// The first certificate among `certs` holding a precommit of `me` that
/// `last` (what this node's sign guard recorded last) does not cover.
pub(super) fn foreign_precommit<'a>(
    me: &MemberId,
    last: Option<&LastSigned>,
    certs: impl IntoIterator<Item = &'a StoredCertificate>,
) -> Option<Height> {
    certs.into_iter().find_map(|c| {
        if !c.signatures.iter().any(|(m, _)| m == me) {
            return None;
        }
        let signed = SignPosition {
            height: c.height,
            round: u32::try_from(c.round).unwrap_or(0),
            step: SignStep::Precommit,
        };
        let covered = last.is_some_and(|l| l.position >= signed);
        (!covered).then_some(c.height)
    })
}

#[cfg(test)]
mod tests {
    use conclave_consensus::Hash32;

    use super::*;

    fn cert(height: u64, round: i64, signers: &[MemberId]) -> StoredCertificate {
        StoredCertificate {
            height: Height(height),
            round,
            block_hash: Hash32([height as u8; 32]),
            signatures: signers
                .iter()
                .map(|m| {
                    (
                        *m,
                        conclave_consensus::codec::sign(
                            &ed25519_dalek::SigningKey::from_bytes(&[1; 32]),
                            b"x",
                        ),
                    )
                })
                .collect(),
        }
    }

    fn last(height: u64, round: u32, step: SignStep) -> LastSigned {
        LastSigned {
            position: SignPosition {
                height: Height(height),
                round,
                step,
            },
            value: None,
            digest: Hash32::default(),
        }
    }

    #[test]
    fn own_precommits_beyond_the_guard_are_foreign() {
        let (me, other) = (MemberId([1; 32]), MemberId([2; 32]));
        let certs = [
            cert(5, 0, &[me, other]),
            cert(6, 1, &[other]),
            cert(7, 0, &[me]),
        ];
        // The guard recorded height 5's precommit and more: height 7's was
        // signed elsewhere (height 6 holds no signature of ours).
        let guard = last(6, 0, SignStep::Prevote);
        assert_eq!(
            foreign_precommit(&me, Some(&guard), &certs),
            Some(Height(7))
        );
        // The guard is at height 7's precommit: everything is ours.
        let guard = last(7, 0, SignStep::Precommit);
        assert_eq!(foreign_precommit(&me, Some(&guard), &certs), None);
        // A later round of the same height covers an earlier one's too.
        assert_eq!(
            foreign_precommit(&me, Some(&last(7, 2, SignStep::Propose)), &certs),
            None
        );
        // No guard at all (a new sign guard beside an old store).
        assert_eq!(foreign_precommit(&me, None, &certs), Some(Height(5)));
        // Another member's signatures are none of ours.
        assert_eq!(foreign_precommit(&MemberId([3; 32]), None, &certs), None);
    }
}
