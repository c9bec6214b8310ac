//! A push stream that its receiver drops unread loses nothing: libp2p's
//! stream acceptor drops a new inbound stream while the previous one of
//! its protocol waits to be taken (members opening theirs at once, on a
//! loaded node). The receiver here is a bare swarm that drops its first
//! push stream so and reads the next, speaking the lane's protocol.

use std::time::Duration;

use conclave_network::codec::{self, PUSH_PROTOCOL, STREAM_ACCEPTED};
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::SwarmEvent;
use libp2p::{noise, tcp, yamux, Multiaddr, Stream};
use tokio::sync::mpsc;

use crate::support::*;

/// Starts a bare swarm with the identity of `secret` that takes inbound
/// push streams; returns its address and the streams, in arrival order.
async fn bare_receiver(secret: [u8; 32]) -> (Multiaddr, libp2p_stream::IncomingStreams) {
    let keypair = conclave_network::keypair_from_secret(secret).unwrap();
    let peer = keypair.public().to_peer_id();
    let mut swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default(),
            noise::Config::new,
            yamux::Config::default,
        )
        .unwrap()
        .with_behaviour(|_| libp2p_stream::Behaviour::new())
        .unwrap()
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
        .build();
    let incoming = swarm
        .behaviour()
        .new_control()
        .accept(PUSH_PROTOCOL)
        .unwrap();
    swarm
        .listen_on("/ip4/127.0.0.1/tcp/0".parse().unwrap())
        .unwrap();
    let addr = within("the bare swarm's address", async {
        loop {
            if let SwarmEvent::NewListenAddr { address, .. } = swarm.select_next_some().await {
                return address;
            }
        }
    })
    .await;
    tokio::spawn(async move {
        loop {
            swarm.select_next_some().await;
        }
    });
    (addr.with(Protocol::P2p(peer)), incoming)
}

/// Takes `stream` as a member's node does, and sends each whole frame
/// read from it (length prefix included) to `frames`.
async fn read_pushes(stream: Stream, frames: mpsc::UnboundedSender<Vec<u8>>) {
    let (mut reader, mut writer) = stream.split();
    writer.write_all(&[STREAM_ACCEPTED]).await.unwrap();
    writer.flush().await.unwrap();
    loop {
        let mut len = [0u8; 4];
        if reader.read_exact(&mut len).await.is_err() {
            return;
        }
        let mut frame = len.to_vec();
        frame.resize(4 + u32::from_be_bytes(len) as usize, 0);
        if reader.read_exact(&mut frame[4..]).await.is_err() {
            return;
        }
        if frames.send(frame).is_err() {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushes_on_a_stream_dropped_unread_reach_the_member_on_the_next() {
    let a = start(81, cfg()).await;
    let secret = [82u8; 32];
    let member = conclave_network::member_from_secret(secret).unwrap();
    let (addr, mut incoming) = bare_receiver(secret).await;
    let (frames, mut received) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut taken = 0;
        while let Some((_, stream)) = incoming.next().await {
            taken += 1;
            match taken {
                1 => drop(stream),
                _ => {
                    tokio::spawn(read_pushes(stream, frames.clone()));
                }
            }
        }
    });

    a.handle.dial(addr).await.unwrap();
    wait_until("connection", || async {
        a.handle.peers().await.contains(&member)
    })
    .await;
    a.handle
        .join(ctx(13), vec![a.member, member])
        .await
        .unwrap();
    const PUSHES: u8 = 20;
    for i in 0..PUSHES {
        assert_eq!(a.handle.push(ctx(13), vec![i; 100]).await.unwrap(), 1);
    }

    for i in 0..PUSHES {
        let frame = within("a push", received.recv()).await.unwrap();
        assert_eq!(
            frame,
            codec::encode_request(&ctx(13), &[i; 100]).unwrap(),
            "push {i}: every push arrives once, in order"
        );
    }
    assert_eq!(a.handle.metrics().pushes_failed, 0);
}
