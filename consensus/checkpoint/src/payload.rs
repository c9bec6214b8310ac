//! The checkpoint payload: what members sign.
//!
//! Layout (217 bytes, big-endian integers, fixed offsets):
//!
//! | offset | len | field |
//! |---|---|---|
//! | 0 | 32 | tag `"CONCLAVE-CHECKPOINT-V1"` right-padded with zeros |
//! | 32 | 41 | [`Domain`]: kind u8, chain id u64, target 32 |
//! | 73 | 32 | context id |
//! | 105 | 8 | member-set epoch u64 |
//! | 113 | 8 | height u64 |
//! | 121 | 32 | state root |
//! | 153 | 32 | actions root |
//! | 185 | 32 | next members hash |
//!
//! The BLS message is `sha256(payload)`, the [`CheckpointPayload::digest`].

use sha2::{Digest, Sha256};

use crate::domain::{Domain, DOMAIN_LEN};
use crate::error::{Error, Result};

/// The 32-byte tag that opens every V1 payload.
pub const PAYLOAD_TAG: [u8; 32] = *b"CONCLAVE-CHECKPOINT-V1\0\0\0\0\0\0\0\0\0\0";
/// Encoded payload length.
pub const PAYLOAD_LEN: usize = 32 + DOMAIN_LEN + 32 + 8 + 8 + 32 + 32 + 32;

/// A checkpoint: the context's state and outbox at a height, for one chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckpointPayload {
    /// Chain and proxy contract this copy is for.
    pub domain: Domain,
    /// The context.
    pub context_id: [u8; 32],
    /// Epoch of the member set that signs it (bumped by each rotation).
    pub epoch: u64,
    /// Block height of the checkpoint.
    pub height: u64,
    /// State root after the block at `height`.
    pub state_root: [u8; 32],
    /// Merkle root of the actions outbox (see [`crate::actions`]).
    pub actions_root: [u8; 32],
    /// [`crate::MemberSet::hash`] of the set that signs from the next
    /// epoch; equal to the current set's hash when membership is unchanged.
    pub next_members_hash: [u8; 32],
}

impl CheckpointPayload {
    /// The 217-byte encoding.
    pub fn encode(&self) -> [u8; PAYLOAD_LEN] {
        let mut out = [0u8; PAYLOAD_LEN];
        let mut w = Writer {
            buf: &mut out,
            at: 0,
        };
        w.put(&PAYLOAD_TAG);
        w.put(&self.domain.encode());
        w.put(&self.context_id);
        w.put(&self.epoch.to_be_bytes());
        w.put(&self.height.to_be_bytes());
        w.put(&self.state_root);
        w.put(&self.actions_root);
        w.put(&self.next_members_hash);
        out
    }

    /// Decodes exactly [`PAYLOAD_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        if bytes.len() != PAYLOAD_LEN {
            return Err(Error::BadLength {
                what: "checkpoint payload",
                expected: PAYLOAD_LEN,
                got: bytes.len(),
            });
        }
        let mut r = Reader { buf: bytes, at: 0 };
        if r.take::<32>() != PAYLOAD_TAG {
            return Err(Error::BadTag);
        }
        let domain = Domain::decode(&r.take::<DOMAIN_LEN>())?;
        Ok(CheckpointPayload {
            domain,
            context_id: r.take(),
            epoch: u64::from_be_bytes(r.take()),
            height: u64::from_be_bytes(r.take()),
            state_root: r.take(),
            actions_root: r.take(),
            next_members_hash: r.take(),
        })
    }

    /// The BLS message: `sha256(encode())`.
    pub fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.encode()).into()
    }
}

struct Writer<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Writer<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.buf[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
}

/// Reads fixed-size fields; only used after the total length was checked.
struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[self.at..self.at + N]);
        self.at += N;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CheckpointPayload {
        CheckpointPayload {
            domain: Domain::evm(31337, [0x11; 20]),
            context_id: [0x22; 32],
            epoch: 3,
            height: 0x0102_0304_0506_0708,
            state_root: [0x33; 32],
            actions_root: [0x44; 32],
            next_members_hash: [0x55; 32],
        }
    }

    #[test]
    fn fixed_offsets() {
        let e = sample().encode();
        assert_eq!(PAYLOAD_LEN, 217);
        assert_eq!(&e[..22], b"CONCLAVE-CHECKPOINT-V1");
        assert_eq!(&e[22..32], &[0u8; 10]);
        assert_eq!(e[32], 1);
        assert_eq!(&e[33..41], &31337u64.to_be_bytes());
        assert_eq!(&e[73..105], &[0x22; 32]);
        assert_eq!(&e[105..113], &3u64.to_be_bytes());
        assert_eq!(&e[113..121], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&e[121..153], &[0x33; 32]);
        assert_eq!(&e[153..185], &[0x44; 32]);
        assert_eq!(&e[185..217], &[0x55; 32]);
    }

    #[test]
    fn round_trip_and_rejections() {
        let p = sample();
        let e = p.encode();
        assert_eq!(CheckpointPayload::decode(&e), Ok(p));
        let mut bad = e;
        bad[0] = b'X';
        assert_eq!(CheckpointPayload::decode(&bad), Err(Error::BadTag));
        assert!(matches!(
            CheckpointPayload::decode(&e[..216]),
            Err(Error::BadLength { .. })
        ));
        let mut bad_kind = e;
        bad_kind[32] = 9;
        assert_eq!(
            CheckpointPayload::decode(&bad_kind),
            Err(Error::UnknownChainKind(9))
        );
    }

    #[test]
    fn digest_binds_every_field() {
        let base = sample().digest();
        let mut p = sample();
        p.height += 1;
        assert_ne!(p.digest(), base);
        let mut p = sample();
        p.domain = Domain::evm(1, [0x11; 20]);
        assert_ne!(p.digest(), base);
        let mut p = sample();
        p.next_members_hash[0] ^= 1;
        assert_ne!(p.digest(), base);
    }
}
