//! ttrpc wire format: 10-byte frame headers around protobuf `Request` and
//! `Response` messages, for both the server and the events client.

use std::io::{self, Read, Write};

use containerd_shim_protos::protobuf::Message;
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

/// Reads one whole frame from a blocking stream.
pub fn read_frame(r: &mut impl Read) -> io::Result<(Header, Vec<u8>)> {
    let mut hb = [0u8; HEADER_LEN];
    r.read_exact(&mut hb)?;
    let h = Header::parse(&hb);
    if h.length as usize > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("ttrpc message of {} bytes exceeds {MAX_MESSAGE}", h.length),
        ));
    }
    let mut body = vec![0u8; h.length as usize];
    r.read_exact(&mut body)?;
    Ok((h, body))
}

/// Writes a whole buffer to a possibly non-blocking fd, waiting for room.
pub fn write_all_wait(w: &mut (impl Write + std::os::fd::AsFd), mut buf: &[u8]) -> io::Result<()> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    while !buf.is_empty() {
        match w.write(buf) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                let mut fds = [PollFd::new(w.as_fd(), PollFlags::POLLOUT)];
                poll(&mut fds, PollTimeout::from(5000u16)).map_err(io::Error::from)?;
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
}
