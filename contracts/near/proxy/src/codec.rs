//! The byte formats of `docs/checkpoint.md`, rebuilt on NEAR: the target
//! domain, the 217-byte checkpoint payload, the members hash, the NEAR
//! action leaf and the Merkle inclusion proof. Hashing goes through the
//! host's SHA-256 (`env::sha256_array`).

use near_sdk::env;

/// Encoded length of a target domain: kind, chain id, target.
pub const DOMAIN_LEN: usize = 41;
/// Encoded length of a checkpoint payload.
pub const PAYLOAD_LEN: usize = 217;
/// Chain kind byte of NEAR domains.
pub const NEAR_KIND: u8 = 2;
/// Deepest inclusion proof accepted.
pub const MAX_PROOF_DEPTH: usize = 32;

const PAYLOAD_TAG: &[u8; 32] = b"CONCLAVE-CHECKPOINT-V1\0\0\0\0\0\0\0\0\0\0";
const MEMBERS_TAG: &[u8; 32] = b"CONCLAVE-MEMBERS-V1\0\0\0\0\0\0\0\0\0\0\0\0\0";

/// `2 || u64 0 || sha256(u8 len(network) || network || u8 len(account) || account)`.
/// Lengths are checked by the caller (network 1..=64, account 2..=64 bytes).
pub fn near_domain(network: &str, account: &str) -> [u8; DOMAIN_LEN] {
    let mut pre = Vec::with_capacity(2 + network.len() + account.len());
    pre.push(network.len() as u8);
    pre.extend_from_slice(network.as_bytes());
    pre.push(account.len() as u8);
    pre.extend_from_slice(account.as_bytes());
    let mut out = [0u8; DOMAIN_LEN];
    out[0] = NEAR_KIND;
    out[9..].copy_from_slice(&env::sha256_array(pre));
    out
}

/// The fields of a checkpoint that the submitter provides; the domain and
/// the context id come from the contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadFields {
    pub epoch: u64,
    pub height: u64,
    pub state_root: [u8; 32],
    pub actions_root: [u8; 32],
    pub next_members_hash: [u8; 32],
}

/// The 217-byte payload members sign (through its SHA-256 digest).
pub fn payload(
    domain: &[u8; DOMAIN_LEN],
    context_id: &[u8; 32],
    f: &PayloadFields,
) -> [u8; PAYLOAD_LEN] {
    let mut out = [0u8; PAYLOAD_LEN];
    out[..32].copy_from_slice(PAYLOAD_TAG);
    out[32..73].copy_from_slice(domain);
    out[73..105].copy_from_slice(context_id);
    out[105..113].copy_from_slice(&f.epoch.to_be_bytes());
    out[113..121].copy_from_slice(&f.height.to_be_bytes());
    out[121..153].copy_from_slice(&f.state_root);
    out[153..185].copy_from_slice(&f.actions_root);
    out[185..217].copy_from_slice(&f.next_members_hash);
    out
}

/// `sha256(MEMBERS_TAG || u32 n || u32 quorum || eip2537(pk_0) || ...)`,
/// from the keys' uncompressed (96-byte `x || y`) encoding: EIP-2537 pads
/// each 48-byte coordinate with 16 zero bytes.
pub fn members_hash(keys: &[[u8; 96]], quorum: u32) -> [u8; 32] {
    let mut pre = Vec::with_capacity(40 + 128 * keys.len());
    pre.extend_from_slice(MEMBERS_TAG);
    pre.extend_from_slice(&(keys.len() as u32).to_be_bytes());
    pre.extend_from_slice(&quorum.to_be_bytes());
    for pk in keys {
        pre.extend_from_slice(&[0u8; 16]);
        pre.extend_from_slice(&pk[..48]);
        pre.extend_from_slice(&[0u8; 16]);
        pre.extend_from_slice(&pk[48..]);
    }
    env::sha256_array(pre)
}

