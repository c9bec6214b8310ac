use std::path::PathBuf;

use anyhow::{anyhow, ensure, Context};
use conclave_checkpoint::vectors::{self, *};
use conclave_checkpoint::{
    hash_to_g2, merkle, verify_action, Certificate, CheckpointPayload, MemberSet,
    ProofOfPossession, PublicKey, Registration, SecretKey, Signature, SignerBitmap, Verifier,
};

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contracts/vectors")
}

fn load<T: serde::de::DeserializeOwned>(name: &str) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(dir().join(name)).with_context(|| format!("read {name}"))?;
    Ok(serde_json::from_str(&text)?)
}

fn keys() -> anyhow::Result<(Vec<SecretKey>, KeysFile)> {
    let file: KeysFile = load("keys.json")?;
    let mut sks = Vec::new();
    for k in &file.keys {
        let sk = SecretKey::from_seed(&from_hex_n(&k.ikm)?)?;
        ensure!(
            vectors::to_hex(&sk.to_bytes()) == k.secret_key,
            "key {} scalar",
            k.index
        );
        let pk = sk.public_key();
        ensure!(PublicKey::from_compressed(&from_hex(&k.pk_compressed)?)? == pk);
        ensure!(PublicKey::from_uncompressed(&from_hex(&k.pk_uncompressed)?)? == pk);
        ensure!(PublicKey::from_eip2537(&from_hex(&k.pk_eip2537)?)? == pk);
        let pop = ProofOfPossession::from_eip2537(&from_hex(&k.pop_eip2537)?)?;
        ensure!(pop == ProofOfPossession::from_compressed(&from_hex(&k.pop_compressed)?)?);
        ensure!(
            Signature::from_uncompressed(&from_hex(&k.pop_uncompressed)?)? == *pop.as_signature()
        );
        ensure!(pk.verify_pop(&pop), "key {} PoP", k.index);
        sks.push(sk);
    }
    Ok((sks, file))
}

fn member_set(file: &MembersFile, sks: &[SecretKey], name: &str) -> anyhow::Result<MemberSet> {
    let v = file
        .sets
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| anyhow!("no set {name}"))?;
    let regs: Vec<Registration> = v
        .key_indices
        .iter()
        .map(|i| Registration {
            public_key: sks[*i as usize].public_key(),
            pop: sks[*i as usize].prove_possession(),
        })
        .collect();
    let set = MemberSet::new(&regs, v.quorum)?;
    ensure!(
        vectors::to_hex(&set.hash()) == v.members_hash,
        "{name} hash"
    );
    let pre = from_hex(&v.preimage)?;
    let digest: [u8; 32] = sha2_digest(&pre);
    ensure!(digest == set.hash(), "{name} preimage");
    Ok(set)
}

fn sha2_digest(data: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(data).into()
}

