//! Admitting a member set: key decoding, quorum, duplicates, the members
//! hash, proofs of possession (inline or registered), and the signer bitmap.

use near_sdk::bls12381::G1;
use near_sdk::env;

use crate::error::{ProxyError, Result};
use crate::types::{hex_array, MemberKey};
use crate::{bls, codec, MAX_MEMBERS};

/// Storage prefix of keys registered with a proof of possession.
const REGISTERED_PREFIX: &[u8] = b"r";

/// A member set checked for size, quorum and duplicates, not yet for PoPs.
pub struct DecodedSet {
    pub compressed: Vec<[u8; 48]>,
    pub keys: Vec<[u8; 96]>,
    pub quorum: u32,
    pub hash: [u8; 32],
}

/// The storage key recording that `compressed` proved possession.
pub fn registered_key(compressed: &[u8; 48]) -> Vec<u8> {
    [REGISTERED_PREFIX, compressed.as_slice()].concat()
}

/// Decodes and decompresses member `index`'s key (not infinity).
pub fn decode_key(key: &MemberKey, index: usize) -> Result<([u8; 48], G1)> {
    let compressed =
        hex_array::<48>(&key.public_key, "public_key").map_err(|_| ProxyError::BadPop(index))?;
    let pk = bls::decompress_key(&compressed).ok_or(ProxyError::BadPop(index))?;
    Ok((compressed, pk))
}

/// Size, quorum, key encodings, duplicates and the members hash.
pub fn decode_set(members: &[MemberKey], quorum: u32) -> Result<DecodedSet> {
    let n = members.len();
    if n == 0 || n > MAX_MEMBERS {
        return Err(ProxyError::InvalidMembers(n));
    }
    let quorum = if quorum == 0 {
        (2 * n / 3 + 1) as u32
    } else {
        quorum
    };
    if quorum as usize > n {
        return Err(ProxyError::InvalidQuorum { quorum, members: n });
    }
    let mut compressed = Vec::with_capacity(n);
    let mut keys: Vec<[u8; 96]> = Vec::with_capacity(n);
    for (index, key) in members.iter().enumerate() {
        let (c, pk) = decode_key(key, index)?;
        if keys.contains(&pk.0) {
            return Err(ProxyError::DuplicateMember(index));
        }
        compressed.push(c);
        keys.push(pk.0);
    }
    let hash = codec::members_hash(&keys, quorum);
    Ok(DecodedSet {
        compressed,
        keys,
        quorum,
        hash,
    })
}

/// Checks every PoP given; returns the members that came without one and
/// whose key was not registered.
pub fn check_pops(members: &[MemberKey], set: &DecodedSet) -> Result<Vec<usize>> {
    let mut missing = Vec::new();
    for (index, key) in members.iter().enumerate() {
        let compressed = &set.compressed[index];
        match &key.pop {
            Some(pop) => {
                let pop = hex_array::<96>(pop, "pop").map_err(|_| ProxyError::BadPop(index))?;
                let pop = bls::decompress_signature(&pop).ok_or(ProxyError::BadPop(index))?;
                if !bls::verify_pop(compressed, &G1::new(set.keys[index]), &pop) {
                    return Err(ProxyError::BadPop(index));
                }
            }
            None => {
                if !env::storage_has_key(&registered_key(compressed)) {
                    missing.push(index);
                }
            }
        }
    }
    Ok(missing)
}

/// Signer indices of a 32-byte big-endian bitmap (bit `i` is bit `i % 8` of
/// byte `31 - i / 8`); any bit at or above `members` is refused.
pub fn bitmap_indices(bitmap: &[u8; 32], members: usize) -> Result<Vec<usize>> {
    let mut out = Vec::new();
    for i in 0..256 {
        if bitmap[31 - i / 8] >> (i % 8) & 1 == 1 {
            if i >= members {
                return Err(ProxyError::NonMemberBit);
            }
            out.push(i);
        }
    }
    Ok(out)
}
