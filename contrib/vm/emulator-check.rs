//! Does the CPU keep the flags of a `neg` when the `setcc` storing one of
//! them takes a page fault? Real CPUs do. QEMU's TCG (10.0.2 measured) does
//! not: it computes the flags into its lazy-flags registers, the store
//! faults, and the instruction restarts with the flags state of before, now
//! read wrongly (OF lost after `neg` of i64::MIN). A fork makes every page
//! copy-on-write, so the first store after it faults; every compiler emits
//! `setcc` to memory. The VM lane runs this once and reports the answer,
//! so a program crashing there can be told apart from a defect of its own.
//!
//! Build: rustc --edition 2021 -O -C target-feature=+crt-static emulator-check.rs
//! Prints one line; exits 0 when the flags were kept, 1 when lost, 2 on error.
use std::arch::asm;

extern "C" {
    fn fork() -> i32;
    fn _exit(code: i32) -> !;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
}

/// `neg` of i64::MIN sets OF; `setno` stores its negation to `at`, and `jno`
/// reads OF again afterwards. True when the CPU saw OF set.
fn overflow_seen(at: *mut u8) -> bool {
    let seen: u8;
    // SAFETY: writes one byte to `at`, which points into a live buffer.
    unsafe {
        asm!(
            "mov {x}, 0x8000000000000000",
            "neg {x}",
            "setno byte ptr [{at}]",
            "mov {seen}, 0",
            "jno 2f",
            "mov {seen}, 1",
            "2:",
            x = out(reg) _,
            at = in(reg) at,
            seen = out(reg_byte) seen,
        );
    }
    seen == 1
}

fn main() {
    const ROUNDS: usize = 200;
    let mut buf = vec![0u8; ROUNDS * 4096];
    let mut lost = 0;
    for i in 0..ROUNDS {
        // SAFETY: the child only exits.
        let pid = unsafe { fork() };
        if pid < 0 {
            println!("emulator-check: fork failed");
            std::process::exit(2);
        }
        if pid == 0 {
            // SAFETY: ends the child at once.
            unsafe { _exit(0) }
        }
        // A page of its own each round: written first here, after the fork.
        if !overflow_seen(buf[i * 4096..].as_mut_ptr()) {
            lost += 1;
        }
        let mut status = 0;
        // SAFETY: waits for the child just forked.
        unsafe { waitpid(pid, &mut status, 0) };
    }
    if lost == 0 {
        println!("emulator-check: flags kept across a faulting setcc ({ROUNDS} of {ROUNDS})");
    } else {
        println!(
            "emulator-check: DEFECTIVE CPU EMULATION: the overflow flag of a neg was lost \
             when the setcc storing it faulted, {lost} of {ROUNDS} times (QEMU TCG; see README, \
             \"The VM lane\")"
        );
        std::process::exit(1);
    }
}
