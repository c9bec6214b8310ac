// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title Members' BLS keys stored as contract code.
/// @notice The store's runtime code is `0x00 || membersHash || aggregate ||
/// pk_0 || ... || pk_{n-1}`: STOP (so calls do nothing), the members hash
/// (32 bytes), the sum of all keys, then the keys in member order, all
/// 128-byte EIP-2537 G1 points. Key i is at code offset 161 + 128 * i.
library KeyStore {
    uint256 private constant G1ADD = 0x0b;
    uint256 private constant KEY_LEN = 128;
    uint256 private constant HASH_AT = 1;
    uint256 private constant AGGREGATE_AT = 33;
    uint256 private constant FIRST_KEY = 161; // 1 + 32 + KEY_LEN
    // The base-field modulus p (top 16 bytes, low 32 bytes), to negate y.
    uint256 private constant P_HI = 0x1a0111ea397fe69a4b1ba7b6434bacd7;
    uint256 private constant P_LO = 0x64774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab;

    error KeyStoreCreateFailed();
    error AggregationFailed();

    /// Deploys a store holding the members hash, `keys` and their sum.
    function create(bytes memory keys, bytes32 hash) internal returns (address store) {
        bytes memory agg = new bytes(KEY_LEN);
        bool ok = true;
        assembly ("memory-safe") {
            let n := div(mload(keys), KEY_LEN)
            let src := add(keys, 32)
            let buf := mload(0x40)
            mcopy(buf, src, KEY_LEN)
            for { let i := 1 } lt(i, n) { i := add(i, 1) } {
                mcopy(add(buf, KEY_LEN), add(src, mul(i, KEY_LEN)), KEY_LEN)
                ok := and(ok, staticcall(gas(), G1ADD, buf, 256, buf, KEY_LEN))
            }
            mcopy(add(agg, 32), buf, KEY_LEN)
        }
        if (!ok) revert AggregationFailed();
        // PUSH2 len, DUP1, PUSH1 12, PUSH1 0, CODECOPY, PUSH1 0, RETURN.
        bytes memory init = abi.encodePacked(
            hex"61", uint16(keys.length + FIRST_KEY), hex"80600c6000396000f3", hex"00", hash, agg, keys
        );
        assembly ("memory-safe") {
            store := create(0, add(init, 32), mload(init))
        }
        if (store == address(0)) revert KeyStoreCreateFailed();
    }

    /// The members hash kept with the keys.
    function membersHash(address store) internal view returns (bytes32 h) {
        assembly ("memory-safe") {
            extcodecopy(store, 0, HASH_AT, 32)
            h := mload(0)
        }
    }

    /// All `count` keys.
    function read(address store, uint256 count) internal view returns (bytes memory keys) {
        keys = new bytes(count * KEY_LEN);
        assembly ("memory-safe") {
            extcodecopy(store, add(keys, 32), FIRST_KEY, mul(count, KEY_LEN))
        }
    }

    /// Sum of the keys whose bit is set in `bitmap` (`signers` bits set, all
    /// below `count`; the caller checked both). When at least half signed it
    /// starts from the stored aggregate and subtracts the non-signers,
    /// otherwise it adds the signers: at most count / 2 G1ADDs.
    function sum(address store, uint256 bitmap, uint256 count, uint256 signers)
        internal
        view
        returns (bytes memory agg)
    {
        agg = new bytes(KEY_LEN);
        bool ok = true;
        assembly ("memory-safe") {
            let buf := mload(0x40)
            switch lt(mul(signers, 2), count)
            case 0 {
                // aggregate - Σ non-signers: add each non-signer negated.
                extcodecopy(store, buf, AGGREGATE_AT, KEY_LEN)
                let rest := and(not(bitmap), sub(shl(count, 1), 1))
                for { let i := 0 } rest { i := add(i, 1) } {
                    if and(rest, 1) {
                        let k := add(buf, KEY_LEN)
                        extcodecopy(store, k, add(FIRST_KEY, mul(i, KEY_LEN)), KEY_LEN)
                        // y := p - y, over a 16-byte high and a 32-byte low word.
                        let yHi := mload(add(k, 64))
                        let yLo := mload(add(k, 96))
                        mstore(add(k, 96), sub(P_LO, yLo))
                        mstore(add(k, 64), sub(sub(P_HI, yHi), lt(P_LO, yLo)))
                        ok := and(ok, staticcall(gas(), G1ADD, buf, 256, buf, KEY_LEN))
                    }
                    rest := shr(1, rest)
                }
            }
            default {
                let first := 1
                for { let i := 0 } bitmap { i := add(i, 1) } {
                    if and(bitmap, 1) {
                        switch first
                        case 1 {
                            extcodecopy(store, buf, add(FIRST_KEY, mul(i, KEY_LEN)), KEY_LEN)
                            first := 0
                        }
                        default {
                            extcodecopy(store, add(buf, KEY_LEN), add(FIRST_KEY, mul(i, KEY_LEN)), KEY_LEN)
                            ok := and(ok, staticcall(gas(), G1ADD, buf, 256, buf, KEY_LEN))
                        }
                    }
                    bitmap := shr(1, bitmap)
                }
            }
            mcopy(add(agg, 32), buf, KEY_LEN)
        }
        if (!ok) revert AggregationFailed();
    }
}
