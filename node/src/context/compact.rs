//! Compact proposals: a proposal names its block's txs by hash, so that a
//! block's body crosses the network once (in the members' pushes), not
//! twice. The txs this node acknowledged itself go whole: their pushes
//! travel on another lane and may arrive after the proposal. A member
//! assembles the block from its pool and the pushed txs it has not
//! admitted yet, and asks the proposer at once for any still missing
//! ([`Wire::TxsWanted`], a few hashes): it gossips them
//! ([`Wire::WantedTxs`]), and whichever comes first, a push or the answer,
//! completes the block.

use std::collections::{HashMap, HashSet};

use conclave_consensus::codec::encode_proposal;
use conclave_consensus::{Block, BlockHeader, ConclaveContext, Hash32, Height, MemberId, SignedTx};
use malachitebft_core_types::SignedProposal;

use tracing::{debug, warn};

use super::actor::ContextActor;
use super::wire::{CompactTx, Wire};
use crate::Result;

/// Compact proposals assembled at once, at most (each round's proposer
/// sends one; more are equivocation, or rounds long gone).
pub(super) const MAX_ASSEMBLING: usize = 8;

/// The txs of a block for its compact proposal: whole where `own` says this
/// node acknowledged the tx, by hash otherwise.
pub(super) fn compact(
    txs: &[SignedTx],
    hashes: &[Hash32],
    own: impl Fn(&Hash32) -> bool,
) -> Vec<CompactTx> {
    txs.iter()
        .zip(hashes)
        .map(|(tx, h)| match own(h) {
            true => CompactTx::Full(tx.clone()),
            false => CompactTx::Hash(*h),
        })
        .collect()
}

/// A compact proposal whose txs are not all here yet.
pub(super) struct Assembly {
    pub(super) from: MemberId,
    pub(super) proposal: SignedProposal<ConclaveContext>,
    header: BlockHeader,
    slots: Vec<Option<SignedTx>>,
    /// Missing txs by hash: their places in the block.
    missing: HashMap<Hash32, Vec<usize>>,
}

impl Assembly {
    /// Starts assembling the block of `proposal` (its header checked
    /// against the proposal and its `hashes` against the header): each
    /// tx named by hash is looked up with `find`.
    pub(super) fn new(
        from: MemberId,
        proposal: SignedProposal<ConclaveContext>,
        header: BlockHeader,
        txs: Vec<CompactTx>,
        hashes: &[Hash32],
        find: impl Fn(&Hash32) -> Option<SignedTx>,
    ) -> Self {
        let mut missing: HashMap<Hash32, Vec<usize>> = HashMap::new();
        let slots = txs
            .into_iter()
            .zip(hashes)
            .enumerate()
            .map(|(i, (tx, h))| match tx {
                CompactTx::Full(tx) => Some(tx),
                CompactTx::Hash(_) => {
                    let found = find(h);
                    if found.is_none() {
                        missing.entry(*h).or_default().push(i);
                    }
                    found
                }
            })
            .collect();
        Self {
            from,
            proposal,
            header,
            slots,
            missing,
        }
    }

    /// The hashes of the txs still missing.
    pub(super) fn missing(&self) -> Vec<Hash32> {
        self.missing.keys().copied().collect()
    }

    /// Whether the block's txs are all here.
    pub(super) fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }

    /// A tx that arrived (its hash `hash`): fills its places if it is
    /// missing.
    pub(super) fn offer(&mut self, hash: &Hash32, tx: &SignedTx) {
        if let Some(places) = self.missing.remove(hash) {
            for i in places {
                self.slots[i] = Some(tx.clone());
            }
        }
    }

    /// The assembled block (call once complete).
    pub(super) fn into_block(self) -> Block {
        Block {
            header: self.header,
            txs: self.slots.into_iter().flatten().collect(),
        }
    }
}

/// This node's share of compact proposals at the height in progress: the
/// members' proposals it is assembling, and the block it proposed, whose
/// txs it gives a member that misses some (once a member, so that asking
/// again and again cannot make it gossip the block over and over).
#[derive(Default)]
pub(super) struct Compact {
    pub(super) assembling: Vec<Assembly>,
    proposed: Option<(Hash32, HashSet<MemberId>)>,
}

