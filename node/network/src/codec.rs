//! Wire format of request-response and of the push and direct streams
//! (`lanes`), with a size limit on every read.
//!
//! Every frame is a big-endian `u32` length followed by that many bytes:
//!
//! - request: `context id (32 bytes) || payload`;
//! - response: `0x00 || payload` (answer) or `0x01 || reason` (refusal).
//!
//! An inbound request whose length is above the limit, or that is shorter than
//! a context id, is read as [`Frame::Oversized`] or [`Frame::Malformed`] so
//! the actor can refuse it with a reason and penalise the peer (libp2p does
//! not report codec errors on inbound streams). The body of an oversized
//! request is discarded without buffering up to [`DRAIN_LIMIT`], so that the
//! requester, blocked on flow control until it has written everything, reads
//! the refusal; beyond that it is left unread and the requester times out. A bad response is an [`io::ErrorKind::InvalidData`] error.
//! Nothing is allocated before the length is checked.

use std::{fmt, io};

use conclave_consensus::ContextId;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

/// The request-response protocol name.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/conclave/req/1");

/// One-way messages sent straight to each member (the bulk lane): a
/// long-lived stream of request frames, one after the other. The receiver
/// first writes back [`STREAM_ACCEPTED`], then one [`RefuseReason`] code
/// byte per frame it refuses; the sender writes no frame before that first
/// byte.
pub const PUSH_PROTOCOL: StreamProtocol = StreamProtocol::new("/conclave/push/3");

/// Consensus messages sent straight to each connected member, besides
/// gossip: a stream as [`PUSH_PROTOCOL`]'s, delivered as gossip is (the
/// receiver drops the copy that arrives second).
pub const DIRECT_PROTOCOL: StreamProtocol = StreamProtocol::new("/conclave/direct/3");

/// The first byte a receiver writes on a push or direct stream: it took
/// the stream and reads it. Its sender waits for it before it writes a
/// frame, because a stream can be dropped unread at the receiver (libp2p's
/// stream acceptor drops a new stream when the last one of its protocol
/// has not been taken yet, as when two members open theirs at once), and
/// frames written to it would be lost; such a stream is opened again.
/// Not a [`RefuseReason`] code.
pub const STREAM_ACCEPTED: u8 = 0;

/// Largest oversized request body read and discarded to deliver a refusal.
pub const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// Bytes of the context id at the head of a request frame.
pub(crate) const CONTEXT_LEN: usize = 32;
const TAG_ANSWER: u8 = 0;
const TAG_REFUSED: u8 = 1;

/// A request for one context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The context the request is about.
    pub context: ContextId,
    /// Application payload.
    pub data: Vec<u8>,
}

/// An inbound request frame, as read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// A well-formed request.
    Request(Request),
    /// The announced length exceeded the limit; the body was not read.
    Oversized(u64),
    /// The frame was too short to hold a context id.
    Malformed,
}

/// The answer to a [`Request`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Response {
    /// The application's reply.
    Answer(Vec<u8>),
    /// The responder refused the request.
    Refused(RefuseReason),
}

/// Why a responder refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefuseReason {
    /// The requester is not a member of the context.
    NotMember,
    /// The responder has not joined the context.
    UnknownContext,
    /// Too many requests are waiting for the application.
    Busy,
    /// The application dropped the request or did not answer in time.
    Unavailable,
    /// The application's reply exceeded the response limit.
    ResponseTooLarge,
    /// The request exceeded the responder's limit.
    RequestTooLarge,
    /// The request frame was malformed.
    Malformed,
}

impl RefuseReason {
    pub(crate) fn code(self) -> u8 {
        match self {
            Self::NotMember => 1,
            Self::UnknownContext => 2,
            Self::Busy => 3,
            Self::Unavailable => 4,
            Self::ResponseTooLarge => 5,
            Self::RequestTooLarge => 6,
            Self::Malformed => 7,
        }
    }

    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            1 => Self::NotMember,
            2 => Self::UnknownContext,
            3 => Self::Busy,
            4 => Self::Unavailable,
            5 => Self::ResponseTooLarge,
            6 => Self::RequestTooLarge,
            7 => Self::Malformed,
            _ => return None,
        })
    }
}

