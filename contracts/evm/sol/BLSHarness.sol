// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {BLS} from "./BLS.sol";
import {Checkpoint} from "./Checkpoint.sol";

/// @title Exposes the BLS and Checkpoint libraries so tests can compare
/// them with the shared JSON vectors.
contract BLSHarness {
    function expandMessageXmd(bytes calldata message, bytes calldata dst) external view returns (bytes memory) {
        return BLS.expandMessageXmd(message, dst);
    }

    function hashToG2(bytes calldata message, bytes calldata dst) external view returns (bytes memory) {
        return BLS.hashToG2(message, dst);
    }

    function compressG1(bytes calldata pk) external pure returns (bytes memory) {
        return BLS.compressG1(pk);
    }

    function verifyPop(bytes calldata pk, bytes calldata pop) external view returns (bool) {
        return BLS.verifyPop(pk, pop);
    }

    /// Verifies `sig` over `message` (hashed under the signature DST) by `pk`.
    function verify(bytes calldata pk, bytes calldata message, bytes calldata sig) external view returns (bool) {
        return BLS.verifyHashed(pk, BLS.hashToG2(message, BLS.SIG_DST), sig);
    }

    function payload(
        uint64 chainId,
        address proxy,
        bytes32 contextId,
        uint64 epoch,
        uint64 height,
        bytes32 stateRoot,
        bytes32 actionsRoot,
        bytes32 nextMembersHash
    ) external pure returns (bytes memory) {
        return Checkpoint.payload(chainId, proxy, contextId, epoch, height, stateRoot, actionsRoot, nextMembersHash);
    }

    function membersHash(bytes calldata pks, uint32 quorum) external pure returns (bytes32) {
        return Checkpoint.membersHash(pks, quorum);
    }

    function actionLeaf(uint64 chainId, address proxy, Checkpoint.Action calldata a) external pure returns (bytes32) {
        return Checkpoint.actionLeaf(chainId, proxy, a);
    }

    function verifyProof(bytes32 root, bytes32 leaf, bytes32[] calldata proof, uint256 index)
        external
        pure
        returns (bool)
    {
        return Checkpoint.verifyProof(root, leaf, proof, index);
    }
}