impl Compact {
    /// This node proposed block `value`.
    pub(super) fn published(&mut self, value: Hash32) {
        self.proposed = Some((value, HashSet::new()));
    }

    /// Whether member `from`, missing txs of block `value`, gets them: this
    /// node proposed that block at the height in progress, and `from` has
    /// not asked for its txs before.
    pub(super) fn answers(&mut self, value: &Hash32, from: MemberId) -> bool {
        match &mut self.proposed {
            Some((v, asked)) if v == value => asked.insert(from),
            _ => false,
        }
    }

    /// Keeps a proposal to assemble; beyond [`MAX_ASSEMBLING`] the oldest
    /// goes.
    pub(super) fn hold(&mut self, assembly: Assembly) {
        if self.assembling.len() >= MAX_ASSEMBLING {
            self.assembling.remove(0);
        }
        self.assembling.push(assembly);
    }

    /// The height is over: what was assembled or proposed at it goes.
    pub(super) fn clear(&mut self) {
        self.assembling.clear();
        self.proposed = None;
    }

    /// Offers arrived txs to the proposals being assembled; takes out those
    /// now complete.
    pub(super) fn offer(&mut self, txs: &[(Hash32, SignedTx)]) -> Vec<Assembly> {
        for a in &mut self.assembling {
            for (hash, tx) in txs {
                a.offer(hash, tx);
            }
        }
        let (done, waiting) = std::mem::take(&mut self.assembling)
            .into_iter()
            .partition(Assembly::is_complete);
        self.assembling = waiting;
        done
    }
}

/// The txs among `block`'s (with their `hashes`) that `wanted` names, in
/// block order.
pub(super) fn wanted_txs(txs: &[SignedTx], hashes: &[Hash32], wanted: &[Hash32]) -> Vec<SignedTx> {
    let wanted: HashSet<&Hash32> = wanted.iter().collect();
    txs.iter()
        .zip(hashes)
        .filter(|(_, h)| wanted.contains(h))
        .map(|(tx, _)| tx.clone())
        .collect()
}

impl ContextActor {
    /// Gossips this node's proposal with its block: whole if the block is
    /// small (`[block] compact_from_txs`), else compact, the txs this node
    /// acknowledged whole and the others by hash.
    pub(super) fn publish_proposal(&mut self, p: &SignedProposal<ConclaveContext>) {
        let Some((block, hashes)) = self.blocks.block_with_hashes(&p.value) else {
            return;
        };
        let wire = if block.txs.len() < self.deps.config.block.compact_from_txs {
            Wire::Proposal {
                proposal: encode_proposal(p),
                block: block.clone(),
            }
        } else {
            let txs = {
                let admission = self.intake.admission();
                compact(&block.txs, hashes, |h| admission.acknowledged(h))
            };
            self.compact.published(p.value);
            Wire::CompactProposal {
                proposal: encode_proposal(p),
                header: block.header.clone(),
                txs,
            }
        };
        self.gossip.broadcast(&wire);
    }

    /// A member's compact proposal: its header and tx hashes checked
    /// against the signed proposal, then its block assembled from what this
    /// node holds; what is missing is asked of its proposer. At most
    /// [`MAX_ASSEMBLING`] wait, the oldest giving way (a proposer signing
    /// many blocks for a round cannot make this node hold them all).
    pub(super) fn on_compact_proposal(
        &mut self,
        from: MemberId,
        p: SignedProposal<ConclaveContext>,
        header: BlockHeader,
        txs: Vec<CompactTx>,
        data: &[u8],
    ) -> Result<()> {
        let hashes: Vec<Hash32> = txs.iter().map(CompactTx::hash).collect();
        if header.hash() != p.message.value
            || header.height != p.message.height
            || conclave_consensus::merkle_root(&hashes) != header.txs_root
        {
            warn!(context = %self.id(), member = %from, "compact proposal does not match its header");
            self.gossip.penalise(from);
            return Ok(());
        }
        let value = p.message.value;
        let known = self.blocks.block(&value).cloned();
        if let Some(block) = known {
            // Proposed again in a later round, or sent whole meanwhile.
            return self.on_proposal(from, p, block, data);
        }
        let (height, next) = (p.message.height, self.next_height());
        if height != next || self.compact.assembling.iter().any(|a| a.proposal == p) {
            // Late or early: handled as any proposal (witnessed, or held
            // for its height) once it has a block; a repeat: already here.
            if height < next {
                self.witness_proposal(&p);
            } else if height > next {
                self.at_current_height(height, from, data)?;
            }
            return Ok(());
        }
        let assembly = {
            let admission = self.admission();
            let mut a = Assembly::new(from, p, header, txs, &hashes, |h| admission.pooled(h));
            if !a.is_complete() {
                for tx in admission.queued_txs() {
                    a.offer(&tx.hash(), tx);
                }
            }
            a
        };
        if assembly.is_complete() {
            self.count_compact("complete");
            let p = assembly.proposal.clone();
            return self.on_proposal(from, p, assembly.into_block(), data);
        }
        // It counts as arrived for the propose wait once assembled; its
        // height starts now.
        if !self.at_current_height(height, from, data)? {
            return Ok(());
        }
        let missing = assembly.missing();
        debug!(context = %self.id(), height = height.0, missing = missing.len(),
            "compact proposal misses txs; asking its proposer");
        self.compact.hold(assembly);
        self.gossip.broadcast(&Wire::TxsWanted {
            height: height.0,
            value,
            txs: missing,
        });
        Ok(())
    }

