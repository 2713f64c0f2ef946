//! ttrpc wire format: 10-byte frame headers around protobuf `Request` and
//! `Response` messages, for both the server and the events client.

use std::io::{self, Read, Write};

use containerd_shim_protos::protobuf::{self, CodedInputStream, Message};
use containerd_shim_protos::ttrpc::{Request, Response, Status};

/// Largest message ttrpc allows.
pub const MAX_MESSAGE: usize = 4 << 20;
/// Frame header length.
pub const HEADER_LEN: usize = 10;
pub const TYPE_REQUEST: u8 = 1;
pub const TYPE_RESPONSE: u8 = 2;

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub length: u32,
    pub stream_id: u32,
    pub kind: u8,
    pub flags: u8,
}

impl Header {
    /// The header of a request of `length` body bytes on `stream_id`.
    pub fn request(length: u32, stream_id: u32) -> Self {
        Header {
            length,
            stream_id,
            kind: TYPE_REQUEST,
            flags: 0,
        }
    }

    pub fn parse(b: &[u8; HEADER_LEN]) -> Self {
        Header {
            length: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            stream_id: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
            kind: b[8],
            flags: b[9],
        }
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..4].copy_from_slice(&self.length.to_be_bytes());
        b[4..8].copy_from_slice(&self.stream_id.to_be_bytes());
        b[8] = self.kind;
        b[9] = self.flags;
        b
    }
}

/// Encodes one frame: header and payload in one buffer (one write).
pub fn frame(stream_id: u32, kind: u8, payload: &[u8]) -> Vec<u8> {
    let h = Header {
        length: payload.len() as u32,
        stream_id,
        kind,
        flags: 0,
    };
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&h.encode());
    out.extend_from_slice(payload);
    out
}

/// Encodes a response frame carrying either a message or an error status.
pub fn response_frame(stream_id: u32, result: Result<Vec<u8>, Status>) -> Vec<u8> {
    let mut resp = Response::new();
    match result {
        Ok(payload) => resp.payload = payload,
        Err(status) => resp.status = Some(status).into(),
    }
    let body = resp.write_to_bytes().unwrap_or_default();
    frame(stream_id, TYPE_RESPONSE, &body)
}

/// Encodes a request frame.
pub fn request_frame(
    stream_id: u32,
    service: &str,
    method: &str,
    payload: Vec<u8>,
    timeout_nano: i64,
) -> Vec<u8> {
    let mut req = Request::new();
    req.service = service.to_string();
    req.method = method.to_string();
    req.payload = payload;
    req.timeout_nano = timeout_nano;
    let body = req.write_to_bytes().unwrap_or_default();
    frame(stream_id, TYPE_REQUEST, &body)
}

/// Decodes a protobuf message from bytes that came from outside. Unlike
/// `Message::parse_from_bytes`, the stream is limited to `data` from the
/// start, so a length field claiming more than is left fails at once
/// instead of first reserving what it claims (the protobuf crate reserves
/// up to 10 MB per field before it finds the input cut short).
pub fn decode_message<M: Message>(data: &[u8]) -> protobuf::Result<M> {
    let mut input = bounded_input(data)?;
    let message = M::parse_from(&mut input)?;
    input.check_eof()?;
    Ok(message)
}

/// A protobuf input stream over `data` that knows where `data` ends (see
/// [`decode_message`]), for decoders that read fields one by one.
pub fn bounded_input(data: &[u8]) -> protobuf::Result<CodedInputStream<'_>> {
    let mut input = CodedInputStream::from_bytes(data);
    input.push_limit(data.len() as u64)?;
    Ok(input)
}

fn oversized(h: &Header) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("ttrpc message of {} bytes exceeds {MAX_MESSAGE}", h.length),
    )
}

/// Reads one whole frame from a blocking stream. The body's memory grows
/// with the bytes that arrive, not with what the header claims.
pub fn read_frame(r: &mut impl Read) -> io::Result<(Header, Vec<u8>)> {
    let mut hb = [0u8; HEADER_LEN];
    r.read_exact(&mut hb)?;
    let h = Header::parse(&hb);
    if h.length as usize > MAX_MESSAGE {
        return Err(oversized(&h));
    }
    let mut body = Vec::new();
    r.take(u64::from(h.length)).read_to_end(&mut body)?;
    if body.len() != h.length as usize {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "ttrpc frame cut short: {} of {} bytes",
                body.len(),
                h.length
            ),
        ));
    }
    Ok((h, body))
}

/// Frames taken off a byte stream as it arrives, for a non-blocking
/// connection: bytes are pushed as they are read, whole frames taken off
/// the front. Holds at most one frame and what came after it: a header
/// over [`MAX_MESSAGE`] is an error as soon as its 10 bytes are in.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    buf: Vec<u8>,
}

impl FrameBuffer {
    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that are not yet a whole frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame, `None` until all of it arrived; an error for
    /// a header that claims more than [`MAX_MESSAGE`] (the stream cannot be
    /// resynchronised after it: close it).
    pub fn next_frame(&mut self) -> io::Result<Option<(Header, Vec<u8>)>> {
        let Some(hb) = self.buf.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        let h = Header::parse(hb);
        if h.length as usize > MAX_MESSAGE {
            return Err(oversized(&h));
        }
        let total = HEADER_LEN + h.length as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        let body = self.buf[HEADER_LEN..total].to_vec();
        self.buf.drain(..total);
        Ok(Some((h, body)))
    }
}

