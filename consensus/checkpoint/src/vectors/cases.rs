//! Checkpoint, action and hash-to-curve vector files.

use super::build::{
    bitmap, members_hash_of, point, sign_by, Ctx, GENESIS, NEAR_ACCOUNT, NEAR_NET, ROTATED,
};
use super::types::*;
use super::{to_hex, VECTOR_CHAIN_ID, VECTOR_PROXY};
use crate::actions::{Account, ActionKind};
use crate::bls::{Signature, POP_DST, SIG_DST};
use crate::domain::{ChainKind, Domain};
use crate::error::{Error, Result};
use crate::merkle;
use crate::payload::CheckpointPayload;

struct Spec<'a> {
    name: &'a str,
    description: &'a str,
    rotated: bool,
    payload: CheckpointPayload,
    /// Who signs the payload (key indices into keys.json).
    signers: &'a [u32],
    /// Bits set in the bitmap (member indices); defaults to the signers'
    /// positions in the set.
    bitmap: Option<&'a [u32]>,
    /// The payload the case presents, if it differs from the signed one.
    presented: Option<CheckpointPayload>,
    reason: Option<&'a str>,
}

fn near() -> Result<(Domain, DomainVector)> {
    let d = Domain::near(NEAR_NET, NEAR_ACCOUNT)?;
    Ok((d, DomainVector::new(&d, Some((NEAR_NET, NEAR_ACCOUNT)))))
}

fn domain_vector(d: &Domain) -> Result<DomainVector> {
    match d.kind {
        ChainKind::Evm | ChainKind::Unanchored => Ok(DomainVector::new(d, None)),
        ChainKind::Near => near().map(|n| n.1),
    }
}

fn payload_vector(p: &CheckpointPayload) -> Result<PayloadVector> {
    Ok(PayloadVector {
        domain: domain_vector(&p.domain)?,
        context_id: to_hex(&p.context_id),
        epoch: p.epoch,
        height: p.height,
        state_root: to_hex(&p.state_root),
        actions_root: to_hex(&p.actions_root),
        next_members_hash: to_hex(&p.next_members_hash),
    })
}

fn case(ctx: &Ctx, s: Spec<'_>) -> Result<CheckpointCase> {
    let (set_name, set_keys): (&str, &[u32]) = if s.rotated {
        ("rotated", &ROTATED)
    } else {
        ("genesis", &GENESIS)
    };
    let sig: Signature = sign_by(ctx, &s.payload, s.signers)?;
    let positions: Vec<u32> = match s.bitmap {
        Some(b) => b.to_vec(),
        None => s
            .signers
            .iter()
            .filter_map(|k| set_keys.iter().position(|m| m == k).map(|p| p as u32))
            .collect(),
    };
    let shown = s.presented.unwrap_or(s.payload);
    let verifier_domain = if s.rotated || s.reason.is_some() {
        Domain::evm(VECTOR_CHAIN_ID, VECTOR_PROXY)
    } else {
        s.payload.domain
    };
    Ok(CheckpointCase {
        name: s.name.into(),
        description: s.description.into(),
        member_set: set_name.into(),
        verifier_domain: domain_vector(&verifier_domain)?,
        verifier_epoch: u64::from(s.rotated),
        payload: payload_vector(&shown)?,
        payload_bytes: to_hex(&shown.encode()),
        digest: to_hex(&shown.digest()),
        message_point_eip2537: point(&shown.digest(), SIG_DST)?,
        signers_bitmap: to_hex(&bitmap(&positions)?.to_bytes()),
        signer_indices: positions,
        signature_compressed: to_hex(&sig.to_compressed()),
        signature_eip2537: to_hex(&sig.to_eip2537()),
        reason: s.reason.map(str::to_owned),
    })
}

