//! Catch-up through the engine's sync path, as the node's sync protocol
//! will do it: a node stuck at a height asks a random peer for that height's
//! decided value and commit certificate; the engine verifies the certificate
//! (`Input::SyncValueResponse`), the host checks the block against it and
//! feeds it back as a `ProposedValue` with `ValueOrigin::Sync`. After a
//! height decided this way, the next one is asked for at once.

use bytes::Bytes;
use conclave_consensus::mal::{Input, ProposedValue, Round, Validity, ValueOrigin};
use conclave_consensus::{ConclaveContext, Hash32, MemberId};
use malachitebft_core_consensus::PeerId;
use malachitebft_core_types::{ExtendedCommitCertificate, ValueResponse};
use rand::seq::SliceRandom;

use super::link::Msg;
use super::Sim;

type In = Input<ConclaveContext>;

impl Sim {
    /// Asks a random peer for the next height when this node has been stuck
    /// at its current height for a whole sync interval.
    pub(super) fn maybe_request_sync(&mut self, i: usize) {
        let node = &self.nodes[i];
        let need = node.tip() + 1;
        let stuck = self.now.saturating_sub(node.height_since) >= self.cfg.sync_interval_ms;
        if !self.cfg.sync || !stuck || self.position(i).map(|p| p.0 .0) != Some(need) {
            return;
        }
        let peers: Vec<usize> = (0..self.nodes.len()).filter(|&j| j != i).collect();
        let Some(&peer) = peers.choose(&mut self.rng) else {
            return;
        };
        self.nodes[i].sync_peer = peer;
        self.send(i, peer, Msg::SyncRequest(need));
    }

    /// Answers a request if this node decided `h`.
    pub(super) fn serve_sync(&mut self, to: usize, from: usize, h: u64) {
        let node = &self.nodes[to];
        if let (Some(cert), Some(value)) = (node.certs.get(&h), node.value_at(h)) {
            let cert = ExtendedCommitCertificate::from_commit_certificate_and_extensions(
                cert.clone(),
                Default::default(),
            );
            let resp = ValueResponse::new(peer_id(node.id), Bytes::copy_from_slice(&value.0), cert);
            self.send(to, from, Msg::SyncResponse(Box::new(resp)));
        }
    }

    pub(super) fn on_sync_response(&mut self, to: usize, resp: ValueResponse<ConclaveContext>) {
        let wanted = self.position(to).map(|p| p.0) == Some(resp.certificate.height)
            && self.nodes[to].tip() < resp.certificate.height.0;
        if wanted {
            self.feed(to, In::SyncValueResponse(resp));
        }
    }

    /// The engine verified the certificate: judge the block bytes against it.
    pub(super) fn on_sync_value(
        &mut self,
        i: usize,
        resp: ValueResponse<ConclaveContext>,
        proposer: MemberId,
    ) -> Option<In> {
        self.nodes[i].synced += 1;
        self.nodes[i].synced_last = true;
        let cert = &resp.certificate;
        let value = <[u8; 32]>::try_from(&resp.value_bytes[..])
            .ok()
            .map(Hash32)?;
        let validity = if value == cert.value_id && !self.invalid_values.contains(&value) {
            Validity::Valid
        } else {
            Validity::Invalid
        };
        let pv = ProposedValue {
            height: cert.height,
            round: cert.round,
            valid_round: Round::Nil,
            proposer,
            value,
            validity,
        };
        Some(In::ProposedValue(pv, ValueOrigin::Sync))
    }
}

/// A libp2p-style peer id (identity multihash) for a member.
fn peer_id(m: MemberId) -> PeerId {
    let mut bytes = vec![0x00, 32];
    bytes.extend_from_slice(m.as_bytes());
    PeerId::from_bytes(&bytes).expect("identity multihash")
}
