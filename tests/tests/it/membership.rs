//! Scenario 15: membership changes, then a fresh node joins. A member is
//! invited at height H and validates from H + 2 on every node; its fresh
//! node joins through a member, syncs to the tip with matching blocks and
//! state roots, and its vote becomes needed for a quorum. Then a member is
//! removed: certificates after its removal never carry its vote, the others
//! rotate the context key, and it cannot open their traffic any more. Bad
//! membership input is refused and changes nothing.

use std::time::{Duration, Instant};

use conclave_consensus::{ContextId, Hash32};
use conclave_node::rpc::{ConclaveApiClient, MembersApiClient};
use conclave_tests::{signed, wait_committed, TestNet, TestNode};
use jsonrpsee::core::ClientError;

use crate::{load, load_on, COMMIT_TIMEOUT};

/// A fresh node (not in the genesis) whose static peers are `net`'s nodes.
async fn fresh_node(net: &TestNet) -> TestNode {
    let peers: Vec<String> = net
        .nodes
        .iter()
        .map(|n| {
            let c = conclave_node::config::Config::load(n.home()).expect("config");
            let peer = conclave_network::peer_id_of(&n.keys().member_id()).unwrap();
            format!("{}/p2p/{peer}", c.p2p.listen)
        })
        .collect();
    let mut node = TestNode::init();
    node.edit_config(|c| c.p2p.persistent_peers = peers.clone());
    node.start().await;
    node
}

fn code(e: &ClientError) -> i32 {
    match e {
        ClientError::Call(o) => o.code(),
        other => panic!("not a call error: {other}"),
    }
}

async fn height(node: &TestNode, ctx: ContextId) -> u64 {
    node.client().context_info(ctx).await.unwrap().height
}

