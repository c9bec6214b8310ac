//! Faults among four validator processes on loopback (RELIABILITY.md
//! scenarios 3–6): partitions 2|2 and 3|1 through the nodes' fault-injecting
//! transport (`debug_set_blocked_peers`), a member whose gossip is all lost
//! with its connections up (`debug_set_link_faults`), a proposer frozen
//! with SIGSTOP, and crashes at each WAL and commit step
//! (`CONCLAVE_FAILPOINT`). After each: no fork, progress resumes, the
//! minority catches up, and every acknowledged tx is committed.

use std::time::{Duration, Instant};

use conclave_consensus::mal::Round;
use conclave_consensus::{Hash32, Height, ValidatorSet};
use conclave_node::link_faults::LinkFault;
use conclave_node::rpc::{ConclaveApiClient, DebugApiClient};
use conclave_tests::{signed, wait_committed, NetOptions, TestNet, TestNode};
use jsonrpsee::http_client::HttpClient;

use crate::{agreed_tip, assert_agreement, converge, load, load_on, tip, COMMIT_TIMEOUT};

async fn fault_net() -> TestNet {
    TestNet::start_configured(4, NetOptions::default(), |c| c.debug.fault_injection = true).await
}

/// Submits one `set` to `node`, signed by its member; does not wait.
async fn submit(net: &TestNet, node: &TestNode, key: &str) -> (HttpClient, Hash32) {
    let keys = node.keys();
    let c = node.client();
    let nonce = c
        .context_nonce(net.context, keys.member_id())
        .await
        .unwrap();
    let args = format!(r#"{{"key":"{key}","value":"v-{key}"}}"#);
    let h = c
        .tx_submit(signed(&keys, net.context, nonce, "set", &args))
        .await
        .unwrap()
        .tx_hash;
    (c, h)
}

/// Cuts the network into `groups` (node indexes): each node blocks every
/// node outside its group.
async fn partition(net: &TestNet, groups: &[&[usize]]) {
    for group in groups {
        let outside: Vec<_> = (0..net.nodes.len())
            .filter(|i| !group.contains(i))
            .map(|i| net.nodes[i].keys().member_id())
            .collect();
        for &i in *group {
            net.nodes[i]
                .client()
                .debug_set_blocked_peers(outside.clone())
                .await
                .unwrap();
        }
    }
}

async fn heal(net: &TestNet) {
    for node in net.nodes.iter().filter(|n| n.is_running()) {
        node.client()
            .debug_set_blocked_peers(Vec::new())
            .await
            .unwrap();
    }
}

/// For `secs` seconds, asserts the nodes in `which` stay at `at`.
async fn assert_stuck(net: &TestNet, which: &[usize], at: u64, secs: u64) {
    for _ in 0..secs * 5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        for &i in which {
            assert_eq!(tip(&net.nodes[i], net).await, at, "node {i} committed");
        }
    }
}

