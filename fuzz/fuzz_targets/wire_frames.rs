//! ttrpc frames as a peer on the shim's socket sends them (src/wire.rs):
//! the server's `FrameBuffer` fed in chunks of a size the input picks, and
//! the blocking `read_frame` the events client uses, must agree frame for
//! frame; each body is decoded as the server and client decode it.
#![no_main]

use containerd_shim_protos::ttrpc::{Request, Response};
use libfuzzer_sys::fuzz_target;
use nucleus_shim::server::TASK_SERVICES;
use nucleus_shim::wire::{self, FrameBuffer, Header, MAX_MESSAGE};

fn decode(h: &Header, body: &[u8]) {
    assert!(body.len() <= MAX_MESSAGE);
    assert_eq!(body.len(), h.length as usize);
    match h.kind {
        wire::TYPE_REQUEST => {
            // As the server decodes a request.
            if let Ok(req) = wire::decode_message::<Request>(body) {
                let _ = TASK_SERVICES.contains(&req.service.as_str());
                // What the server would answer encodes and decodes again.
                let again = wire::request_frame(
                    h.stream_id,
                    &req.service,
                    &req.method,
                    req.payload.clone(),
                    req.timeout_nano,
                );
                let (h2, b2) = wire::read_frame(&mut &again[..]).expect("own frame");
                let back = wire::decode_message::<Request>(&b2).expect("own request");
                assert_eq!(h2.stream_id, h.stream_id);
                assert_eq!(
                    (&back.service, &back.method, &back.payload),
                    (&req.service, &req.method, &req.payload)
                );
            }
        }
        // As the events client decodes containerd's response.
        _ => {
            let _ = wire::decode_message::<Response>(body);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    nucleus_fuzz::limit_allocations(data.len());
    let Some((&chunk_sel, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk_sel % 32) + 1;

    // The server's path: bytes pushed as they arrive, frames taken off.
    let mut fb = FrameBuffer::default();
    let mut by_buffer = Vec::new();
    let mut refused = false;
    'feed: for piece in stream.chunks(chunk) {
        fb.push(piece);
        loop {
            match fb.next_frame() {
                Ok(Some(frame)) => by_buffer.push(frame),
                Ok(None) => break,
                Err(_) => {
                    refused = true;
                    break 'feed;
                }
            }
        }
        // Never more than one frame (plus one chunk) held.
        assert!(fb.buffered() <= wire::HEADER_LEN + MAX_MESSAGE + chunk);
    }

    // The client's path: blocking reads until the stream ends or fails.
    let mut r = stream;
    let mut by_reader = Vec::new();
    let mut reader_failed_early = false;
    while !r.is_empty() {
        match wire::read_frame(&mut r) {
            Ok(frame) => by_reader.push(frame),
            Err(_) => {
                reader_failed_early = true;
                break;
            }
        }
    }
    assert_eq!(by_buffer, by_reader, "the two frame readers disagree");
    if refused {
        assert!(
            reader_failed_early,
            "an oversized header only one reader refused"
        );
    }
    for (h, body) in &by_buffer {
        decode(h, body);
    }
});