impl fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotMember => "not a member of the context",
            Self::UnknownContext => "context not joined by the responder",
            Self::Busy => "responder busy",
            Self::Unavailable => "no answer from the application",
            Self::ResponseTooLarge => "response too large",
            Self::RequestTooLarge => "request too large",
            Self::Malformed => "malformed request",
        })
    }
}

/// The length-limited codec.
#[derive(Clone, Debug)]
pub struct Codec {
    /// Largest request payload, excluding the context id.
    pub max_request: usize,
    /// Largest response payload, excluding the tag.
    pub max_response: usize,
}

fn invalid(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads a frame; `Ok(Err(len))` if its announced length exceeds `max`, in
/// which case the body is left unread.
pub(crate) async fn read_frame<T: AsyncRead + Unpin>(
    io: &mut T,
    max: usize,
) -> io::Result<Result<Vec<u8>, u64>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let announced = u32::from_be_bytes(len);
    let len = match usize::try_from(announced) {
        Ok(len) if len <= max => len,
        _ => return Ok(Err(u64::from(announced))),
    };
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(Ok(buf))
}

async fn write_frame<T: AsyncWrite + Unpin>(io: &mut T, parts: &[&[u8]]) -> io::Result<()> {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    let len = u32::try_from(len)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    io.write_all(&len.to_be_bytes()).await?;
    for part in parts {
        io.write_all(part).await?;
    }
    io.flush().await
}

/// A whole request frame, length prefix included: what [`decode_request`]
/// reads back (after the prefix). `None` if it would not fit the `u32`
/// length.
pub fn encode_request(context: &ContextId, data: &[u8]) -> Option<Vec<u8>> {
    let body = data.len().checked_add(CONTEXT_LEN)?;
    let len = u32::try_from(body).ok()?;
    let mut frame = Vec::with_capacity(body + 4);
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(context.as_bytes());
    frame.extend_from_slice(data);
    Some(frame)
}

/// Decodes a request frame body.
pub fn decode_request(frame: &[u8]) -> Frame {
    if frame.len() < CONTEXT_LEN {
        return Frame::Malformed;
    }
    let (ctx, data) = frame.split_at(CONTEXT_LEN);
    let mut context = [0u8; CONTEXT_LEN];
    context.copy_from_slice(ctx);
    Frame::Request(Request {
        context: ContextId(context),
        data: data.to_vec(),
    })
}

/// Decodes a response frame body.
pub fn decode_response(frame: &[u8]) -> io::Result<Response> {
    match frame.split_first() {
        Some((&TAG_ANSWER, data)) => Ok(Response::Answer(data.to_vec())),
        Some((&TAG_REFUSED, [code])) => RefuseReason::from_code(*code)
            .map(Response::Refused)
            .ok_or_else(|| invalid("unknown refusal code")),
        _ => Err(invalid("malformed response")),
    }
}