    /// Pushed txs arrived: the compact proposals they complete go on.
    pub(super) fn offer_to_assembling(&mut self, txs: &[SignedTx]) -> Result<()> {
        if self.compact.assembling.is_empty() {
            return Ok(());
        }
        let arrived: Vec<(Hash32, SignedTx)> = txs.iter().map(|t| (t.hash(), t.clone())).collect();
        for a in self.compact.offer(&arrived) {
            self.count_compact("asked");
            let (from, p) = (a.from, a.proposal.clone());
            self.on_proposal(from, p, a.into_block(), &[])?;
        }
        Ok(())
    }

    /// Member `from` misses txs of block `value` at `height`: if this node
    /// proposed it, it gossips those of them the block holds.
    pub(super) fn send_wanted_txs(
        &mut self,
        from: MemberId,
        height: Height,
        value: Hash32,
        wanted: &[Hash32],
    ) {
        if height != self.next_height() || !self.compact.answers(&value, from) {
            return;
        }
        let Some((block, hashes)) = self.blocks.block_with_hashes(&value) else {
            return;
        };
        let txs = wanted_txs(&block.txs, hashes, wanted);
        if !txs.is_empty() {
            debug!(context = %self.id(), height = height.0, txs = txs.len(), "sending wanted txs");
            self.gossip.broadcast(&Wire::WantedTxs(txs));
        }
    }

