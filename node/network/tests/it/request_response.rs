//! Request-response between members; refusals for non-members, oversized
//! requests, dropped replies and timeouts.

use std::time::Duration;

use conclave_network::{Error, NetworkEvent, RefuseReason};
use tokio::sync::{mpsc, oneshot};

use crate::support::*;

/// Answers requests like a small app: `drop` drops the reply, `hold` keeps it
/// unanswered, anything else is echoed as `pong:<data>`. Reports each request.
fn serve(mut node: Node) -> (Node, mpsc::UnboundedReceiver<Vec<u8>>) {
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let (events_tx, events) = mpsc::channel(16);
    let mut app_events = std::mem::replace(&mut node.events, events);
    tokio::spawn(async move {
        let mut held: Vec<oneshot::Sender<Vec<u8>>> = Vec::new();
        while let Some(event) = app_events.recv().await {
            match event {
                NetworkEvent::Request { data, reply, .. } => {
                    let _ = seen_tx.send(data.clone());
                    match data.as_slice() {
                        b"drop" => drop(reply),
                        b"hold" => held.push(reply),
                        _ => {
                            let _ = reply.send([b"pong:".as_slice(), &data].concat());
                        }
                    }
                }
                other => {
                    let _ = events_tx.try_send(other);
                }
            }
        }
    });
    (node, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_get_answers_and_others_are_refused() {
    let mut client_cfg = cfg();
    client_cfg.request_timeout = Duration::from_millis(500);
    let a = start(61, client_cfg).await;
    let mut server_cfg = cfg();
    server_cfg.max_request_bytes = 1024;
    let (b, mut seen) = serve(start(62, server_cfg).await);
    let intruder = start(63, cfg()).await;
    connect(&a, &b).await;
    connect(&intruder, &b).await;

    let members = vec![a.member, b.member];
    a.handle.join(ctx(8), members.clone()).await.unwrap();
    b.handle.join(ctx(8), members).await.unwrap();

    // A member's request reaches the app and the answer comes back.
    let answer = a
        .handle
        .request(b.member, ctx(8), b"ping".to_vec())
        .await
        .unwrap();
    assert_eq!(answer, b"pong:ping");
    assert_eq!(within("request seen", seen.recv()).await.unwrap(), b"ping");

    // A dropped reply is an error for the requester, without waiting.
    assert!(matches!(
        a.handle.request(b.member, ctx(8), b"drop".to_vec()).await,
        Err(Error::Refused(RefuseReason::Unavailable))
    ));
    assert_eq!(within("request seen", seen.recv()).await.unwrap(), b"drop");

    // An unanswered request times out at the requester.
    assert!(matches!(
        a.handle.request(b.member, ctx(8), b"hold".to_vec()).await,
        Err(Error::Timeout)
    ));
    assert_eq!(within("request seen", seen.recv()).await.unwrap(), b"hold");

    // A non-member is refused before the app sees anything, and penalised.
    intruder
        .handle
        .join(ctx(8), vec![a.member, b.member, intruder.member])
        .await
        .unwrap();
    assert!(matches!(
        intruder
            .handle
            .request(b.member, ctx(8), b"let me in".to_vec())
            .await,
        Err(Error::Refused(RefuseReason::NotMember))
    ));
    let score = b.handle.peer_score(intruder.member).await.unwrap();
    assert!(score < 0.0, "intruder score {score}");

    // A context the server has not joined is refused too.
    a.handle
        .join(ctx(9), vec![a.member, b.member])
        .await
        .unwrap();
    assert!(matches!(
        a.handle.request(b.member, ctx(9), b"?".to_vec()).await,
        Err(Error::Refused(RefuseReason::UnknownContext))
    ));

    let m = b.handle.metrics();
    assert_eq!((m.requests_received, m.requests_refused), (3, 2));
    assert!(
        seen.try_recv().is_err(),
        "no refused request reached the app"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_requests_are_refused_on_both_ends() {
    let mut big = cfg();
    big.max_request_bytes = 4 * 1024 * 1024;
    let a = start(71, big).await;
    let mut small = cfg();
    small.max_request_bytes = 1024;
    let (b, mut seen) = serve(start(72, small).await);
    connect(&a, &b).await;
    let members = vec![a.member, b.member];
    a.handle.join(ctx(10), members.clone()).await.unwrap();
    b.handle.join(ctx(10), members).await.unwrap();

    // Over the requester's own limit: refused locally.
    assert!(matches!(
        b.handle.request(a.member, ctx(10), vec![0; 1025]).await,
        Err(Error::TooLarge {
            size: 1025,
            max: 1024
        })
    ));
    // Over the responder's limit: refused unread, counted, penalised.
    assert!(matches!(
        a.handle.request(b.member, ctx(10), vec![0; 4096]).await,
        Err(Error::Refused(RefuseReason::RequestTooLarge))
    ));
    assert_eq!(b.handle.metrics().requests_malformed, 1);
    // Also when the request is far beyond the stream's flow-control window.
    assert!(matches!(
        a.handle
            .request(b.member, ctx(10), vec![0; 3 * 1024 * 1024])
            .await,
        Err(Error::Refused(RefuseReason::RequestTooLarge))
    ));
    assert_eq!(b.handle.metrics().requests_malformed, 2);
    let score = b.handle.peer_score(a.member).await.unwrap();
    assert!(score < 0.0, "sender score {score}");
    // The connection survives and a request within limits works.
    let answer = a
        .handle
        .request(b.member, ctx(10), vec![1; 1024])
        .await
        .unwrap();
    assert_eq!(answer.len(), 5 + 1024);
    assert_eq!(
        within("request seen", seen.recv()).await.unwrap().len(),
        1024
    );
    assert!(seen.try_recv().is_err());
}
