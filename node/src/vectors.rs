//! Pinned bytes of every format a node puts on the wire or on disk
//! (`node/vectors/formats.txt`): a signed tx (its signing bytes show in its
//! deterministic signature), consensus votes and proposals, each gossip
//! `Wire` message, the seal envelope, catch-up and onboarding messages,
//! store records, a WAL file and a sign guard record. Each is built from
//! fixed keys and values through the code that really writes it, and must
//! equal the committed hex, so a change of format is visible in review.
//!
//! After a deliberate change, regenerate with
//! `CONCLAVE_WRITE_VECTORS=1 cargo test -p conclave-node --lib vectors`
//! and commit the file with the change.

use std::fmt::Write as _;

use conclave_consensus::codec::{
    encode_proposal, encode_vote, proposal_sign_bytes, sign, vote_sign_bytes, StoredCertificate,
};
use conclave_consensus::mal::{Input, NilOrVal, Round, SignedMessage, VoteType};
use conclave_consensus::sign_policy::{SignPosition, SignRequest, SignStep};
use conclave_consensus::ConclaveContext;
use conclave_consensus::{
    Block, BlockHeader, ContextId, Hash32, Height, MemberId, Proposal, SignedTx, Tx, Vote,
};
use ed25519_dalek::SigningKey;
use malachitebft_core_types::{SignedProposal, SignedVote};

use crate::context::wire::{CompactTx, SyncRequest, SyncResponse, Wire};
use crate::onboarding::{NodeRequest, NodeResponse};
use crate::seal::{ContextKey, Purpose};
use crate::store::{
    ActionRecord, AnchorDomain, CheckpointRecord, ContextRecord, DomainCertificate, Genesis,
    MemberInfo, Receipt, TxRecord, TxStatus,
};

const FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/vectors/formats.txt");

fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

fn member(seed: u8) -> MemberId {
    MemberId(key(seed).verifying_key().to_bytes())
}

const CTX: ContextId = ContextId([7; 32]);

fn tx(nonce: u64) -> SignedTx {
    Tx {
        context_id: CTX,
        sender: member(1),
        nonce,
        method: "set".into(),
        args: br#"{"key":"a","value":"1"}"#.to_vec(),
    }
    .sign(&key(1))
}

fn block() -> Block {
    let txs = vec![tx(1), tx(2)];
    Block {
        header: BlockHeader {
            context_id: CTX,
            height: Height(5),
            parent_hash: Hash32([3; 32]),
            time_ms: 1_700_000_000_000,
            proposer: member(1),
            txs_root: conclave_consensus::merkle_root(
                &txs.iter().map(|t| t.hash()).collect::<Vec<_>>(),
            ),
            state_root: Hash32([4; 32]),
            actions_root: Hash32([5; 32]),
            members_hash: Hash32([6; 32]),
        },
        txs,
    }
}

fn vote(typ: VoteType, value: NilOrVal<Hash32>) -> SignedVote<ConclaveContext> {
    let v = Vote {
        typ,
        height: Height(5),
        round: Round::new(1),
        value,
        validator: member(2),
        extension: None,
    };
    let sig = sign(&key(2), &vote_sign_bytes(&CTX, &v));
    SignedMessage::new(v, sig)
}

fn proposal() -> SignedProposal<ConclaveContext> {
    let p = Proposal {
        height: Height(5),
        round: Round::new(1),
        value: block().hash(),
        pol_round: Round::Nil,
        proposer: member(1),
    };
    let sig = sign(&key(1), &proposal_sign_bytes(&CTX, &p));
    SignedMessage::new(p, sig)
}

fn genesis() -> Genesis {
    Genesis {
        app_hash: Hash32([8; 32]),
        members: vec![MemberInfo {
            id: member(1),
            bls_public_key: vec![9; 48],
            bls_pop: vec![10; 96],
        }],
        created_at_ms: 1_700_000_000_000,
        salt: Hash32([11; 32]),
        anchors: vec![AnchorDomain([12; 41])],
        checkpoint_interval: 10,
    }
}

