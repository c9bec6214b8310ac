// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

import {BLS} from "./BLS.sol";
import {Checkpoint} from "./Checkpoint.sol";
import {KeyStore} from "./KeyStore.sol";

/// @title One context's proxy on an EVM chain.
/// @notice Accepts checkpoints BLS-signed by a quorum of the context's
/// members, executes the actions they commit to, and rotates the member
/// set when a checkpoint announces it. Byte formats: docs/checkpoint.md.
/// @dev Members' keys (and their sum) live as the code of a KeyStore
/// contract, so a checkpoint reads keys with EXTCODECOPY instead of one
/// SLOAD per 32 bytes, the relayer does not resend them as calldata, and
/// the signers' aggregate key costs at most n/2 G1ADDs.
contract ConclaveProxy {
    struct Roots {
        bytes32 stateRoot;
        bytes32 actionsRoot;
    }

    struct Announcement {
        bytes32 membersHash;
        uint64 epoch;
    }

    uint256 public constant MAX_MEMBERS = 128;

    /// The context this proxy serves.
    bytes32 public immutable contextId;

    // slot 0: the current member set's key store, size, quorum and epoch.
    address private keyStore_;
    uint16 private memberCount_;
    uint16 private quorum_;
    uint64 private epoch_;
    // slot 1: latest height, and a flag set at deployment so that the first
    // checkpoint updates a non-zero slot (saves ~17k gas on it).
    uint64 private latestHeight_;
    bool private deployed_;

    mapping(uint64 height => Roots) private roots_;
    /// Checkpoints whose next-members hash differs from the signing set's.
    mapping(uint64 height => Announcement) private announcements_;
    mapping(bytes32 id => bool) private executed_;
    /// keccak256 of keys whose PoP `registerKeys` verified.
    mapping(bytes32 key => bool) private popVerified_;
    bool private transient locked_;

    event CheckpointSubmitted(
        uint64 indexed height, uint64 epoch, bytes32 stateRoot, bytes32 actionsRoot, bytes32 nextMembersHash
    );
    event MembersRotated(uint64 indexed epoch, bytes32 membersHash, uint16 memberCount, uint16 quorum);
    event ActionExecuted(bytes32 indexed id, uint64 indexed height);
    event KeysRegistered(uint256 count);

    error InvalidMembers();
    error InvalidQuorum(uint256 quorum, uint256 members);
    error BadPop(uint256 index);
    error DuplicateMember(uint256 index);
    error WrongEpoch(uint64 expected, uint64 got);
    error StaleHeight(uint64 latest, uint64 got);
    error NonMemberBit();
    error UnderQuorum(uint256 signers, uint256 quorum);
    error BadSignature();
    error UnknownCheckpoint();
    error AlreadyExecuted(bytes32 id);
    error BadProof();
    error UnknownKind(uint8 kind);
    error TransferFailed();
    error CallFailed(bytes reason);
    error Reentrancy();
    error UnknownRotation();
    error MembersHashMismatch();

    /// @param context The context id.
    /// @param pks Members' keys, 128-byte EIP-2537 G1 points concatenated.
    /// @param pops Their proofs of possession, 256-byte G2 points.
    /// @param requestedQuorum Signers needed; 0 for floor(2n/3) + 1.
    /// @param initialEpoch The context's member-set epoch these keys belong
    /// to: 0 for a proxy made with its context, the current epoch for one
    /// deployed later (`conclave anchor deploy`), so that the checkpoints the
    /// set signs from then on are accepted.
    constructor(bytes32 context, bytes memory pks, bytes memory pops, uint32 requestedQuorum, uint64 initialEpoch) {
        contextId = context;
        deployed_ = true;
        epoch_ = initialEpoch;
        (bytes32 h, uint16 n, uint16 q) = _setMembers(pks, pops, requestedQuorum);
        emit MembersRotated(initialEpoch, h, n, q);
    }

    receive() external payable {}

    // ---------------------------------------------------------------- checkpoints

    /// Verifies and stores a checkpoint signed by the current member set.
    /// @param signers Bitmap: bit i set when member i signed.
    /// @param signature Aggregate signature, 256-byte EIP-2537 G2 point.
    function submitCheckpoint(
        uint64 signedEpoch,
        uint64 height,
        bytes32 stateRoot,
        bytes32 actionsRoot,
        bytes32 nextMembersHash,
        uint256 signers,
        bytes calldata signature
    ) external {
        uint64 current = epoch_;
        if (signedEpoch != current) revert WrongEpoch(current, signedEpoch);
        uint64 latest = latestHeight_;
        if (height <= latest) revert StaleHeight(latest, height);
        if (signers >> memberCount_ != 0) revert NonMemberBit();
        uint256 count = _popcount(signers);
        if (count < quorum_) revert UnderQuorum(count, quorum_);

        bytes32 digest = checkpointDigest(signedEpoch, height, stateRoot, actionsRoot, nextMembersHash);
        bytes memory msgPoint = BLS.hashToG2(abi.encodePacked(digest), BLS.SIG_DST);
        bytes memory aggregateKey = KeyStore.sum(keyStore_, signers, memberCount_, count);
        if (!BLS.verifyHashed(aggregateKey, msgPoint, signature)) revert BadSignature();

        roots_[height] = Roots(stateRoot, actionsRoot);
        latestHeight_ = height;
        if (nextMembersHash != KeyStore.membersHash(keyStore_)) announcements_[height] = Announcement(nextMembersHash, signedEpoch);
        emit CheckpointSubmitted(height, signedEpoch, stateRoot, actionsRoot, nextMembersHash);
    }

    /// The message members sign for this proxy: sha256 of the payload with
    /// this chain's id and this contract's address as domain.
    function checkpointDigest(
        uint64 signedEpoch,
        uint64 height,
        bytes32 stateRoot,
        bytes32 actionsRoot,
        bytes32 nextMembersHash
    ) public view returns (bytes32) {
        return sha256(
            Checkpoint.payload(
                uint64(block.chainid), address(this), contextId, signedEpoch, height, stateRoot, actionsRoot, nextMembersHash
            )
        );
    }

    // ---------------------------------------------------------------- actions

    /// Executes an action committed by the actions root of the checkpoint at
    /// `checkpointHeight`. A failing transfer or call reverts the whole
    /// transaction, so the action stays executable.
    function executeAction(
        uint64 checkpointHeight,
        Checkpoint.Action calldata action,
        bytes32[] calldata proof,
        uint256 index
    ) external {
        if (locked_) revert Reentrancy();
        locked_ = true;
        bytes32 root = roots_[checkpointHeight].actionsRoot;
        if (root == bytes32(0)) revert UnknownCheckpoint();
        if (executed_[action.id]) revert AlreadyExecuted(action.id);
        bytes32 leaf = Checkpoint.actionLeaf(uint64(block.chainid), address(this), action);
        if (!Checkpoint.verifyProof(root, leaf, proof, index)) revert BadProof();
        executed_[action.id] = true;
        _perform(action);
        emit ActionExecuted(action.id, checkpointHeight);
        locked_ = false;
    }

    function _perform(Checkpoint.Action calldata a) private {
        if (a.kind == Checkpoint.KIND_NATIVE) {
            (bool ok,) = a.to.call{value: a.amount}("");
            if (!ok) revert TransferFailed();
        } else if (a.kind == Checkpoint.KIND_TOKEN) {
            (bool ok, bytes memory ret) = a.token.call(abi.encodeWithSelector(0xa9059cbb, a.to, a.amount));
            bool accepted = ok && (ret.length == 0 ? a.token.code.length != 0 : abi.decode(ret, (bool)));
            if (!accepted) revert TransferFailed();
        } else if (a.kind == Checkpoint.KIND_CALL) {
            (bool ok, bytes memory ret) = a.to.call{value: a.amount}(a.data);
            if (!ok) revert CallFailed(ret);
        } else {
            revert UnknownKind(a.kind);
        }
    }

    // ---------------------------------------------------------------- members

    /// Replaces the member set with the one announced by the checkpoint at
    /// `checkpointHeight` (signed by the current set), checking every PoP.
    function rotateMembers(uint64 checkpointHeight, bytes calldata pks, bytes calldata pops, uint32 requestedQuorum)
        external
    {
        Announcement memory a = announcements_[checkpointHeight];
        if (a.membersHash == bytes32(0) || a.epoch != epoch_) revert UnknownRotation();
        uint32 q = requestedQuorum == 0 ? _defaultQuorum(pks.length / BLS.G1_LEN) : requestedQuorum;
        if (Checkpoint.membersHash(pks, q) != a.membersHash) revert MembersHashMismatch();
        (bytes32 h, uint16 n, uint16 resolved) = _setMembers(pks, pops, q);
        uint64 next = epoch_ + 1;
        epoch_ = next;
        delete announcements_[checkpointHeight];
        emit MembersRotated(next, h, n, resolved);
    }

    /// Verifies and records proofs of possession ahead of a rotation, so a
    /// large set's PoP checks (about 150k gas each) can be spread over
    /// several transactions; `rotateMembers` may then pass no PoPs.
    function registerKeys(bytes calldata pks, bytes calldata pops) external {
        uint256 count = pks.length / BLS.G1_LEN;
        if (count == 0 || pks.length % BLS.G1_LEN != 0 || pops.length != count * BLS.G2_LEN) {
            revert InvalidMembers();
        }
        for (uint256 i = 0; i < count; ++i) {
            uint256 fmp = _freeMemory();
            bytes memory pk = pks[i * BLS.G1_LEN:(i + 1) * BLS.G1_LEN];
            if (!BLS.verifyPop(pk, pops[i * BLS.G2_LEN:(i + 1) * BLS.G2_LEN])) revert BadPop(i);
            popVerified_[keccak256(pk)] = true;
            _resetFreeMemory(fmp);
        }
        emit KeysRegistered(count);
    }

    /// Whether `registerKeys` verified this key's PoP.
    function keyRegistered(bytes calldata pk) external view returns (bool) {
        return popVerified_[keccak256(pk)];
    }

    /// Checks and installs a member set. `pops` holds one PoP per key, or is
    /// empty when every key was registered with `registerKeys`; a key with a
    /// registered PoP skips the inline check.
    function _setMembers(bytes memory pks, bytes memory pops, uint32 requestedQuorum)
        private
        returns (bytes32 h, uint16 n, uint16 q)
    {
        uint256 count = pks.length / BLS.G1_LEN;
        bool inlinePops = pops.length != 0;
        if (
            count == 0 || count > MAX_MEMBERS || pks.length % BLS.G1_LEN != 0
                || (inlinePops && pops.length != count * BLS.G2_LEN)
        ) {
            revert InvalidMembers();
        }
        uint256 resolved = requestedQuorum == 0 ? _defaultQuorum(count) : requestedQuorum;
        if (resolved > count) revert InvalidQuorum(resolved, count);
        bytes32[] memory seen = new bytes32[](count);
        for (uint256 i = 0; i < count; ++i) {
            uint256 fmp = _freeMemory();
            bytes memory pk = _slice(pks, i * BLS.G1_LEN, BLS.G1_LEN);
            bytes32 id = keccak256(pk);
            if (!popVerified_[id]) {
                if (!inlinePops || !BLS.verifyPop(pk, _slice(pops, i * BLS.G2_LEN, BLS.G2_LEN))) revert BadPop(i);
            }
            for (uint256 j = 0; j < i; ++j) {
                if (seen[j] == id) revert DuplicateMember(i);
            }
            seen[i] = id;
            _resetFreeMemory(fmp);
        }
        n = uint16(count);
        q = uint16(resolved);
        h = Checkpoint.membersHash(pks, q);
        keyStore_ = KeyStore.create(pks, h);
        memberCount_ = n;
        quorum_ = q;
    }

    // ---------------------------------------------------------------- views

    function latestCheckpoint() external view returns (uint64 height, bytes32 stateRoot, bytes32 actionsRoot) {
        height = latestHeight_;
        Roots storage r = roots_[height];
        return (height, r.stateRoot, r.actionsRoot);
    }

    /// Roots stored at `height`; `nextMembersHash` is zero unless that
    /// checkpoint announced a different member set.
    function checkpointAt(uint64 height)
        external
        view
        returns (bytes32 stateRoot, bytes32 actionsRoot, bytes32 nextMembersHash)
    {
        Roots storage r = roots_[height];
        return (r.stateRoot, r.actionsRoot, announcements_[height].membersHash);
    }

    function membersHash() external view returns (bytes32) {
        return KeyStore.membersHash(keyStore_);
    }

    function quorum() external view returns (uint16) {
        return quorum_;
    }

    function epoch() external view returns (uint64) {
        return epoch_;
    }

    function memberCount() external view returns (uint16) {
        return memberCount_;
    }

    /// The members' keys, EIP-2537 encoded, in member order.
    function members() external view returns (bytes memory) {
        return KeyStore.read(keyStore_, memberCount_);
    }

    function executed(bytes32 id) external view returns (bool) {
        return executed_[id];
    }

    // ---------------------------------------------------------------- helpers

    function _defaultQuorum(uint256 n) private pure returns (uint32) {
        return uint32((2 * n) / 3 + 1);
    }

    /// Bits set in `x`, for x < 2^255 (bitmaps are below 2^MAX_MEMBERS):
    /// SWAR bit counting, then the byte sums gathered in the top byte.
    function _popcount(uint256 x) private pure returns (uint256 c) {
        unchecked {
            x -= (x >> 1) & 0x5555555555555555555555555555555555555555555555555555555555555555;
            x = (x & 0x3333333333333333333333333333333333333333333333333333333333333333)
                + ((x >> 2) & 0x3333333333333333333333333333333333333333333333333333333333333333);
            x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f;
            c = (x * 0x0101010101010101010101010101010101010101010101010101010101010101) >> 248;
        }
    }

    function _freeMemory() private pure returns (uint256 fmp) {
        assembly ("memory-safe") {
            fmp := mload(0x40)
        }
    }

    /// Releases memory allocated since `fmp` (PoP checks allocate a few KB
    /// each; keeping it would make memory expansion quadratic in members).
    function _resetFreeMemory(uint256 fmp) private pure {
        assembly ("memory-safe") {
            mstore(0x40, fmp)
        }
    }

    function _slice(bytes memory b, uint256 off, uint256 len) private pure returns (bytes memory out) {
        out = new bytes(len);
        assembly ("memory-safe") {
            mcopy(add(out, 32), add(add(b, 32), off), len)
        }
    }
}
