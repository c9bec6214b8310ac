//! RELIABILITY scenario 11 and 14 at the network: gossip from a non-member,
//! and oversized gossip from a member, is rejected and the sender penalised.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_member_publish_is_rejected_and_penalised() {
    let a = start(31, cfg()).await;
    let mut b = start(32, cfg()).await;
    let intruder = start(33, cfg()).await;
    connect(&a, &b).await;
    connect(&intruder, &a).await;
    connect(&intruder, &b).await;

    let members = vec![a.member, b.member];
    a.handle.join(ctx(4), members.clone()).await.unwrap();
    b.handle.join(ctx(4), members).await.unwrap();
    // The intruder claims membership locally; the honest nodes do not agree.
    // It also names a member it is not connected to, so its message goes
    // both straight to a and b and by gossip: each path must reject it.
    let ghost = start(34, cfg()).await.member;
    let claimed = vec![a.member, b.member, intruder.member, ghost];
    intruder.handle.join(ctx(4), claimed).await.unwrap();
    wait_subscribed(&intruder, ctx(4), &[a.member, b.member]).await;
    wait_subscribed(&a, ctx(4), &[b.member]).await;

    intruder
        .handle
        .publish(ctx(4), b"forged".to_vec())
        .await
        .unwrap();
    wait_until("both honest nodes reject both copies", || async {
        let (a, b) = (a.handle.metrics(), b.handle.metrics());
        a.messages_rejected >= 2 && b.messages_rejected >= 2
    })
    .await;
    for node in [&a, &b] {
        let m = node.handle.metrics();
        assert_eq!((m.requests_refused, m.messages_accepted), (1, 0));
    }

    // An honest message still flows, and is the only one delivered.
    a.handle.publish(ctx(4), b"honest".to_vec()).await.unwrap();
    assert_eq!(
        next_message(&mut b).await,
        (ctx(4), a.member, b"honest".to_vec())
    );
    assert!(queued_messages(&mut b).is_empty());
    assert_eq!(a.handle.metrics().messages_accepted, 0);
    assert_eq!(b.handle.metrics().messages_accepted, 1);

    // The propagation penalty (P4) shows in gossipsub's score.
    for node in [&a, &b] {
        let score = node.handle.peer_score(intruder.member).await.unwrap();
        assert!(score <= -9.0, "intruder score {score}");
    }
    let honest = b.handle.peer_score(a.member).await.unwrap();
    assert!(honest >= 0.0, "honest score {honest}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_gossip_from_a_member_is_rejected() {
    let mut small = cfg();
    small.max_message_bytes = 1024;
    let mut big = cfg();
    big.max_message_bytes = 64 * 1024;
    let a = start(41, small).await;
    let loud = start(42, big).await;
    connect(&loud, &a).await;
    let members = vec![a.member, loud.member];
    a.handle.join(ctx(5), members.clone()).await.unwrap();
    loud.handle.join(ctx(5), members).await.unwrap();
    wait_subscribed(&loud, ctx(5), &[a.member]).await;

    // The sender's own limit applies locally.
    assert!(matches!(
        a.handle.publish(ctx(5), vec![0; 1025]).await,
        Err(conclave_network::Error::TooLarge {
            size: 1025,
            max: 1024
        })
    ));

    loud.handle
        .publish(ctx(5), vec![7; 8 * 1024])
        .await
        .unwrap();
    wait_until("oversized message rejected", || async {
        a.handle.metrics().messages_rejected >= 1
    })
    .await;
    assert_eq!(a.handle.metrics().messages_accepted, 0);
    let score = a.handle.peer_score(loud.member).await.unwrap();
    assert!(score < 0.0, "sender score {score}");
}
