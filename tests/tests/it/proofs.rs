//! `state_get` proofs verify against the returned state root (which is the
//! block header's), and fail for a tampered value.

use conclave_node::rpc::types::StateValue;
use conclave_node::rpc::ConclaveApiClient;
use conclave_node::store::{app_key, verify_proof, Proof};
use conclave_tests::{signed, wait_committed};

use crate::{node_with_context, COMMIT_TIMEOUT};

fn check(v: &StateValue, value: Option<&[u8]>) -> Result<(), String> {
    let proof: Proof = borsh::from_slice(&hex::decode(&v.proof).unwrap()).unwrap();
    verify_proof(&proof, v.state_root, &app_key(v.key.as_bytes()), value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_proofs_verify_and_detect_tampering() {
    let (node, ctx) = node_with_context("kv").await;
    let keys = node.keys();
    let c = node.client();
    for (nonce, (k, v)) in [("a", "1"), ("b", "2"), ("c", "3")].iter().enumerate() {
        let args = format!(r#"{{"key":"{k}","value":"{v}"}}"#);
        let h = c
            .tx_submit(signed(&keys, ctx, nonce as u64 + 1, "set", &args))
            .await
            .unwrap()
            .tx_hash;
        wait_committed(&c, h, COMMIT_TIMEOUT).await;
    }
    let v = c.state_get(ctx, "b".into(), None).await.unwrap();
    assert_eq!(v.value.as_deref(), Some("2"));
    let bytes = hex::decode(v.value_hex.as_ref().unwrap()).unwrap();
    check(&v, Some(&bytes)).expect("inclusion proof verifies");
    assert!(check(&v, Some(b"3")).is_err(), "tampered value must fail");
    assert!(check(&v, None).is_err(), "claiming absence must fail");

    // The root is the one the block at that height committed to.
    let block = c.block_get(ctx, Some(v.height)).await.unwrap();
    assert_eq!(block.header.state_root, v.state_root);

    // Absent keys come with a non-inclusion proof.
    let absent = c.state_get(ctx, "zzz".into(), None).await.unwrap();
    assert!(absent.value_hex.is_none());
    check(&absent, None).expect("non-inclusion proof verifies");
    assert!(check(&absent, Some(b"x")).is_err());

    // Reads at an older height see the older state.
    let first = c.state_get(ctx, "b".into(), Some(1)).await.unwrap();
    if first.height < v.height && block.header.height.0 > 1 {
        check(
            &first,
            first
                .value_hex
                .as_ref()
                .map(|h| hex::decode(h).unwrap())
                .as_deref(),
        )
        .expect("historical proof verifies");
    }
}
