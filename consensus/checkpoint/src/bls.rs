//! BLS12-381 in the min-pk setting (public keys in G1, signatures in G2)
//! with the proof-of-possession ciphersuite of the IETF BLS draft, on top of
//! `blst::min_pk`.
//!
//! Every decoder validates: on the curve, in the prime-order subgroup, and
//! not the point at infinity.

use blst::min_pk;
use blst::BLST_ERROR;

use crate::encoding;
use crate::error::{Error, Result};

/// DST for checkpoint signatures.
pub const SIG_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// DST for proofs of possession.
pub const POP_DST: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// Compressed public key bytes.
pub const PK_COMPRESSED_LEN: usize = 48;
/// Compressed signature bytes.
pub const SIG_COMPRESSED_LEN: usize = 96;

fn point_error(what: &'static str, err: BLST_ERROR) -> Error {
    match err {
        BLST_ERROR::BLST_POINT_NOT_IN_GROUP => Error::NotInSubgroup { what },
        BLST_ERROR::BLST_PK_IS_INFINITY => Error::Infinity { what },
        _ => Error::BadPoint { what },
    }
}

fn check_len(bytes: &[u8], expected: usize, what: &'static str) -> Result<()> {
    if bytes.len() == expected {
        Ok(())
    } else {
        Err(Error::BadLength {
            what,
            expected,
            got: bytes.len(),
        })
    }
}

/// A member's BLS secret key.
#[derive(Clone)]
pub struct SecretKey(min_pk::SecretKey);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(..)")
    }
}

impl SecretKey {
    /// Derives a key from 32 bytes of input keying material (IETF KeyGen,
    /// empty key info).
    pub fn from_seed(ikm: &[u8; 32]) -> Result<Self> {
        min_pk::SecretKey::key_gen(ikm, &[])
            .map(Self)
            .map_err(|_| Error::BadSecretKey)
    }

    /// Decodes a 32-byte big-endian scalar in `1..r`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        min_pk::SecretKey::from_bytes(bytes)
            .map(Self)
            .map_err(|_| Error::BadSecretKey)
    }

    /// The 32-byte big-endian scalar.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.sk_to_pk())
    }

    /// Signs `msg` under [`SIG_DST`].
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.0.sign(msg, SIG_DST, &[]))
    }

    /// Proof of possession: a signature over the compressed public key
    /// under [`POP_DST`].
    pub fn prove_possession(&self) -> ProofOfPossession {
        let pk = self.public_key().to_compressed();
        ProofOfPossession(Signature(self.0.sign(&pk, POP_DST, &[])))
    }
}

/// A validated public key (G1, not infinity, in the subgroup).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKey(pub(crate) min_pk::PublicKey);

impl PublicKey {
    const WHAT: &'static str = "public key";

    /// Decodes 48-byte compressed bytes.
    pub fn from_compressed(bytes: &[u8]) -> Result<Self> {
        check_len(bytes, PK_COMPRESSED_LEN, Self::WHAT)?;
        Self::validated(bytes)
    }

    /// Decodes 96-byte uncompressed (blst/ZCash) bytes.
    pub fn from_uncompressed(bytes: &[u8]) -> Result<Self> {
        check_len(bytes, encoding::G1_UNCOMPRESSED_LEN, Self::WHAT)?;
        Self::validated(bytes)
    }

    /// Decodes the 128-byte EIP-2537 encoding.
    pub fn from_eip2537(bytes: &[u8]) -> Result<Self> {
        Self::validated(&encoding::g1_from_eip2537(bytes)?)
    }

    fn validated(bytes: &[u8]) -> Result<Self> {
        min_pk::PublicKey::key_validate(bytes)
            .map(Self)
            .map_err(|e| point_error(Self::WHAT, e))
    }

    /// 48-byte compressed form (the PoP message).
    pub fn to_compressed(&self) -> [u8; PK_COMPRESSED_LEN] {
        self.0.compress()
    }

    /// 96-byte uncompressed form.
    pub fn to_uncompressed(&self) -> [u8; encoding::G1_UNCOMPRESSED_LEN] {
        self.0.serialize()
    }

    /// 128-byte EIP-2537 form.
    pub fn to_eip2537(&self) -> [u8; encoding::EIP_G1_LEN] {
        encoding::g1_to_eip2537(&self.0.serialize())
    }

    /// Checks a proof of possession for this key.
    pub fn verify_pop(&self, pop: &ProofOfPossession) -> bool {
        let msg = self.to_compressed();
        let err = pop.0 .0.verify(true, &msg, POP_DST, &[], &self.0, true);
        err == BLST_ERROR::BLST_SUCCESS
    }

    /// Sum of public keys. Only meaningful for keys whose PoP was checked;
    /// used to build the rogue-key vectors.
    pub fn sum(keys: &[PublicKey]) -> Result<PublicKey> {
        let refs: Vec<&min_pk::PublicKey> = keys.iter().map(|k| &k.0).collect();
        let agg = min_pk::AggregatePublicKey::aggregate(&refs, false)
            .map_err(|_| Error::Aggregate("no public keys"))?;
        let pk = agg.to_public_key();
        pk.validate()
            .map_err(|e| point_error("aggregate public key", e))?;
        Ok(PublicKey(pk))
    }

