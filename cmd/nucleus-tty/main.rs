//! `nucleus-tty [--size COLSxROWS] -- PROGRAM [ARGS...]`: runs PROGRAM on a
//! terminal of the sandbox's own devpts and relays it to the terminal this
//! process was given.
//!
//! Why: gVisor hands a container the console pty as an imported host fd.
//! Its path in /proc/self/fd is `host:[N]` and its stat carries no device
//! number (pkg/sentry/fsimpl/host/host.go), so `ttyname()` (`tty`) finds
//! nothing, and /dev/tty is not that terminal before runsc 20241007. A pty
//! the sentry makes itself is a real /dev/pts/N with job control. The shim
//! makes this program the process runsc starts (it is bind-mounted into
//! runsc containers) when a process asks for a terminal.
//!
//! What it does: opens /dev/ptmx, puts the given terminal in raw mode (the
//! sandbox pty's line discipline is the one that counts), starts PROGRAM in
//! a new session with the pty as its controlling terminal, then copies
//! bytes both ways, passes window size changes (SIGWINCH) on, forwards
//! termination signals to PROGRAM, reaps orphans (it may be the container's
//! init) and exits with PROGRAM's status (128+N for a signal). Without a tty
//! on stdin or a usable /dev/ptmx it just executes PROGRAM.
//!
//! With `NUCLEUS_SECCOMP_BPF` in its environment (a BPF program, hex) it
//! installs that seccomp filter right before PROGRAM is executed, and
//! refuses to run PROGRAM without it: runsc does not filter processes it
//! starts by exec, so the shim runs them under this program with the
//! container's profile (see `runtime::bpf`).
//!
//! Built twice: as a normal binary (tests), and by build.rs statically for
//! the shim to carry, so it needs nothing from the container's image. It
//! uses std only and declares the few C functions it needs itself.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::mem::ManuallyDrop;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::process::exit;

#[allow(non_camel_case_types)]
mod sys {
    use std::ffi::{c_char, c_int, c_ulong, c_void};

    pub type pid_t = i32;

    /// `struct sock_fprog`: a seccomp BPF program.
    #[repr(C)]
    pub struct SockFprog {
        pub len: u16,
        pub filter: *const u8,
    }

    /// glibc's `struct termios` (60 bytes), opaque here.
    #[repr(C, align(4))]
    #[derive(Clone, Copy)]
    pub struct Termios(pub [u8; 60]);

    #[repr(C)]
    #[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
    pub struct Winsize {
        pub rows: u16,
        pub cols: u16,
        pub xpixel: u16,
        pub ypixel: u16,
    }

    /// glibc's `sigset_t` (1024 bits), opaque here.
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub struct SigSet(pub [u64; 16]);

    #[repr(C)]
    pub struct PollFd {
        pub fd: c_int,
        pub events: i16,
        pub revents: i16,
    }

    pub const O_RDWR: c_int = 0o2;
    pub const O_NOCTTY: c_int = 0o400;
    pub const O_NONBLOCK: c_int = 0o4000;
    pub const O_CLOEXEC: c_int = 0o2000000;
    pub const F_GETFL: c_int = 3;
    pub const F_SETFL: c_int = 4;
    pub const TCSANOW: c_int = 0;
    pub const PR_SET_NO_NEW_PRIVS: c_int = 38;
    pub const PR_SET_SECCOMP: c_int = 22;
    pub const SECCOMP_MODE_FILTER: c_int = 2;
    pub const EACCES: i32 = 13;
    pub const TIOCGWINSZ: c_ulong = 0x5413;
    pub const TIOCSWINSZ: c_ulong = 0x5414;
    pub const TIOCSCTTY: c_ulong = 0x540E;
    pub const SIG_BLOCK: c_int = 0;
    pub const SIG_SETMASK: c_int = 2;
    pub const SFD_NONBLOCK: c_int = 0o4000;
    pub const SFD_CLOEXEC: c_int = 0o2000000;
    pub const POLLIN: i16 = 0x1;
    pub const POLLOUT: i16 = 0x4;
    pub const POLLERR: i16 = 0x8;
    pub const POLLHUP: i16 = 0x10;
    pub const WNOHANG: c_int = 1;
    pub const SIGHUP: c_int = 1;
    pub const SIGINT: c_int = 2;
    pub const SIGQUIT: c_int = 3;
    pub const SIGUSR1: c_int = 10;
    pub const SIGUSR2: c_int = 12;
    pub const SIGPIPE: c_int = 13;
    pub const SIGALRM: c_int = 14;
    pub const SIGTERM: c_int = 15;
    pub const SIGCHLD: c_int = 17;
    pub const SIGCONT: c_int = 18;
    pub const SIGWINCH: c_int = 28;
    /// `sizeof(struct signalfd_siginfo)`; `ssi_signo` is its first u32.
    pub const SIGINFO_SIZE: usize = 128;

