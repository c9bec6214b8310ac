//! Damaged files at process level (reliability scenario 7): one member of
//! four is stopped, a file of its home is damaged, and it is started
//! again. Each kind of damage either is repaired by the node itself with a
//! backup kept (a torn WAL tail), or makes the node refuse to start with a
//! message naming the damage and `conclave repair`; after the repair the
//! node catches up with the same blocks and roots as the others, and no
//! node holds evidence against it (it never signed a conflicting vote).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use conclave_consensus::sign_policy::{SignPosition, SignStep};
use conclave_consensus::Height;
use conclave_node::rpc::{ConclaveApiClient, EvidenceApiClient};
use conclave_tests::{TestNet, TestNode};

use crate::{assert_agreement, load, load_on, COMMIT_TIMEOUT};

/// The one file of `dir` (recursively) whose name satisfies `pick`, or the
/// largest of several.
fn largest(dir: &Path, pick: &dyn Fn(&str) -> bool) -> Option<PathBuf> {
    let mut best: Option<(u64, PathBuf)> = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_file() && pick(&name) {
            let len = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if best.as_ref().is_none_or(|(l, _)| len > *l) {
                best = Some((len, path));
            }
        }
    }
    best.map(|(_, p)| p)
}

/// Flips every bit of `len` bytes of `path` at `offset`.
fn flip(path: &Path, offset: u64, len: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = offset as usize;
    assert!(at + len <= bytes.len(), "{} is too short", path.display());
    for b in &mut bytes[at..at + len] {
        *b ^= 0xff;
    }
    std::fs::write(path, bytes).unwrap();
}

async fn height(node: &TestNode, ctx: conclave_consensus::ContextId) -> u64 {
    node.client().context_info(ctx).await.unwrap().height
}

