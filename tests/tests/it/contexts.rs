//! Contexts created over the network: `context_create` with member ids
//! fetches each member's identity, and every member's node installs the
//! genesis (fetching the app by hash when it lacks it). Then many contexts
//! with different member subsets over four nodes all make progress, and a
//! node never holds a context it is not a member of.

use std::time::Duration;

use conclave_consensus::{ContextId, MemberId};
use conclave_node::rpc::ConclaveApiClient;
use conclave_tests::{signed, wait_committed, TestNet};

use crate::COMMIT_TIMEOUT;

/// Creates a context of `app` on `nodes[creator]` with the members at
/// `members`, every one of which joins.
async fn create(net: &TestNet, app: &str, creator: usize, members: &[usize]) -> ContextId {
    net.create_context(app, creator, members).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_create_a_context_over_the_network() {
    let net = TestNet::start(4).await;
    // `dao` is not installed on the other nodes (their context runs `kv`):
    // they fetch it from the creator by hash.
    let ctx = create(&net, "dao", 0, &[0, 1, 2, 3]).await;
    for (i, node) in net.nodes.iter().enumerate() {
        let info = node.client().context_info(ctx).await;
        assert!(info.is_ok(), "node {i} has the context: {info:?}");
    }
    assert!(net.nodes[2]
        .log()
        .contains("joined a context offered by a member"));

    // A tx submitted to a member that did not create it commits everywhere.
    let keys = net.nodes[2].keys();
    let c = net.nodes[2].client();
    let args = r#"{"threshold":3}"#;
    let h = c
        .tx_submit(signed(&keys, ctx, 1, "configure", args))
        .await
        .unwrap()
        .tx_hash;
    let s = wait_committed(&c, h, COMMIT_TIMEOUT).await;
    assert_eq!(s.status, "committed", "{s:?}");
    let height = s.height.unwrap();
    let mut seen = None;
    for node in &net.nodes {
        let c = node.client();
        let deadline = std::time::Instant::now() + COMMIT_TIMEOUT;
        while c.context_info(ctx).await.unwrap().height < height {
            assert!(std::time::Instant::now() < deadline);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let b = c.block_get(ctx, Some(height)).await.unwrap();
        let got = (b.hash, b.header.state_root);
        assert_eq!(*seen.get_or_insert(got), got);
    }

    // A member id no node answers for: refused, nothing created.
    let before = net.nodes[0].client().context_list().await.unwrap().len();
    let stranger = MemberId([7u8; 32]);
    let refused = net.nodes[0]
        .client()
        .context_create(Some("kv".into()), None, Some(vec![stranger]), None, None)
        .await;
    assert!(refused.is_err(), "{refused:?}");
    let after = net.nodes[0].client().context_list().await.unwrap().len();
    assert_eq!(before, after, "nothing created");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_contexts_over_four_nodes_all_progress_in_isolation() {
    let net = TestNet::start(4).await;
    // Every subset of two or more of the four nodes.
    let subsets: Vec<Vec<usize>> = (1u32..16)
        .filter(|m| m.count_ones() >= 2)
        .map(|m| (0..4).filter(|i| m & (1 << i) != 0).collect())
        .collect();
    assert_eq!(subsets.len(), 11);
    let mut contexts = Vec::new();
    for i in 0..100 {
        let members = &subsets[i % subsets.len()];
        let creator = members[i % members.len()];
        contexts.push((create(&net, "kv", creator, members).await, members.clone()));
    }

    // One tx in each, submitted to one of its members.
    let mut pending = Vec::new();
    for (i, (ctx, members)) in contexts.iter().enumerate() {
        let node = members[(i / 11) % members.len()];
        pending.push(crate::submit_set(&net.nodes[node], *ctx, "k", &format!("v{i}")).await);
    }
    for (c, h) in &pending {
        let s = wait_committed(c, *h, COMMIT_TIMEOUT).await;
        assert_eq!(s.status, "committed", "{s:?}");
    }

    for (i, (ctx, members)) in contexts.iter().enumerate() {
        for (n, node) in net.nodes.iter().enumerate() {
            let c = node.client();
            if members.contains(&n) {
                // Members converge on the value (catching up if needed).
                let deadline = std::time::Instant::now() + COMMIT_TIMEOUT;
                loop {
                    let v = c.state_get(*ctx, "k".into(), None).await.unwrap();
                    if v.value.as_deref() == Some(format!("v{i}").as_str()) {
                        break;
                    }
                    assert!(std::time::Instant::now() < deadline, "context {i} node {n}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            } else {
                // A non-member's node has nothing of it: no record, no
                // blocks, no state.
                assert!(
                    c.context_info(*ctx).await.is_err(),
                    "context {i} on node {n}"
                );
                assert!(c.block_get(*ctx, Some(1)).await.is_err());
            }
        }
    }
}