pub(super) fn checkpoints_file(ctx: &Ctx) -> Result<CheckpointsFile> {
    let evm = Domain::evm(VECTOR_CHAIN_ID, VECTOR_PROXY);
    let genesis_hash = ctx.genesis.hash();
    let base = |height: u64| CheckpointPayload {
        domain: evm,
        context_id: ctx.context_id,
        epoch: 0,
        height,
        state_root: crate::merkle::leaf_hash(&height.to_be_bytes()),
        actions_root: [0u8; 32],
        next_members_hash: genesis_hash,
    };
    let spec = |name, description, payload, signers| Spec {
        name,
        description,
        rotated: false,
        payload,
        signers,
        bitmap: None,
        presented: None,
        reason: None,
    };
    let with_actions = CheckpointPayload {
        actions_root: ctx.outbox.root(),
        ..base(2)
    };
    let rotating = CheckpointPayload {
        next_members_hash: ctx.rotated.hash(),
        ..base(3)
    };
    let after = CheckpointPayload {
        epoch: 1,
        next_members_hash: ctx.rotated.hash(),
        ..base(4)
    };
    let near_payload = CheckpointPayload {
        domain: near()?.0,
        ..with_actions
    };
    let valid = vec![
        spec("all_sign", "all four genesis members sign height 1", base(1), &[0, 1, 2, 3]),
        spec("quorum_with_actions", "members 0, 2, 3 (exactly the quorum) sign height 2 with the actions root of actions.json", with_actions, &[0, 2, 3]),
        spec("rotation_announced", "height 3 commits to the rotated member set", rotating, &[0, 1, 2]),
        spec("near_domain", "height 2 for the NEAR proxy", near_payload, &[1, 2, 3]),
        Spec {
            rotated: true,
            ..spec("after_rotation", "epoch 1: the rotated set (keys 2..=6, quorum 4) signs height 4", after, &[2, 3, 4, 5])
        },
    ];
    let bad = |name, description, payload, signers, reason| Spec {
        reason: Some(reason),
        ..spec(name, description, payload, signers)
    };
    let mut tampered = base(10);
    tampered.state_root[0] ^= 0xff;
    let invalid = vec![
        bad(
            "under_quorum",
            "two of four sign; quorum is three",
            base(10),
            &[0, 1],
            "under_quorum",
        ),
        bad(
            "wrong_chain_id",
            "signed for chain id 1, same address",
            CheckpointPayload {
                domain: Domain::evm(1, VECTOR_PROXY),
                ..base(10)
            },
            &[0, 1, 2, 3],
            "wrong_domain",
        ),
        bad(
            "wrong_contract",
            "signed for another proxy address on the same chain",
            CheckpointPayload {
                domain: Domain::evm(VECTOR_CHAIN_ID, [0xee; 20]),
                ..base(10)
            },
            &[0, 1, 2, 3],
            "wrong_domain",
        ),
        bad(
            "wrong_epoch",
            "signed by the genesis set but for epoch 1",
            CheckpointPayload {
                epoch: 1,
                ..base(10)
            },
            &[0, 1, 2, 3],
            "wrong_epoch",
        ),
        Spec {
            presented: Some(tampered),
            ..bad(
                "tampered_state_root",
                "signature over height 10, state root changed afterwards",
                base(10),
                &[0, 1, 2, 3],
                "bad_signature",
            )
        },
        Spec {
            bitmap: Some(&[0, 1, 2, 4]),
            ..bad(
                "non_member_bit",
                "bitmap names bit 4 of a four-member set",
                base(10),
                &[0, 1, 2],
                "non_member_bit",
            )
        },
        Spec {
            bitmap: Some(&[0, 1, 2]),
            ..bad(
                "forged_aggregate",
                "signed by non-members (keys 5, 6, 7), bitmap claims members 0, 1, 2",
                base(10),
                &[5, 6, 7],
                "bad_signature",
            )
        },
        Spec {
            bitmap: Some(&[0, 1, 2, 3]),
            ..bad(
                "bitmap_overclaims",
                "members 0, 1, 2 sign, bitmap also claims member 3",
                base(10),
                &[0, 1, 2],
                "bad_signature",
            )
        },
    ];
    Ok(CheckpointsFile {
        description: "checkpoint payload (217 bytes), digest = sha256(payload) is the BLS message under the signature DST; each case is checked by the verifier given (domain, epoch, member set)".into(),
        valid: valid.into_iter().map(|s| case(ctx, s)).collect::<Result<_>>()?,
        invalid: invalid.into_iter().map(|s| case(ctx, s)).collect::<Result<_>>()?,
    })
}

