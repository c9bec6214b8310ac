//! Four validators in separate processes on loopback, ordering one
//! context's txs over libp2p with malachite: every member commits the same
//! block at every height; with one of four killed, commits continue.

use conclave_node::rpc::ConclaveApiClient;
use conclave_tests::{signed, wait_committed, TestNet};

use crate::{assert_agreement, load, COMMIT_TIMEOUT};

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
    let before = assert_agreement(&net).await;
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