#[test]
fn keys_and_member_sets() -> anyhow::Result<()> {
    let (sks, _) = keys()?;
    let members: MembersFile = load("members.json")?;
    member_set(&members, &sks, "genesis")?;
    member_set(&members, &sks, "rotated")?;
    for bad in &members.bad_registrations {
        let regs: Vec<Registration> = bad
            .pks_eip2537
            .iter()
            .zip(&bad.pops_eip2537)
            .map(|(pk, pop)| {
                Ok(Registration {
                    public_key: PublicKey::from_eip2537(&from_hex(pk)?)?,
                    pop: ProofOfPossession::from_eip2537(&from_hex(pop)?)?,
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let err = MemberSet::new(&regs, bad.quorum)
            .err()
            .ok_or_else(|| anyhow!("{} accepted", bad.name))?;
        ensure!(err.reason() == bad.reason, "{}: {err}", bad.name);
        ensure!(
            err == conclave_checkpoint::Error::BadPop {
                index: bad.bad_index as usize
            }
        );
        if let Some(f) = &bad.forgery {
            // Without the PoP check the lone attacker signature would pass.
            let sig = Signature::from_eip2537(&from_hex(&f.signature_eip2537)?)?;
            let pks: Vec<&PublicKey> = regs.iter().map(|r| &r.public_key).collect();
            ensure!(
                sig.fast_aggregate_verify(&from_hex(&f.message)?, &pks),
                "forgery demo"
            );
        }
    }
    Ok(())
}

#[test]
fn checkpoints_verify_or_fail_for_their_reason() -> anyhow::Result<()> {
    let (sks, _) = keys()?;
    let members: MembersFile = load("members.json")?;
    let file: CheckpointsFile = load("checkpoints.json")?;
    ensure!(file.valid.len() >= 5 && file.invalid.len() >= 8);
    let all = file
        .valid
        .iter()
        .map(|c| (c, None))
        .chain(file.invalid.iter().map(|c| (c, c.reason.as_deref())));
    for (case, reason) in all {
        let payload = case.payload.to_payload()?;
        ensure!(
            vectors::to_hex(&payload.encode()) == case.payload_bytes,
            "{} bytes",
            case.name
        );
        ensure!(CheckpointPayload::decode(&from_hex(&case.payload_bytes)?)? == payload);
        ensure!(
            vectors::to_hex(&payload.digest()) == case.digest,
            "{} digest",
            case.name
        );
        let point = hash_to_g2(&payload.digest(), conclave_checkpoint::SIG_DST)?;
        ensure!(vectors::to_hex(&point.to_eip2537()) == case.message_point_eip2537);
        let signature = Signature::from_eip2537(&from_hex(&case.signature_eip2537)?)?;
        ensure!(signature == Signature::from_compressed(&from_hex(&case.signature_compressed)?)?);
        let signers = SignerBitmap::from_bytes(from_hex_n(&case.signers_bitmap)?);
        ensure!(signers.indices().map(|i| i as u32).collect::<Vec<_>>() == case.signer_indices);
        let set = member_set(&members, &sks, &case.member_set)?;
        let verifier = Verifier {
            domain: case.verifier_domain.to_domain()?,
            epoch: case.verifier_epoch,
            members: &set,
        };
        let got = verifier.verify(&payload, &Certificate { signers, signature });
        match (reason, got) {
            (None, Ok(())) => {}
            (Some(want), Err(e)) if e.reason() == want => {}
            (want, got) => return Err(anyhow!("{}: want {want:?}, got {got:?}", case.name)),
        }
    }
    Ok(())
}

#[test]
fn actions_and_proofs() -> anyhow::Result<()> {
    let file: ActionsFile = load("actions.json")?;
    let root: [u8; 32] = from_hex_n(&file.root)?;
    ensure!(from_hex_n::<32>(&file.empty_root)? == merkle::root(&[]));
    let mut leaves = Vec::new();
    for (i, v) in file.actions.iter().enumerate() {
        let a = v.to_action()?;
        ensure!(
            a.id == conclave_checkpoint::action_id(
                &from_hex_n(&file.context_id)?,
                file.height,
                i as u32
            )
        );
        ensure!(
            vectors::to_hex(&a.encode()?) == v.encoding,
            "action {i} encoding"
        );
        ensure!(
            vectors::to_hex(&a.leaf_hash()?) == v.leaf,
            "action {i} leaf"
        );
        verify_action(&root, &a, &v.to_proof()?)?;
        leaves.push(a.leaf_hash()?);
    }
    ensure!(merkle::root(&leaves) == root);
    ensure!(file.invalid_proofs.len() >= 4);
    for bad in &file.invalid_proofs {
        let a = file.actions[bad.action_index as usize].to_action()?;
        let err = verify_action(&root, &a, &bad.to_proof()?)
            .err()
            .ok_or_else(|| anyhow!("{} accepted", bad.name))?;
        ensure!(err.reason() == bad.reason, "{}", bad.name);
    }
    Ok(())
}

#[test]
fn hash_to_g2_cases() -> anyhow::Result<()> {
    let file: HashToG2File = load("hash_to_g2.json")?;
    ensure!(file.cases.len() == 8);
    for c in &file.cases {
        let p = hash_to_g2(&from_hex(&c.msg)?, c.dst.as_bytes())?;
        ensure!(
            vectors::to_hex(&p.to_eip2537()) == c.point_eip2537,
            "{} / {}",
            c.msg,
            c.dst
        );
    }
    Ok(())
}

#[test]
fn regenerating_is_byte_identical() -> anyhow::Result<()> {
    let files = vectors::generate()?;
    ensure!(files.len() == 5);
    for (name, json) in files {
        let committed = std::fs::read_to_string(dir().join(name))?;
        ensure!(
            committed == json,
            "{name} differs from the generator: run gen_vectors and review the diff"
        );
    }
    Ok(())
}