    extern "C" {
        pub fn posix_openpt(flags: c_int) -> c_int;
        pub fn grantpt(fd: c_int) -> c_int;
        pub fn unlockpt(fd: c_int) -> c_int;
        pub fn ptsname_r(fd: c_int, buf: *mut c_char, len: usize) -> c_int;
        pub fn ioctl(fd: c_int, req: c_ulong, ...) -> c_int;
        pub fn tcgetattr(fd: c_int, t: *mut Termios) -> c_int;
        pub fn tcsetattr(fd: c_int, when: c_int, t: *const Termios) -> c_int;
        pub fn cfmakeraw(t: *mut Termios);
        pub fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
        pub fn open(path: *const c_char, flags: c_int, ...) -> c_int;
        pub fn dup2(old: c_int, new: c_int) -> c_int;
        pub fn fork() -> pid_t;
        pub fn setsid() -> pid_t;
        pub fn getpid() -> pid_t;
        pub fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int;
        pub fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t;
        pub fn kill(pid: pid_t, sig: c_int) -> c_int;
        pub fn raise(sig: c_int) -> c_int;
        pub fn signal(sig: c_int, handler: usize) -> usize;
        pub fn sigemptyset(set: *mut SigSet) -> c_int;
        pub fn sigaddset(set: *mut SigSet, sig: c_int) -> c_int;
        pub fn sigprocmask(how: c_int, set: *const SigSet, old: *mut SigSet) -> c_int;
        pub fn signalfd(fd: c_int, mask: *const SigSet, flags: c_int) -> c_int;
        pub fn poll(fds: *mut PollFd, n: c_ulong, timeout: c_int) -> c_int;
        pub fn _exit(code: c_int) -> !;
        pub fn write(fd: c_int, buf: *const c_void, n: usize) -> isize;
        pub fn prctl(option: c_int, ...) -> c_int;
    }
}

/// Signals passed on to the program (what `ctr task kill` and a terminal
/// hangup send); SIGWINCH and SIGCHLD are handled here.
const FORWARDED: [i32; 8] = [
    sys::SIGHUP,
    sys::SIGINT,
    sys::SIGQUIT,
    sys::SIGTERM,
    sys::SIGUSR1,
    sys::SIGUSR2,
    sys::SIGALRM,
    sys::SIGCONT,
];

/// What the command line asks for.
#[derive(Debug, PartialEq, Eq)]
struct Args {
    /// Window size for the new terminal while the given one has none yet.
    size: Option<sys::Winsize>,
    program: Vec<OsString>,
}

fn parse_size(s: &str) -> Option<sys::Winsize> {
    let (cols, rows) = s.split_once('x')?;
    let (cols, rows) = (cols.parse::<u16>().ok()?, rows.parse::<u16>().ok()?);
    (cols > 0 && rows > 0).then_some(sys::Winsize {
        rows,
        cols,
        ..Default::default()
    })
}

fn parse_args(args: &[OsString]) -> Result<Args, String> {
    let mut size = None;
    let mut i = 0;
    while i < args.len() {
        match args[i].to_str() {
            Some("--") => {
                i += 1;
                break;
            }
            Some("--size") => {
                let v = args.get(i + 1).and_then(|v| v.to_str()).unwrap_or("");
                size = Some(parse_size(v).ok_or(format!("--size {v:?}: want COLSxROWS"))?);
                i += 2;
            }
            _ => return Err(format!("unexpected argument {:?}", args[i])),
        }
    }
    let program = args[i.min(args.len())..].to_vec();
    if program.is_empty() {
        return Err("no program given".into());
    }
    Ok(Args { size, program })
}

