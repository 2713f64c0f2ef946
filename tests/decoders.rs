//! The decoders of outside input allocate in proportion to what arrived,
//! not to what a length field claims. A counting allocator records the
//! largest single allocation made on this thread while a decoder runs (the
//! fuzz targets in fuzz/ check the same on every input they try).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use containerd_shim_protos::ttrpc::Request;
use nucleus_shim::options;
use nucleus_shim::wire::{self, FrameBuffer, Header, HEADER_LEN, MAX_MESSAGE};

struct Counting;

thread_local! {
    static LARGEST: Cell<usize> = const { Cell::new(0) };
}

fn note(size: usize) {
    // try_with: the thread-local may be gone while a thread exits.
    let _ = LARGEST.try_with(|l| l.set(l.get().max(size)));
}

// SAFETY: every call goes to the system allocator unchanged; only sizes are noted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The largest single allocation `f` made.
fn largest_allocation<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LARGEST.with(|l| l.set(0));
    let out = f();
    (out, LARGEST.with(|l| l.get()))
}

const SMALL: usize = 64 * 1024;

/// A protobuf length-delimited field `num` whose length claims `claimed`
/// bytes, followed by only a few.
fn lying_field(num: u32, claimed: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for mut n in [u64::from(num << 3 | 2), claimed] {
        while n >= 0x80 {
            out.push((n & 0x7f) as u8 | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
    }
    out.extend_from_slice(b"abc");
    out
}

#[test]
fn a_request_claiming_megabytes_in_a_string_is_refused_without_reserving_them() {
    // ttrpc Request.service (field 1) claiming 9 MB, 3 bytes present: the
    // protobuf crate's parse_from_bytes reserves the 9 MB first.
    let body = lying_field(1, 9_000_000);
    let (res, largest) = largest_allocation(|| wire::decode_message::<Request>(&body));
    assert!(res.is_err());
    assert!(
        largest < SMALL,
        "decoding 14 bytes allocated {largest} bytes at once"
    );
}

#[test]
fn start_stdin_and_options_claiming_megabytes_are_refused_without_reserving_them() {
    // An Any whose type_url claims 9 MB; BootstrapParams' namespace likewise.
    for stdin in [lying_field(1, 9_000_000), lying_field(2, 9_000_000)] {
        let (res, largest) = largest_allocation(|| options::decode_start_stdin(&stdin));
        assert!(res.is_err());
        assert!(largest < SMALL, "start stdin: {largest} bytes at once");
        let (res, largest) = largest_allocation(|| options::decode_any_bytes(&stdin));
        assert!(res.is_err());
        assert!(largest < SMALL, "options Any: {largest} bytes at once");
    }
    // A well-formed Any of runtimeoptions whose config_body (field 3)
    // claims 9 MB, and one of runc Options whose binary_name (6) does.
    for (type_url, value) in [
        ("runtimeoptions.v1.Options", lying_field(3, 9_000_000)),
        ("containerd.runc.v1.Options", lying_field(6, 9_000_000)),
        (
            "containerd.linux.runc.CreateOptions",
            lying_field(9, 9_000_000),
        ),
    ] {
        let any = containerd_shim_protos::protobuf::well_known_types::any::Any {
            type_url: type_url.into(),
            value,
            ..Default::default()
        };
        let bytes = containerd_shim_protos::protobuf::Message::write_to_bytes(&any).unwrap();
        let (res, largest) = largest_allocation(|| options::decode_any_bytes(&bytes));
        let e = res.unwrap_err();
        assert!(e.0.contains("malformed"), "{e}");
        assert!(largest < SMALL, "{type_url}: {largest} bytes at once");
    }
}

#[test]
fn frame_headers_claiming_gigabytes_allocate_nothing_of_it() {
    let header = |length: u32| Header::request(length, 1).encode();
    // 4 GiB - 1: refused by both readers as soon as the header is in.
    let (res, largest) = largest_allocation(|| wire::read_frame(&mut &header(u32::MAX)[..]));
    assert!(res.is_err());
    assert!(largest < SMALL, "read_frame: {largest} bytes at once");
    let (res, largest) = largest_allocation(|| {
        let mut fb = FrameBuffer::default();
        fb.push(&header(u32::MAX));
        fb.next_frame()
    });
    assert!(res.is_err());
    assert!(largest < SMALL, "FrameBuffer: {largest} bytes at once");
    // The largest allowed length with 3 bytes behind it: the body grows
    // with the bytes, not with the claim.
    let mut f = header(MAX_MESSAGE as u32).to_vec();
    f.extend_from_slice(b"abc");
    let (res, largest) = largest_allocation(|| wire::read_frame(&mut &f[..]));
    assert!(res.is_err());
    assert!(
        largest < SMALL,
        "read_frame of a cut frame: {largest} bytes at once"
    );
    assert_eq!(f.len(), HEADER_LEN + 3);
}
