//! Key and proof-of-possession pairs this node found good, so that each
//! is checked once: the same members' keys come with every context they
//! share, and again with each of its member sets and at each start, and a
//! check costs a pairing (about 1.5 ms; it was 17 ms of each context's
//! creation on each validator, docs/PERFORMANCE.md, 34th session). A
//! check's answer depends only on the two byte strings, so remembering a
//! good one changes no answer; a bad pair is never remembered, so it is
//! checked, and refused, every time.

use std::collections::HashSet;

use conclave_checkpoint::{ProofOfPossession, PublicKey};
use parking_lot::Mutex;

/// The compressed key and proof, side by side.
const PAIR_LEN: usize = 48 + 96;

/// Pairs kept, at most; past it all are forgotten at once (a node sees a
/// few keys per member, so it never is in practice).
const MAX_GOOD: usize = 4096;

static GOOD: Mutex<Option<HashSet<[u8; PAIR_LEN]>>> = Mutex::new(None);

/// Whether `pop` proves possession of `pk`, as [`PublicKey::verify_pop`]
/// answers: from memory for a pair found good before.
pub fn pop_holds(pk: &PublicKey, pop: &ProofOfPossession) -> bool {
    let pair = pair(pk, pop);
    if GOOD
        .lock()
        .as_ref()
        .is_some_and(|good| good.contains(&pair))
    {
        return true;
    }
    // Checked outside the lock: other contexts' checks go on meanwhile.
    let holds = pk.verify_pop(pop);
    if holds {
        let mut good = GOOD.lock();
        let good = good.get_or_insert_with(HashSet::new);
        if good.len() >= MAX_GOOD {
            good.clear();
        }
        good.insert(pair);
    }
    holds
}

fn pair(pk: &PublicKey, pop: &ProofOfPossession) -> [u8; PAIR_LEN] {
    let mut pair = [0u8; PAIR_LEN];
    pair[..48].copy_from_slice(&pk.to_compressed());
    pair[48..].copy_from_slice(&pop.as_signature().to_compressed());
    pair
}

/// Whether the pair is remembered as good.
#[cfg(test)]
fn remembered(pk: &PublicKey, pop: &ProofOfPossession) -> bool {
    GOOD.lock()
        .as_ref()
        .is_some_and(|good| good.contains(&pair(pk, pop)))
}

#[cfg(test)]
mod tests {
    use conclave_checkpoint::SecretKey;

    use super::*;

    #[test]
    fn a_good_pair_is_remembered_and_a_bad_one_refused_every_time() {
        let a = SecretKey::from_seed(&[41; 32]).unwrap();
        let b = SecretKey::from_seed(&[42; 32]).unwrap();
        let (pk_a, pk_b) = (a.public_key(), b.public_key());
        let (pop_a, pop_b) = (a.prove_possession(), b.prove_possession());
        assert!(!remembered(&pk_a, &pop_a));
        assert!(pop_holds(&pk_a, &pop_a));
        assert!(remembered(&pk_a, &pop_a));
        assert!(pop_holds(&pk_a, &pop_a), "answered from memory");
        // B's proof with A's key: refused, and still refused with A's
        // good pair remembered.
        for _ in 0..2 {
            assert!(!pop_holds(&pk_a, &pop_b));
            assert!(!remembered(&pk_a, &pop_b));
        }
        assert!(pop_holds(&pk_b, &pop_b));
    }
}