/// The exit code a shell would report for a wait status.
fn exit_code(status: i32) -> i32 {
    let sig = status & 0x7f;
    if sig == 0 {
        (status >> 8) & 0xff
    } else {
        128 + sig
    }
}

fn last_error() -> std::io::Error {
    std::io::Error::last_os_error()
}

fn get_winsize(fd: RawFd) -> Option<sys::Winsize> {
    let mut ws = sys::Winsize::default();
    // SAFETY: TIOCGWINSZ fills one winsize.
    (unsafe { sys::ioctl(fd, sys::TIOCGWINSZ, &mut ws as *mut sys::Winsize) } == 0).then_some(ws)
}

fn set_winsize(fd: RawFd, ws: &sys::Winsize) {
    // SAFETY: TIOCSWINSZ reads one winsize.
    unsafe { sys::ioctl(fd, sys::TIOCSWINSZ, ws as *const sys::Winsize) };
}

fn set_nonblocking(fd: RawFd) {
    // SAFETY: plain fcntl calls on an fd this process holds.
    unsafe {
        let flags = sys::fcntl(fd, sys::F_GETFL);
        if flags >= 0 {
            sys::fcntl(fd, sys::F_SETFL, flags | sys::O_NONBLOCK);
        }
    }
}

/// A pty of this (sandbox) kernel: the master and an open replica.
struct Pty {
    master: OwnedFd,
    replica: OwnedFd,
}

fn open_pty() -> std::io::Result<Pty> {
    // SAFETY: plain libc calls; fds are owned once checked.
    unsafe {
        let m = sys::posix_openpt(sys::O_RDWR | sys::O_NOCTTY | sys::O_CLOEXEC);
        if m < 0 {
            return Err(last_error());
        }
        let master = OwnedFd::from_raw_fd(m);
        if sys::grantpt(m) != 0 || sys::unlockpt(m) != 0 {
            return Err(last_error());
        }
        let mut name = [0 as std::ffi::c_char; 128];
        let rc = sys::ptsname_r(m, name.as_mut_ptr(), name.len());
        if rc != 0 {
            return Err(std::io::Error::from_raw_os_error(rc));
        }
        let r = sys::open(name.as_ptr(), sys::O_RDWR | sys::O_NOCTTY | sys::O_CLOEXEC);
        if r < 0 {
            return Err(last_error());
        }
        Ok(Pty {
            master,
            replica: OwnedFd::from_raw_fd(r),
        })
    }
}

fn to_cstrings(args: &[OsString]) -> Result<Vec<CString>, String> {
    args.iter()
        .map(|a| CString::new(a.as_bytes()).map_err(|_| format!("argument {a:?} contains NUL")))
        .collect()
}

/// The environment variable the shim passes a seccomp program in (hex,
/// 8 bytes per BPF instruction): the container's profile for a process
/// runsc starts by exec, which gVisor does not filter itself.
const SECCOMP_ENV: &str = "NUCLEUS_SECCOMP_BPF";

/// The seccomp program to install before the program runs.
static FILTER: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();

/// Takes the program out of the environment (the program does not see it).
fn take_seccomp() -> Result<Option<Vec<u8>>, String> {
    let Some(hex) = std::env::var_os(SECCOMP_ENV) else {
        return Ok(None);
    };
    std::env::remove_var(SECCOMP_ENV);
    let hex = hex.as_bytes();
    if hex.is_empty() || hex.len() % 16 != 0 || hex.len() / 16 > 4096 {
        return Err(format!("{SECCOMP_ENV}: not a seccomp program"));
    }
    let digit = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    hex.chunks(2)
        .map(|p| Some(digit(p[0])? << 4 | digit(p[1])?))
        .collect::<Option<Vec<u8>>>()
        .map(Some)
        .ok_or_else(|| format!("{SECCOMP_ENV}: not hex"))
}

