//! Three members of one context plus a connected outsider that never joined.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n3_full_mesh_delivers_with_sender_and_skips_unjoined_node() {
    let mut a = start(1, cfg()).await;
    let mut b = start(2, cfg()).await;
    let mut c = start(3, cfg()).await;
    let mut outsider = start(4, cfg()).await;
    connect(&a, &b).await;
    connect(&a, &c).await;
    connect(&b, &c).await;
    connect(&a, &outsider).await;
    connect(&b, &outsider).await;

    let members = vec![a.member, b.member, c.member];
    for n in [&a, &b, &c] {
        n.handle.join(ctx(1), members.clone()).await.unwrap();
    }
    wait_subscribed(&a, ctx(1), &[b.member, c.member]).await;
    wait_subscribed(&c, ctx(1), &[a.member, b.member]).await;

    a.handle.publish(ctx(1), b"from a".to_vec()).await.unwrap();
    assert_eq!(
        next_message(&mut b).await,
        (ctx(1), a.member, b"from a".to_vec())
    );
    assert_eq!(
        next_message(&mut c).await,
        (ctx(1), a.member, b"from a".to_vec())
    );

    c.handle.publish(ctx(1), b"from c".to_vec()).await.unwrap();
    assert_eq!(
        next_message(&mut a).await,
        (ctx(1), c.member, b"from c".to_vec())
    );
    assert_eq!(
        next_message(&mut b).await,
        (ctx(1), c.member, b"from c".to_vec())
    );

    // Each message reached each member once.
    assert!(queued_messages(&mut a).is_empty());
    assert!(queued_messages(&mut b).is_empty());
    // The outsider is connected to the publishers but never subscribed.
    assert!(queued_messages(&mut outsider).is_empty());
    assert_eq!(outsider.handle.metrics().messages_accepted, 0);
    assert!(!a
        .handle
        .topic_peers(ctx(1))
        .await
        .contains(&outsider.member));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn n3_line_relays_through_the_middle_member() {
    // a - b - c: a and c are not connected, b forwards after validating.
    let a = start(11, cfg()).await;
    let b = start(12, cfg()).await;
    let mut c = start(13, cfg()).await;
    connect(&a, &b).await;
    connect(&b, &c).await;
    let members = vec![a.member, b.member, c.member];
    for n in [&a, &b, &c] {
        n.handle.join(ctx(2), members.clone()).await.unwrap();
    }
    wait_subscribed(&b, ctx(2), &[a.member, c.member]).await;
    wait_subscribed(&a, ctx(2), &[b.member]).await;
    // b must have grafted c into its mesh to forward; the heartbeat does it.
    wait_subscribed(&c, ctx(2), &[b.member]).await;

    a.handle.publish(ctx(2), b"relayed".to_vec()).await.unwrap();
    assert_eq!(
        next_message(&mut c).await,
        (ctx(2), a.member, b"relayed".to_vec())
    );
    assert!(!c.handle.peers().await.contains(&a.member));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_without_subscribers_is_a_clear_error() {
    let a = start(21, cfg()).await;
    assert!(matches!(
        a.handle.publish(ctx(3), b"x".to_vec()).await,
        Err(conclave_network::Error::NotJoined(_))
    ));
    a.handle.join(ctx(3), vec![a.member]).await.unwrap();
    assert!(matches!(
        a.handle.publish(ctx(3), b"x".to_vec()).await,
        Err(conclave_network::Error::NoPeers(_))
    ));
    assert_eq!(a.handle.metrics().publish_no_peers, 1);
}
