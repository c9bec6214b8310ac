//! Kill one of two nodes and restart it with the same key and port: the
//! other node's static-peer redial reconnects, and consensus messages and
//! pushes flow again on new streams.

use conclave_network::NetworkEvent;
use libp2p::multiaddr::Protocol;

use crate::support::*;

async fn wait_event(node: &mut Node, what: &str, pred: impl Fn(&NetworkEvent) -> bool) {
    within(what, async {
        while let Some(event) = node.events.recv().await {
            if pred(&event) {
                return;
            }
        }
        panic!("event channel closed");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n2_restarted_static_peer_reconnects_and_gossips() {
    let b = start(82, cfg()).await;
    let mut a_cfg = cfg();
    a_cfg.static_peers = vec![b.addr.clone()];
    let mut a = start(81, a_cfg).await;
    let (b_member, b_secret) = (b.member, b.secret);
    let b_listen: libp2p::Multiaddr = b
        .addr
        .iter()
        .filter(|p| !matches!(p, Protocol::P2p(_)))
        .collect();

    // a dials its static peer by itself.
    wait_event(
        &mut a,
        "first connection",
        |e| matches!(e, NetworkEvent::PeerConnected(m) if *m == b_member),
    )
    .await;
    let members = vec![a.member, b_member];
    a.handle.join(ctx(12), members.clone()).await.unwrap();
    b.handle.join(ctx(12), members.clone()).await.unwrap();
    let mut b = b;
    wait_subscribed(&a, ctx(12), &[b_member]).await;
    a.handle.publish(ctx(12), b"before".to_vec()).await.unwrap();
    assert_eq!(
        next_message(&mut b).await,
        (ctx(12), a.member, b"before".to_vec())
    );

    // Kill b.
    b.handle.shutdown().await;
    drop(b);
    wait_event(
        &mut a,
        "disconnect",
        |e| matches!(e, NetworkEvent::PeerDisconnected(m) if *m == b_member),
    )
    .await;
    assert!(matches!(
        a.handle.publish(ctx(12), b"into the void".to_vec()).await,
        Err(conclave_network::Error::NoPeers(_))
    ));

    // Restart b with the same key and port; a redials it.
    let mut b_cfg = cfg();
    b_cfg.listen = b_listen;
    let mut b = start(82, b_cfg).await;
    assert_eq!((b.member, b.secret), (b_member, b_secret));
    wait_event(
        &mut a,
        "reconnection",
        |e| matches!(e, NetworkEvent::PeerConnected(m) if *m == b_member),
    )
    .await;
    b.handle.join(ctx(12), members).await.unwrap();
    wait_subscribed(&a, ctx(12), &[b_member]).await;
    wait_subscribed(&b, ctx(12), &[a.member]).await;

    a.handle.publish(ctx(12), b"after".to_vec()).await.unwrap();
    // "before" may come first: a stream that a was still opening to b
    // when b died opens to the restarted b and delivers what it held.
    let mut got = next_message(&mut b).await;
    if got.2 == b"before" {
        got = next_message(&mut b).await;
    }
    assert_eq!(got, (ctx(12), a.member, b"after".to_vec()));
    // Straight from a too, on a stream opened after the restart (gossip
    // may bring its copy first while that stream opens).
    wait_until("a's message straight from a", || async {
        b.handle.metrics().direct_received >= 1
    })
    .await;
    assert_eq!(a.handle.push(ctx(12), b"bulk".to_vec()).await.unwrap(), 1);
    assert_eq!(
        next_push(&mut b).await,
        (ctx(12), a.member, b"bulk".to_vec())
    );
    b.handle.publish(ctx(12), b"back".to_vec()).await.unwrap();
    assert_eq!(
        next_message(&mut a).await,
        (ctx(12), b_member, b"back".to_vec())
    );
}
