//! The push and direct lanes: one long-lived stream per member and lane.
//!
//! A one-way message (a pushed batch of txs, a consensus message sent
//! straight to a member) used to take a request-response exchange of its
//! own: a new substream, protocol negotiation, an acknowledgement and a
//! timer per message, which a profile put among the largest costs of a
//! height. Each member now keeps one outbound stream per peer and lane,
//! opened on first use and written by a task of its own, and reads each
//! inbound stream in a task that hands the frames to the actor:
//!
//! - a frame is `u32 length || context id || payload`, the request frame of
//!   [`crate::codec`]; frames on a stream arrive in the order they were
//!   sent, which per sender is the order consensus produced them;
//! - the actor checks every inbound frame as before (a joined context, the
//!   sender one of its members); a refused frame is answered by one byte on
//!   the same stream, the [`RefuseReason`] code, which the sender counts as
//!   a failed push; an oversized frame also ends the stream;
//! - queues are bounded: a full outbound queue drops the message and counts
//!   it (the direct lane then falls back to gossip), an inbound reader waits
//!   for the actor, which backs the sender up through flow control;
//! - a new stream carries no frame until its receiver's first byte says it
//!   took it ([`codec::STREAM_ACCEPTED`]): libp2p's stream acceptor drops a
//!   new inbound stream unread while the previous one of its protocol waits
//!   to be taken (members opening theirs at once, on a loaded node), and
//!   the frames written to it were lost; such a stream is opened again;
//! - a stream being opened queues what is sent meanwhile, but the direct
//!   lane does not count it as reached ([`Queued::Opening`]): gossip carries
//!   a copy too, as an open can hang until its timeout and then fail with
//!   everything queued (the receiver delivers one of the two copies);
//! - a stream that fails is dropped with what it held; the next message
//!   opens a new one. A closed connection drops its peer's streams. An
//!   open that fails at once (or a stream dropped unread, above) is tried
//!   again twice, 50 ms apart (right after a reconnection libp2p may pick
//!   the connection that just closed), so what it holds may reach the peer
//!   late, even a restarted process of it: consensus messages and txs are
//!   safe to receive late.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::io::{ReadHalf, WriteHalf};
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use libp2p_stream::Control;
use tokio::sync::mpsc;
use tracing::debug;

use crate::codec::{self, Frame, RefuseReason};
use crate::metrics::{Counter, Metrics};

mod readers;
use readers::{ReaderGuard, Readers};

/// Messages queued for one peer and lane before new ones are dropped.
const LINK_QUEUE: usize = 1024;

/// Attempts at an open that fails at once, and the wait between two.
const OPEN_ATTEMPTS: u32 = 3;
const OPEN_RETRY_AFTER: Duration = Duration::from_millis(50);

/// Frames written before the stream is flushed, when many wait.
const WRITE_BATCH: u64 = 64;

/// Inbound streams one peer may hold open per lane; a new one beyond them
/// replaces the oldest ([`Readers`]).
const STREAMS_PER_PEER: usize = 4;

/// Refusals queued for a sender before further ones are not reported.
const REFUSAL_QUEUE: usize = 16;

/// Which one-way lane a stream carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Lane {
    /// Bulk data (txs), [`codec::PUSH_PROTOCOL`].
    Push,
    /// Consensus messages, besides gossip, [`codec::DIRECT_PROTOCOL`].
    Direct,
}

impl Lane {
    fn protocol(self) -> StreamProtocol {
        match self {
            Self::Push => codec::PUSH_PROTOCOL,
            Self::Direct => codec::DIRECT_PROTOCOL,
        }
    }
}

/// A frame read from a member's stream, for the actor to check.
pub(crate) struct Inbound {
    pub(crate) peer: PeerId,
    pub(crate) lane: Lane,
    pub(crate) frame: Frame,
    /// Where a refusal of this frame goes back to its sender.
    pub(crate) refusals: mpsc::Sender<RefuseReason>,
}

/// What came of queueing a frame for a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Queued {
    /// On a stream that is open.
    Streaming,
    /// For a stream still being opened: it goes out once the stream is
    /// open, and is lost if it never opens (the open can take up to its
    /// timeout, as when the connection underneath is dying).
    Opening,
    /// Not queued: the queue is full or its stream has failed.
    Dropped,
}

