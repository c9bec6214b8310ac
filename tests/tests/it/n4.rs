//! Four validators in separate processes on loopback, ordering one
//! context's txs over libp2p with malachite: every member commits the same
//! block at every height; with one of four killed, commits continue.

use conclave_node::rpc::ConclaveApiClient;
use conclave_tests::{signed, wait_committed, TestNet};

use crate::{agreed_tip, assert_agreement, load, COMMIT_TIMEOUT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_members_commit_identical_blocks() {
    let net = TestNet::start(4).await;
    load(&net, 24).await;
    let tip = assert_agreement(&net).await;
    assert!(tip >= 1);
    // Every member reads the same value with the same root.
    let mut answers = Vec::new();
    for node in &net.nodes {
        let v = node
            .client()
            .state_get(net.context, "k7".into(), Some(tip))
            .await
            .unwrap();
        answers.push((v.value, v.state_root));
    }
    assert!(answers.windows(2).all(|w| w[0] == w[1]), "{answers:?}");
    assert_eq!(answers[0].0.as_deref(), Some("7"));
    // Each node sees its three peers and four validators.
    for node in &net.nodes {
        let (_, text) = conclave_tests::http_raw(node.metrics, "GET", "/metrics", b"");
        let line = |name: &str| {
            text.lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.rsplit(' ').next())
                .map(str::to_owned)
        };
        assert_eq!(line("conclave_p2p_peers").as_deref(), Some("3"), "{text}");
        let v = format!(
            "conclave_consensus_validators{{context=\"{}\"}}",
            net.context
        );
        assert_eq!(line(&v).as_deref(), Some("4"));
    }
    // Commit certificates carry a quorum of members' signatures.
    let b = net.nodes[0]
        .client()
        .block_get(net.context, Some(tip))
        .await
        .unwrap();
    assert!(b.signers.len() >= 3, "{:?}", b.signers);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_f1_kill_commits_continue() {
    let mut net = TestNet::start(4).await;
    load(&net, 8).await;
    let before = assert_agreement(&net).await;
    net.nodes[3].kill9();
    // Some heights now have a dead proposer: the round times out and the
    // next round's proposer commits.
    load(&net, 12).await;
    let after = assert_agreement(&net).await;
    assert!(
        after > before,
        "commits continue with 3 of 4 ({before} -> {after})"
    );
    // Blocks committed without it count as missed for it, not for others.
    let (_, text) = conclave_tests::http_raw(net.nodes[0].metrics, "GET", "/metrics", b"");
    let missed = |i: usize| {
        let name = format!(
            "conclave_consensus_missed_blocks{{context=\"{}\",validator=\"{}\"}}",
            net.context,
            net.nodes[i].keys().member_id()
        );
        text.lines()
            .find(|l| l.starts_with(&name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert!(
        missed(3) >= after - before,
        "missed blocks of the killed member:\n{text}"
    );
    // Restarted with nothing left to do, it catches up to the others' tip
    // (tips are compared when members connect), then takes part again.
    net.nodes[3].start().await;
    let c = net.nodes[3].client();
    let deadline = std::time::Instant::now() + COMMIT_TIMEOUT;
    while c.context_info(net.context).await.unwrap().height < after {
        assert!(
            std::time::Instant::now() < deadline,
            "node 3 did not catch up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    load(&net, 4).await;
    assert_agreement(&net).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_f2_kill_halts_then_resumes() {
    let mut net = TestNet::start(4).await;
    load(&net, 4).await;
    // Every node at the last height first: one still committing it when
    // the others are killed would commit it after, with the quorum's votes.
    let before = agreed_tip(&net).await;
    net.nodes[2].kill9();
    net.nodes[3].kill9();

    // Two of four cannot reach a quorum: the tx stays pending and no height
    // is committed over a window of several consensus rounds.
    let node = &net.nodes[0];
    let keys = node.keys();
    let c = node.client();
    let nonce = c
        .context_nonce(net.context, keys.member_id())
        .await
        .unwrap();
    let h = c
        .tx_submit(signed(
            &keys,
            net.context,
            nonce,
            "set",
            r#"{"key":"x","value":"1"}"#,
        ))
        .await
        .unwrap()
        .tx_hash;
    for _ in 0..30 {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        for n in &net.nodes[..2] {
            let tip = n.client().context_info(net.context).await.unwrap().height;
            assert_eq!(tip, before, "no commit without a quorum");
        }
    }
    assert_eq!(c.tx_status(h).await.unwrap().status, "pending");

    // One comes back: three of four commit the waiting tx.
    net.nodes[3].start().await;
    let s = wait_committed(&c, h, COMMIT_TIMEOUT).await;
    assert_eq!(s.status, "committed");
    assert!(s.height.unwrap() > before);
    assert_agreement(&net).await;
}

/// Reliability scenario 1 under load: a client streams txs through all
/// four members while one is killed. Commits go on among the other three
/// with a bounded stall (the dead member's turns to propose cost a round
/// each); after its restart every tx any member acknowledged, the dead
/// one's included, is committed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n4_kill_under_load_stalls_briefly_and_loses_nothing() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    let mut net = TestNet::start(4).await;
    let ctx = net.context;
    load(&net, 4).await;
    let clients: Vec<_> = net.nodes.iter().map(|n| n.client()).collect();
    let keys: Vec<_> = net.nodes.iter().map(|n| n.keys()).collect();
    let mut next = Vec::new();
    for (c, k) in clients.iter().zip(&keys) {
        next.push(c.context_nonce(ctx, k.member_id()).await.unwrap());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicUsize::new(0));
    let acked = Arc::new(Mutex::new(Vec::new()));
    // Bounded: at most 20,000 txs, and until told to stop.
    let streamer = tokio::spawn({
        let (stop, count, acked) = (stop.clone(), count.clone(), acked.clone());
        async move {
            let mut dead = [false; 4];
            for n in 0..20_000usize {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let i = n % 4;
                if dead[i] {
                    continue;
                }
                let args = format!(r#"{{"key":"s{n}","value":"{n}"}}"#);
                let tx = signed(&keys[i], ctx, next[i], "set", &args);
                match clients[i].tx_submit(tx).await {
                    Ok(ok) => {
                        next[i] += 1;
                        acked.lock().unwrap().push((i, ok.tx_hash));
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                    // The killed member: its client goes on with the others.
                    Err(_) => dead[i] = true,
                }
            }
        }
    });
    let wait_count = |n: usize| {
        let count = count.clone();
        async move {
            let deadline = std::time::Instant::now() + COMMIT_TIMEOUT;
            while count.load(Ordering::SeqCst) < n {
                assert!(std::time::Instant::now() < deadline, "the stream stopped");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    wait_count(100).await;
    let c0 = net.nodes[0].client();
    let from = c0.context_info(ctx).await.unwrap().height;
    net.nodes[3].kill9();
    // Heights enough for the dead member's turns to propose to come up.
    let deadline = std::time::Instant::now() + COMMIT_TIMEOUT;
    while c0.context_info(ctx).await.unwrap().height < from + 8 {
        assert!(
            std::time::Instant::now() < deadline,
            "commits stopped after the kill"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    streamer.await.unwrap();

    // The stall: the largest gap between consecutive blocks from the kill
    // until the stream stopped.
    let to = c0.context_info(ctx).await.unwrap().height;
    assert!(to > from, "no commit after the kill");
    let mut times = Vec::new();
    for h in from..=to {
        times.push(c0.block_get(ctx, Some(h)).await.unwrap().header.time_ms);
    }
    let stall = times.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    println!(
        "kill under load: {} heights after the kill, longest gap {stall} ms",
        to - from
    );
    assert!(stall <= 10_000, "commits stalled {stall} ms after the kill");

    net.nodes[3].start().await;
    let acked = acked.lock().unwrap().clone();
    for (i, h) in &acked {
        let s = wait_committed(&c0, *h, COMMIT_TIMEOUT).await;
        assert_eq!(
            s.status, "committed",
            "tx acknowledged by member {i}: {s:?}"
        );
    }
    assert_agreement(&net).await;
}
