//! What every fuzz target shares: an allocator that turns an allocation out
//! of proportion to the input into a crash (libFuzzer then keeps the input
//! and prints it), and the fixed policies the hardening target picks from.
//!
//! libFuzzer's own `-malloc_limit_mb` needs a sanitizer's malloc hooks, which
//! the stable toolchain does not build; this allocator checks every Rust
//! allocation instead.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes any one allocation may take regardless of the input.
pub const BASE_ALLOWANCE: usize = 1 << 20;
/// Bytes one allocation may take per byte of input.
pub const PER_INPUT_BYTE: usize = 16;

static LIMIT: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Sets the largest single allocation allowed while the decoders run on an
/// input of `input_len` bytes: [`BASE_ALLOWANCE`] plus [`PER_INPUT_BYTE`]
/// per input byte. A decoder that allocates what a length field claims,
/// rather than what arrived, is caught here.
pub fn limit_allocations(input_len: usize) {
    LIMIT.store(
        BASE_ALLOWANCE.saturating_add(input_len.saturating_mul(PER_INPUT_BYTE)),
        Ordering::Relaxed,
    );
}

/// The system allocator with a cap on the size of each allocation.
pub struct Capped;

fn check(size: usize) {
    // A panic's backtrace is symbolised with large buffers: the panic is
    // the finding then, not the allocation.
    if size > LIMIT.load(Ordering::Relaxed) && !std::thread::panicking() {
        over_limit(size);
    }
}

fn over_limit(size: usize) -> ! {
    // No allocation here: format into a stack buffer and write(2) it.
    let mut msg = [0u8; 160];
    let text = b"nucleus-fuzz: one allocation of ";
    let mut n = 0;
    for b in text {
        msg[n] = *b;
        n += 1;
    }
    let mut digits = [0u8; 20];
    let (mut v, mut d) = (size, 0);
    loop {
        digits[d] = b'0' + (v % 10) as u8;
        d += 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    while d > 0 {
        d -= 1;
        msg[n] = digits[d];
        n += 1;
    }
    for b in b" bytes is out of proportion to the input\n" {
        msg[n] = *b;
        n += 1;
    }
    // SAFETY: writing a stack buffer to fd 2, then abort; libFuzzer's
    // SIGABRT handler saves the input.
    unsafe { libc::write(2, msg.as_ptr().cast(), n) };
    std::process::abort()
}

// SAFETY: every call is forwarded to the system allocator unchanged; only
// the size is checked first.
unsafe impl GlobalAlloc for Capped {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        System.alloc_zeroed(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Capped = Capped;