    /// The rogue key `attacker - sum(honest)`: whoever knows the attacker's
    /// secret key can sign for `honest ∪ {rogue}` alone, unless the rogue
    /// key must come with a proof of possession (it cannot).
    pub fn rogue(attacker: &PublicKey, honest: &[PublicKey]) -> Result<PublicKey> {
        let mut agg = min_pk::AggregatePublicKey::from_public_key(&attacker.0);
        for pk in honest {
            agg.sub_aggregate(&min_pk::AggregatePublicKey::from_public_key(&pk.0));
        }
        let pk = agg.to_public_key();
        pk.validate().map_err(|e| point_error("rogue key", e))?;
        Ok(PublicKey(pk))
    }
}

/// A validated signature (G2, in the subgroup, not infinity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Signature(pub(crate) min_pk::Signature);

impl Signature {
    const WHAT: &'static str = "signature";

    /// Decodes 96-byte compressed bytes.
    pub fn from_compressed(bytes: &[u8]) -> Result<Self> {
        check_len(bytes, SIG_COMPRESSED_LEN, Self::WHAT)?;
        Self::validated(bytes)
    }

    /// Decodes 192-byte uncompressed (blst/ZCash) bytes.
    pub fn from_uncompressed(bytes: &[u8]) -> Result<Self> {
        check_len(bytes, encoding::G2_UNCOMPRESSED_LEN, Self::WHAT)?;
        Self::validated(bytes)
    }

    /// Decodes the 256-byte EIP-2537 encoding.
    pub fn from_eip2537(bytes: &[u8]) -> Result<Self> {
        Self::validated(&encoding::g2_from_eip2537(bytes)?)
    }

    fn validated(bytes: &[u8]) -> Result<Self> {
        min_pk::Signature::sig_validate(bytes, true)
            .map(Self)
            .map_err(|e| point_error(Self::WHAT, e))
    }

    /// 96-byte compressed form.
    pub fn to_compressed(&self) -> [u8; SIG_COMPRESSED_LEN] {
        self.0.compress()
    }

    /// 192-byte uncompressed form.
    pub fn to_uncompressed(&self) -> [u8; encoding::G2_UNCOMPRESSED_LEN] {
        self.0.serialize()
    }

    /// 256-byte EIP-2537 form.
    pub fn to_eip2537(&self) -> [u8; encoding::EIP_G2_LEN] {
        encoding::g2_to_eip2537(&self.0.serialize())
    }

    /// Verifies a single signature over `msg` under [`SIG_DST`].
    ///
    /// No subgroup check here, nor in [`Signature::aggregate`] and
    /// [`Signature::fast_aggregate_verify`]: every `Signature` is in G2's
    /// subgroup by construction (decoded with the check, made by signing,
    /// or summed from such), and each check costs about a tenth of a
    /// verification.
    pub fn verify(&self, msg: &[u8], pk: &PublicKey) -> bool {
        self.0.verify(false, msg, SIG_DST, &[], &pk.0, false) == BLST_ERROR::BLST_SUCCESS
    }

    /// Sums same-message signatures.
    pub fn aggregate(sigs: &[Signature]) -> Result<Signature> {
        let refs: Vec<&min_pk::Signature> = sigs.iter().map(|s| &s.0).collect();
        let agg = min_pk::AggregateSignature::aggregate(&refs, false)
            .map_err(|_| Error::Aggregate("no signatures"))?;
        Ok(Signature(agg.to_signature()))
    }

    /// `fast_aggregate_verify`: this signature is the aggregate of all
    /// `pks` over `msg`. The keys must have had their PoP checked.
    pub fn fast_aggregate_verify(&self, msg: &[u8], pks: &[&PublicKey]) -> bool {
        if pks.is_empty() {
            return false;
        }
        let refs: Vec<&min_pk::PublicKey> = pks.iter().map(|k| &k.0).collect();
        self.0.fast_aggregate_verify(false, msg, SIG_DST, &refs) == BLST_ERROR::BLST_SUCCESS
    }
}

/// A proof of possession: a [`Signature`]-shaped point over the member's
/// compressed public key under [`POP_DST`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProofOfPossession(pub(crate) Signature);

impl ProofOfPossession {
    /// Decodes 96-byte compressed bytes.
    pub fn from_compressed(bytes: &[u8]) -> Result<Self> {
        Signature::from_compressed(bytes).map(Self)
    }
    /// Decodes the 256-byte EIP-2537 encoding.
    pub fn from_eip2537(bytes: &[u8]) -> Result<Self> {
        Signature::from_eip2537(bytes).map(Self)
    }
    /// Wraps any signature point (used to build forged PoPs in vectors).
    pub fn from_signature(sig: Signature) -> Self {
        Self(sig)
    }
    /// The underlying point.
    pub fn as_signature(&self) -> &Signature {
        &self.0
    }
}

/// Hash-to-curve (RFC 9380 `BLS12381G2_XMD:SHA-256_SSWU_RO_`) of `msg`
/// under `dst`, as a G2 point; the value contracts must reproduce. It is
/// the signature of `msg` by the scalar 1.
pub fn hash_to_g2(msg: &[u8], dst: &[u8]) -> Result<Signature> {
    let mut one = [0u8; 32];
    one[31] = 1;
    let sk = min_pk::SecretKey::from_bytes(&one).map_err(|_| Error::BadSecretKey)?;
    Ok(Signature(sk.sign(msg, dst, &[])))
}

#[cfg(test)]
mod tests;
