//! Builds every vector file from fixed seeds.

use sha2::{Digest, Sha256};

use super::to_hex;
use super::types::*;
use crate::actions::{action_id, Account, Action, ActionKind, Outbox};
use crate::bitmap::SignerBitmap;
use crate::bls::{
    hash_to_g2, ProofOfPossession, PublicKey, SecretKey, Signature, POP_DST, SIG_DST,
};
use crate::certificate::sign_checkpoint;
use crate::domain::Domain;
use crate::error::Result;
use crate::members::{members_hash, MemberSet, Registration, MEMBERS_TAG};
use crate::payload::CheckpointPayload;

/// Chain id of the vectors' EVM domain (anvil's default).
pub const VECTOR_CHAIN_ID: u64 = 31337;
/// Proxy address of the vectors' EVM domain: the first contract anvil's
/// first dev account deploys (nonce 0).
pub const VECTOR_PROXY: [u8; 20] = hex20(b"5fbdb2315678afecb367f032d93f642f64180aa3");
/// ERC-20 of the vectors: the same account's second deployment (nonce 1).
pub const VECTOR_TOKEN: [u8; 20] = hex20(b"e7f1725e7734ce288f8367e1bb143e90bb3f0512");
/// Number of keys in `keys.json`.
const KEYS: u32 = 8;
pub(super) const NEAR_NET: &str = "testnet";
pub(super) const NEAR_ACCOUNT: &str = "conclave-proxy.testnet";

const fn hex20(s: &[u8; 40]) -> [u8; 20] {
    const fn nib(c: u8) -> u8 {
        match c {
            b'0'..=b'9' => c - b'0',
            _ => c - b'a' + 10,
        }
    }
    let mut out = [0u8; 20];
    let mut i = 0;
    while i < 20 {
        out[i] = nib(s[2 * i]) << 4 | nib(s[2 * i + 1]);
        i += 1;
    }
    out
}

