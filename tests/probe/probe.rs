//! In-container probe for the hardening tests, built static by the test
//! harness and bind-mounted into containers. It asks the kernel (or gVisor)
//! directly, the same way on every runtime, and prints one fact per line.

use std::ffi::c_int;

#[repr(C)]
struct Rlimit {
    cur: u64,
    max: u64,
}

extern "C" {
    fn prctl(option: c_int, arg2: u64, arg3: u64, arg4: u64, arg5: u64) -> c_int;
    fn getrlimit(resource: c_int, rlim: *mut Rlimit) -> c_int;
    fn syscall(number: i64, ...) -> i64;
    fn __errno_location() -> *mut c_int;
}

/// `ok` or `errno N` of one raw syscall.
fn outcome(ret: i64) -> String {
    if ret >= 0 {
        "ok".into()
    } else {
        // SAFETY: the thread's errno, right after the failed call.
        format!("errno {}", unsafe { *__errno_location() })
    }
}

const RLIMIT_NOFILE: c_int = 7;

const PR_CAPBSET_READ: c_int = 23;
const PR_GET_NO_NEW_PRIVS: c_int = 39;

fn main() {
    // SAFETY: these prctl calls only read process attributes.
    let nnp = unsafe { prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) };
    println!("no_new_privs {nnp}");
    let mut mask: u64 = 0;
    for cap in 0..64u64 {
        // SAFETY: as above.
        match unsafe { prctl(PR_CAPBSET_READ, cap, 0, 0, 0) } {
            1 => mask |= 1 << cap,
            0 => {}
            _ => break,
        }
    }
    println!("capbnd {mask:016x}");
    let mut lim = Rlimit { cur: 0, max: 0 };
    // SAFETY: getrlimit fills the struct it is given.
    if unsafe { getrlimit(RLIMIT_NOFILE, &mut lim) } == 0 {
        println!("nofile {} {}", lim.cur, lim.max);
    }
    match std::fs::read("/proc/kallsyms") {
        Ok(d) => println!("kallsyms {}", d.len()),
        Err(e) => println!("kallsyms absent ({e})"),
    }
    // A masked directory: empty, and nothing can be made in it.
    match std::fs::read_dir("/sys/firmware") {
        Ok(d) => println!("firmware {}", d.count()),
        Err(e) => println!("firmware absent ({e})"),
    }
    match std::fs::File::create("/sys/firmware/.probe") {
        Ok(_) => {
            let _ = std::fs::remove_file("/sys/firmware/.probe");
            println!("firmware_write writable")
        }
        Err(e) => println!("firmware_write refused ({e})"),
    }
    // The seccomp mode (2: a filter) and what a filter lets through. Each
    // call is harmless when allowed: bad arguments (clone3 with size 0,
    // io_uring_setup with no params) or a read of the key ring's id. The
    // floor answers EPERM, and ENOSYS for clone3.
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        if let Some(mode) = status.lines().find_map(|l| l.strip_prefix("Seccomp:")) {
            println!("seccomp {}", mode.trim());
        }
    }
    // SAFETY: raw syscalls with arguments that touch no memory of ours.
    unsafe {
        println!("sys_keyctl {}", outcome(syscall(250, 0i64, -3i64, 0i64)));
        println!("sys_clone3 {}", outcome(syscall(435, 0i64, 0i64)));
        println!("sys_io_uring_setup {}", outcome(syscall(425, 1i64, 0i64)));
        println!("sys_socket_vsock {}", outcome(syscall(41, 40i64, 1i64, 0i64)));
    }
    // Opening for write is the test; nothing is written.
    for (key, path) in [
        ("sysrq", "/proc/sysrq-trigger"),
        ("procsys", "/proc/sys/kernel/hostname"),
    ] {
        match std::fs::OpenOptions::new().write(true).open(path) {
            Ok(_) => println!("{key} writable"),
            Err(e) => println!("{key} refused ({e})"),
        }
    }
}
