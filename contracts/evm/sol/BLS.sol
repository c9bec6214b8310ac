// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.28;

/// @title BLS12-381 min-pk verification over the EIP-2537 precompiles.
/// @notice Public keys are G1 points (128-byte EIP-2537 encoding), signatures
/// G2 points (256 bytes, each Fp2 as c0 then c1). Messages are hashed to G2
/// with RFC 9380 `BLS12381G2_XMD:SHA-256_SSWU_RO_`: expand_message_xmd with
/// SHA-256 to 256 bytes, four 64-byte chunks reduced mod p (MODEXP, 0x05)
/// into two Fp2 elements, each mapped with MAP_FP2_TO_G2 (0x11, which also
/// clears the cofactor) and the two points added with G2ADD (0x0d).
library BLS {
    /// DST of checkpoint signatures (IETF BLS, proof-of-possession suite).
    bytes internal constant SIG_DST = "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
    /// DST of proofs of possession.
    bytes internal constant POP_DST = "BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

    uint256 internal constant G1_LEN = 128;
    uint256 internal constant G2_LEN = 256;

    // EIP-2537 precompiles (final addresses).
    uint256 private constant G1ADD = 0x0b;
    uint256 private constant G2ADD = 0x0d;
    uint256 private constant PAIRING = 0x0f;
    uint256 private constant MAP_FP2_TO_G2 = 0x11;
    uint256 private constant MODEXP = 0x05;

    // The base-field modulus p, as its top 16 bytes and low 32 bytes.
    uint256 private constant P_HI = 0x1a0111ea397fe69a4b1ba7b6434bacd7;
    uint256 private constant P_LO = 0x64774b84f38512bf6730d2a0f6b0f6241eabfffeb153ffffb9feffffffffaaab;
    // (p - 1) / 2: a y above it gets the sign flag in compressed form.
    uint256 private constant HALF_P_HI = 0x0d0088f51cbff34d258dd3db21a5d66b;
    uint256 private constant HALF_P_LO = 0xb23ba5c279c2895fb39869507b587b120f55ffff58a9ffffdcff7fffffffd555;
    // The negated G1 generator, EIP-2537 words.
    uint256 private constant NEG_G1_X_HI = 0x17f1d3a73197d7942695638c4fa9ac0f;
    uint256 private constant NEG_G1_X_LO = 0xc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb;
    uint256 private constant NEG_G1_Y_HI = 0x114d1d6855d545a8aa7d76c8cf2e21f2;
    uint256 private constant NEG_G1_Y_LO = 0x67816aef1db507c96655b9d5caac42364e6f38ba0ecb751bad54dcd6b939c2ca;

    error PrecompileFailed(uint256 precompile);
    error DstTooLong();

    /// RFC 9380 expand_message_xmd (SHA-256) to 256 bytes:
    /// b0 = H(Z_pad(64) || msg || I2OSP(256, 2) || 0x00 || DST'),
    /// b1 = H(b0 || 0x01 || DST'), bi = H((b0 ^ b(i-1)) || i || DST'),
    /// output b1..b8, with DST' = DST || I2OSP(len(DST), 1).
    function expandMessageXmd(bytes memory message, bytes memory dst) internal view returns (bytes memory out) {
        if (dst.length > 255) revert DstTooLong();
        out = new bytes(256);
        bool ok;
        assembly ("memory-safe") {
            let dlen := mload(dst)
            let mlen := mload(message)
            let m := mload(0x40)
            mstore(m, 0)
            mstore(add(m, 32), 0)
            mcopy(add(m, 64), add(message, 32), mlen)
            let p := add(add(m, 64), mlen)
            mstore8(p, 0x01)
            mstore8(add(p, 1), 0x00)
            mstore8(add(p, 2), 0x00)
            mcopy(add(p, 3), add(dst, 32), dlen)
            mstore8(add(add(p, 3), dlen), dlen)
            ok := staticcall(gas(), 0x02, m, add(add(68, mlen), dlen), m, 32)
            let b0 := mload(m)
            // Block input: 32-byte chain value || i || DST'.
            mcopy(add(m, 33), add(dst, 32), dlen)
            mstore8(add(add(m, 33), dlen), dlen)
            let blockLen := add(34, dlen)
            let bi := 0
            for { let i := 1 } lt(i, 9) { i := add(i, 1) } {
                mstore(m, xor(b0, bi))
                mstore8(add(m, 32), i)
                let dest := add(out, mul(i, 32))
                ok := and(ok, staticcall(gas(), 0x02, m, blockLen, dest, 32))
                bi := mload(dest)
            }
        }
        if (!ok) revert PrecompileFailed(0x02);
    }

    /// hash_to_field for Fp2, count 2: 256 bytes holding u0.c0, u0.c1,
    /// u1.c0, u1.c1, each a 64-byte EIP-2537 field element.
    function hashToFieldFp2(bytes memory message, bytes memory dst) internal view returns (bytes memory u) {
        u = expandMessageXmd(message, dst);
        bool ok = true;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mstore(m, 64)
            mstore(add(m, 32), 1)
            mstore(add(m, 64), 64)
            for { let i := 0 } lt(i, 4) { i := add(i, 1) } {
                let chunk := add(add(u, 32), mul(i, 64))
                mstore(add(m, 96), mload(chunk))
                mstore(add(m, 128), mload(add(chunk, 32)))
                mstore8(add(m, 160), 1)
                mstore(add(m, 161), P_HI)
                mstore(add(m, 193), P_LO)
                // Reduce in place: the 64-byte result overwrites the chunk.
                ok := and(ok, staticcall(gas(), MODEXP, m, 225, chunk, 64))
            }
        }
        if (!ok) revert PrecompileFailed(MODEXP);
    }

    /// RFC 9380 hash_to_curve onto G2 (random-oracle variant).
    function hashToG2(bytes memory message, bytes memory dst) internal view returns (bytes memory point) {
        bytes memory u = hashToFieldFp2(message, dst);
        point = new bytes(G2_LEN);
        bool ok;
        assembly ("memory-safe") {
            let q := mload(0x40)
            let src := add(u, 32)
            ok := staticcall(gas(), MAP_FP2_TO_G2, src, 128, q, 256)
            ok := and(ok, staticcall(gas(), MAP_FP2_TO_G2, add(src, 128), 128, add(q, 256), 256))
            ok := and(ok, staticcall(gas(), G2ADD, q, 512, add(point, 32), 256))
        }
        if (!ok) revert PrecompileFailed(MAP_FP2_TO_G2);
    }

    /// Whether e(pk, h) == e(G1, sig), i.e. sig is pk's signature on the
    /// message that hashes to h. False on any invalid point (bad encoding,
    /// off curve, outside the subgroup).
    function verifyHashed(bytes memory pk, bytes memory h, bytes memory sig) internal view returns (bool ok) {
        if (pk.length != G1_LEN || h.length != G2_LEN || sig.length != G2_LEN) return false;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mcopy(m, add(pk, 32), 128)
            mcopy(add(m, 128), add(h, 32), 256)
            mstore(add(m, 384), NEG_G1_X_HI)
            mstore(add(m, 416), NEG_G1_X_LO)
            mstore(add(m, 448), NEG_G1_Y_HI)
            mstore(add(m, 480), NEG_G1_Y_LO)
            mcopy(add(m, 512), add(sig, 32), 256)
            ok := staticcall(gas(), PAIRING, m, 768, m, 32)
            ok := and(ok, eq(mload(m), 1))
        }
    }

    /// Whether a G1 point is the all-zero encoding of infinity.
    function isInfinity(bytes memory p) internal pure returns (bool) {
        for (uint256 i = 0; i < p.length; i += 32) {
            uint256 w;
            assembly ("memory-safe") {
                w := mload(add(add(p, 32), i))
            }
            if (w != 0) return false;
        }
        return true;
    }

    /// The 48-byte compressed (ZCash) form of an EIP-2537 G1 point, the
    /// message a proof of possession signs.
    function compressG1(bytes memory pk) internal pure returns (bytes memory) {
        uint256 xHi;
        uint256 xLo;
        uint256 yHi;
        uint256 yLo;
        assembly ("memory-safe") {
            xHi := mload(add(pk, 32))
            xLo := mload(add(pk, 64))
            yHi := mload(add(pk, 96))
            yLo := mload(add(pk, 128))
        }
        uint256 flags = 0x80;
        if (yHi > HALF_P_HI || (yHi == HALF_P_HI && yLo > HALF_P_LO)) flags |= 0x20;
        return abi.encodePacked(bytes16(uint128(xHi) | uint128(flags << 120)), bytes32(xLo));
    }

    /// Checks a proof of possession: a valid, non-infinity key and a
    /// signature over its compressed form under POP_DST.
    function verifyPop(bytes memory pk, bytes memory pop) internal view returns (bool) {
        if (pk.length != G1_LEN || pop.length != G2_LEN || isInfinity(pk)) return false;
        return verifyHashed(pk, hashToG2(compressG1(pk), POP_DST), pop);
    }

    /// G1 point addition (no subgroup check; inputs must be registered keys).
    function g1Add(bytes memory a, bytes memory b) internal view returns (bytes memory r) {
        r = new bytes(G1_LEN);
        bool ok;
        assembly ("memory-safe") {
            let m := mload(0x40)
            mcopy(m, add(a, 32), 128)
            mcopy(add(m, 128), add(b, 32), 128)
            ok := staticcall(gas(), G1ADD, m, 256, add(r, 32), 128)
        }
        if (!ok) revert PrecompileFailed(G1ADD);
    }
}
