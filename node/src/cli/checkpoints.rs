//! `conclave checkpoint list` and `conclave actions list`: what the node's
//! checkpoint RPC returns, printed for people; action proofs are checked
//! here against the checkpoint's actions root.

use anyhow::Context as _;
use conclave_checkpoint::{verify_action, Account, Action, ActionKind, Domain, MerkleProof};
use conclave_consensus::ContextId;
use jsonrpsee::http_client::HttpClient;

use crate::checkpoint::view::{ActionProofView, ActionView, CheckpointView};
use crate::rpc::CheckpointApiClient;

pub fn print_list(list: &[CheckpointView]) {
    if list.is_empty() {
        println!("no checkpoints yet");
        return;
    }
    println!("height  signers  domains  verifies  state_root");
    for c in list {
        let signers = c.domains.first().map_or(0, |d| d.signers.len());
        println!(
            "{:<7} {:<8} {:<8} {:<9} {}",
            c.height,
            format!("{signers}/{}", c.member_count),
            c.domains.len(),
            if c.verifies { "yes" } else { "NO" },
            c.state_root
        );
    }
}

/// Rebuilds the action from its view, so the proof is checked on what the
/// node claims.
fn action_of(v: &ActionView) -> anyhow::Result<Action> {
    let domain = Domain::decode(&hex::decode(&v.domain.encoded)?)?;
    let account = |s: &str| -> anyhow::Result<Account> {
        Ok(match s.strip_prefix("0x") {
            Some(h) if v.domain.kind == "evm" => Account::Evm(
                hex::decode(h)?
                    .try_into()
                    .map_err(|_| anyhow::anyhow!("bad address"))?,
            ),
            _ => Account::Near(s.to_owned()),
        })
    };
    let amount: u128 = v.amount.parse().context("amount")?;
    let kind = match v.kind.as_str() {
        "native_transfer" => ActionKind::NativeTransfer {
            to: account(&v.to)?,
            amount,
        },
        "token_transfer" => ActionKind::TokenTransfer {
            token: account(v.token.as_deref().unwrap_or_default())?,
            to: account(&v.to)?,
            amount,
        },
        "contract_call" => ActionKind::ContractCall {
            to: account(&v.to)?,
            value: amount,
            calldata: hex::decode(v.calldata.as_deref().unwrap_or_default())?,
        },
        other => anyhow::bail!("unknown action kind {other}"),
    };
    let id: [u8; 32] = hex::decode(&v.id)?
        .try_into()
        .map_err(|_| anyhow::anyhow!("bad id"))?;
    Ok(Action { id, domain, kind })
}

/// Checks the proof against the checkpoint's actions root (or says why
/// it cannot).
pub fn check_proof(p: &ActionProofView) -> anyhow::Result<&'static str> {
    let Some(cp) = &p.checkpoint else {
        return Ok("no checkpoint yet");
    };
    let siblings = p
        .proof
        .iter()
        .map(|s| {
            hex::decode(s)?
                .try_into()
                .map_err(|_| anyhow::anyhow!("sibling is not 32 bytes"))
        })
        .collect::<anyhow::Result<Vec<[u8; 32]>>>()?;
    let proof = MerkleProof {
        index: p.proof_index,
        siblings,
    };
    let action = action_of(&p.action)?;
    verify_action(&cp.actions_root.0, &action, &proof)
        .map_err(|e| anyhow::anyhow!("proof of action {} does not verify: {e}", p.action.id))?;
    Ok(if cp.verifies {
        "verified against a verifying checkpoint"
    } else {
        "verified, but the checkpoint does NOT verify"
    })
}

pub async fn actions(
    c: &HttpClient,
    context: ContextId,
    from: Option<u64>,
    limit: Option<usize>,
) -> anyhow::Result<()> {
    let list = c.action_list(context, from, limit).await?;
    if list.is_empty() {
        println!("no actions yet");
    }
    for a in list {
        let p = c.action_proof(context, a.id.clone()).await?;
        let status = check_proof(&p)?;
        println!("action      {}", a.id);
        println!("  height    {} (index {}, tx {})", a.height, a.index, a.tx);
        println!(
            "  domain    {} chain {} {}",
            a.domain.kind,
            a.domain.chain_id,
            a.domain.evm_address.as_deref().unwrap_or(&a.domain.target)
        );
        println!("  kind      {} to {} amount {}", a.kind, a.to, a.amount);
        if let Some(t) = &a.token {
            println!("  token     {t}");
        }
        if let Some(d) = &a.calldata {
            println!("  calldata  0x{d}");
        }
        match &p.checkpoint {
            Some(cp) => println!(
                "  checkpoint {} (actions_root {})",
                cp.height, cp.actions_root
            ),
            None => println!("  checkpoint pending"),
        }
        println!("  leaf      {}", a.leaf_hash);
        println!(
            "  proof     index {} [{}]",
            p.proof_index,
            p.proof.join(", ")
        );
        println!("  status    {status}");
    }
    Ok(())
}
