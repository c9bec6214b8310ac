//! Protocol data: ids, transactions, blocks.

mod block;
mod ids;
pub mod serde_hex;
mod tx;

pub use block::{merkle_root, Block, BlockHeader};
pub use ids::{ContextId, Hash32, Height, MemberId};
pub use tx::{verified_batch, verify_batch, SenderKey, SignedTx, Tx, VerifiedTx, TX_SIGN_DOMAIN};

use sha2::{Digest, Sha256};

/// SHA-256 over the concatenation of `parts`.
pub fn sha256(parts: &[&[u8]]) -> Hash32 {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    Hash32(h.finalize().into())
}
