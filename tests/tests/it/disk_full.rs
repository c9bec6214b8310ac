//! A full disk (reliability: disk full): the node's home on a small tmpfs
//! the test mounts. When the filesystem fills past the reserve the node
//! keeps (`[storage] min_free_mb`), the node stops committing cleanly (it
//! stays up, answers RPC, says why in `node_health`, its metrics and its
//! log, and acknowledges nothing it could not keep); once space is freed
//! it resumes by itself, every tx it acknowledged is committed, and its
//! files are whole (it restarts from them).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conclave_node::rpc::{codes, ConclaveApiClient};
use conclave_tests::{http_raw, signed, wait_committed, TestNode};

use crate::COMMIT_TIMEOUT;

/// A tmpfs of `mb` MiB mounted on a new temporary directory, unmounted
/// when dropped. `None` where mounting is not allowed (not root).
struct SmallFs {
    dir: tempfile::TempDir,
}

impl SmallFs {
    fn mount(mb: u64) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mb}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Fills the filesystem of `dir` with a file until a write fails for lack
/// of space, then gives `leave` bytes back; returns the file.
fn fill(dir: &Path, leave: u64) -> PathBuf {
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xa5u8; 64 * 1024];
    loop {
        match f.write_all(&chunk).and_then(|()| f.sync_data()) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    // The last bytes of a page may still fit: take them too.
    let small = [0u8; 512];
    while f.write_all(&small).and_then(|()| f.sync_data()).is_ok() {}
    let len = f.metadata().unwrap().len();
    f.set_len(len.saturating_sub(leave)).unwrap();
    f.sync_all().unwrap();
    path
}

fn storage_fault(e: jsonrpsee::core::ClientError) -> Option<String> {
    match e {
        jsonrpsee::core::ClientError::Call(obj) if obj.code() == codes::STORAGE_FAULT => {
            Some(obj.message().to_string())
        }
        other => panic!("refused otherwise than for the disk: {other}"),
    }
}

/// The free space the node keeps (`[storage] min_free_mb`).
const MIN_FREE_MB: u64 = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_commits_cleanly_and_they_resume_when_space_is_freed() {
    let Some(fs) = SmallFs::mount(64) else {
        eprintln!("skipped: cannot mount a tmpfs here (the test needs root)");
        return;
    };
    let mut node = TestNode::init_at(fs.path().join("home"));
    node.edit_config(|c| c.storage.min_free_mb = MIN_FREE_MB);
    node.start().await;
    let c = node.client();
    let ctx = c
        .context_create(Some("kv".into()), None, None, None, None)
        .await
        .unwrap()
        .context_id;
    let keys = node.keys();
    let tx = |nonce: u64| {
        let args = format!(r#"{{"key":"k{nonce}","value":"v{nonce}"}}"#);
        signed(&keys, ctx, nonce, "set", &args)
    };
    let mut nonce = 1;
    let mut acked = Vec::new();
    while nonce <= 20 {
        acked.push(c.tx_submit(tx(nonce)).await.unwrap().tx_hash);
        nonce += 1;
    }
    wait_committed(&c, *acked.last().unwrap(), COMMIT_TIMEOUT).await;

    // The disk fills past the reserve the node keeps. The next height
    // is not written: the node stops there and refuses txs it could not
    // keep, with its own error.
    let filler = fill(fs.path(), (MIN_FREE_MB << 20) / 4);
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    let refusal = loop {
        match c.tx_submit(tx(nonce)).await {
            Ok(t) => {
                acked.push(t.tx_hash);
                nonce += 1;
            }
            Err(e) => break storage_fault(e).unwrap(),
        }
        assert!(
            Instant::now() < deadline,
            "the node kept taking txs on a full disk"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(refusal.contains("cannot write to its disk"), "{refusal}");
    let health = c.node_health().await.unwrap();
    assert!(!health.ok, "{health:?}");
    assert!(
        health.problems.iter().any(|p| p.contains("No space left")),
        "{health:?}"
    );
    let (_, metrics) = http_raw(node.metrics, "GET", "/metrics", b"");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("conclave_storage_fault{") && l.ends_with(" 1")),
        "no storage fault in the metrics"
    );
    // It waits, up: the same answer again, and the process alive.
    let again = storage_fault(c.tx_submit(tx(nonce)).await.unwrap_err()).unwrap();
    assert!(again.contains("cannot write to its disk"), "{again}");
    assert!(
        !node.wait_exit(Duration::from_millis(1)).await,
        "the node exited"
    );

    // Space is freed: it resumes by itself, commits every tx it
    // acknowledged, and takes new ones.
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    while !c.node_health().await.unwrap().ok {
        assert!(Instant::now() < deadline, "the node did not resume");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for h in &acked {
        let s = wait_committed(&c, *h, COMMIT_TIMEOUT).await;
        assert_eq!(s.status, "committed", "{s:?}");
    }
    let h = c.tx_submit(tx(nonce)).await.unwrap().tx_hash;
    let s = wait_committed(&c, h, COMMIT_TIMEOUT).await;
    assert_eq!(s.status, "committed", "{s:?}");
    // And its files are whole: it restarts from them.
    node.kill9();
    node.start().await;
    let info = node.client().context_info(ctx).await.unwrap();
    assert_eq!(info.height, s.height.unwrap());
}