/// No node saw a member sign two different messages at one position.
fn assert_no_equivocation(net: &TestNet) {
    for (i, node) in net.nodes.iter().enumerate() {
        let log = node.log();
        assert!(
            !log.contains("equivocation evidence"),
            "node {i} saw equivocation:\n{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_2_2_halts_then_heals_without_fork() {
    let net = fault_net().await;
    load(&net, 4).await;
    let before = agreed_tip(&net).await;

    partition(&net, &[&[0, 1], &[2, 3]]).await;
    let (ca, a) = submit(&net, &net.nodes[0], "left").await;
    let (cb, b) = submit(&net, &net.nodes[2], "right").await;
    // Neither half has more than 2/3 of the members.
    assert_stuck(&net, &[0, 1, 2, 3], before, 4).await;

    heal(&net).await;
    for (c, h) in [(ca, a), (cb, b)] {
        assert_eq!(
            wait_committed(&c, h, COMMIT_TIMEOUT).await.status,
            "committed"
        );
    }
    let tip = converge(&net).await;
    assert!(tip > before);
    assert_eq!(assert_agreement(&net).await, tip);
    assert_no_equivocation(&net);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_3_1_majority_continues_minority_catches_up() {
    let net = fault_net().await;
    load(&net, 4).await;
    let before = agreed_tip(&net).await;

    partition(&net, &[&[0, 1, 2], &[3]]).await;
    // The minority's tx waits; the majority commits (its own txs, and
    // heights whose proposer is the cut-off member time out to the next).
    let (c3, lone) = submit(&net, &net.nodes[3], "lonely").await;
    let mut majority = Vec::new();
    for i in 0..6 {
        majority.push(submit(&net, &net.nodes[i % 3], &format!("m{i}")).await);
    }
    for (c, h) in &majority {
        assert_eq!(
            wait_committed(c, *h, COMMIT_TIMEOUT).await.status,
            "committed"
        );
    }
    assert!(tip(&net.nodes[0], &net).await > before);
    assert_eq!(
        tip(&net.nodes[3], &net).await,
        before,
        "the minority cannot commit"
    );
    assert_eq!(c3.tx_status(lone).await.unwrap().status, "pending");

    heal(&net).await;
    // It catches up (sync on reconnect) and its tx gets in.
    assert_eq!(
        wait_committed(&c3, lone, COMMIT_TIMEOUT).await.status,
        "committed"
    );
    converge(&net).await;
    assert_agreement(&net).await;
    assert_no_equivocation(&net);
}

/// Member 3 hears nothing from the others (every gossip message and push
/// dropped where it receives them; its connections stay up, so no
/// connection event) while they decide heights, and no load follows:
/// nothing it hears reveals that it is behind. Its node's tip watch asks
/// the others (`node/src/tip_watch.rs`), and it reaches their tip with the
/// faults still in force.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_hears_no_gossip_reaches_the_tip_while_idle() {
    let net = fault_net().await;
    load(&net, 2).await;
    let before = agreed_tip(&net).await;
    let ids: Vec<_> = net.nodes.iter().map(|n| n.keys().member_id()).collect();
    let deaf: Vec<LinkFault> = ids[..3]
        .iter()
        .map(|from| LinkFault {
            from: *from,
            drop_permille: 1000,
            delay_ms: 0,
        })
        .collect();
    net.nodes[3]
        .client()
        .debug_set_link_faults(deaf)
        .await
        .unwrap();
    let majority: Vec<&TestNode> = net.nodes[..3].iter().collect();
    load_on(&majority, net.context, 4).await;
    let mut target = 0;
    for node in &majority {
        target = target.max(tip(node, &net).await);
    }
    assert!(target > before, "the majority committed nothing");

    let deadline = Instant::now() + COMMIT_TIMEOUT;
    while tip(&net.nodes[3], &net).await < target {
        assert!(
            Instant::now() < deadline,
            "member 3 stayed at {} behind {target}",
            tip(&net.nodes[3], &net).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // It was told by the watch, counted as the idle safety net.
    let idle = format!(
        "conclave_consensus_fallbacks_total{{context=\"{}\",kind=\"idle\"}}",
        net.context.to_hex()
    );
    assert!(
        net.nodes[3].metric_sum(&idle) >= 1.0,
        "no idle fallback counted"
    );
    net.nodes[3]
        .client()
        .debug_set_link_faults(Vec::new())
        .await
        .unwrap();
    let tip = converge(&net).await;
    assert_eq!(assert_agreement(&net).await, tip);
    assert_no_equivocation(&net);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigstopped_proposer_is_skipped_then_catches_up() {
    let net = TestNet::start(4).await;
    load(&net, 4).await;
    let before = agreed_tip(&net).await;

    // The proposer of the next height's first round.
    let members: Vec<_> = net.nodes.iter().map(|n| n.keys().member_id()).collect();
    let set = ValidatorSet::from_members(&members).unwrap();
    let proposer = set
        .proposer(&net.context, Height(before + 1), Round::new(0))
        .address;
    let p = members.iter().position(|m| *m == proposer).unwrap();
    net.nodes[p].pause();

    let other = &net.nodes[(p + 1) % 4];
    let (c, h) = submit(&net, other, "while-frozen").await;
    let status = wait_committed(&c, h, COMMIT_TIMEOUT).await;
    assert_eq!(status.status, "committed", "round 1's proposer commits it");
    let block = c.block_get(net.context, status.height).await.unwrap();
    assert_ne!(block.header.proposer, proposer);

    net.nodes[p].resume();
    load(&net, 4).await;
    converge(&net).await;
    assert_agreement(&net).await;
    assert_no_equivocation(&net);
}

/// Crash points of a validator, each hit under load, in turn: the node
/// restarts from its WAL, sign guard and store each time.
const CRASH_POINTS: [(&str, u32); 8] = [
    ("wal_write", 5),
    ("guard_written_unsynced", 3),
    ("sign_recorded", 3),
    ("before_publish", 4),
    ("after_publish", 4),
    ("proposal_persisted", 1),
    ("before_commit", 2),
    ("after_commit", 2),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_at_each_wal_and_commit_step_recovers() {
    let mut net = TestNet::start(4).await;
    load(&net, 4).await;
    let mut acknowledged = Vec::new();
    let mut n = 0usize;
    for (point, at) in CRASH_POINTS {
        net.nodes[0].kill9();
        let spec = format!("{point}:{at}");
        net.nodes[0].spawn_with_env(&[("CONCLAVE_FAILPOINT", &spec)]);
        // Load on the other members until the armed node crashes.
        let deadline = Instant::now() + COMMIT_TIMEOUT;
        loop {
            for i in 1..4 {
                n += 1;
                acknowledged.push(submit(&net, &net.nodes[i], &format!("c{n}")).await);
            }
            if net.nodes[0].wait_exit(Duration::from_millis(300)).await {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "crash point {point} not reached; log:\n{}",
                net.nodes[0].log()
            );
        }
        assert!(
            net.nodes[0]
                .log()
                .contains(&format!("failpoint {point} reached")),
            "node 0 exited, but not at {point}:\n{}",
            net.nodes[0].log()
        );
    }
    for (c, h) in &acknowledged {
        assert_eq!(
            wait_committed(c, *h, COMMIT_TIMEOUT).await.status,
            "committed"
        );
    }
    // Restarted with nothing more to do, it still catches up: members
    // exchange tips when they connect.
    net.nodes[0].start().await;
    let log = net.nodes[0].log();
    assert!(
        log.contains("resuming the height from the WAL"),
        "some crash left a height in progress to resume:\n{log}"
    );
    converge(&net).await;
    assert_agreement(&net).await;
    load(&net, 4).await;
    assert_agreement(&net).await;
    assert_no_equivocation(&net);
}
