//! Encryption at rest: a value written through the `kv` app is nowhere in
//! clear on the node's disk, neither in RocksDB's log nor, after a restart
//! has flushed it, in its tables, nor anywhere else under the home but the
//! keys. A control shows the same scan does find what is stored in clear.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use conclave_node::rpc::ConclaveApiClient;
use conclave_tests::{signed, wait_committed, TestNode};
use rand::RngCore;

use crate::{node_with_context, COMMIT_TIMEOUT};

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Every regular file under `dir`, recursively, except under `skip`.
fn files(dir: &Path, skip: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path == skip {
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            files(&path, skip, out);
        } else if meta.is_file() {
            out.push(path);
        }
    }
}

/// The files under the home (keys excepted) that contain `needle`.
fn files_containing(home: &Path, needle: &[u8]) -> Vec<PathBuf> {
    let mut all = Vec::new();
    files(home, &home.join("keys"), &mut all);
    assert!(
        all.iter().any(|p| p.starts_with(home.join("data"))),
        "the scan reaches the database files: {all:?}"
    );
    all.into_iter()
        .filter(|p| {
            let bytes = std::fs::read(p).unwrap();
            bytes.windows(needle.len()).any(|w| w == needle)
        })
        .collect()
}

async fn stop(node: &mut TestNode) {
    node.kill9();
    assert!(node.wait_exit(std::time::Duration::from_secs(10)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn context_data_is_not_on_disk_in_clear() {
    let (mut node, ctx) = node_with_context("kv").await;
    let keys = node.keys();
    let c = node.client();
    // Random hex: incompressible by RocksDB's LZ4, so a plaintext copy
    // would be found byte for byte even in a compressed table.
    let key = format!("k{}", random_hex(16));
    let value = random_hex(24);
    assert_eq!(value.len(), 48);
    let args = serde_json::json!({"key": key, "value": value}).to_string();
    let tx = signed(&keys, ctx, 1, "set", &args);
    let hash = c.tx_submit(tx).await.unwrap().tx_hash;
    let status = wait_committed(&c, hash, COMMIT_TIMEOUT).await;
    assert_eq!(status.status, "committed", "{status:?}");
    let stored = c.state_get(ctx, key.clone(), None).await.unwrap();
    assert_eq!(stored.value.as_deref(), Some(value.as_str()));

    let home = node.home().to_path_buf();
    let check = |stage: &str| {
        for (what, needle) in [("value", value.as_bytes()), ("key", key.as_bytes())] {
            let found = files_containing(&home, needle);
            assert!(
                found.is_empty(),
                "{stage}: the {what} is in clear in {found:?}"
            );
        }
        // Controls: the same scan finds bytes the store keeps in clear, the
        // context id (in RocksDB keys) and the tx hash (the `txs` key).
        for (what, needle) in [("context id", ctx.as_bytes()), ("tx hash", hash.as_bytes())] {
            let found = files_containing(&home, needle);
            assert!(
                found.iter().any(|p| p.starts_with(home.join("data"))),
                "{stage}: the {what} is not found in the database files: {found:?}"
            );
        }
    };

    // Killed: the writes are in RocksDB's write-ahead log.
    stop(&mut node).await;
    check("after kill");

    // Restarted (recovery flushes the log into tables) and stopped again.
    node.start().await;
    let c = node.client();
    let view = c
        .app_view(
            ctx,
            "get".into(),
            Some(serde_json::json!(
                serde_json::json!({ "key": key }).to_string()
            )),
        )
        .await
        .unwrap();
    assert_eq!(view.error, None);
    assert!(view.output.unwrap_or_default().contains(&value));
    stop(&mut node).await;
    let tables = {
        let mut all = Vec::new();
        files(&home.join("data"), &home.join("keys"), &mut all);
        all.into_iter()
            .filter(|p| p.extension().is_some_and(|e| e == "sst"))
            .count()
    };
    assert!(tables > 0, "the restart flushed tables");
    check("after restart");

    let mode = std::fs::metadata(home.join("keys/storage.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_a_database_under_another_storage_key() {
    let (mut node, _ctx) = node_with_context("kv").await;
    stop(&mut node).await;
    let path = node.home().join("keys/storage.key");
    let original = std::fs::read(&path).unwrap();
    std::fs::write(&path, random_hex(32)).unwrap();
    node.spawn_with_env(&[]);
    assert!(
        node.wait_exit(std::time::Duration::from_secs(30)).await,
        "the node refuses to start"
    );
    assert!(
        node.log()
            .contains("storage key does not match this database"),
        "{}",
        node.log()
    );
    std::fs::write(&path, original).unwrap();
    node.start().await;
    assert_eq!(node.client().context_list().await.unwrap().len(), 1);
}
