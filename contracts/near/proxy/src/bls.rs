//! BLS12-381 min-pk verification over NEAR's host functions (NEP-488).
//!
//! - Hash to G2 (RFC 9380, `BLS12381G2_XMD:SHA-256_SSWU_RO_`):
//!   `expand_message_xmd` with the host's SHA-256, the mod-p reduction of
//!   each 64-byte chunk ([`reduce_mod_p`]), then the host's
//!   `map_fp2_to_g2` on both field elements and `p2_sum`. The host's map
//!   clears the cofactor of each point (its outputs are in G2), and
//!   clearing is linear, so the sum equals RFC 9380's
//!   `clear_cofactor(map(u0) + map(u1))`.
//! - Verification: `e(pk, H(m)) == e(g1, sig)` as one pairing check of
//!   `(pk, H(m))` and `(-g1, sig)`. The pairing check refuses points outside
//!   the prime-order subgroups, so it validates keys and signatures too.
//!
//! Points use the host's (and blst's) encodings: G1 96 bytes `x || y`, G2
//! 192 bytes `x.c1 || x.c0 || y.c1 || y.c0`, compressed with the ZCash flags.

use near_sdk::bls12381::{self, Fp2, G1Compressed, G2Compressed, Sign, G1, G2};
use near_sdk::env;

/// The signature ciphersuite's domain separation tag.
pub const SIG_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// The proof-of-possession ciphersuite's domain separation tag.
pub const POP_DST: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// The infinity flag of the ZCash encoding (first byte).
const INFINITY_FLAG: u8 = 0x40;

/// The base field modulus p, as six 64-bit limbs, most significant first.
const P: [u64; 6] = [
    0x1a01_11ea_397f_e69a,
    0x4b1b_a7b6_434b_acd7,
    0x6477_4b84_f385_12bf,
    0x6730_d2a0_f6b0_f624,
    0x1eab_fffe_b153_ffff,
    0xb9fe_ffff_ffff_aaab,
];

/// Decompresses a public key; refuses malformed encodings and the point at
/// infinity. Subgroup membership is checked by the PoP's pairing.
pub fn decompress_key(compressed: &[u8; 48]) -> Option<G1> {
    if compressed[0] & INFINITY_FLAG != 0 {
        return None;
    }
    G1Compressed::new(*compressed).decompress().ok()
}

/// Decompresses a signature; refuses malformed encodings and infinity.
/// Subgroup membership is checked by the pairing.
pub fn decompress_signature(compressed: &[u8; 96]) -> Option<G2> {
    if compressed[0] & INFINITY_FLAG != 0 {
        return None;
    }
    G2Compressed::new(*compressed).decompress().ok()
}

/// The sum of `keys` (already validated members); `None` for infinity.
pub fn aggregate_keys(keys: &[G1]) -> Option<G1> {
    let terms: Vec<(Sign, G1)> = keys.iter().map(|k| (Sign::Positive, *k)).collect();
    let sum = bls12381::p1_sum(&terms).ok()?;
    (sum.0[0] & INFINITY_FLAG == 0).then_some(sum)
}

/// `e(pk, H(msg)) == e(g1, sig)`, with `H` under `dst`. False for points
/// outside their subgroup.
pub fn verify(pk: &G1, msg: &[u8], dst: &[u8], sig: &G2) -> bool {
    let Some(h) = hash_to_g2(msg, dst) else {
        return false;
    };
    matches!(
        bls12381::pairing_check(&[(*pk, h), (G1::NEG_GENERATOR, *sig)]),
        Ok(true)
    )
}

/// Whether `pop` proves possession of `pk`: a signature of the compressed
/// key under [`POP_DST`].
pub fn verify_pop(pk_compressed: &[u8; 48], pk: &G1, pop: &G2) -> bool {
    verify(pk, pk_compressed, POP_DST, pop)
}

/// RFC 9380 `hash_to_curve` to G2 (see the module docs).
pub fn hash_to_g2(msg: &[u8], dst: &[u8]) -> Option<G2> {
    let uniform = expand_message_xmd(msg, dst)?;
    let mut elements = [Fp2::new([0u8; 96]), Fp2::new([0u8; 96])];
    for (i, element) in elements.iter_mut().enumerate() {
        let at = i * 128;
        // Fp2 is encoded imaginary part (c1) first.
        let c0 = reduce_mod_p(&uniform[at..at + 64]);
        let c1 = reduce_mod_p(&uniform[at + 64..at + 128]);
        element.0[..48].copy_from_slice(&c1);
        element.0[48..].copy_from_slice(&c0);
    }
    let points = bls12381::map_fp2_to_g2(&elements).ok()?;
    let terms: Vec<(Sign, G2)> = points.iter().map(|p| (Sign::Positive, *p)).collect();
    bls12381::p2_sum(&terms).ok()
}