/// Installs the seccomp program, if one was given; Err says why not.
fn install_seccomp() -> Result<(), String> {
    let Some(program) = FILTER.get() else {
        return Ok(());
    };
    let prog = sys::SockFprog {
        len: (program.len() / 8) as u16,
        filter: program.as_ptr(),
    };
    let install = || {
        // SAFETY: prog points at a whole program that outlives the call.
        unsafe { sys::prctl(sys::PR_SET_SECCOMP, sys::SECCOMP_MODE_FILTER, &prog) }
    };
    if install() == 0 {
        return Ok(());
    }
    // Without CAP_SYS_ADMIN the kernel wants no_new_privs first.
    if last_error().raw_os_error() == Some(sys::EACCES) {
        // SAFETY: sets a flag of this process.
        if unsafe { sys::prctl(sys::PR_SET_NO_NEW_PRIVS, 1u64, 0u64, 0u64, 0u64) } == 0
            && install() == 0
        {
            return Ok(());
        }
    }
    Err(format!(
        "nucleus-tty: cannot install the container's seccomp profile: {}\n",
        last_error()
    ))
}

/// Executes the program; returns only to report why it could not.
fn exec(program: &[CString]) -> (i32, String) {
    let mut argv: Vec<*const std::ffi::c_char> = program.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    // SAFETY: Rust's runtime ignores SIGPIPE, and an ignored signal stays
    // ignored across exec: the program gets the default back.
    unsafe { sys::signal(sys::SIGPIPE, 0) };
    // The program runs filtered or not at all.
    if let Err(msg) = install_seccomp() {
        return (126, msg);
    }
    // SAFETY: argv is a NULL-terminated array of C strings that outlive
    // the call.
    unsafe { sys::execvp(argv[0], argv.as_ptr()) };
    let e = last_error();
    let code = if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    };
    let why = e.to_string();
    let why = why.split(" (os error").next().unwrap_or(&why);
    (
        code,
        format!(
            "nucleus-tty: cannot run {}: {why}\n",
            program[0].to_string_lossy()
        ),
    )
}

fn exec_or_exit(program: &[CString]) -> ! {
    let (code, msg) = exec(program);
    let _ = std::io::stderr().write_all(msg.as_bytes());
    exit(code)
}

fn main() {
    match take_seccomp() {
        Ok(Some(program)) => {
            let _ = FILTER.set(program);
        }
        Ok(None) => {}
        Err(e) => {
            eprintln!("nucleus-tty: {e}");
            exit(126)
        }
    }
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let args = match parse_args(&args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("nucleus-tty: {e}");
            eprintln!("usage: nucleus-tty [--size COLSxROWS] -- PROGRAM [ARGS...]");
            exit(2)
        }
    };
    let program = match to_cstrings(&args.program) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("nucleus-tty: {e}");
            exit(2)
        }
    };
    let mut saved = sys::Termios([0; 60]);
    // SAFETY: tcgetattr fills the termios; it fails on a non-terminal.
    if unsafe { sys::tcgetattr(0, &mut saved) } != 0 {
        exec_or_exit(&program);
    }
    let pty = match open_pty() {
        Ok(p) => p,
        Err(_) => exec_or_exit(&program),
    };
    let code = relay(pty, &saved, args.size, &program);
    exit(code)
}

