//! Conversions between blst's uncompressed point serialisation and the
//! EIP-2537 encoding the Ethereum precompiles take.
//!
//! blst (ZCash format) writes an uncompressed G1 point as `x || y`, each a
//! 48-byte big-endian field element, with three flag bits at the top of the
//! first byte (all clear for an affine, non-infinity point), and a G2 point
//! as `x.c1 || x.c0 || y.c1 || y.c0`, imaginary part first.
//!
//! EIP-2537 left-pads every field element to 64 bytes and writes an Fp2
//! element real part first: G1 is `pad(x) || pad(y)` (128 bytes), G2 is
//! `pad(x.c0) || pad(x.c1) || pad(y.c0) || pad(y.c1)` (256 bytes). The point
//! at infinity is all zeros.

use crate::error::{Error, Result};

/// Bytes of one base-field element.
pub const FP_LEN: usize = 48;
/// Bytes of one base-field element in EIP-2537 (16 zero bytes, then 48).
pub const EIP_FP_LEN: usize = 64;
/// EIP-2537 G1 point.
pub const EIP_G1_LEN: usize = 2 * EIP_FP_LEN;
/// EIP-2537 G2 point.
pub const EIP_G2_LEN: usize = 4 * EIP_FP_LEN;
/// blst uncompressed G1 point.
pub const G1_UNCOMPRESSED_LEN: usize = 2 * FP_LEN;
/// blst uncompressed G2 point.
pub const G2_UNCOMPRESSED_LEN: usize = 4 * FP_LEN;

/// The infinity flag of blst's (ZCash) serialisation.
const INFINITY_FLAG: u8 = 0x40;

/// blst G1 serialisation → EIP-2537 G1.
pub fn g1_to_eip2537(ser: &[u8; G1_UNCOMPRESSED_LEN]) -> [u8; EIP_G1_LEN] {
    let mut out = [0u8; EIP_G1_LEN];
    if ser[0] & INFINITY_FLAG != 0 {
        return out;
    }
    for (limb, chunk) in ser.chunks_exact(FP_LEN).enumerate() {
        let start = limb * EIP_FP_LEN + (EIP_FP_LEN - FP_LEN);
        out[start..start + FP_LEN].copy_from_slice(chunk);
    }
    out
}

/// EIP-2537 G1 → blst G1 serialisation. Refuses non-zero padding; the point
/// itself is validated by the caller's deserialisation.
pub fn g1_from_eip2537(eip: &[u8]) -> Result<[u8; G1_UNCOMPRESSED_LEN]> {
    let limbs = unpad::<2>(eip, "G1 point (EIP-2537)")?;
    let mut out = [0u8; G1_UNCOMPRESSED_LEN];
    if limbs.iter().all(|l| l.iter().all(|b| *b == 0)) {
        out[0] = INFINITY_FLAG;
        return Ok(out);
    }
    out[..FP_LEN].copy_from_slice(&limbs[0]);
    out[FP_LEN..].copy_from_slice(&limbs[1]);
    Ok(out)
}

/// blst G2 serialisation → EIP-2537 G2 (swaps each Fp2 to real part first).
pub fn g2_to_eip2537(ser: &[u8; G2_UNCOMPRESSED_LEN]) -> [u8; EIP_G2_LEN] {
    let mut out = [0u8; EIP_G2_LEN];
    if ser[0] & INFINITY_FLAG != 0 {
        return out;
    }
    // blst limb order: x.c1, x.c0, y.c1, y.c0; EIP order: x.c0, x.c1, y.c0, y.c1.
    const EIP_SLOT_OF_BLST_LIMB: [usize; 4] = [1, 0, 3, 2];
    for (limb, chunk) in ser.chunks_exact(FP_LEN).enumerate() {
        let start = EIP_SLOT_OF_BLST_LIMB[limb] * EIP_FP_LEN + (EIP_FP_LEN - FP_LEN);
        out[start..start + FP_LEN].copy_from_slice(chunk);
    }
    out
}

/// EIP-2537 G2 → blst G2 serialisation.
pub fn g2_from_eip2537(eip: &[u8]) -> Result<[u8; G2_UNCOMPRESSED_LEN]> {
    let limbs = unpad::<4>(eip, "G2 point (EIP-2537)")?;
    let mut out = [0u8; G2_UNCOMPRESSED_LEN];
    if limbs.iter().all(|l| l.iter().all(|b| *b == 0)) {
        out[0] = INFINITY_FLAG;
        return Ok(out);
    }
    // EIP slots x.c0, x.c1, y.c0, y.c1 land at blst limbs 1, 0, 3, 2.
    const BLST_LIMB_OF_EIP_SLOT: [usize; 4] = [1, 0, 3, 2];
    for (slot, limb) in limbs.iter().enumerate() {
        let start = BLST_LIMB_OF_EIP_SLOT[slot] * FP_LEN;
        out[start..start + FP_LEN].copy_from_slice(limb);
    }
    Ok(out)
}

/// Splits an EIP-2537 encoding into its N field elements, checking length
/// and that each element's 16-byte pad is zero.
fn unpad<const N: usize>(eip: &[u8], what: &'static str) -> Result<[[u8; FP_LEN]; N]> {
    if eip.len() != N * EIP_FP_LEN {
        return Err(Error::BadLength {
            what,
            expected: N * EIP_FP_LEN,
            got: eip.len(),
        });
    }
    let mut limbs = [[0u8; FP_LEN]; N];
    for (limb, chunk) in limbs.iter_mut().zip(eip.chunks_exact(EIP_FP_LEN)) {
        let (pad, value) = chunk.split_at(EIP_FP_LEN - FP_LEN);
        if pad.iter().any(|b| *b != 0) {
            return Err(Error::BadPoint { what });
        }
        limb.copy_from_slice(value);
    }
    Ok(limbs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g2_round_trip_swaps_fp2_halves() {
        let mut ser = [0u8; G2_UNCOMPRESSED_LEN];
        for (i, limb) in ser.chunks_exact_mut(FP_LEN).enumerate() {
            limb.fill(i as u8 + 1);
        }
        let eip = g2_to_eip2537(&ser);
        // x.c0 (blst limb 1, filled with 2) comes first in EIP-2537.
        assert_eq!(&eip[..16], &[0u8; 16]);
        assert_eq!(&eip[16..64], &[2u8; 48]);
        assert_eq!(&eip[80..128], &[1u8; 48]);
        assert_eq!(&eip[144..192], &[4u8; 48]);
        assert_eq!(&eip[208..256], &[3u8; 48]);
        assert_eq!(g2_from_eip2537(&eip), Ok(ser));
    }

    #[test]
    fn g1_round_trip_and_padding_checked() {
        let mut ser = [7u8; G1_UNCOMPRESSED_LEN];
        ser[0] = 0x11;
        let eip = g1_to_eip2537(&ser);
        assert_eq!(g1_from_eip2537(&eip), Ok(ser));
        let mut bad = eip;
        bad[3] = 1;
        assert_eq!(
            g1_from_eip2537(&bad),
            Err(Error::BadPoint {
                what: "G1 point (EIP-2537)"
            })
        );
        assert!(matches!(
            g1_from_eip2537(&eip[..127]),
            Err(Error::BadLength { .. })
        ));
    }

    #[test]
    fn infinity_is_all_zero() {
        let mut ser = [0u8; G1_UNCOMPRESSED_LEN];
        ser[0] = INFINITY_FLAG;
        assert_eq!(g1_to_eip2537(&ser), [0u8; EIP_G1_LEN]);
        assert_eq!(g1_from_eip2537(&[0u8; EIP_G1_LEN]), Ok(ser));
    }
}