/// `expand_message_xmd` (RFC 9380 §5.3.1) with SHA-256 for 256 bytes: two
/// Fp2 elements of two 64-byte chunks each.
fn expand_message_xmd(msg: &[u8], dst: &[u8]) -> Option<[u8; 256]> {
    const LEN: usize = 256;
    if dst.len() > 255 {
        return None;
    }
    let mut dst_prime = Vec::with_capacity(dst.len() + 1);
    dst_prime.extend_from_slice(dst);
    dst_prime.push(dst.len() as u8);

    let mut pre = Vec::with_capacity(64 + msg.len() + 3 + dst_prime.len());
    pre.extend_from_slice(&[0u8; 64]);
    pre.extend_from_slice(msg);
    pre.extend_from_slice(&(LEN as u16).to_be_bytes());
    pre.push(0);
    pre.extend_from_slice(&dst_prime);
    let b0 = env::sha256_array(pre);

    let mut out = [0u8; LEN];
    let mut prev = [0u8; 32];
    let mut block = Vec::with_capacity(33 + dst_prime.len());
    for i in 0..LEN / 32 {
        block.clear();
        for (b, p) in b0.iter().zip(prev.iter()) {
            block.push(b ^ p);
        }
        block.push(i as u8 + 1);
        block.extend_from_slice(&dst_prime);
        prev = env::sha256_array(&block);
        out[i * 32..(i + 1) * 32].copy_from_slice(&prev);
    }
    Some(out)
}

/// A 64-byte big-endian integer modulo p, as a 48-byte big-endian field
/// element: shift-and-subtract, one bit at a time. The remainder stays below
/// `2p < 2^383`, so six limbs hold it.
pub fn reduce_mod_p(bytes: &[u8]) -> [u8; 48] {
    let mut r = [0u64; 6];
    for byte in bytes {
        for bit in (0..8).rev() {
            // r = 2r + bit
            let mut carry = u64::from((byte >> bit) & 1);
            for limb in r.iter_mut().rev() {
                let next = *limb >> 63;
                *limb = (*limb << 1) | carry;
                carry = next;
            }
            if !less_than(&r, &P) {
                sub_assign(&mut r, &P);
            }
        }
    }
    let mut out = [0u8; 48];
    for (i, limb) in r.iter().enumerate() {
        out[i * 8..(i + 1) * 8].copy_from_slice(&limb.to_be_bytes());
    }
    out
}

fn less_than(a: &[u64; 6], b: &[u64; 6]) -> bool {
    for (x, y) in a.iter().zip(b.iter()) {
        if x != y {
            return x < y;
        }
    }
    false
}

fn sub_assign(a: &mut [u64; 6], b: &[u64; 6]) {
    let mut borrow = 0u64;
    for (x, y) in a.iter_mut().zip(b.iter()).rev() {
        let (d1, b1) = x.overflowing_sub(*y);
        let (d2, b2) = d1.overflowing_sub(borrow);
        *x = d2;
        borrow = u64::from(b1 || b2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p_bytes() -> [u8; 48] {
        let mut out = [0u8; 48];
        for (i, limb) in P.iter().enumerate() {
            out[i * 8..(i + 1) * 8].copy_from_slice(&limb.to_be_bytes());
        }
        out
    }

    #[test]
    fn reduction_small_values_and_multiples_of_p() {
        let mut x = [0u8; 64];
        x[63] = 7;
        assert_eq!(reduce_mod_p(&x)[47], 7);
        // p itself, and p + 5, as 64-byte integers.
        let mut p = [0u8; 64];
        p[16..].copy_from_slice(&p_bytes());
        assert_eq!(reduce_mod_p(&p), [0u8; 48]);
        p[63] += 5;
        let mut five = [0u8; 48];
        five[47] = 5;
        assert_eq!(reduce_mod_p(&p), five);
    }

    #[test]
    fn reduction_of_max_value_is_below_p() {
        let r = reduce_mod_p(&[0xff; 64]);
        // 2^512 - 1 mod p, computed independently (Python: (2**512-1) % p).
        let expect = "0x02cb5d3a884e56c4fab7cd07ee4e16bc15efebb5d396d7cf82383087033108464532383fa8eaff4e967d3988a62b6c9c";
        assert_eq!(format!("0x{}", hex::encode(r)), expect);
        assert!(r < p_bytes());
    }
}