/// One outbound stream: its queue, and whether the stream is open yet.
struct Link {
    queue: mpsc::Sender<Arc<Vec<u8>>>,
    open: Arc<AtomicBool>,
}

/// The outbound streams, held by the actor.
pub(crate) struct Links {
    control: Control,
    metrics: Arc<Metrics>,
    open_timeout: Duration,
    links: HashMap<(PeerId, Lane), Link>,
}

impl Links {
    pub(crate) fn new(control: Control, metrics: Arc<Metrics>, open_timeout: Duration) -> Self {
        Self {
            control,
            metrics,
            open_timeout,
            links: HashMap::new(),
        }
    }

    /// Queues an encoded frame ([`codec::encode_request`]) for `peer`,
    /// and says on what. A stream that has failed is replaced.
    pub(crate) fn send(&mut self, peer: PeerId, lane: Lane, frame: Arc<Vec<u8>>) -> Queued {
        let link = match self.links.get(&(peer, lane)) {
            Some(link) if !link.queue.is_closed() => link,
            _ => {
                let link = open(&self.control, &self.metrics, self.open_timeout, peer, lane);
                self.links.insert((peer, lane), link);
                &self.links[&(peer, lane)]
            }
        };
        if link.queue.try_send(frame).is_err() {
            debug!(%peer, ?lane, "stream queue full or stream gone; message dropped");
            self.metrics.inc(Counter::PushesFailed);
            return Queued::Dropped;
        }
        match link.open.load(Ordering::Acquire) {
            true => Queued::Streaming,
            false => Queued::Opening,
        }
    }

    /// Drops the streams to a peer that is no longer connected.
    pub(crate) fn disconnected(&mut self, peer: &PeerId) {
        self.links.retain(|(p, _), _| p != peer);
    }
}

/// Starts the writer of a new outbound stream; returns its link.
fn open(
    control: &Control,
    metrics: &Arc<Metrics>,
    open_timeout: Duration,
    peer: PeerId,
    lane: Lane,
) -> Link {
    let (sender, queue) = mpsc::channel(LINK_QUEUE);
    let control = control.clone();
    let metrics = metrics.clone();
    let open = Arc::new(AtomicBool::new(false));
    let opened_flag = open.clone();
    tokio::spawn(async move {
        let mut queue = queue;
        let mut control = control;
        let Some((reader, writer)) = open_stream(&mut control, peer, lane, open_timeout).await
        else {
            return fail_queued(&mut queue, &metrics, 0);
        };
        opened_flag.store(true, Ordering::Release);
        tokio::spawn(read_refusals(reader, peer, lane, metrics.clone()));
        if let Err((error, in_flight)) = write_frames(writer, &mut queue).await {
            debug!(%peer, ?lane, %error, "stream failed");
            fail_queued(&mut queue, &metrics, in_flight);
        }
    });
    Link {
        queue: sender,
        open,
    }
}

/// Opens a stream to `peer` within `open_timeout` and waits until its
/// receiver took it ([`codec::STREAM_ACCEPTED`]), trying again if an
/// attempt fails at once (libp2p picked a connection that just closed, or
/// the receiver dropped the new stream unread): what waits in the queue
/// would be lost with it.
async fn open_stream(
    control: &mut Control,
    peer: PeerId,
    lane: Lane,
    open_timeout: Duration,
) -> Option<(ReadHalf<Stream>, WriteHalf<Stream>)> {
    let deadline = tokio::time::Instant::now() + open_timeout;
    for attempt in 1..=OPEN_ATTEMPTS {
        let opened = tokio::time::timeout_at(deadline, accepted_stream(control, peer, lane));
        match opened.await {
            Ok(Ok(halves)) => return Some(halves),
            Ok(Err(error)) if attempt < OPEN_ATTEMPTS => {
                debug!(%peer, ?lane, %error, attempt, "cannot open stream; trying again");
                tokio::time::sleep(OPEN_RETRY_AFTER).await;
            }
            Ok(Err(error)) => {
                debug!(%peer, ?lane, %error, "cannot open stream");
                return None;
            }
            Err(_) => {
                debug!(%peer, ?lane, "opening a stream timed out");
                return None;
            }
        }
    }
    None
}