fn receipt() -> Receipt {
    Receipt {
        status: TxStatus::Ok,
        output: b"ok".to_vec(),
        error: None,
        events: vec![("set".into(), b"a".to_vec())],
        actions: vec![vec![13; 4]],
        fuel_used: 1234,
    }
}

fn borsh<T: borsh::BorshSerialize>(v: &T) -> Vec<u8> {
    borsh::to_vec(v).expect("borsh")
}

/// The sign guard's record after one prevote, as written to disk.
fn sign_guard_record() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("guard.sign");
    let mut guard = crate::sign_guard::SignGuard::open(&path).expect("open");
    let request = SignRequest {
        position: SignPosition {
            height: Height(5),
            round: 1,
            step: SignStep::Prevote,
        },
        value: Some(Hash32([14; 32])),
        digest: Hash32([15; 32]),
    };
    guard.check_and_record(&request).expect("first signature");
    std::fs::read(&path).expect("read")
}

/// A WAL file holding height 5's vote and proposal inputs, up to the end
/// of its records (the zeros written ahead of them left out).
fn wal_file() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ctx.wal");
    let (mut wal, _) = crate::wal::Wal::open(&path).expect("open");
    wal.start_height(Height(5)).expect("start");
    wal.write(
        Height(5),
        &Input::Vote(vote(VoteType::Prevote, NilOrVal::Val(block().hash()))),
    )
    .expect("write");
    wal.write(Height(5), &Input::Proposal(proposal()))
        .expect("write");
    wal.sync().expect("sync");
    let mut bytes = std::fs::read(&path).expect("read");
    bytes.truncate(wal.records_end() as usize);
    bytes
}

/// Every pinned format, by name, in file order.
fn formats() -> Vec<(&'static str, Vec<u8>)> {
    let seal_key = ContextKey::from_bytes(3, [16; 32]);
    let prevote = vote(VoteType::Prevote, NilOrVal::Val(block().hash()));
    let nil_precommit = vote(VoteType::Precommit, NilOrVal::Nil);
    vec![
        ("tx.signed", borsh(&tx(1))),
        ("block", borsh(&block())),
        ("vote.prevote", encode_vote(&prevote)),
        ("vote.precommit_nil", encode_vote(&nil_precommit)),
        ("proposal", encode_proposal(&proposal())),
        ("wire.tx", Wire::Tx(tx(1)).encode(42)),
        ("wire.txs", Wire::Txs(vec![tx(1), tx(2)]).encode(43)),
        ("wire.vote", Wire::Vote(encode_vote(&prevote)).encode(44)),
        (
            "wire.proposal",
            Wire::Proposal {
                proposal: encode_proposal(&proposal()),
                block: block(),
            }
            .encode(45),
        ),
        (
            "wire.compact_proposal",
            Wire::CompactProposal {
                proposal: encode_proposal(&proposal()),
                header: block().header,
                txs: vec![CompactTx::Hash(tx(1).hash()), CompactTx::Full(tx(2))],
            }
            .encode(47),
        ),
        (
            "wire.txs_wanted",
            Wire::TxsWanted {
                height: 5,
                value: block().hash(),
                txs: vec![tx(1).hash()],
            }
            .encode(48),
        ),
        ("wire.wanted_txs", Wire::WantedTxs(vec![tx(1)]).encode(49)),
        (
            "wire.checkpoint_sig",
            Wire::CheckpointSig {
                height: 10,
                signer: member(2),
                sigs: vec![([17; 41], [18; 96])],
            }
            .encode(46),
        ),
        (
            "seal.gossip",
            seal_key.seal_with_nonce(&CTX, Purpose::Gossip, b"hello", [19; 24]),
        ),
        (
            "sync.request",
            borsh(&SyncRequest {
                from: 6,
                key_epoch: 3,
            }),
        ),
        ("sync.response", borsh(&SyncResponse { blocks: Vec::new() })),
        ("node.request.identity", borsh(&NodeRequest::Identity)),
        (
            "node.request.offer",
            borsh(&NodeRequest::Offer {
                genesis: genesis(),
                sealed_key: vec![20; 8],
            }),
        ),
        (
            "node.request.app",
            borsh(&NodeRequest::App {
                context: CTX,
                key_epoch: 3,
            }),
        ),
        (
            "node.request.join",
            borsh(&NodeRequest::Join { context: CTX }),
        ),
        (
            "node.request.tips",
            borsh(&NodeRequest::Tips(vec![(CTX, Height(5))])),
        ),
        (
            "node.response.refused",
            borsh(&NodeResponse::Refused("no".into())),
        ),
        (
            "node.response.tips",
            borsh(&NodeResponse::Tips(vec![(CTX, Height(7))])),
        ),
        ("store.genesis", borsh(&genesis())),
        (
            "store.context_record",
            borsh(&ContextRecord {
                id: CTX,
                genesis: genesis(),
                height: Height(5),
                last_block_hash: Hash32([21; 32]),
                state_root: Hash32([22; 32]),
                last_time_ms: 1_700_000_000_000,
            }),
        ),
        ("store.receipt", borsh(&receipt())),
        (
            "store.tx_record",
            borsh(&TxRecord {
                context_id: CTX,
                height: Height(5),
                index: 1,
                receipt: receipt(),
            }),
        ),
        (
            "store.action",
            borsh(&ActionRecord {
                id: [23; 32],
                request: vec![24; 8],
                tx: Hash32([25; 32]),
            }),
        ),
        (
            "store.checkpoint",
            borsh(&CheckpointRecord {
                height: Height(10),
                epoch: 1,
                state_root: Hash32([26; 32]),
                actions_root: Hash32([27; 32]),
                next_members_hash: [28; 32],
                certificates: vec![DomainCertificate {
                    domain: AnchorDomain([29; 41]),
                    signers: [1; 32],
                    signature: [30; 96],
                }],
            }),
        ),
        (
            "store.certificate",
            borsh(&StoredCertificate {
                height: Height(5),
                round: 1,
                block_hash: block().hash(),
                signatures: vec![(member(2), sign(&key(2), b"precommit"))],
            }),
        ),
        ("wal.file", wal_file()),
        ("sign_guard.record", sign_guard_record()),
    ]
}