/// Starts the program on `pty` and relays until it exits; returns the exit
/// code to leave with.
fn relay(pty: Pty, saved: &sys::Termios, size: Option<sys::Winsize>, program: &[CString]) -> i32 {
    let mut raw = *saved;
    // SAFETY: cfmakeraw edits the copy; tcsetattr reads it.
    unsafe {
        sys::cfmakeraw(&mut raw);
        sys::tcsetattr(0, sys::TCSANOW, &raw);
    }
    let ws = match get_winsize(0) {
        Some(ws) if ws.rows > 0 && ws.cols > 0 => Some(ws),
        _ => size,
    };
    if let Some(ws) = ws {
        set_winsize(pty.master.as_raw_fd(), &ws);
    }

    let mut mask = sys::SigSet([0; 16]);
    let mut old = sys::SigSet([0; 16]);
    // SAFETY: signal set manipulation on local values.
    let sigfd = unsafe {
        sys::sigemptyset(&mut mask);
        for s in FORWARDED.iter().chain(&[sys::SIGCHLD, sys::SIGWINCH]) {
            sys::sigaddset(&mut mask, *s);
        }
        sys::sigprocmask(sys::SIG_BLOCK, &mask, &mut old);
        sys::signalfd(-1, &mask, sys::SFD_NONBLOCK | sys::SFD_CLOEXEC)
    };
    // Without a relay, the program runs on the given terminal as it is.
    let give_up = |old: &sys::SigSet| -> ! {
        restore(saved);
        // SAFETY: restores the signal mask this process started with.
        unsafe { sys::sigprocmask(sys::SIG_SETMASK, old, std::ptr::null_mut()) };
        exec_or_exit(program)
    };
    if sigfd < 0 {
        give_up(&old);
    }
    // SAFETY: signalfd returned a new fd.
    let sigfd = unsafe { OwnedFd::from_raw_fd(sigfd) };

    // SAFETY: this process is single-threaded; the child only makes
    // async-signal-safe calls before exec (the error path allocates, which
    // is fine without other threads).
    let child = unsafe { sys::fork() };
    if child < 0 {
        give_up(&old);
    }
    if child == 0 {
        // SAFETY: see above; fds are the pty's.
        unsafe {
            sys::sigprocmask(sys::SIG_SETMASK, &old, std::ptr::null_mut());
            sys::setsid();
            let r = pty.replica.as_raw_fd();
            sys::ioctl(r, sys::TIOCSCTTY, 0);
            for fd in 0..3 {
                sys::dup2(r, fd);
            }
        }
        let (code, msg) = exec(program);
        // SAFETY: fd 2 is the pty; _exit skips the parent's atexit state.
        unsafe {
            sys::write(2, msg.as_ptr().cast(), msg.len());
            sys::_exit(code)
        }
    }
    let master = pty.master.as_raw_fd();
    set_nonblocking(master);
    set_nonblocking(0);
    set_nonblocking(1);
    let mut window = Window {
        master,
        session: child,
        last: ws,
        signalled: false,
    };
    let (status, pending) = copy_until_exit(child, master, sigfd.as_raw_fd(), &mut window);
    drain(master, pending);
    restore(saved);
    drop(pty);
    let code = exit_code(status);
    let sig = status & 0x7f;
    // SAFETY: getpid has no side effects.
    if sig != 0 && unsafe { sys::getpid() } != 1 {
        // Die the same way, so the status is the program's. (An init
        // cannot be killed by its own signal: it exits with 128+N.)
        // SAFETY: default action, then raise with the signal unblocked.
        unsafe {
            sys::signal(sig, 0);
            let mut one = sys::SigSet([0; 16]);
            sys::sigemptyset(&mut one);
            sys::sigprocmask(sys::SIG_SETMASK, &one, std::ptr::null_mut());
            sys::raise(sig);
        }
    }
    code
}

fn restore(saved: &sys::Termios) {
    // SAFETY: tcsetattr reads the saved termios.
    unsafe { sys::tcsetattr(0, sys::TCSANOW, saved) };
}

/// A file view of a borrowed fd (not closed when dropped).
fn borrowed(fd: RawFd) -> ManuallyDrop<File> {
    // SAFETY: the fd stays open for the process's life; ManuallyDrop keeps
    // it from being closed here.
    ManuallyDrop::new(unsafe { File::from_raw_fd(fd) })
}

/// Bytes waiting to be written to one side.
#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    at: usize,
}

impl Pending {
    fn is_empty(&self) -> bool {
        self.at >= self.buf.len()
    }

    /// Reads from `from` when empty; false once `from` is done (EOF, EIO).
    fn fill(&mut self, from: RawFd) -> bool {
        self.buf.resize(16 * 1024, 0);
        self.at = 0;
        match borrowed(from).read(&mut self.buf) {
            Ok(0) => {
                self.buf.clear();
                false
            }
            Ok(n) => {
                self.buf.truncate(n);
                true
            }
            Err(e) => {
                self.buf.clear();
                matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                )
            }
        }
    }

    /// Writes what it can to `to`; false once `to` is gone.
    fn flush(&mut self, to: RawFd) -> bool {
        match borrowed(to).write(&self.buf[self.at..]) {
            Ok(n) => {
                self.at += n;
                true
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
                ) =>
            {
                true
            }
            Err(_) => {
                self.buf.clear();
                self.at = 0;
                false
            }
        }
    }
}