/// One attempt at a stream: opened, then taken by its receiver.
async fn accepted_stream(
    control: &mut Control,
    peer: PeerId,
    lane: Lane,
) -> std::io::Result<(ReadHalf<Stream>, WriteHalf<Stream>)> {
    let stream = control
        .open_stream(peer, lane.protocol())
        .await
        .map_err(std::io::Error::other)?;
    let (mut reader, writer) = stream.split();
    let mut first = [0u8; 1];
    reader.read_exact(&mut first).await.map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("the receiver dropped the stream unread: {e}"),
        )
    })?;
    if first[0] != codec::STREAM_ACCEPTED {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "the receiver's first byte is {}, not the acceptance",
                first[0]
            ),
        ));
    }
    Ok((reader, writer))
}

/// Counts what was queued on a stream that failed (and `in_flight` frames
/// taken from the queue but not written), and closes the queue.
fn fail_queued(queue: &mut mpsc::Receiver<Arc<Vec<u8>>>, metrics: &Metrics, in_flight: u64) {
    queue.close();
    let mut lost = in_flight;
    while queue.try_recv().is_ok() {
        lost = lost.saturating_add(1);
    }
    metrics.add(Counter::PushesFailed, lost);
}

/// Writes queued frames until the queue closes; on failure, the error and
/// how many frames of the batch being written were lost with it.
async fn write_frames(
    mut writer: WriteHalf<Stream>,
    queue: &mut mpsc::Receiver<Arc<Vec<u8>>>,
) -> Result<(), (std::io::Error, u64)> {
    while let Some(frame) = queue.recv().await {
        let mut taken = 1u64;
        writer.write_all(&frame).await.map_err(|e| (e, taken))?;
        while taken < WRITE_BATCH {
            let Ok(frame) = queue.try_recv() else { break };
            taken += 1;
            writer.write_all(&frame).await.map_err(|e| (e, taken))?;
        }
        writer.flush().await.map_err(|e| (e, taken))?;
    }
    // The actor dropped the link (the peer disconnected, or shutdown).
    writer.close().await.map_err(|e| (e, 0))
}

/// Reads the refusal codes a receiver writes back on an outbound stream.
async fn read_refusals(
    mut reader: ReadHalf<Stream>,
    peer: PeerId,
    lane: Lane,
    metrics: Arc<Metrics>,
) {
    let mut code = [0u8; 1];
    while reader.read_exact(&mut code).await.is_ok() {
        let reason = RefuseReason::from_code(code[0]);
        debug!(%peer, ?lane, ?reason, "message refused by its receiver");
        metrics.inc(Counter::PushesFailed);
    }
}

/// Accepts the inbound streams of `lane` for as long as the swarm lives;
/// each is read in a task of its own into `inbound`.
pub(crate) fn accept(
    control: &mut Control,
    lane: Lane,
    max_frame: usize,
    inbound: mpsc::Sender<Inbound>,
) -> Result<(), crate::error::Error> {
    let mut incoming = control
        .accept(lane.protocol())
        .map_err(|e| crate::error::Error::Setup(e.to_string()))?;
    let readers = Readers::default();
    tokio::spawn(async move {
        while let Some((peer, stream)) = incoming.next().await {
            let inbound = inbound.clone();
            readers.read(peer, lane, move |guard| {
                read_frames(stream, peer, lane, max_frame, inbound, guard)
            });
        }
    });
    Ok(())
}

async fn read_frames<S>(
    stream: S,
    peer: PeerId,
    lane: Lane,
    max_frame: usize,
    inbound: mpsc::Sender<Inbound>,
    _guard: ReaderGuard,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut reader, writer) = stream.split();
    let (refusals, pending) = mpsc::channel(REFUSAL_QUEUE);
    tokio::spawn(write_refusals(writer, pending));
    loop {
        let frame = match codec::read_frame(&mut reader, max_frame).await {
            Ok(Ok(body)) => codec::decode_request(&body),
            Ok(Err(len)) => Frame::Oversized(len),
            Err(_) => return,
        };
        let last = matches!(frame, Frame::Oversized(_));
        let inbound_frame = Inbound {
            peer,
            lane,
            frame,
            refusals: refusals.clone(),
        };
        if inbound.send(inbound_frame).await.is_err() || last {
            // The actor is gone, or the stream cannot be read past an
            // oversized frame.
            return;
        }
    }
}

