//! The signer bitmap: which members signed an aggregate.
//!
//! 32 bytes, read as one big-endian unsigned 256-bit integer (a Solidity
//! `uint256`): member `i` signed iff bit `i` (value `2^i`) is set, i.e. bit
//! `i % 8` of byte `31 - i / 8`.

use crate::error::{Error, Result};

/// Encoded bitmap length.
pub const BITMAP_LEN: usize = 32;
/// Bits in a bitmap.
pub const BITMAP_BITS: usize = BITMAP_LEN * 8;

/// A set of member indices below 256.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct SignerBitmap([u8; BITMAP_LEN]);

impl SignerBitmap {
    /// The bitmap with exactly `indices` set; refuses an index ≥ 256.
    pub fn from_indices(indices: impl IntoIterator<Item = usize>) -> Result<Self> {
        let mut b = SignerBitmap::default();
        for i in indices {
            if i >= BITMAP_BITS {
                return Err(Error::NonMemberBit {
                    bit: i,
                    members: BITMAP_BITS,
                });
            }
            b.0[BITMAP_LEN - 1 - i / 8] |= 1 << (i % 8);
        }
        Ok(b)
    }

    /// Wraps 32 encoded bytes.
    pub fn from_bytes(bytes: [u8; BITMAP_LEN]) -> Self {
        SignerBitmap(bytes)
    }

    /// The 32 encoded bytes.
    pub fn to_bytes(&self) -> [u8; BITMAP_LEN] {
        self.0
    }

    /// Whether member `i` is set.
    pub fn contains(&self, i: usize) -> bool {
        i < BITMAP_BITS && self.0[BITMAP_LEN - 1 - i / 8] & (1 << (i % 8)) != 0
    }

    /// Number of set bits.
    pub fn count(&self) -> u32 {
        self.0.iter().map(|b| b.count_ones()).sum()
    }

    /// Set indices, ascending.
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        (0..BITMAP_BITS).filter(|i| self.contains(*i))
    }

    /// Refuses any set bit at or above `members`.
    pub fn check_within(&self, members: usize) -> Result<()> {
        match self.indices().find(|i| *i >= members) {
            Some(bit) => Err(Error::NonMemberBit { bit, members }),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bit_order_is_uint256_big_endian() {
        let b = SignerBitmap::from_indices([0, 1, 9, 255]).expect("in range");
        let bytes = b.to_bytes();
        assert_eq!(bytes[31], 0b11);
        assert_eq!(bytes[30], 0b10);
        assert_eq!(bytes[0], 0x80);
        assert_eq!(b.count(), 4);
        assert_eq!(b.indices().collect::<Vec<_>>(), vec![0, 1, 9, 255]);
        assert!(b.contains(9) && !b.contains(8) && !b.contains(300));
        assert_eq!(SignerBitmap::from_bytes(bytes), b);
    }

    #[test]
    fn within_and_out_of_range() {
        let b = SignerBitmap::from_indices([0, 2, 4]).expect("in range");
        assert_eq!(b.check_within(5), Ok(()));
        assert_eq!(
            b.check_within(4),
            Err(Error::NonMemberBit { bit: 4, members: 4 })
        );
        assert!(SignerBitmap::from_indices([256]).is_err());
    }
}
