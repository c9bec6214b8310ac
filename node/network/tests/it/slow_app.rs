//! An application that never drains its events: the queue stays bounded and
//! the overflow is counted, and the node keeps validating gossip.

use conclave_network::NetworkConfig;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_app_drops_events_and_counts_them() {
    let a = start(91, cfg()).await;
    let slow = start(
        92,
        NetworkConfig {
            event_capacity: 2,
            ..cfg()
        },
    )
    .await;
    connect(&a, &slow).await;
    let members = vec![a.member, slow.member];
    a.handle.join(ctx(13), members.clone()).await.unwrap();
    slow.handle.join(ctx(13), members).await.unwrap();
    wait_subscribed(&a, ctx(13), &[slow.member]).await;

    for i in 0..10u8 {
        a.handle.publish(ctx(13), vec![i]).await.unwrap();
    }
    wait_until("all ten validated", || async {
        slow.handle.metrics().messages_accepted == 10
    })
    .await;
    let mut slow = slow;
    let queued = std::iter::from_fn(|| slow.events.try_recv().ok()).count();
    let dropped = slow.handle.metrics().events_dropped;
    assert_eq!(queued, 2);
    // Ten messages and one connection event, two of them queued.
    assert_eq!(dropped, 9);
}