async fn write_refusals<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut pending: mpsc::Receiver<RefuseReason>,
) {
    let accepted = [codec::STREAM_ACCEPTED];
    if writer.write_all(&accepted).await.is_err() || writer.flush().await.is_err() {
        return;
    }
    while let Some(reason) = pending.recv().await {
        if writer.write_all(&[reason.code()]).await.is_err() || writer.flush().await.is_err() {
            return;
        }
    }
    let _ = writer.close().await;
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::pin::Pin;
    use std::sync::Mutex;
    use std::task::{Context, Poll};

    use conclave_consensus::ContextId;
    use futures::io::Cursor;

    use super::*;

    /// A stream whose inbound bytes are fixed and whose outbound bytes are
    /// kept.
    struct Pipe {
        input: Cursor<Vec<u8>>,
        output: Arc<Mutex<Vec<u8>>>,
    }

    impl AsyncRead for Pipe {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            Pin::new(&mut self.input).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Pipe {
        fn poll_write(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.output
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Poll::Ready(Ok(buf.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    fn guard(peer: PeerId) -> ReaderGuard {
        ReaderGuard {
            readers: Readers::default(),
            peer,
            id: 1,
        }
    }

    #[tokio::test]
    async fn frames_are_read_in_order_and_an_oversized_one_ends_the_stream() {
        let context = ContextId([7; 32]);
        let mut input = Vec::new();
        input.extend_from_slice(&codec::encode_request(&context, b"first").unwrap());
        input.extend_from_slice(&[0, 0, 0, 3, 1, 2, 3]);
        input.extend_from_slice(&codec::encode_request(&context, b"second").unwrap());
        // 32 + 9 bytes announced, above the limit of 32 + 8.
        input.extend_from_slice(&codec::encode_request(&context, b"too large").unwrap());
        input.extend_from_slice(&codec::encode_request(&context, b"never read").unwrap());
        let output = Arc::new(Mutex::new(Vec::new()));
        let pipe = Pipe {
            input: Cursor::new(input),
            output: output.clone(),
        };
        let peer = PeerId::random();
        let (sender, mut frames) = mpsc::channel(16);
        read_frames(pipe, peer, Lane::Push, 32 + 8, sender, guard(peer)).await;

        let mut got = Vec::new();
        while let Ok(inbound) = frames.try_recv() {
            assert_eq!((inbound.peer, inbound.lane), (peer, Lane::Push));
            got.push(inbound);
        }
        let request = |data: &[u8]| {
            Frame::Request(codec::Request {
                context,
                data: data.to_vec(),
            })
        };
        let kinds: Vec<&Frame> = got.iter().map(|i| &i.frame).collect();
        assert_eq!(
            kinds,
            vec![
                &request(b"first"),
                &Frame::Malformed,
                &request(b"second"),
                &Frame::Oversized(41),
            ]
        );

        // The stream's acceptance, then the refusals, one code byte each.
        got[1].refusals.try_send(RefuseReason::Malformed).unwrap();
        got[3]
            .refusals
            .try_send(RefuseReason::RequestTooLarge)
            .unwrap();
        drop(got);
        for _ in 0..100 {
            if output.lock().unwrap().len() == 3 {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert_eq!(
            *output.lock().unwrap(),
            vec![
                codec::STREAM_ACCEPTED,
                RefuseReason::Malformed.code(),
                RefuseReason::RequestTooLarge.code()
            ]
        );
    }

    #[tokio::test]
    async fn a_frame_for_a_stream_still_opening_is_not_counted_as_streaming() {
        // A control whose behaviour no swarm drives: an open never
        // completes, as when the connection underneath hangs.
        let control = libp2p_stream::Behaviour::new().new_control();
        let metrics = Arc::new(Metrics::default());
        let mut links = Links::new(control, metrics.clone(), Duration::from_millis(50));
        let peer = PeerId::random();
        let frame = Arc::new(vec![1, 2, 3]);
        assert_eq!(
            links.send(peer, Lane::Direct, frame.clone()),
            Queued::Opening
        );
        assert_eq!(
            links.send(peer, Lane::Direct, frame.clone()),
            Queued::Opening,
            "still opening: the caller must not count on this stream alone"
        );
        // The open times out and the frames it held are counted lost.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while metrics.snapshot().pushes_failed < 2 {
            assert!(tokio::time::Instant::now() < deadline, "never counted");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // The next frame opens a new stream.
        assert_eq!(links.send(peer, Lane::Direct, frame), Queued::Opening);
    }
}
