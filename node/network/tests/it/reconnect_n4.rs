//! Four members, one of them cut off and healed, then redialling the other
//! three at once (the context's safety net for gossip gone silent): what
//! each sends must reach the others again, both ways, gossip and direct.

use std::time::Duration;

use conclave_network::NetworkEvent;

use crate::support::*;

/// Publishes from `from` until `to` delivers it (a message sent while a
/// link is being replaced may be lost; consensus sends again).
async fn deliver(from: &Node, to: &mut Node, body: Vec<u8>) {
    within("a message through", async {
        loop {
            from.handle.publish(ctx(20), body.clone()).await.ok();
            let got = tokio::time::timeout(Duration::from_millis(300), async {
                while let Some(event) = to.events.recv().await {
                    if let NetworkEvent::Message { data, .. } = event {
                        if data == body {
                            return true;
                        }
                    }
                }
                false
            })
            .await;
            if got == Ok(true) {
                return;
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_cut_off_then_redialling_everyone_hears_and_is_heard() {
    let mut b = start(101, cfg()).await;
    let mut c = start(102, cfg()).await;
    let mut d = start(103, cfg()).await;
    let mut a_cfg = cfg();
    a_cfg.static_peers = vec![b.addr.clone(), c.addr.clone(), d.addr.clone()];
    let mut a = start(100, a_cfg).await;
    connect(&b, &c).await;
    connect(&b, &d).await;
    connect(&c, &d).await;
    let members = vec![a.member, b.member, c.member, d.member];
    for n in [&a, &b, &c, &d] {
        n.handle.join(ctx(20), members.clone()).await.unwrap();
    }
    wait_subscribed(&a, ctx(20), &[b.member, c.member, d.member]).await;
    for n in [&b, &c, &d] {
        wait_subscribed(n, ctx(20), &[a.member]).await;
    }
    let others = [b.member, c.member, d.member];
    for round in 0..6u8 {
        // Cut a off, both ways, then heal.
        // Blocking returns once the blocked peers' connections closed.
        a.handle.set_blocked(others.to_vec()).await.unwrap();
        assert!(a.handle.peers().await.is_empty(), "round {round}");
        for n in [&b, &c, &d] {
            n.handle.set_blocked(vec![a.member]).await.unwrap();
            assert!(!n.handle.peers().await.contains(&a.member));
        }
        a.handle.set_blocked(Vec::new()).await.unwrap();
        for n in [&b, &c, &d] {
            n.handle.set_blocked(Vec::new()).await.unwrap();
        }
        wait_until("a back", || async { a.handle.peers().await.len() == 3 }).await;
        // a finds them silent and redials all three at once.
        for m in others {
            a.handle.reconnect(m);
        }
        let mut back = std::collections::HashSet::new();
        within("a redialled all three", async {
            while back.len() < 3 {
                match a.events.recv().await {
                    Some(NetworkEvent::PeerConnected(m)) => {
                        back.insert(m);
                    }
                    Some(_) => {}
                    None => panic!("event channel closed"),
                }
            }
        })
        .await;
        let direct_before: Vec<u64> = [&a, &b, &c, &d]
            .iter()
            .map(|n| n.handle.metrics().direct_received)
            .collect();
        for i in 0..5u8 {
            for to in [&mut b, &mut c, &mut d] {
                deliver(&a, to, vec![round, 0, i]).await;
            }
            for (k, from) in [&b, &c, &d].into_iter().enumerate() {
                deliver(from, &mut a, vec![round, 1 + k as u8, i]).await;
            }
        }
        // Not only by gossip: straight, on the streams opened since. (A
        // member whose earlier streams were never seen to end refused new
        // ones once it held four: after a few reconnections nothing came
        // straight any more, while the sender counted it sent.)
        for (n, before) in [&a, &b, &c, &d].into_iter().zip(direct_before) {
            wait_until("a message straight from its sender", || async {
                n.handle.metrics().direct_received > before
            })
            .await;
        }
    }
}