/// Copies both ways and handles signals until the program exits; returns
/// its wait status and the output not yet passed on.
fn copy_until_exit(
    child: sys::pid_t,
    master: RawFd,
    sigfd: RawFd,
    window: &mut Window,
) -> (i32, Pending) {
    let (mut input, mut output) = (Pending::default(), Pending::default());
    let (mut host_in, mut host_out, mut master_in) = (true, true, true);
    loop {
        let master_events = (if master_in && output.is_empty() {
            sys::POLLIN
        } else {
            0
        }) | (if input.is_empty() { 0 } else { sys::POLLOUT });
        let mut fds = [
            sys::PollFd {
                fd: sigfd,
                events: sys::POLLIN,
                revents: 0,
            },
            sys::PollFd {
                fd: if host_in && input.is_empty() { 0 } else { -1 },
                events: sys::POLLIN,
                revents: 0,
            },
            sys::PollFd {
                fd: if master_events == 0 { -1 } else { master },
                events: master_events,
                revents: 0,
            },
            sys::PollFd {
                fd: if host_out && !output.is_empty() {
                    1
                } else {
                    -1
                },
                events: sys::POLLOUT,
                revents: 0,
            },
        ];
        // SAFETY: fds is a valid array of pollfd.
        if unsafe { sys::poll(fds.as_mut_ptr(), fds.len() as _, window.timeout()) } < 0 {
            if last_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            // Cannot wait for anything: wait for the program alone.
            return (wait_blocking(child), output);
        }
        let ready = |i: usize, ev: i16| fds[i].revents & (ev | sys::POLLERR | sys::POLLHUP) != 0;
        if ready(0, sys::POLLIN) {
            if let Some(status) = handle_signals(child, sigfd, window) {
                return (status, output);
            }
        }
        if !window.signalled {
            window.sync();
        }
        if ready(1, sys::POLLIN) {
            host_in = input.fill(0);
        }
        if !input.is_empty() && ready(2, sys::POLLOUT) && !input.flush(master) {
            input = Pending::default();
        }
        if master_in && output.is_empty() && ready(2, sys::POLLIN) {
            master_in = output.fill(master);
        }
        if !output.is_empty() && ready(3, sys::POLLOUT) {
            host_out = output.flush(1);
        }
        if !host_out {
            output = Pending::default();
        }
    }
}

/// Passes the given terminal's size on to the pty. Size changes come as
/// SIGWINCH (runsc forwards the host's to the terminal's foreground group);
/// until one has come the size is also looked at every quarter second, as
/// runsc 20221219 forwards none to a container joining a pod's sandbox.
struct Window {
    master: RawFd,
    /// The program's session (its pid).
    session: sys::pid_t,
    last: Option<sys::Winsize>,
    signalled: bool,
}

impl Window {
    fn sync(&mut self) {
        if let Some(ws) = get_winsize(0).filter(|w| w.rows > 0 && w.cols > 0) {
            if self.last != Some(ws) {
                set_winsize(self.master, &ws);
                self.last = Some(ws);
                signal_session(self.session, sys::SIGWINCH);
            }
        }
    }

    fn timeout(&self) -> i32 {
        if self.signalled {
            -1
        } else {
            250
        }
    }
}

/// Sends `sig` to every process group of `session`.
///
/// A pty of gVisor before release-20260608 does not signal its foreground
/// group when its size changes (pkg/sentry/fsimpl/devpts/line_discipline.go
/// `setWindowSize`), and this process cannot ask which group that is
/// (TIOCGPGRP answers only for the caller's own controlling terminal, and
/// /proc/PID/stat has no tpgid there). SIGWINCH is ignored by default, so
/// the session's background groups getting it too is harmless; on kernels
/// that do signal, the foreground group gets it twice.
fn signal_session(session: sys::pid_t, sig: i32) {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    let mut groups = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            if let Some((pgrp, sid)) = stat_groups(&stat) {
                if sid == session {
                    groups.push(pgrp);
                }
            }
        }
    }
    groups.sort_unstable();
    groups.dedup();
    for g in groups {
        // SAFETY: kill takes plain values; a negative pid names a group.
        unsafe { sys::kill(-g, sig) };
    }
}

/// The process group and session of a /proc/PID/stat line.
fn stat_groups(stat: &str) -> Option<(sys::pid_t, sys::pid_t)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(2);
    let pgrp = fields.next()?.parse().ok()?;
    let sid = fields.next()?.parse().ok()?;
    Some((pgrp, sid))
}