fn account_string(a: &Account) -> String {
    match a {
        Account::Evm(addr) => to_hex(addr),
        Account::Near(id) => id.clone(),
    }
}

pub(super) fn actions_file(ctx: &Ctx) -> Result<ActionsFile> {
    let ob = &ctx.outbox;
    let mut actions = Vec::new();
    for (i, a) in ob.actions().iter().enumerate() {
        let proof = ob.proof(i).ok_or(Error::BadInclusionProof)?;
        let (kind, token, to, amount, data) = match &a.kind {
            ActionKind::NativeTransfer { to, amount } => ("native", None, to, *amount, &[][..]),
            ActionKind::TokenTransfer { token, to, amount } => {
                ("token", Some(account_string(token)), to, *amount, &[][..])
            }
            ActionKind::ContractCall {
                to,
                value,
                calldata,
            } => ("call", None, to, *value, &calldata[..]),
        };
        actions.push(ActionVector {
            id: to_hex(&a.id),
            domain: domain_vector(&a.domain)?,
            kind: kind.into(),
            token,
            to: account_string(to),
            amount: amount.to_string(),
            calldata: to_hex(data),
            encoding: to_hex(&a.encode()?),
            leaf: to_hex(&ob.leaves()[i]),
            proof_index: proof.index,
            proof: proof.siblings.iter().map(|s| to_hex(s)).collect(),
        });
    }
    let p1 = ob.proof(1).ok_or(Error::BadInclusionProof)?;
    let hexes = |p: &merkle::MerkleProof| p.siblings.iter().map(|s| to_hex(s)).collect::<Vec<_>>();
    let mut flipped = p1.clone();
    flipped.siblings[0][0] ^= 1;
    let bad = |name: &str, action_index, p: &merkle::MerkleProof| BadProof {
        name: name.into(),
        action_index,
        proof_index: p.index,
        proof: hexes(p),
        reason: "bad_inclusion_proof".into(),
    };
    let mut wrong_index = p1.clone();
    wrong_index.index = 0;
    let mut truncated = p1.clone();
    truncated.siblings.pop();
    let mut out_of_range = p1.clone();
    out_of_range.index += 1 << p1.siblings.len();
    Ok(ActionsFile {
        description: "leaf = sha256(0x00 || encoding), node = sha256(0x01 || l || r), odd node paired with 32 zero bytes, empty root = 32 zero bytes; ids = sha256(ACTION_ID_TAG || context || u64 height || u32 index)".into(),
        context_id: to_hex(&ctx.context_id),
        height: 2,
        actions,
        root: to_hex(&ob.root()),
        empty_root: to_hex(&merkle::root(&[])),
        invalid_proofs: vec![
            bad("flipped_sibling", 1, &flipped),
            bad("wrong_index", 1, &wrong_index),
            bad("truncated", 1, &truncated),
            bad("index_out_of_range", 1, &out_of_range),
            bad("other_actions_proof", 2, &p1),
        ],
    })
}

pub(super) fn hash_to_g2_file(ctx: &Ctx) -> Result<HashToG2File> {
    let pk0 = ctx.keys[0].public_key().to_compressed();
    let d1 = CheckpointPayload {
        domain: Domain::evm(VECTOR_CHAIN_ID, VECTOR_PROXY),
        context_id: ctx.context_id,
        epoch: 0,
        height: 1,
        state_root: [0u8; 32],
        actions_root: [0u8; 32],
        next_members_hash: members_hash_of(&ctx.keys, &GENESIS, 3),
    }
    .digest();
    let msgs: [&[u8]; 4] = [b"", b"abc", &d1, &pk0];
    let mut cases = Vec::new();
    for dst in [SIG_DST, POP_DST] {
        for m in msgs {
            cases.push(HashToG2Case {
                msg: to_hex(m),
                dst: String::from_utf8_lossy(dst).into_owned(),
                point_eip2537: point(m, dst)?,
            });
        }
    }
    Ok(HashToG2File {
        description: "RFC 9380 hash_to_curve BLS12381G2_XMD:SHA-256_SSWU_RO_ under the given DST, output in EIP-2537 encoding".into(),
        cases,
    })
}