/// The NEAR leaf encoding: `domain || id || kind || u32 len(token) || token
/// || u32 len(to) || to || u128 amount || u32 len(data) || data`.
pub fn near_leaf_encoding(
    domain: &[u8; DOMAIN_LEN],
    id: &[u8; 32],
    kind: u8,
    token: &str,
    to: &str,
    amount: u128,
    data: &[u8],
) -> Vec<u8> {
    let mut out =
        Vec::with_capacity(DOMAIN_LEN + 32 + 1 + 12 + 16 + token.len() + to.len() + data.len());
    out.extend_from_slice(domain);
    out.extend_from_slice(id);
    out.push(kind);
    for field in [token.as_bytes(), to.as_bytes()] {
        out.extend_from_slice(&(field.len() as u32).to_be_bytes());
        out.extend_from_slice(field);
    }
    out.extend_from_slice(&amount.to_be_bytes());
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// `sha256(0x00 || encoding)`.
pub fn leaf_hash(encoding: &[u8]) -> [u8; 32] {
    let mut pre = Vec::with_capacity(1 + encoding.len());
    pre.push(0x00);
    pre.extend_from_slice(encoding);
    env::sha256_array(pre)
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut pre = [0u8; 65];
    pre[0] = 0x01;
    pre[1..33].copy_from_slice(left);
    pre[33..].copy_from_slice(right);
    env::sha256_array(pre)
}

/// Whether `leaf` sits at `index` under `root`: siblings from the leaf level
/// up, bit `k` of `index` set when the level-`k` node is a right child. The
/// index must be below `2^len(siblings)`, the depth at most 32, and the
/// empty root (all zeros) proves nothing.
pub fn verify_inclusion(
    root: &[u8; 32],
    leaf: &[u8; 32],
    siblings: &[[u8; 32]],
    index: u64,
) -> bool {
    let depth = siblings.len();
    if depth > MAX_PROOF_DEPTH || index >> depth != 0 || *root == [0u8; 32] {
        return false;
    }
    let mut acc = *leaf;
    for (k, sibling) in siblings.iter().enumerate() {
        acc = if (index >> k) & 1 == 1 {
            node_hash(sibling, &acc)
        } else {
            node_hash(&acc, sibling)
        };
    }
    acc == *root
}

/// Splits a call's `data` into `u32 len(method) || method || args`.
pub fn split_call_data(data: &[u8]) -> Option<(&str, &[u8])> {
    let len = u32::from_be_bytes(data.get(..4)?.try_into().ok()?) as usize;
    let method = data.get(4..4usize.checked_add(len)?)?;
    let args = &data[4 + len..];
    Some((core::str::from_utf8(method).ok()?, args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_data_splits_method_and_args() {
        let mut data = 4u32.to_be_bytes().to_vec();
        data.extend_from_slice(b"vote{\"a\":1}");
        assert_eq!(split_call_data(&data), Some(("vote", &b"{\"a\":1}"[..])));
        assert_eq!(split_call_data(&[0, 0, 0, 0]), Some(("", &[][..])));
        assert_eq!(split_call_data(&[0, 0, 0]), None);
        assert_eq!(split_call_data(&[0, 0, 0, 5, b'a']), None);
        assert_eq!(split_call_data(&[0, 0, 0, 1, 0xff]), None);
        assert_eq!(split_call_data(&[0xff, 0xff, 0xff, 0xff]), None);
    }

    #[test]
    fn inclusion_limits() {
        let leaf = leaf_hash(b"x");
        // One leaf: the root is the leaf, the proof is empty.
        assert!(verify_inclusion(&leaf, &leaf, &[], 0));
        assert!(!verify_inclusion(&leaf, &leaf, &[], 1));
        // The empty root proves nothing.
        assert!(!verify_inclusion(&[0u8; 32], &[0u8; 32], &[], 0));
        // A node does not pass for a leaf (domain-separated prefixes).
        let other = leaf_hash(b"y");
        let root = node_hash(&leaf, &other);
        assert!(verify_inclusion(&root, &other, &[leaf], 1));
        let node_preimage = [&[0x01u8][..], &leaf, &other].concat();
        assert!(!verify_inclusion(&root, &leaf_hash(&node_preimage), &[], 0));
        // At most 32 levels.
        let mut acc = leaf;
        for _ in 0..33 {
            acc = node_hash(&acc, &[0u8; 32]);
        }
        assert!(!verify_inclusion(&acc, &leaf, &[[0u8; 32]; 33], 0));
    }
}
