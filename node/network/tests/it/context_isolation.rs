//! RELIABILITY scenario 14: a member of context 1 reads nothing of context 2.
//! a, b share ctx 1; b, c share ctx 2; everyone is connected.

use conclave_network::{Error, RefuseReason};

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_of_one_context_never_sees_another() {
    let mut a = start(51, cfg()).await;
    let mut b = start(52, cfg()).await;
    let mut c = start(53, cfg()).await;
    connect(&a, &b).await;
    connect(&b, &c).await;
    connect(&a, &c).await;

    a.handle
        .join(ctx(6), vec![a.member, b.member])
        .await
        .unwrap();
    b.handle
        .join(ctx(6), vec![a.member, b.member])
        .await
        .unwrap();
    b.handle
        .join(ctx(7), vec![b.member, c.member])
        .await
        .unwrap();
    c.handle
        .join(ctx(7), vec![b.member, c.member])
        .await
        .unwrap();
    wait_subscribed(&b, ctx(6), &[a.member]).await;
    wait_subscribed(&b, ctx(7), &[c.member]).await;
    wait_subscribed(&c, ctx(7), &[b.member]).await;

    b.handle
        .publish(ctx(7), b"ctx7 from b".to_vec())
        .await
        .unwrap();
    c.handle
        .publish(ctx(7), b"ctx7 from c".to_vec())
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut c).await,
        (ctx(7), b.member, b"ctx7 from b".to_vec())
    );
    assert_eq!(
        next_message(&mut b).await,
        (ctx(7), c.member, b"ctx7 from c".to_vec())
    );
    // A ctx 6 message sent after the ctx 7 traffic: once a has it, anything
    // of ctx 7 would have been seen too.
    b.handle
        .publish(ctx(6), b"ctx6 from b".to_vec())
        .await
        .unwrap();
    assert_eq!(
        next_message(&mut a).await,
        (ctx(6), b.member, b"ctx6 from b".to_vec())
    );

    assert!(queued_messages(&mut a).is_empty());
    let m = a.handle.metrics();
    assert_eq!(
        (m.messages_accepted, m.messages_ignored, m.messages_rejected),
        (1, 0, 0)
    );
    assert!(matches!(
        a.handle.publish(ctx(7), b"x".to_vec()).await,
        Err(Error::NotJoined(_))
    ));

    // Asking b about ctx 7, even after joining its topic locally, is refused.
    a.handle
        .join(ctx(7), vec![a.member, b.member])
        .await
        .unwrap();
    assert!(matches!(
        a.handle.request(b.member, ctx(7), b"state?".to_vec()).await,
        Err(Error::Refused(RefuseReason::NotMember))
    ));
    assert_eq!(b.handle.metrics().requests_received, 0);
}
