//! The push lane: one-way messages straight to each connected member,
//! acknowledged on receipt; non-members are refused and penalised.

use conclave_network::{Error, NetworkEvent};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_reach_each_connected_member_once() {
    let a = start(71, cfg()).await;
    let mut b = start(72, cfg()).await;
    let mut c = start(73, cfg()).await;
    let mut outsider = start(74, cfg()).await;
    connect(&a, &b).await;
    connect(&a, &c).await;
    connect(&a, &outsider).await;
    let members = vec![a.member, b.member, c.member];
    for n in [&a, &b, &c] {
        n.handle.join(ctx(9), members.clone()).await.unwrap();
    }

    let sent = a.handle.push(ctx(9), b"bulk".to_vec()).await.unwrap();
    assert_eq!(sent, 2, "b and c are the connected members");
    assert_eq!(
        next_push(&mut b).await,
        (ctx(9), a.member, b"bulk".to_vec())
    );
    assert_eq!(
        next_push(&mut c).await,
        (ctx(9), a.member, b"bulk".to_vec())
    );
    wait_until("both pushes acknowledged", || async {
        b.handle.metrics().pushes_received == 1 && c.handle.metrics().pushes_received == 1
    })
    .await;
    assert_eq!(a.handle.metrics().pushes_sent, 2);
    assert_eq!(a.handle.metrics().pushes_failed, 0);
    // Not a member: nothing was sent to it.
    assert_eq!(outsider.handle.metrics().pushes_received, 0);
    assert!(outsider
        .events
        .try_recv()
        .map_or(true, |e| !matches!(e, NetworkEvent::Pushed { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_members_push_is_refused_and_penalised() {
    let mut b = start(75, cfg()).await;
    let intruder = start(76, cfg()).await;
    let member = start(77, cfg()).await;
    connect(&intruder, &b).await;
    b.handle
        .join(ctx(10), vec![b.member, member.member])
        .await
        .unwrap();
    // The intruder believes it belongs (its own member list).
    intruder
        .handle
        .join(ctx(10), vec![b.member, intruder.member])
        .await
        .unwrap();

    assert_eq!(
        intruder
            .handle
            .push(ctx(10), b"spam".to_vec())
            .await
            .unwrap(),
        1
    );
    wait_until("the refusal reaches the intruder", || async {
        intruder.handle.metrics().pushes_failed == 1
    })
    .await;
    assert_eq!(b.handle.metrics().pushes_received, 0);
    assert!(b.handle.metrics().requests_refused >= 1);
    let score = b.handle.peer_score(intruder.member).await.unwrap_or(0.0);
    assert!(score < 0.0, "the intruder is penalised: score {score}");
    while let Ok(event) = b.events.try_recv() {
        assert!(
            !matches!(event, NetworkEvent::Pushed { .. }),
            "refused push delivered"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pushes_are_clear_errors() {
    let mut small = cfg();
    small.max_request_bytes = 64;
    let a = start(78, small).await;
    assert!(matches!(
        a.handle.push(ctx(11), b"x".to_vec()).await,
        Err(Error::NotJoined(_))
    ));
    a.handle.join(ctx(11), vec![a.member]).await.unwrap();
    assert!(matches!(
        a.handle.push(ctx(11), vec![0; 65]).await,
        Err(Error::TooLarge { size: 65, max: 64 })
    ));
    // Alone in the context: delivered to nobody, not an error.
    assert_eq!(a.handle.push(ctx(11), b"x".to_vec()).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_is_not_held_behind_bulk_pushes() {
    // Gossipsub sends to a peer through one queue and one substream; the
    // push lane has streams of its own. A vote published after megabytes of
    // pushed txs reaches the member before the txs have all arrived.
    let a = start(79, cfg()).await;
    let mut b = start(80, cfg()).await;
    connect(&a, &b).await;
    let members = vec![a.member, b.member];
    a.handle.join(ctx(12), members.clone()).await.unwrap();
    b.handle.join(ctx(12), members).await.unwrap();
    wait_subscribed(&a, ctx(12), &[b.member]).await;

    const PUSHES: usize = 24;
    for i in 0..PUSHES {
        let bulk = vec![i as u8; 1 << 20];
        assert_eq!(a.handle.push(ctx(12), bulk).await.unwrap(), 1);
    }
    a.handle.publish(ctx(12), b"vote".to_vec()).await.unwrap();

    let pushes_before_vote = within("the vote", async {
        let mut pushes = 0;
        loop {
            match b.events.recv().await {
                Some(NetworkEvent::Pushed { .. }) => pushes += 1,
                Some(NetworkEvent::Message { data, .. }) if data == b"vote" => return pushes,
                Some(_) => continue,
                None => panic!("event channel closed"),
            }
        }
    })
    .await;
    assert!(
        pushes_before_vote < PUSHES,
        "the vote waited behind all {PUSHES} pushes"
    );
    // And the pushes all arrive.
    wait_until("every push", || async {
        b.handle.metrics().pushes_received == PUSHES as u64
    })
    .await;
}