fn render(formats: &[(&str, Vec<u8>)]) -> String {
    let mut out = String::from(
        "# Pinned wire and disk formats of the node (see node/src/vectors.rs).\n\
         # name = hex; regenerate with CONCLAVE_WRITE_VECTORS=1 after a deliberate change.\n",
    );
    for (name, bytes) in formats {
        let _ = writeln!(out, "{name} = {}", hex::encode(bytes));
    }
    out
}

#[test]
fn every_format_matches_its_pinned_bytes() {
    let rendered = render(&formats());
    if std::env::var_os("CONCLAVE_WRITE_VECTORS").is_some() {
        std::fs::write(FILE, &rendered).expect("write the vectors");
    }
    let pinned = std::fs::read_to_string(FILE).expect("node/vectors/formats.txt");
    let want: Vec<&str> = pinned.lines().collect();
    for (got, want) in rendered.lines().zip(&want) {
        let name = got.split(" = ").next().unwrap_or(got);
        assert_eq!(
            got, *want,
            "format {name} changed (see node/src/vectors.rs)"
        );
    }
    assert_eq!(
        rendered.lines().count(),
        want.len(),
        "formats added or removed"
    );
}

#[test]
fn pinned_bytes_decode_back() {
    let f: std::collections::HashMap<_, _> = formats().into_iter().collect();
    assert!(conclave_consensus::codec::decode_vote(&f["vote.prevote"]).is_ok());
    assert!(conclave_consensus::codec::decode_proposal(&f["proposal"]).is_ok());
    assert!(matches!(Wire::decode(&f["wire.txs"]), Ok(Wire::Txs(t)) if t.len() == 2));
    assert!(matches!(
        Wire::decode(&f["wire.compact_proposal"]),
        Ok(Wire::CompactProposal { txs, .. }) if txs.len() == 2
    ));
    let key = ContextKey::from_bytes(3, [16; 32]);
    assert_eq!(
        key.open(&CTX, Purpose::Gossip, &f["seal.gossip"]).unwrap(),
        b"hello"
    );
    let g: Genesis = borsh::from_slice(&f["store.genesis"]).unwrap();
    assert_eq!(g, genesis());
}