/// Waits until `node` reaches `h`.
async fn wait_height(node: &TestNode, ctx: ContextId, h: u64) {
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    loop {
        if let Ok(info) = node.client().context_info(ctx).await {
            if info.height >= h {
                return;
            }
        }
        assert!(Instant::now() < deadline, "node never reached height {h}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Blocks and state roots agree on `nodes` up to `tip`; returns the block
/// views of `nodes[0]`.
async fn agree(
    nodes: &[&TestNode],
    ctx: ContextId,
    tip: u64,
) -> Vec<conclave_node::rpc::types::BlockView> {
    let mut views = Vec::new();
    for h in 1..=tip {
        let first = nodes[0].client().block_get(ctx, Some(h)).await.unwrap();
        for n in &nodes[1..] {
            let b = n.client().block_get(ctx, Some(h)).await.unwrap();
            assert_eq!(
                (b.hash, b.header.state_root),
                (first.hash, first.header.state_root),
                "fork at height {h}"
            );
        }
        views.push(first);
    }
    views
}

/// Submits a membership tx through `f` until the member's node answers
/// (the fresh node may still be connecting); returns the committed height.
async fn committed(c: &jsonrpsee::http_client::HttpClient, tx: Hash32) -> u64 {
    let s = wait_committed(c, tx, COMMIT_TIMEOUT).await;
    assert_eq!(s.status, "committed", "{s:?}");
    s.height.unwrap()
}

async fn metric(node: &TestNode, name: &str) -> f64 {
    let (_, body) = conclave_tests::http_raw(node.metrics, "GET", "/metrics", b"");
    body.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_join_validate_then_remove_and_rotate() {
    let mut net = TestNet::start(4).await;
    let ctx = net.context;
    load(&net, 2).await;
    let fresh = fresh_node(&net).await;
    let fresh_id = fresh.keys().member_id();
    let c0 = net.nodes[0].client();

    // Bad input first: each refused, nothing changes.
    let before = c0.context_members(ctx, None).await.unwrap();
    // An invite signed by a non-member (the fresh node's own key).
    let forged = signed(&fresh.keys(), ctx, 1, "conclave.invite", "x");
    let e = c0.tx_submit(forged).await.unwrap_err();
    assert_eq!(code(&e), -32010, "{e}");
    assert!(e.to_string().contains("not a member"), "{e}");
    // Joining before any invitation, and joining a context that does not
    // exist (no genesis hashes to it).
    let via = net.nodes[1].keys().member_id().to_string();
    let e = fresh
        .client()
        .context_join(ctx, via.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("no committed invitation"), "{e}");
    let e = fresh
        .client()
        .context_join(ContextId([0x42; 32]), via.clone())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("unknown context"), "{e}");
    assert!(fresh.client().context_list().await.unwrap().is_empty());
    // Removing a non-member, inviting a member.
    let e = c0.context_remove(ctx, fresh_id).await.unwrap_err();
    assert!(e.to_string().contains("not a member"), "{e}");
    let e = c0
        .context_invite(ctx, net.nodes[1].keys().member_id())
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already"), "{e}");
    assert_eq!(
        serde_json::to_value(c0.context_members(ctx, None).await.unwrap().sets).unwrap(),
        serde_json::to_value(&before.sets).unwrap()
    );

    // Invite: committed at H, in force from H + 2.
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    let tx = loop {
        match c0.context_invite(ctx, fresh_id).await {
            Ok(tx) => break tx,
            Err(e) if code(&e) == -32021 && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("invite: {e}"),
        }
    };
    assert_eq!(tx.activation_offset, 2);
    let h = committed(&c0, tx.tx_hash).await;
    for node in &net.nodes {
        wait_height(node, ctx, h).await;
        let m = node.client().context_members(ctx, None).await.unwrap();
        let latest = m.sets.last().unwrap();
        assert_eq!(latest.from, h + 2, "{m:?}");
        let entry = latest.members.iter().find(|e| e.id == fresh_id).unwrap();
        assert_eq!(entry.since, h + 2);
        assert_eq!(latest.members.len(), 5);
    }

    // The fresh node joins through node 1 and catches up.
    let joined = fresh.client().context_join(ctx, via).await.unwrap();
    assert_eq!(joined.context_id, ctx);
    for _ in 0..20 {
        load(&net, 2).await;
        if height(&net.nodes[0], ctx).await >= h + 3 {
            break;
        }
    }
    let tip = height(&net.nodes[0], ctx).await;
    assert!(tip >= h + 3, "tip {tip}, invite at {h}");
    wait_height(&fresh, ctx, tip).await;
    let all: Vec<&TestNode> = net.nodes.iter().chain([&fresh]).collect();
    let views = agree(&all, ctx, tip).await;
    let new_hash = c0
        .context_members(ctx, None)
        .await
        .unwrap()
        .sets
        .last()
        .unwrap()
        .members_hash;
    for b in &views {
        let hh = b.header.height.0;
        // A block names the set that validates the height after it.
        assert_eq!(
            b.header.members_hash == new_hash,
            hh + 1 >= h + 2,
            "height {hh}"
        );
        if hh < h + 2 {
            assert!(
                !b.signers.contains(&fresh_id),
                "the new member signed height {hh}"
            );
        }
    }

    // With one original member down, 4 of 5 is the quorum: the new
    // member's vote is needed, and is in every certificate.
    net.nodes[3].kill9();
    let before_kill = height(&net.nodes[0], ctx).await;
    load(&net, 3).await;
    let tip = height(&net.nodes[0], ctx).await;
    assert!(
        tip > before_kill,
        "no commits with the new member as the 4th vote"
    );
    for hh in before_kill + 1..=tip {
        let b = c0.block_get(ctx, Some(hh)).await.unwrap();
        assert!(
            b.signers.contains(&fresh_id),
            "height {hh} committed without the new member"
        );
    }
    net.nodes[3].start().await;
    wait_height(&net.nodes[3], ctx, tip).await;

    // Remove member 3 (running): committed at H2, in force from H2 + 2,
    // with a new key for the others.
    let removed = net.nodes[3].keys().member_id();
    let tx = c0.context_remove(ctx, removed).await.unwrap();
    let h2 = committed(&c0, tx.tx_hash).await;
    let stay: Vec<&TestNode> = net.nodes[..3].iter().chain([&fresh]).collect();
    // Blocks batch txs: load until three heights past the removal.
    for _ in 0..20 {
        if height(&net.nodes[0], ctx).await >= h2 + 3 {
            break;
        }
        load_on(&stay, ctx, 2).await;
    }
    let tip = height(&net.nodes[0], ctx).await;
    assert!(tip >= h2 + 3, "tip {tip}, removal at {h2}");
    wait_height(&fresh, ctx, tip).await;
    agree(&stay, ctx, tip).await;
    let m = c0.context_members(ctx, None).await.unwrap();
    let latest = m.sets.last().unwrap();
    assert!(latest.members.iter().all(|e| e.id != removed));
    assert_eq!(latest.key_epoch, 1, "removal rotates the key");
    for hh in h2 + 2..=tip {
        let b = c0.block_get(ctx, Some(hh)).await.unwrap();
        assert!(
            !b.signers.contains(&removed),
            "the removed member signed height {hh}"
        );
    }
    // The others no longer send it anything (consensus goes straight to
    // the members; gossip, while a member is unreachable, may still pass
    // through it sealed under the new key, which it never got: see below).
    // It holds nothing past the last height it validated.
    // Its own node no longer serves it the context's data.
    let e = net.nodes[3].client().context_info(ctx).await.unwrap_err();
    assert_eq!(code(&e), -32031, "{e}");
    let removed_tip = metric(
        &net.nodes[3],
        &format!("conclave_consensus_height{{context=\"{}\"}}", ctx.to_hex()),
    )
    .await as u64;
    assert!(
        removed_tip <= h2 + 1,
        "the removed node followed to {removed_tip} (removal at {h2})"
    );
    let log = net.nodes[3].log();
    assert!(
        !log.lines()
            .any(|l| l.contains("received the context key") && l.contains("epoch=1")),
        "the removed node got the new key"
    );
    assert!(log.contains("this node's member was removed"));
    // Its txs are refused now.
    let keys3 = net.nodes[3].keys();
    let e = c0
        .tx_submit(signed(
            &keys3,
            ctx,
            100,
            "set",
            r#"{"key":"x","value":"y"}"#,
        ))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("not a member"), "{e}");

    // The new member leaves; the remaining member with the lowest id
    // rotates the key again.
    let tx = fresh.client().context_leave(ctx).await.unwrap();
    let h3 = committed(&fresh.client(), tx.tx_hash).await;
    let stay: Vec<&TestNode> = net.nodes[..3].iter().collect();
    let deadline = Instant::now() + COMMIT_TIMEOUT;
    loop {
        let m = c0.context_members(ctx, None).await.unwrap();
        let latest = m.sets.last().unwrap();
        if latest.key_epoch == 2 {
            assert!(latest.members.iter().all(|e| e.id != fresh_id));
            assert_eq!(latest.members.len(), 3);
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no rotation after the leave at {h3}: {m:?}"
        );
        load_on(&stay, ctx, 1).await;
    }
    load_on(&stay, ctx, 3).await;
    let tip = height(&net.nodes[0], ctx).await;
    agree(&stay, ctx, tip).await;
    // The member that left reads the receipt of its own leave, once the
    // leave has taken it out of the context (it decided that height).
    let s = fresh.client().tx_status(tx.tx_hash).await.unwrap();
    assert_eq!(
        (s.status.as_str(), s.height),
        ("committed", Some(h3)),
        "{s:?}"
    );
}