impl libp2p::request_response::Codec for Codec {
    type Protocol = StreamProtocol;
    type Request = Frame;
    type Response = Response;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Frame>
    where
        T: AsyncRead + Unpin + Send,
    {
        let max = self.max_request.saturating_add(CONTEXT_LEN);
        Ok(match read_frame(io, max).await? {
            Ok(body) => decode_request(&body),
            Err(len) => {
                if len <= DRAIN_LIMIT {
                    futures::io::copy(io.take(len), &mut futures::io::sink()).await?;
                }
                Frame::Oversized(len)
            }
        })
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Response>
    where
        T: AsyncRead + Unpin + Send,
    {
        match read_frame(io, self.max_response.saturating_add(1)).await? {
            Ok(body) => decode_response(&body),
            Err(_) => Err(invalid("response exceeds limit")),
        }
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        frame: Frame,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match frame {
            Frame::Request(req) => write_frame(io, &[req.context.as_bytes(), &req.data]).await,
            Frame::Oversized(_) | Frame::Malformed => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "only well-formed requests are sent",
            )),
        }
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Response,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match res {
            Response::Answer(data) => write_frame(io, &[&[TAG_ANSWER], &data]).await,
            Response::Refused(reason) => write_frame(io, &[&[TAG_REFUSED, reason.code()]]).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::io::Cursor;
    use libp2p::request_response::Codec as _;

    use super::*;

    fn codec() -> Codec {
        Codec {
            max_request: 8,
            max_response: 8,
        }
    }

    #[test]
    fn request_wire_format_is_pinned() {
        let mut buf = Cursor::new(Vec::new());
        let req = Request {
            context: ContextId([0xcc; 32]),
            data: b"hi".to_vec(),
        };
        block_on(codec().write_request(&PROTOCOL, &mut buf, Frame::Request(req.clone()))).unwrap();
        let bytes = buf.into_inner();
        assert_eq!(
            encode_request(&req.context, &req.data).as_deref(),
            Some(&bytes[..])
        );
        assert_eq!(&bytes[..4], &[0, 0, 0, 34]);
        assert_eq!(&bytes[4..36], &[0xcc; 32]);
        assert_eq!(&bytes[36..], b"hi");
        let mut rd = Cursor::new(bytes);
        assert_eq!(
            block_on(codec().read_request(&PROTOCOL, &mut rd)).unwrap(),
            Frame::Request(req)
        );
    }

    #[test]
    fn response_round_trips_and_pins_refusal() {
        for res in [
            Response::Answer(b"ok".to_vec()),
            Response::Refused(RefuseReason::NotMember),
            Response::Refused(RefuseReason::ResponseTooLarge),
            Response::Refused(RefuseReason::RequestTooLarge),
            Response::Refused(RefuseReason::Malformed),
        ] {
            let mut buf = Cursor::new(Vec::new());
            block_on(codec().write_response(&PROTOCOL, &mut buf, res.clone())).unwrap();
            let mut rd = Cursor::new(buf.into_inner());
            assert_eq!(
                block_on(codec().read_response(&PROTOCOL, &mut rd)).unwrap(),
                res
            );
        }
        let mut buf = Cursor::new(Vec::new());
        let refused = Response::Refused(RefuseReason::NotMember);
        block_on(codec().write_response(&PROTOCOL, &mut buf, refused)).unwrap();
        assert_eq!(buf.into_inner(), vec![0, 0, 0, 2, 1, 1]);
    }

    #[test]
    fn oversized_and_malformed_frames_are_flagged_not_read() {
        let cases: Vec<(Vec<u8>, Frame)> = vec![
            // length 41 > 32 + 8, body discarded
            (
                [vec![0, 0, 0, 41], vec![0; 41]].concat(),
                Frame::Oversized(41),
            ),
            // 4 GiB claimed, body never read
            (
                vec![0xff, 0xff, 0xff, 0xff, 1, 2, 3],
                Frame::Oversized(u64::from(u32::MAX)),
            ),
            // shorter than a context id
            ([vec![0, 0, 0, 3], vec![1, 2, 3]].concat(), Frame::Malformed),
        ];
        for (bytes, want) in cases {
            let got = block_on(codec().read_request(&PROTOCOL, &mut Cursor::new(bytes))).unwrap();
            assert_eq!(got, want);
        }
        let refuse = block_on(codec().write_request(
            &PROTOCOL,
            &mut Cursor::new(Vec::new()),
            Frame::Malformed,
        ));
        assert_eq!(refuse.unwrap_err().kind(), io::ErrorKind::InvalidInput);
        for bytes in [
            vec![0, 0, 0, 0],
            vec![0, 0, 0, 2, 1, 99],
            vec![0, 0, 0, 1, 7],
            vec![0, 0, 0, 10, 0],
        ] {
            let err =
                block_on(codec().read_response(&PROTOCOL, &mut Cursor::new(bytes))).unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        }
    }

    #[test]
    fn truncated_frames_are_errors_not_panics() {
        let err = block_on(codec().read_request(&PROTOCOL, &mut Cursor::new(vec![0, 0, 0, 40, 1])))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }
}