/// How long [`write_all_wait`] waits for a peer that reads nothing.
pub const WRITE_STALL_MS: u16 = 5000;

/// Writes a whole buffer to a possibly non-blocking fd, waiting for room;
/// a `TimedOut` error when the peer took nothing for [`WRITE_STALL_MS`]
/// (a peer that sends requests and never reads the answers must not hold
/// the writer forever).
pub fn write_all_wait(w: &mut (impl Write + std::os::fd::AsFd), mut buf: &[u8]) -> io::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    while !buf.is_empty() {
        match w.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(w.as_fd(), PollFlags::POLLOUT)];
                let ready = match poll(&mut fds, PollTimeout::from(WRITE_STALL_MS)) {
                    Ok(n) => n,
                    Err(nix::Error::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                };
                if ready == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!(
                            "the peer read nothing for {WRITE_STALL_MS} ms ({} bytes left)",
                            buf.len()
                        ),
                    ));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = Header {
            length: 300,
            stream_id: 7,
            kind: TYPE_REQUEST,
            flags: 0,
        };
        assert_eq!(Header::parse(&h.encode()), h);
    }

    #[test]
    fn request_frame_decodes() {
        let f = request_frame(3, "containerd.task.v2.Task", "State", vec![1, 2], 0);
        let (h, body) = read_frame(&mut &f[..]).unwrap();
        assert_eq!(h.stream_id, 3);
        assert_eq!(h.kind, TYPE_REQUEST);
        let req = Request::parse_from_bytes(&body).unwrap();
        assert_eq!(req.method, "State");
        assert_eq!(req.payload, vec![1, 2]);
    }

    #[test]
    fn oversized_frame_is_refused() {
        let mut f = Header {
            length: (MAX_MESSAGE + 1) as u32,
            stream_id: 1,
            kind: 1,
            flags: 0,
        }
        .encode()
        .to_vec();
        f.extend_from_slice(&[0; 16]);
        assert!(read_frame(&mut &f[..]).is_err());
    }

    fn header(length: u32) -> [u8; HEADER_LEN] {
        Header::request(length, 1).encode()
    }

    #[test]
    fn a_short_body_is_an_error_and_memory_follows_the_data() {
        // A header claiming the largest allowed body, then 3 bytes: an error,
        // and the body's buffer never grew to what the header claimed.
        let mut f = header(MAX_MESSAGE as u32).to_vec();
        f.extend_from_slice(b"abc");
        let e = read_frame(&mut &f[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof, "{e}");
        assert!(e.to_string().contains("3 of"), "{e}");
        let e = read_frame(&mut &header(u32::MAX)[..]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        assert!(read_frame(&mut &b"short"[..]).is_err());
    }

    #[test]
    fn decode_message_reads_what_parse_from_bytes_reads() {
        let f = request_frame(3, "containerd.task.v2.Task", "State", vec![1, 2], 7);
        let req: Request = decode_message(&f[HEADER_LEN..]).unwrap();
        assert_eq!(req, Request::parse_from_bytes(&f[HEADER_LEN..]).unwrap());
        // service (field 1) claiming 9 MB with 3 bytes present, and trailing
        // garbage after a whole message: both refused.
        assert!(decode_message::<Request>(&[0x0a, 0xc0, 0xa9, 0xa5, 0x04, 1, 2, 3]).is_err());
        assert!(decode_message::<Request>(&[0x0a, 0x01, b'x', 0xff]).is_err());
        assert!(decode_message::<Request>(&[]).is_ok());
    }

    #[test]
    fn frame_buffer_takes_whole_frames_as_bytes_arrive() {
        let mut stream = request_frame(1, "s", "A", vec![7; 100], 0);
        stream.extend(request_frame(2, "s", "B", vec![], 0));
        let mut fb = FrameBuffer::default();
        let mut got = Vec::new();
        for byte in &stream {
            fb.push(std::slice::from_ref(byte));
            while let Some((h, body)) = fb.next_frame().unwrap() {
                got.push((
                    h.stream_id,
                    Request::parse_from_bytes(&body).unwrap().method,
                ));
            }
        }
        assert_eq!(got, [(1, "A".to_string()), (2, "B".to_string())]);
        assert_eq!(fb.buffered(), 0);
    }

    #[test]
    fn frame_buffer_refuses_an_oversized_header_once_it_is_in() {
        let mut fb = FrameBuffer::default();
        fb.push(&header(u32::MAX)[..9]);
        assert!(fb.next_frame().unwrap().is_none());
        fb.push(&header(u32::MAX)[9..]);
        let e = fb.next_frame().unwrap_err();
        assert!(e.to_string().contains("4294967295"), "{e}");
        // At the limit is allowed, and waits for the body.
        let mut fb = FrameBuffer::default();
        fb.push(&header(MAX_MESSAGE as u32));
        assert!(fb.next_frame().unwrap().is_none());
        assert_eq!(fb.buffered(), HEADER_LEN);
    }
}
