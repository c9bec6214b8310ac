use super::*;

fn key(i: u8) -> SecretKey {
    SecretKey::from_seed(&[i; 32]).expect("32-byte seed")
}

#[test]
fn sign_and_verify_round_trip_in_all_encodings() {
    let sk = key(1);
    let pk = sk.public_key();
    let sig = sk.sign(b"hello");
    assert!(sig.verify(b"hello", &pk));
    assert!(!sig.verify(b"hellp", &pk));
    assert!(!sig.verify(b"hello", &key(2).public_key()));

    assert_eq!(PublicKey::from_compressed(&pk.to_compressed()), Ok(pk));
    assert_eq!(PublicKey::from_uncompressed(&pk.to_uncompressed()), Ok(pk));
    assert_eq!(PublicKey::from_eip2537(&pk.to_eip2537()), Ok(pk));
    assert_eq!(Signature::from_compressed(&sig.to_compressed()), Ok(sig));
    assert_eq!(
        Signature::from_uncompressed(&sig.to_uncompressed()),
        Ok(sig)
    );
    assert_eq!(Signature::from_eip2537(&sig.to_eip2537()), Ok(sig));
}

#[test]
fn secret_key_round_trips_and_rejects_zero() {
    let sk = key(3);
    let again = SecretKey::from_bytes(&sk.to_bytes()).expect("valid scalar");
    assert_eq!(again.public_key(), sk.public_key());
    assert_eq!(
        SecretKey::from_bytes(&[0u8; 32]).err(),
        Some(Error::BadSecretKey)
    );
}

#[test]
fn pop_verifies_only_for_its_key() {
    let a = key(1);
    let b = key(2);
    assert!(a.public_key().verify_pop(&a.prove_possession()));
    assert!(!b.public_key().verify_pop(&a.prove_possession()));
    // A plain signature over the key under the message DST is not a PoP.
    let wrong_dst = ProofOfPossession::from_signature(a.sign(&a.public_key().to_compressed()));
    assert!(!a.public_key().verify_pop(&wrong_dst));
}

#[test]
fn decoders_reject_infinity_and_garbage() {
    let mut inf_pk = [0u8; 48];
    inf_pk[0] = 0xc0;
    assert!(matches!(
        PublicKey::from_compressed(&inf_pk),
        Err(Error::Infinity { .. })
    ));
    assert!(matches!(
        PublicKey::from_eip2537(&[0u8; 128]),
        Err(Error::Infinity { .. })
    ));
    let mut off_curve = key(1).public_key().to_uncompressed();
    off_curve[95] ^= 1;
    assert!(matches!(
        PublicKey::from_uncompressed(&off_curve),
        Err(Error::BadPoint { .. })
    ));
    assert!(matches!(
        PublicKey::from_compressed(&[1u8; 47]),
        Err(Error::BadLength { .. })
    ));
    assert!(Signature::from_eip2537(&[0u8; 256]).is_err());
    let mut bad_sig = key(1).sign(b"x").to_uncompressed();
    bad_sig[191] ^= 1;
    assert!(Signature::from_uncompressed(&bad_sig).is_err());
}

#[test]
fn aggregate_fast_verify() {
    let keys: Vec<SecretKey> = (1..=4).map(key).collect();
    let pks: Vec<PublicKey> = keys.iter().map(SecretKey::public_key).collect();
    let sigs: Vec<Signature> = keys.iter().map(|k| k.sign(b"m")).collect();
    let agg = Signature::aggregate(&sigs).expect("non-empty");
    let refs: Vec<&PublicKey> = pks.iter().collect();
    assert!(agg.fast_aggregate_verify(b"m", &refs));
    assert!(!agg.fast_aggregate_verify(b"n", &refs));
    assert!(!agg.fast_aggregate_verify(b"m", &refs[..3]));
    assert!(!agg.fast_aggregate_verify(b"m", &[]));
    assert!(Signature::aggregate(&[]).is_err());
}

#[test]
fn rogue_key_forges_without_pop_and_has_no_pop() {
    let honest: Vec<PublicKey> = (1..=2).map(|i| key(i).public_key()).collect();
    let attacker = key(9);
    let rogue = PublicKey::rogue(&attacker.public_key(), &honest).expect("valid point");
    // The attacker's lone signature passes for {honest..., rogue}.
    let sig = attacker.sign(b"steal");
    let set = [&honest[0], &honest[1], &rogue];
    assert!(sig.fast_aggregate_verify(b"steal", &set));
    // ...which is why every key needs a PoP, which the attacker cannot make.
    assert!(!rogue.verify_pop(&attacker.prove_possession()));
    let sum = PublicKey::sum(&[honest[0], honest[1], rogue]).expect("non-empty");
    assert_eq!(sum, attacker.public_key());
}

#[test]
fn hash_to_g2_matches_signature_by_one() {
    let h = hash_to_g2(b"abc", SIG_DST).expect("scalar one");
    let h2 = hash_to_g2(b"abc", POP_DST).expect("scalar one");
    assert_ne!(h, h2);
    let mut one = [0u8; 32];
    one[31] = 1;
    let sk = SecretKey::from_bytes(&one).expect("one");
    assert_eq!(sk.sign(b"abc"), h);
}
