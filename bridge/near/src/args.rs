//! The JSON arguments of the NEAR proxy's methods (`contracts/near`,
//! `proxy/src/types.rs`): byte strings as `0x` hex, keys and signatures
//! compressed, amounts as decimal strings (`U128`).

use conclave_checkpoint::{
    Account, Action, ActionKind, CheckpointPayload, MerkleProof, Registration, Signature,
};
use serde_json::{json, Value};

use crate::{Error, Result};

/// Action kinds of the proxy's leaf encoding.
const KIND_NATIVE: u8 = 1;
const KIND_TOKEN: u8 = 2;
const KIND_CALL: u8 = 3;

/// `0x`-prefixed lowercase hex, as the proxy prints bytes.
pub fn to_hex(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Members' keys (48-byte compressed G1) with their proofs of possession
/// (96-byte compressed G2) when `with_pops`; without, the proxy expects
/// them registered (`register_keys`).
pub fn member_keys(keys: &[Registration], with_pops: bool) -> Vec<Value> {
    keys.iter()
        .map(|r| {
            let public_key = to_hex(&r.public_key.to_compressed());
            if with_pops {
                json!({
                    "public_key": public_key,
                    "pop": to_hex(&r.pop.as_signature().to_compressed()),
                })
            } else {
                json!({ "public_key": public_key })
            }
        })
        .collect()
}

/// `new(context_id, network, members, quorum, initial_epoch)` with the
/// default quorum.
pub fn init(
    context: &[u8; 32],
    network: &str,
    keys: &[Registration],
    epoch: u64,
    with_pops: bool,
) -> Value {
    json!({
        "context_id": to_hex(context),
        "network": network,
        "members": member_keys(keys, with_pops),
        "quorum": null,
        "initial_epoch": epoch,
    })
}

/// `register_keys(keys)`.
pub fn register_keys(keys: &[Registration]) -> Value {
    json!({ "keys": member_keys(keys, true) })
}

/// `submit_checkpoint(epoch, height, roots, next_members_hash, signers,
/// signature)`.
pub fn submit_checkpoint(
    payload: &CheckpointPayload,
    signers: &[u8; 32],
    signature: &Signature,
) -> Value {
    json!({
        "epoch": payload.epoch,
        "height": payload.height,
        "state_root": to_hex(&payload.state_root),
        "actions_root": to_hex(&payload.actions_root),
        "next_members_hash": to_hex(&payload.next_members_hash),
        "signers": to_hex(signers),
        "signature": to_hex(&signature.to_compressed()),
    })
}

/// `execute_action(checkpoint_height, action, proof)`; an action naming an
/// EVM account cannot run on a NEAR proxy.
pub fn execute_action(height: u64, action: &Action, proof: &MerkleProof) -> Result<Value> {
    let near = |acc: &Account| match acc {
        Account::Near(id) => Ok(id.clone()),
        Account::Evm(addr) => Err(Error::Malformed(format!(
            "action {} names EVM account 0x{} on a NEAR proxy",
            hex::encode(action.id),
            hex::encode(addr)
        ))),
    };
    let (kind, token, to, amount, data) = match &action.kind {
        ActionKind::NativeTransfer { to, amount } => {
            (KIND_NATIVE, String::new(), near(to)?, *amount, &[][..])
        }
        ActionKind::TokenTransfer { token, to, amount } => {
            (KIND_TOKEN, near(token)?, near(to)?, *amount, &[][..])
        }
        ActionKind::ContractCall {
            to,
            value,
            calldata,
        } => (KIND_CALL, String::new(), near(to)?, *value, &calldata[..]),
    };
    Ok(json!({
        "checkpoint_height": height,
        "action": {
            "id": to_hex(&action.id),
            "kind": kind,
            "token": token,
            "to": to,
            "amount": amount.to_string(),
            "data": to_hex(data),
        },
        "proof": {
            "index": proof.index,
            "siblings": proof.siblings.iter().map(|s| to_hex(s)).collect::<Vec<_>>(),
        },
    }))
}

/// `rotate_members(checkpoint_height, members, quorum)` with the default
/// quorum.
pub fn rotate_members(height: u64, keys: &[Registration], with_pops: bool) -> Value {
    json!({
        "checkpoint_height": height,
        "members": member_keys(keys, with_pops),
        "quorum": null,
    })
}

/// Decodes `0x` hex of exactly 32 bytes, as the proxy's views print them.
pub fn hex32(s: &str) -> Result<[u8; 32]> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s.strip_prefix("0x").unwrap_or(s), &mut out)
        .map_err(|e| Error::Malformed(format!("{s:?} is not 32 bytes of hex: {e}")))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use conclave_checkpoint::{Domain, SecretKey};

    use super::*;

    fn registration(seed: u8) -> Registration {
        let sk = SecretKey::from_seed(&[seed; 32]).unwrap();
        Registration {
            public_key: sk.public_key(),
            pop: sk.prove_possession(),
        }
    }

    #[test]
    fn keys_are_compressed_hex_with_or_without_pops() {
        let keys = [registration(1), registration(2)];
        let with = member_keys(&keys, true);
        let key = with[0]["public_key"].as_str().unwrap();
        assert_eq!(key.len(), 2 + 96);
        assert_eq!(with[1]["pop"].as_str().unwrap().len(), 2 + 192);
        let without = member_keys(&keys, false);
        assert!(without[0].get("pop").is_none());
        assert_eq!(without[0]["public_key"], with[0]["public_key"]);
    }

    #[test]
    fn an_evm_account_is_refused_and_amounts_are_decimal_strings() {
        let domain = Domain::near("testnet", "proxy.testnet").unwrap();
        let mut action = Action {
            id: [5; 32],
            domain,
            kind: ActionKind::NativeTransfer {
                to: Account::Near("alice.testnet".into()),
                amount: u128::MAX,
            },
        };
        let proof = MerkleProof {
            index: 3,
            siblings: vec![[1; 32], [2; 32]],
        };
        let v = execute_action(9, &action, &proof).unwrap();
        assert_eq!(v["action"]["amount"], u128::MAX.to_string());
        assert_eq!(v["action"]["kind"], 1);
        assert_eq!(v["proof"]["siblings"][1], to_hex(&[2; 32]));
        action.kind = ActionKind::NativeTransfer {
            to: Account::Evm([1; 20]),
            amount: 1,
        };
        assert!(execute_action(9, &action, &proof).is_err());
    }

    #[test]
    fn hex32_takes_the_proxys_format_only() {
        assert_eq!(hex32(&to_hex(&[7; 32])).unwrap(), [7; 32]);
        assert!(hex32("0x00").is_err());
        assert!(hex32("zz").is_err());
    }
}