/// Reads the pending signals; returns the program's wait status once it
/// has exited.
fn handle_signals(child: sys::pid_t, sigfd: RawFd, window: &mut Window) -> Option<i32> {
    let mut info = [0u8; sys::SIGINFO_SIZE];
    let mut exited = None;
    while let Ok(n) = borrowed(sigfd).read(&mut info) {
        if n < 4 {
            break;
        }
        let signo = u32::from_ne_bytes([info[0], info[1], info[2], info[3]]) as i32;
        match signo {
            sys::SIGCHLD => {
                // Reap everything: this may be the container's init.
                loop {
                    let mut status = 0;
                    // SAFETY: waitpid writes the status.
                    let pid = unsafe { sys::waitpid(-1, &mut status, sys::WNOHANG) };
                    if pid <= 0 {
                        break;
                    }
                    if pid == child {
                        exited = Some(status);
                    }
                }
            }
            sys::SIGWINCH => {
                window.signalled = true;
                window.sync();
            }
            s => {
                // SAFETY: kill takes plain values.
                unsafe { sys::kill(child, s) };
            }
        }
    }
    exited
}

fn wait_blocking(child: sys::pid_t) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: waitpid writes the status.
        let pid = unsafe { sys::waitpid(-1, &mut status, 0) };
        if pid == child || pid < 0 {
            return status;
        }
    }
}

/// After the program exited: what it wrote is already in the pty; pass it
/// on after `out`, for as long as the terminal's reader takes it: it gives
/// up only when no byte went out for a while (the reader is gone), never
/// while a slow reader still reads.
fn drain(master: RawFd, mut out: Pending) {
    const IDLE: std::time::Duration = std::time::Duration::from_secs(5);
    let mut progress = std::time::Instant::now();
    loop {
        if out.is_empty() && (!out.fill(master) || out.is_empty()) {
            return;
        }
        while !out.is_empty() {
            let before = out.at;
            if progress.elapsed() > IDLE || !out.flush(1) {
                return;
            }
            if out.at != before {
                progress = std::time::Instant::now();
            }
            if !out.is_empty() {
                let mut fd = [sys::PollFd {
                    fd: 1,
                    events: sys::POLLOUT,
                    revents: 0,
                }];
                // SAFETY: one valid pollfd.
                unsafe { sys::poll(fd.as_mut_ptr(), 1, 100) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn arguments() {
        let a = parse_args(&os(&["--size", "80x24", "--", "sh", "-c", "x"])).unwrap();
        assert_eq!(a.program, os(&["sh", "-c", "x"]));
        assert_eq!(
            a.size,
            Some(sys::Winsize {
                rows: 24,
                cols: 80,
                ..Default::default()
            })
        );
        let a = parse_args(&os(&["--", "--size"])).unwrap();
        assert_eq!((a.size, a.program), (None, os(&["--size"])));
        for bad in [
            &["--"][..],
            &[],
            &["sh"],
            &["--size", "0x3", "--", "sh"],
            &["--size"],
        ] {
            assert!(parse_args(&os(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn stat_lines_give_group_and_session() {
        assert_eq!(stat_groups("7 (a b) c) S 1 5 2 0 0"), Some((5, 2)));
        assert_eq!(stat_groups("7 (sh) S 1"), None);
    }

    #[test]
    fn sigset_is_what_glibc_expects() {
        let mut set = sys::SigSet([0; 16]);
        // SAFETY: plain signal set calls on a local value.
        unsafe {
            sys::sigemptyset(&mut set);
            sys::sigaddset(&mut set, sys::SIGWINCH);
        }
        assert_eq!(set.0[0], 1 << (sys::SIGWINCH - 1));
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(exit_code(0), 0);
        assert_eq!(exit_code(3 << 8), 3);
        assert_eq!(exit_code(9), 137);
        assert_eq!(exit_code(15 | 0x80), 143);
    }

    #[test]
    fn a_missing_program_is_named() {
        let (code, msg) = exec(&[CString::new("/nonexistent/x").unwrap()]);
        assert_eq!(code, 127);
        assert!(msg.contains("/nonexistent/x"), "{msg}");
    }

    #[test]
    fn sigset_and_termios_are_large_enough() {
        assert!(std::mem::size_of::<sys::SigSet>() >= 128);
        assert_eq!(std::mem::size_of::<sys::Winsize>(), 8);
    }
}