/// Commits a few txs through the running members other than `node` (a
/// member still catching up answers nonces from its old state), then
/// waits until `node` has the height node 0 reached.
async fn caught_up(net: &TestNet, node: usize) {
    let others: Vec<&TestNode> = (net.nodes.iter().enumerate())
        .filter(|(i, n)| *i != node && n.is_running())
        .map(|(_, n)| n)
        .collect();
    load_on(&others, net.context, 4).await;
    let target = height(&net.nodes[0], net.context).await;
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    while net.nodes[node]
        .client()
        .context_info(net.context)
        .await
        .ok()
        .is_none_or(|i| i.height < target)
    {
        assert!(
            Instant::now() < deadline,
            "node {node} did not catch up to {target}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_agreement(net).await;
}

/// Runs `conclave repair` on `node`; returns its stdout, which must show
/// it succeeded.
fn repair(node: &TestNode, args: &[&str]) -> String {
    let mut all = vec!["repair"];
    all.extend_from_slice(args);
    let out = node.cli(&all);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "repair failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn assert_refusal(log: &str, what: &str) {
    assert!(
        log.contains("damaged:") && log.contains(what) && log.contains("repair"),
        "the refusal does not name {what:?} and the repair: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_files_are_repaired_or_refused_and_the_node_rejoins() {
    let mut net = TestNet::start(4).await;
    let ctx = net.context;
    load(&net, 8).await;
    let home = net.nodes[3].home().to_path_buf();
    let wal_dir = home.join("wal");
    let wal = wal_dir.join(format!("{}.wal", ctx.to_hex()));
    let guard = wal_dir.join(format!("{}.sign", ctx.to_hex()));

    // 0. A clean kill: the zeros the WAL writes ahead of its records read
    //    as its end at the restart, nothing cut and nothing backed up.
    net.nodes[3].kill9();
    net.nodes[3].start().await;
    caught_up(&net, 3).await;
    assert!(
        largest(&wal_dir, &|n| n.contains(".corrupt-")).is_none(),
        "a clean restart cut its WAL"
    );

    // 1. A torn WAL tail (a crash in the middle of an append): the node
    //    cuts it, keeps the cut bytes, and starts by itself. (Zeros alone
    //    are the space the log writes ahead of its records, no damage.)
    net.nodes[3].kill9();
    {
        use std::io::Write;
        std::fs::OpenOptions::new()
            .append(true)
            .open(&wal)
            .unwrap()
            .write_all(&[0xa5; 7])
            .unwrap();
    }
    net.nodes[3].start().await;
    assert!(
        largest(&wal_dir, &|n| n.contains(".wal.corrupt-")).is_some(),
        "no backup of the cut tail"
    );
    caught_up(&net, 3).await;

    // 2. A damaged sign guard: refused (the node cannot know what its key
    //    signed last); the repair replaces it by a guard that signs nothing
    //    at the height the node was at, and the node signs again after it.
    net.nodes[3].kill9();
    flip(&guard, 20, 4);
    let log = net.nodes[3].start_refused().await;
    assert_refusal(&log, "sign state");
    let out = repair(&net.nodes[3], &[]);
    assert!(out.contains("signs nothing at or below height"), "{out}");
    net.nodes[3].start().await;
    caught_up(&net, 3).await;
    let me = net.nodes[3].keys().member_id();
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    'signs: loop {
        load(&net, 4).await;
        let tip = height(&net.nodes[0], ctx).await;
        for h in tip.saturating_sub(3)..=tip {
            let b = net.nodes[0].client().block_get(ctx, Some(h)).await.unwrap();
            if b.signers.contains(&me) {
                break 'signs;
            }
        }
        assert!(
            Instant::now() < deadline,
            "the repaired node never signed again"
        );
    }

    // 2b. A sign guard file behind its WAL (its last overwrite, never
    //     synced, lost with the machine; the WAL's guard record was
    //     synced): the node takes the WAL's at start, and so does a repair.
    let behind = |latest: &conclave_node::sign_guard::LastSigned| {
        let older = SignPosition {
            height: Height(latest.position.height.0 - 1),
            round: 0,
            step: SignStep::Prevote,
        };
        conclave_node::sign_guard::SignGuard::write_barrier(&guard, older).unwrap();
    };
    let peek = || {
        conclave_node::sign_guard::SignGuard::peek(&guard)
            .unwrap()
            .unwrap()
            .position
    };
    net.nodes[3].kill9();
    let latest = conclave_node::wal::latest_signature_in(&wal)
        .unwrap()
        .unwrap();
    behind(&latest);
    let out = repair(&net.nodes[3], &[]);
    assert!(out.contains("raised to the WAL's last signature"), "{out}");
    assert_eq!(peek(), latest.position);
    behind(&latest);
    net.nodes[3].start().await;
    assert!(peek() >= latest.position, "the guard went back at start");
    caught_up(&net, 3).await;

    // 3. RocksDB's MANIFEST deleted: refused; RocksDB's repair rebuilds it
    //    from the table files and its log, and every context checks whole.
    net.nodes[3].kill9();
    let data = home.join("data");
    let manifest = largest(&data, &|n| n.starts_with("MANIFEST-")).unwrap();
    std::fs::remove_file(&manifest).unwrap();
    let log = net.nodes[3].start_refused().await;
    assert_refusal(&log, "database");
    let out = repair(&net.nodes[3], &[]);
    assert!(out.contains("repaired by RocksDB"), "{out}");
    let kept = std::fs::read_dir(home.join("repair-backups"))
        .unwrap()
        .flatten()
        .any(|d| d.path().join("data").join("CURRENT").exists());
    assert!(kept, "no copy of the damaged database was kept");
    net.nodes[3].start().await;
    caught_up(&net, 3).await;

    // 4. A table file damaged in its middle: the repair finds it (every
    //    record is read against its checksum), keeps a copy, and sets the
    //    table aside; what was lost is then found missing, so the context
    //    cannot be made whole locally: the operator resets the node's data
    //    (its sign guard stays) and it fetches the context again.
    net.nodes[3].kill9();
    {
        let store = conclave_node::store::Store::open(&data, &net.nodes[3].storage_key()).unwrap();
        store.flush().unwrap();
    }
    let sst = largest(&data, &|n| n.ends_with(".sst")).unwrap();
    let sst_len = std::fs::metadata(&sst).unwrap().len();
    flip(&sst, sst_len / 3, 64);
    let out = net.nodes[3].cli(&["repair"]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    println!("conclave repair:\n{stdout}");
    assert!(
        stdout.contains("database") && stdout.contains("copied to"),
        "the damaged table was not found: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if !out.status.success() {
        assert!(stdout.contains("cannot be made whole here"), "{stdout}");
        let out = repair(&net.nodes[3], &["--reset"]);
        assert!(out.contains("database: moved to"), "{out}");
        assert!(guard.exists(), "the reset removed the sign guard");
    }
    net.nodes[3].start().await;
    caught_up(&net, 3).await;

    // Nobody holds evidence against the member whose files were damaged.
    for node in &net.nodes {
        let evidence = node.client().evidence_list(ctx, None).await.unwrap();
        assert!(evidence.is_empty(), "evidence: {evidence:?}");
    }
}