fn sha(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

fn ikm(i: u32) -> [u8; 32] {
    sha(&[b"conclave-test-vector-key", &i.to_be_bytes()])
}

/// Secret key `i` of the vectors: KeyGen over `sha256("conclave-test-vector-key" || u32 BE i)`.
pub fn vector_key(i: u32) -> Result<SecretKey> {
    SecretKey::from_seed(&ikm(i))
}

/// All vector keys.
pub fn vector_keys() -> Result<Vec<SecretKey>> {
    (0..KEYS).map(vector_key).collect()
}

fn registration(sk: &SecretKey) -> Registration {
    Registration {
        public_key: sk.public_key(),
        pop: sk.prove_possession(),
    }
}

pub(super) struct Ctx {
    pub(super) keys: Vec<SecretKey>,
    pub(super) genesis: MemberSet,
    pub(super) rotated: MemberSet,
    pub(super) context_id: [u8; 32],
    pub(super) outbox: Outbox,
}

pub(super) const GENESIS: [u32; 4] = [0, 1, 2, 3];
pub(super) const ROTATED: [u32; 5] = [2, 3, 4, 5, 6];

impl Ctx {
    pub(super) fn new() -> Result<Self> {
        let keys = vector_keys()?;
        let set = |idx: &[u32]| {
            let regs: Vec<_> = idx
                .iter()
                .map(|i| registration(&keys[*i as usize]))
                .collect();
            MemberSet::new(&regs, 0)
        };
        let context_id = sha(&[b"conclave-vector-context"]);
        Ok(Ctx {
            genesis: set(&GENESIS)?,
            rotated: set(&ROTATED)?,
            outbox: Outbox::new(actions(&context_id)?)?,
            context_id,
            keys,
        })
    }
}

pub(super) fn keys_file(ctx: &Ctx) -> KeysFile {
    let keys = ctx
        .keys
        .iter()
        .enumerate()
        .map(|(i, sk)| {
            let pk = sk.public_key();
            let pop = sk.prove_possession();
            KeyVector {
                index: i as u32,
                ikm: to_hex(&ikm(i as u32)),
                secret_key: to_hex(&sk.to_bytes()),
                pk_compressed: to_hex(&pk.to_compressed()),
                pk_uncompressed: to_hex(&pk.to_uncompressed()),
                pk_eip2537: to_hex(&pk.to_eip2537()),
                pop_compressed: to_hex(&pop.as_signature().to_compressed()),
                pop_uncompressed: to_hex(&pop.as_signature().to_uncompressed()),
                pop_eip2537: to_hex(&pop.as_signature().to_eip2537()),
            }
        })
        .collect();
    KeysFile {
        description: "BLS12-381 min-pk keys: KeyGen(ikm, key_info = empty); PoP = sign(pk_compressed) under pop_dst".into(),
        sig_dst: String::from_utf8_lossy(SIG_DST).into_owned(),
        pop_dst: String::from_utf8_lossy(POP_DST).into_owned(),
        keys,
    }
}

fn set_vector(name: &str, idx: &[u32], set: &MemberSet) -> MemberSetVector {
    let mut pre = MEMBERS_TAG.to_vec();
    pre.extend_from_slice(&(set.len() as u32).to_be_bytes());
    pre.extend_from_slice(&set.quorum().to_be_bytes());
    pre.extend_from_slice(&set.eip2537_keys());
    MemberSetVector {
        name: name.into(),
        key_indices: idx.to_vec(),
        quorum: set.quorum(),
        preimage: to_hex(&pre),
        members_hash: to_hex(&set.hash()),
    }
}

pub(super) fn members_file(ctx: &Ctx) -> Result<MembersFile> {
    let k = &ctx.keys;
    let pk = |i: usize| k[i].public_key();
    let pop = |i: usize| k[i].prove_possession();
    let eip_pks = |pks: &[PublicKey]| pks.iter().map(|p| to_hex(&p.to_eip2537())).collect();
    let eip_pops = |pops: &[ProofOfPossession]| {
        pops.iter()
            .map(|p| to_hex(&p.as_signature().to_eip2537()))
            .collect()
    };

    let attacker = &k[7];
    let rogue = PublicKey::rogue(&attacker.public_key(), &[pk(0), pk(1)])?;
    let rogue_pks = [pk(0), pk(1), rogue];
    let forged_msg = b"pay everything to the attacker";
    let wrong_dst_pop = ProofOfPossession::from_signature(k[0].sign(&pk(0).to_compressed()));

    Ok(MembersFile {
        description: format!(
            "members hash = sha256(MEMBERS_TAG || u32 n || u32 quorum || pk_eip2537...), MEMBERS_TAG = {}",
            to_hex(&MEMBERS_TAG)
        ),
        sets: vec![
            set_vector("genesis", &GENESIS, &ctx.genesis),
            set_vector("rotated", &ROTATED, &ctx.rotated),
        ],
        bad_registrations: vec![
            BadRegistration {
                name: "rogue_key".into(),
                description: "third key is attacker_pk - pk0 - pk1, offered with the attacker's own PoP".into(),
                pks_eip2537: eip_pks(&rogue_pks),
                pops_eip2537: eip_pops(&[pop(0), pop(1), attacker.prove_possession()]),
                quorum: 3,
                reason: "bad_pop".into(),
                bad_index: 2,
                forgery: Some(Forgery {
                    message: to_hex(forged_msg),
                    signature_eip2537: to_hex(&attacker.sign(forged_msg).to_eip2537()),
                }),
            },
            BadRegistration {
                name: "swapped_pops".into(),
                description: "PoPs of members 1 and 2 swapped".into(),
                pks_eip2537: eip_pks(&[pk(0), pk(1), pk(2)]),
                pops_eip2537: eip_pops(&[pop(0), pop(2), pop(1)]),
                quorum: 0,
                reason: "bad_pop".into(),
                bad_index: 1,
                forgery: None,
            },
            BadRegistration {
                name: "pop_under_signature_dst".into(),
                description: "member 0's PoP signed under the signature DST instead of the PoP DST".into(),
                pks_eip2537: eip_pks(&[pk(0), pk(1)]),
                pops_eip2537: eip_pops(&[wrong_dst_pop, pop(1)]),
                quorum: 0,
                reason: "bad_pop".into(),
                bad_index: 0,
                forgery: None,
            },
        ],
    })
}

fn actions(context_id: &[u8; 32]) -> Result<Vec<Action>> {
    let evm = Domain::evm(VECTOR_CHAIN_ID, VECTOR_PROXY);
    let near = Domain::near(NEAR_NET, NEAR_ACCOUNT)?;
    let id = |i: u32| action_id(context_id, 2, i);
    let alice = Account::Evm([0x11; 20]);
    Ok(vec![
        Action {
            id: id(0),
            domain: evm,
            kind: ActionKind::NativeTransfer {
                to: alice.clone(),
                amount: 1_000_000_000_000_000_000,
            },
        },
        Action {
            id: id(1),
            domain: evm,
            kind: ActionKind::TokenTransfer {
                token: Account::Evm(VECTOR_TOKEN),
                to: alice,
                amount: 250,
            },
        },
        Action {
            id: id(2),
            domain: evm,
            kind: ActionKind::ContractCall {
                to: Account::Evm(VECTOR_TOKEN),
                value: 0,
                // transfer(address,uint256) selector, then arguments.
                calldata: [
                    &[0xa9, 0x05, 0x9c, 0xbb][..],
                    &[0u8; 12],
                    &[0x22; 20],
                    &[0u8; 31],
                    &[7],
                ]
                .concat(),
            },
        },
        Action {
            id: id(3),
            domain: near,
            kind: ActionKind::NativeTransfer {
                to: Account::Near("alice.testnet".into()),
                amount: 5,
            },
        },
        Action {
            id: id(4),
            domain: evm,
            kind: ActionKind::NativeTransfer {
                to: Account::Evm([0x33; 20]),
                amount: 42,
            },
        },
    ])
}

pub(super) fn sign_by(
    ctx: &Ctx,
    payload: &CheckpointPayload,
    key_indices: &[u32],
) -> Result<Signature> {
    let sigs: Vec<Signature> = key_indices
        .iter()
        .map(|i| sign_checkpoint(&ctx.keys[*i as usize], payload))
        .collect();
    Signature::aggregate(&sigs)
}

pub(super) fn members_hash_of(keys: &[SecretKey], idx: &[u32], quorum: u32) -> [u8; 32] {
    let pks: Vec<PublicKey> = idx.iter().map(|i| keys[*i as usize].public_key()).collect();
    members_hash(&pks, quorum)
}

pub(super) fn bitmap(idx: &[u32]) -> Result<SignerBitmap> {
    SignerBitmap::from_indices(idx.iter().map(|i| *i as usize))
}

pub(super) fn point(msg: &[u8], dst: &[u8]) -> Result<String> {
    Ok(to_hex(&hash_to_g2(msg, dst)?.to_eip2537()))
}
