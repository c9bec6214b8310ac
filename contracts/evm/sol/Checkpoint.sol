// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title The byte formats of `conclave-checkpoint`, rebuilt on the EVM.
/// @notice See docs/checkpoint.md: the 217-byte payload, the members hash,
/// the EVM action leaf and the SHA-256 Merkle tree of the outbox.
library Checkpoint {
    bytes32 internal constant PAYLOAD_TAG = "CONCLAVE-CHECKPOINT-V1";
    bytes32 internal constant MEMBERS_TAG = "CONCLAVE-MEMBERS-V1";
    uint8 internal constant CHAIN_KIND_EVM = 1;
    uint256 internal constant MAX_PROOF_DEPTH = 32;

    uint8 internal constant KIND_NATIVE = 1;
    uint8 internal constant KIND_TOKEN = 2;
    uint8 internal constant KIND_CALL = 3;

    /// An outbox action for this chain (the EVM leaf's fields).
    struct Action {
        bytes32 id;
        uint8 kind;
        address token;
        address to;
        uint256 amount;
        bytes data;
    }

    /// The checkpoint payload for `proxy` on `chainId`.
    function payload(
        uint64 chainId,
        address proxy,
        bytes32 contextId,
        uint64 epoch,
        uint64 height,
        bytes32 stateRoot,
        bytes32 actionsRoot,
        bytes32 nextMembersHash
    ) internal pure returns (bytes memory) {
        return abi.encodePacked(
            PAYLOAD_TAG,
            CHAIN_KIND_EVM,
            chainId,
            bytes32(uint256(uint160(proxy))),
            contextId,
            epoch,
            height,
            stateRoot,
            actionsRoot,
            nextMembersHash
        );
    }

    /// sha256(MEMBERS_TAG || u32 n || u32 quorum || pks), pks being the
    /// members' 128-byte EIP-2537 keys in order.
    function membersHash(bytes memory pks, uint32 quorum) internal pure returns (bytes32) {
        return sha256(abi.encodePacked(MEMBERS_TAG, uint32(pks.length / 128), quorum, pks));
    }

    /// sha256(0x00 || abi.encode(chain kind, chain id, proxy, action...)).
    function actionLeaf(uint64 chainId, address proxy, Action calldata a) internal pure returns (bytes32) {
        bytes memory enc = abi.encode(
            CHAIN_KIND_EVM,
            chainId,
            bytes32(uint256(uint160(proxy))),
            a.id,
            a.kind,
            a.token,
            a.to,
            a.amount,
            a.data
        );
        return sha256(abi.encodePacked(bytes1(0x00), enc));
    }

    /// Whether `leaf` sits at `index` under `root`: node = sha256(0x01 || l || r),
    /// bit k of index (LSB first) set when the level-k node is a right child.
    function verifyProof(bytes32 root, bytes32 leaf, bytes32[] calldata proof, uint256 index)
        internal
        pure
        returns (bool)
    {
        uint256 depth = proof.length;
        if (depth > MAX_PROOF_DEPTH || index >> depth != 0 || root == bytes32(0)) return false;
        bytes32 acc = leaf;
        for (uint256 k = 0; k < depth; ++k) {
            acc = (index >> k) & 1 == 1
                ? sha256(abi.encodePacked(bytes1(0x01), proof[k], acc))
                : sha256(abi.encodePacked(bytes1(0x01), acc, proof[k]));
        }
        return acc == root;
    }
}
