//! A context's safety net asks the network to redial a member it no
//! longer hears. The connection is cut only if nothing of the member's
//! consensus came over it lately: on a node running many contexts, one
//! context's slow height must not cut the streams every other context
//! sends on.

use std::time::Duration;

use conclave_network::NetworkEvent;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_heard_lately_is_not_reconnected_a_silent_one_is() {
    let b = start(111, cfg()).await;
    let c = start(112, cfg()).await;
    let mut a_cfg = cfg();
    a_cfg.static_peers = vec![b.addr.clone(), c.addr.clone()];
    let mut a = start(110, a_cfg).await;
    wait_until("a connected to b and c", || async {
        let peers = a.handle.peers().await;
        peers.contains(&b.member) && peers.contains(&c.member)
    })
    .await;
    let members = vec![a.member, b.member, c.member];
    for n in [&a, &b, &c] {
        n.handle.join(ctx(30), members.clone()).await.unwrap();
    }
    wait_subscribed(&a, ctx(30), &[b.member, c.member]).await;
    wait_subscribed(&b, ctx(30), &[a.member]).await;

    // b's consensus reaches a.
    within("a message from b", async {
        loop {
            b.handle.publish(ctx(30), b"vote".to_vec()).await.ok();
            let got = tokio::time::timeout(Duration::from_millis(300), async {
                loop {
                    match a.events.recv().await {
                        Some(NetworkEvent::Message { from, .. }) if from == b.member => return,
                        Some(_) => {}
                        None => panic!("event channel closed"),
                    }
                }
            })
            .await;
            if got.is_ok() {
                return;
            }
        }
    })
    .await;

    // Asked to redial b (one context did not hear it): b was heard, so its
    // connection stays.
    a.handle.reconnect(b.member);
    wait_until("the request for b left alone", || async {
        a.handle.metrics().reconnects_skipped == 1
    })
    .await;
    assert_eq!(a.handle.metrics().reconnects, 0);
    assert!(a.handle.peers().await.contains(&b.member));

    // c never sent anything: its connection is cut and dialled again.
    a.handle.reconnect(c.member);
    let (mut gone, mut back) = (false, false);
    within("c cut off and back", async {
        while !(gone && back) {
            match a.events.recv().await {
                Some(NetworkEvent::PeerDisconnected(m)) => {
                    assert_ne!(m, b.member, "b's connection was cut");
                    gone |= m == c.member;
                }
                Some(NetworkEvent::PeerConnected(m)) if m == c.member => back = gone,
                Some(_) => {}
                None => panic!("event channel closed"),
            }
        }
    })
    .await;
    let metrics = a.handle.metrics();
    assert_eq!((metrics.reconnects, metrics.reconnects_skipped), (1, 1));
    assert!(a.handle.peers().await.contains(&b.member));
}