    fn count_compact(&self, outcome: &str) {
        self.deps
            .metrics
            .compact_proposals_total
            .with_label_values(&[&self.label, outcome])
            .inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use conclave_consensus::{ContextId, Tx};
    use ed25519_dalek::SigningKey;
    use malachitebft_core_types::Round;

    fn tx(nonce: u64) -> SignedTx {
        let key = SigningKey::from_bytes(&[7; 32]);
        let body = Tx {
            context_id: ContextId([1; 32]),
            sender: MemberId(key.verifying_key().to_bytes()),
            nonce,
            method: "set".into(),
            args: vec![nonce as u8],
        };
        body.sign(&key)
    }

    #[test]
    fn own_txs_go_whole_and_the_others_by_hash() {
        let txs: Vec<SignedTx> = (0..3).map(tx).collect();
        let hashes: Vec<Hash32> = txs.iter().map(SignedTx::hash).collect();
        let c = compact(&txs, &hashes, |h| *h == hashes[1]);
        assert!(matches!(&c[0], CompactTx::Hash(h) if *h == hashes[0]));
        assert!(matches!(&c[1], CompactTx::Full(t) if *t == txs[1]));
        assert!(matches!(&c[2], CompactTx::Hash(h) if *h == hashes[2]));
        let named: Vec<Hash32> = c.iter().map(CompactTx::hash).collect();
        assert_eq!(named, hashes);
    }

    fn header(hashes: &[Hash32]) -> BlockHeader {
        BlockHeader {
            context_id: ContextId([1; 32]),
            height: Height(1),
            parent_hash: Hash32::default(),
            time_ms: 1,
            proposer: MemberId([2; 32]),
            txs_root: conclave_consensus::merkle_root(hashes),
            state_root: Hash32::default(),
            actions_root: Hash32::default(),
            members_hash: Hash32::default(),
        }
    }

    fn proposal(header: &BlockHeader, round: u32) -> SignedProposal<ConclaveContext> {
        let key = SigningKey::from_bytes(&[3; 32]);
        let p = conclave_consensus::Proposal {
            height: header.height,
            round: Round::new(round),
            value: header.hash(),
            pol_round: Round::Nil,
            proposer: MemberId(key.verifying_key().to_bytes()),
        };
        let bytes = conclave_consensus::codec::proposal_sign_bytes(&header.context_id, &p);
        let sig = conclave_consensus::codec::sign(&key, &bytes);
        malachitebft_core_types::SignedMessage::new(p, sig)
    }

    #[test]
    fn a_block_assembles_from_what_is_found_and_what_arrives_in_its_order() {
        let txs: Vec<SignedTx> = (0..4).map(tx).collect();
        let hashes: Vec<Hash32> = txs.iter().map(SignedTx::hash).collect();
        let header = header(&hashes);
        let proposal = proposal(&header, 0);
        // The pool holds tx 0; tx 1 comes whole; 2 and 3 are missing.
        let c = compact(&txs, &hashes, |h| *h == hashes[1]);
        let pool = txs[0].clone();
        let mut compact = Compact::default();
        compact.assembling.push(Assembly::new(
            MemberId([2; 32]),
            proposal,
            header.clone(),
            c,
            &hashes,
            |h| (*h == hashes[0]).then(|| pool.clone()),
        ));
        let mut missing = compact.assembling[0].missing();
        missing.sort();
        let mut want = vec![hashes[2], hashes[3]];
        want.sort();
        assert_eq!(missing, want);
        // A tx it does not need changes nothing; the last missing one completes it.
        assert!(compact.offer(&[(hashes[3], txs[3].clone())]).is_empty());
        assert!(compact.offer(&[(tx(9).hash(), tx(9))]).is_empty());
        let done = compact.offer(&[(hashes[2], txs[2].clone())]);
        assert!(compact.assembling.is_empty());
        let [block] = <[Assembly; 1]>::try_from(done)
            .ok()
            .unwrap()
            .map(Assembly::into_block);
        assert_eq!(block.txs, txs);
        assert_eq!(block.compute_txs_root(), block.header.txs_root);
    }

    #[test]
    fn the_txs_wanted_are_given_in_block_order_and_nothing_else() {
        let txs: Vec<SignedTx> = (0..4).map(tx).collect();
        let hashes: Vec<Hash32> = txs.iter().map(SignedTx::hash).collect();
        let got = wanted_txs(&txs, &hashes, &[hashes[3], tx(9).hash(), hashes[1]]);
        assert_eq!(got, vec![txs[1].clone(), txs[3].clone()]);
        // Only for the block this node proposed, once a member.
        let (a, b) = (MemberId([1; 32]), MemberId([2; 32]));
        let mut c = Compact::default();
        assert!(!c.answers(&Hash32([5; 32]), a));
        c.published(Hash32([5; 32]));
        assert!(!c.answers(&Hash32([6; 32]), a));
        assert!(c.answers(&Hash32([5; 32]), a));
        assert!(!c.answers(&Hash32([5; 32]), a));
        assert!(c.answers(&Hash32([5; 32]), b));
        c.clear();
        assert!(!c.answers(&Hash32([5; 32]), b));
    }

    #[test]
    fn at_most_max_assembling_wait_and_the_oldest_gives_way() {
        let header = header(&[tx(0).hash()]);
        let mut c = Compact::default();
        for round in 0..=MAX_ASSEMBLING as u32 {
            let txs = vec![CompactTx::Hash(tx(0).hash())];
            let p = proposal(&header, round);
            c.hold(Assembly::new(
                MemberId([2; 32]),
                p,
                header.clone(),
                txs,
                &[tx(0).hash()],
                |_| None,
            ));
        }
        let rounds: Vec<u32> = c
            .assembling
            .iter()
            .map(|a| a.proposal.message.round.as_u32().unwrap())
            .collect();
        assert_eq!(rounds, (1..=MAX_ASSEMBLING as u32).collect::<Vec<_>>());
    }
}
