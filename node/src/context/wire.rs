//! What members of a context say to each other on its gossip topic.

use borsh::{BorshDeserialize, BorshSerialize};
use conclave_consensus::codec::StoredCertificate;
use conclave_consensus::{Block, BlockHeader, Hash32, SignedTx};

/// Largest gossip payload accepted (a proposal carries its block).
pub const MAX_WIRE_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, BorshSerialize, BorshDeserialize)]
pub enum Wire {
    /// A tx a member submitted to one node, for every member's mempool.
    Tx(SignedTx),
    /// A signed proposal (`codec::encode_proposal`) with the block it names.
    Proposal { proposal: Vec<u8>, block: Block },
    /// A signed vote (`codec::encode_vote`).
    Vote(Vec<u8>),
    /// A polka certificate (`codec::encode_polka`).
    Polka(Vec<u8>),
    /// A skip or precommit round certificate
    /// (`codec::encode_round_certificate`), for members behind in rounds.
    RoundCertificate(Vec<u8>),
    /// A member's BLS signatures of the checkpoint at `height`, one per
    /// anchor domain in genesis order (`crate::checkpoint`).
    CheckpointSig {
        height: u64,
        signer: conclave_consensus::MemberId,
        sigs: Vec<([u8; 41], [u8; 96])>,
    },
    /// Txs admitted together, in one message: one gossip signature and one
    /// frame for many txs under load.
    Txs(Vec<SignedTx>),
    /// A signed proposal (`codec::encode_proposal`) with the header of the
    /// block it names and the block's txs, by hash where the members hold
    /// them from the pushes (`context::compact`).
    CompactProposal {
        proposal: Vec<u8>,
        header: BlockHeader,
        txs: Vec<CompactTx>,
    },
    /// A member misses txs (by hash) of the compact proposal of block
    /// `value` at `height`: its proposer gossips them (`WantedTxs`).
    TxsWanted {
        height: u64,
        value: Hash32,
        txs: Vec<Hash32>,
    },
    /// Txs of a proposed block that a member asked for (`TxsWanted`).
    WantedTxs(Vec<SignedTx>),
}

/// A tx of a compact proposal.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub enum CompactTx {
    /// A tx the members hold from the pushes: its hash.
    Hash(Hash32),
    /// A tx the proposer acknowledged itself (its push may come after the
    /// proposal): whole.
    Full(SignedTx),
}

impl CompactTx {
    pub fn hash(&self) -> Hash32 {
        match self {
            CompactTx::Hash(h) => *h,
            CompactTx::Full(tx) => tx.hash(),
        }
    }
}

impl From<crate::checkpoint::Share> for Wire {
    fn from(s: crate::checkpoint::Share) -> Self {
        Wire::CheckpointSig {
            height: s.height,
            signer: s.signer,
            sigs: s.sigs,
        }
    }
}

impl Wire {
    /// Frames the message behind a sequence number. Gossipsub drops a
    /// message whose bytes it has seen recently, and consensus rebroadcasts
    /// identical votes on purpose (so members that missed them, or restarted,
    /// get them): the sequence number keeps each send distinct.
    pub fn encode(&self, seq: u64) -> Vec<u8> {
        let mut out = seq.to_be_bytes().to_vec();
        let _ = borsh::to_writer(&mut out, self);
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, String> {
        if bytes.len() > MAX_WIRE_BYTES {
            return Err(format!("message of {} bytes is too large", bytes.len()));
        }
        let body = bytes.get(8..).ok_or("message shorter than its frame")?;
        borsh::from_slice(body).map_err(|e| format!("malformed message: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_differ_per_send_and_decode_back() {
        let w = Wire::Vote(vec![1, 2, 3]);
        let (a, b) = (w.encode(1), w.encode(2));
        assert_ne!(a, b);
        assert!(matches!(Wire::decode(&a), Ok(Wire::Vote(v)) if v == vec![1, 2, 3]));
        assert!(Wire::decode(&a[..5]).is_err());
        assert!(Wire::decode(&[0; 9]).is_err());
    }
}

/// Blocks a syncing member asks for, from `from` upwards.
#[derive(Debug, BorshSerialize, BorshDeserialize)]
pub struct SyncRequest {
    pub from: u64,
    /// The key epoch to seal the answer under (the newest the requester
    /// holds).
    pub key_epoch: u64,
}

/// Decided blocks with their commit certificates, in height order.
#[derive(Debug, BorshSerialize, BorshDeserialize)]
pub struct SyncResponse {
    pub blocks: Vec<(Block, StoredCertificate)>,
}

/// Blocks per sync response, at most (and `MAX_SYNC_BYTES` of them). A
/// full answer means more may follow. Unit tests use few, so that the
/// simulation's catch-up takes several answers.
pub const MAX_SYNC_BLOCKS: usize = if cfg!(test) { 4 } else { 64 };
pub const MAX_SYNC_BYTES: usize = 3 * 1024 * 1024;

/// Answers a sync request from the store, sealed under the key epoch the
/// requester asked for (the network layer has checked that it is a member).
pub fn serve_sync(
    store: &crate::store::Store,
    context: &conclave_consensus::ContextId,
    data: &[u8],
) -> Result<Vec<u8>, String> {
    let req: SyncRequest = borsh::from_slice(data).map_err(|e| format!("bad sync request: {e}"))?;
    let key = store
        .context_key(context, req.key_epoch)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no context key of epoch {}", req.key_epoch))?;
    let mut blocks = Vec::new();
    let mut bytes = 0;
    let mut h = req.from.max(1);
    while blocks.len() < MAX_SYNC_BLOCKS {
        let height = conclave_consensus::Height(h);
        let (Some(block), Some(cert)) = (
            store.block(context, height).map_err(|e| e.to_string())?,
            store
                .certificate(context, height)
                .map_err(|e| e.to_string())?,
        ) else {
            break;
        };
        bytes += borsh::object_length(&block).unwrap_or(usize::MAX);
        if bytes > MAX_SYNC_BYTES && !blocks.is_empty() {
            break;
        }
        blocks.push((block, cert));
        h += 1;
    }
    let plain = borsh::to_vec(&SyncResponse { blocks }).map_err(|e| e.to_string())?;
    Ok(key.seal(context, crate::seal::Purpose::SyncResponse, &plain))
}
