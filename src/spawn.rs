//! A clean start for every process the shim spawns: runtime CLI calls,
//! `binary://` loggers and the shim's own server daemon.
//!
//! A child inherits more than its arguments: the environment, the signal mask
//! and every ignored signal disposition survive `execve`. The shim's own
//! state must not leak into them:
//! - containerd run by systemd (`Type=notify`) hands its `NOTIFY_SOCKET` to
//!   the shim; `runc start`/`crun start` seeing it wait for READY=1 from the
//!   container (or fail dialing it), so `ctr run -d` hangs;
//! - the server blocks SIGCHLD for its signalfd and ignores SIGPIPE; a blocked
//!   or ignored signal reaches the container process through the runtime
//!   (a shell's `wait` then sleeps forever).
//!
//! How each is handled:
//! - the environment: [`command`] builds it ([`child_env`]);
//! - the mask and every disposition: `posix_spawn` with an empty mask and
//!   the default for every signal, 32 and 33 included (glibc's own
//!   `sigfillset` leaves those two out, and its `posix_spawn` otherwise sets
//!   them to SIG_IGN in the child, where they would survive `execve`);
//! - the shim's own process: [`default_inherited_signals`], run first thing
//!   in `main`, sets back to default what the shim inherited ignored (a
//!   containerd started under `nohup`), so nothing of it shows in the shim
//!   either.
//!
//! Why `posix_spawn` and not std's `Command` with a `pre_exec` hook: a hook
//! makes std fork. glibc's `posix_spawn` runs the child on
//! `clone(CLONE_VM | CLONE_VFORK)`: no copy of the shim's page tables per
//! runtime call, and no copy-on-write page faults in the shim afterwards (on
//! every page any thread writes next). Those faults are not only a cost:
//! QEMU's TCG (10.0) loses the flags of a `neg`/`sub` when the `setcc` that
//! stores them faults, which turned a Connect answer into garbage and crashed
//! the shim in the VM lane (README, "The VM lane").
//!
//! [`command`] is the only way the shim builds a [`Command`].

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

/// Variables of the shim's environment no child gets, and why.
pub const DROPPED_ENV: [&str; 8] = [
    // systemd's readiness socket, meant for containerd's own unit: runc and
    // crun `start` take it as the container's sd_notify socket and block
    // until the container writes READY=1 (containerd-shim-runc-v2 drops it).
    "NOTIFY_SOCKET",
    // Socket activation (sd_listen_fds): the fds numbered from 3 belong to
    // the process that systemd started. runc passes LISTEN_FDS on to the
    // container with fds of its own when LISTEN_PID matches; a child must
    // never claim fds that systemd handed to containerd.
    "LISTEN_FDS",
    // The pid LISTEN_FDS is meant for (containerd's, never a child's).
    "LISTEN_PID",
    // The names of those activated fds, meaningless without them.
    "LISTEN_FDNAMES",
    // containerd's messages to this shim (its ttrpc and gRPC addresses, the
    // namespace, the highest shim protocol it speaks): the shim passes what
    // a child needs explicitly (a logger gets CONTAINER_NAMESPACE); nothing
    // it starts should find containerd's sockets in its environment.
    "TTRPC_ADDRESS",
    "GRPC_ADDRESS",
    "NAMESPACE",
    "MAX_SHIM_VERSION",
];

/// PATH when the shim was started without one (runc looks up criu and
/// newuidmap on it; runsc its own binary for the gofer).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment a child starts with: the shim's own, without
/// [`DROPPED_ENV`], with a PATH.
pub fn child_env() -> Vec<(OsString, OsString)> {
    env_from(std::env::vars_os())
}

fn env_from(vars: impl Iterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vars
        .filter(|(k, _)| !DROPPED_ENV.iter().any(|d| OsStr::new(d) == k))
        .collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    env
}

/// A [`Command`] for `program` (a path, or a name looked up on the shim's
/// PATH) that starts clean: the environment of [`child_env`] (add to it with
/// [`Command::env`]), an empty signal mask and the default disposition for
/// every signal; stdin, stdout and stderr /dev/null unless set.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    Command {
        program: program.as_ref().to_os_string(),
        args: Vec::new(),
        env: child_env(),
        stdio: [ChildIo::Null, ChildIo::Null, ChildIo::Null],
        fds: Vec::new(),
        cwd: None,
        new_session: false,
    }
}

/// Where one of a child's stdio fds comes from.
#[derive(Debug)]
pub enum ChildIo {
    /// /dev/null.
    Null,
    /// A new pipe; the shim's end is in [`Child`].
    Piped,
    /// This fd (the child gets a copy).
    Fd(OwnedFd),
}

/// A process to start, built by [`command`].
#[derive(Debug)]
pub struct Command {
    program: OsString,
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    stdio: [ChildIo; 3],
    /// Extra fds: (number in the child, source).
    fds: Vec<(RawFd, OwnedFd)>,
    cwd: Option<PathBuf>,
    new_session: bool,
}

/// A started process: its pid and the shim's ends of piped stdout/stderr.
/// Nothing waits for it on drop (the server's reaper reaps every child).
#[derive(Debug)]
pub struct Child {
    pid: u32,
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
}

impl Child {
    pub fn id(&self) -> u32 {
        self.pid
    }
}

impl Command {
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        for a in args {
            self.arg(a);
        }
        self
    }

    /// Sets a variable (replacing one of the same name).
    pub fn env(&mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> &mut Command {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_os_string(), value.to_os_string()));
        self
    }

    pub fn stdin(&mut self, io: ChildIo) -> &mut Command {
        self.stdio[0] = io;
        self
    }

    pub fn stdout(&mut self, io: ChildIo) -> &mut Command {
        self.stdio[1] = io;
        self
    }

    pub fn stderr(&mut self, io: ChildIo) -> &mut Command {
        self.stdio[2] = io;
        self
    }

    /// Gives the child a copy of `fd` as fd number `target` (above 2).
    pub fn fd(&mut self, target: RawFd, fd: OwnedFd) -> &mut Command {
        self.fds.push((target, fd));
        self
    }

    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.cwd = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The child leads a new session (setsid).
    pub fn new_session(&mut self) -> &mut Command {
        self.new_session = true;
        self
    }

    /// Starts the process with `posix_spawnp`. A program that cannot be
    /// executed is an error here (glibc reports the child's exec failure).
    pub fn spawn(self) -> io::Result<Child> {
        let cstr = |s: &OsStr| {
            CString::new(s.as_bytes()).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{}: contains a NUL byte", s.to_string_lossy()),
                )
            })
        };
        let program = cstr(&self.program)?;
        let mut argv_c = vec![program.clone()];
        for a in &self.args {
            argv_c.push(cstr(a)?);
        }
        let mut env_c = Vec::with_capacity(self.env.len());
        for (k, v) in &self.env {
            let mut kv = k.clone();
            kv.push("=");
            kv.push(v);
            env_c.push(cstr(&kv)?);
        }
        let cwd = self
            .cwd
            .as_deref()
            .map(|d| cstr(d.as_os_str()))
            .transpose()?;
        let argv = nul_terminated(&argv_c);
        let envp = nul_terminated(&env_c);

        // Every source fd above every target, so no dup2 clobbers a source
        // another one still needs.
        let top = self.fds.iter().map(|(t, _)| *t).max().unwrap_or(2).max(2);
        let lift = |fd: OwnedFd| -> io::Result<OwnedFd> {
            if fd.as_raw_fd() > top {
                return Ok(fd);
            }
            // SAFETY: F_DUPFD_CLOEXEC returns a new fd that nothing else owns.
            let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, top + 1) };
            if n < 0 {
                return Err(io::Error::last_os_error());
            }
            // SAFETY: as above.
            Ok(unsafe { OwnedFd::from_raw_fd(n) })
        };
        let mut actions = FileActions::new()?;
        // The fds the child gets; they must stay open until spawn returns.
        let mut sources: Vec<OwnedFd> = Vec::new();
        let mut ours: [Option<OwnedFd>; 3] = [None, None, None];
        for (n, io) in self.stdio.into_iter().enumerate() {
            let target = n as RawFd;
            match io {
                ChildIo::Null => actions.open_null(target)?,
                ChildIo::Fd(fd) => {
                    let fd = lift(fd)?;
                    actions.dup2(fd.as_raw_fd(), target)?;
                    sources.push(fd);
                }
                ChildIo::Piped => {
                    let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
                    let (child_end, shim_end) = if n == 0 { (r, w) } else { (w, r) };
                    let child_end = lift(child_end)?;
                    actions.dup2(child_end.as_raw_fd(), target)?;
                    sources.push(child_end);
                    ours[n] = Some(shim_end);
                }
            }
        }
        for (target, fd) in self.fds {
            let fd = lift(fd)?;
            actions.dup2(fd.as_raw_fd(), target)?;
            sources.push(fd);
        }
        if let Some(dir) = &cwd {
            actions.chdir(dir)?;
        }
        let attr = SpawnAttr::new(self.new_session)?;
        let mut pid: libc::pid_t = 0;
        // SAFETY: every pointer is valid for the call: NUL-terminated argv
        // and envp over CStrings alive here, initialized actions and attrs.
        let rc = unsafe {
            libc::posix_spawnp(
                &mut pid,
                program.as_ptr(),
                &actions.0,
                &attr.0,
                argv.as_ptr() as *const *mut libc::c_char,
                envp.as_ptr() as *const *mut libc::c_char,
            )
        };
        drop(sources);
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        let [_, stdout, stderr] = ours;
        Ok(Child {
            pid: pid as u32,
            stdout,
            stderr,
        })
    }
}

fn nul_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

struct FileActions(libc::posix_spawn_file_actions_t);

impl FileActions {
    fn new() -> io::Result<FileActions> {
        // SAFETY: init fills the zeroed struct; Drop destroys it.
        let mut fa = FileActions(unsafe { std::mem::zeroed() });
        check(unsafe { libc::posix_spawn_file_actions_init(&mut fa.0) })?;
        Ok(fa)
    }

    fn open_null(&mut self, target: RawFd) -> io::Result<()> {
        // SAFETY: an initialized struct; glibc copies the path.
        check(unsafe {
            libc::posix_spawn_file_actions_addopen(
                &mut self.0,
                target,
                c"/dev/null".as_ptr(),
                libc::O_RDWR,
                0,
            )
        })
    }

    fn dup2(&mut self, fd: RawFd, target: RawFd) -> io::Result<()> {
        // SAFETY: an initialized struct; plain numbers.
        check(unsafe { libc::posix_spawn_file_actions_adddup2(&mut self.0, fd, target) })
    }

    fn chdir(&mut self, dir: &CString) -> io::Result<()> {
        // SAFETY: an initialized struct; glibc copies the path.
        check(unsafe { libc::posix_spawn_file_actions_addchdir_np(&mut self.0, dir.as_ptr()) })
    }
}

impl Drop for FileActions {
    fn drop(&mut self) {
        // SAFETY: initialized in new.
        unsafe { libc::posix_spawn_file_actions_destroy(&mut self.0) };
    }
}

struct SpawnAttr(libc::posix_spawnattr_t);

impl SpawnAttr {
    /// An empty mask and the default action for every signal.
    fn new(new_session: bool) -> io::Result<SpawnAttr> {
        // SAFETY: init fills the zeroed struct; Drop destroys it.
        let mut attr = SpawnAttr(unsafe { std::mem::zeroed() });
        check(unsafe { libc::posix_spawnattr_init(&mut attr.0) })?;
        // SAFETY: sigemptyset initializes the set.
        let mut empty: libc::sigset_t = unsafe { std::mem::zeroed() };
        unsafe { libc::sigemptyset(&mut empty) };
        check(unsafe { libc::posix_spawnattr_setsigmask(&mut attr.0, &empty) })?;
        check(unsafe { libc::posix_spawnattr_setsigdefault(&mut attr.0, &all_signals()) })?;
        let mut flags = libc::POSIX_SPAWN_SETSIGMASK | libc::POSIX_SPAWN_SETSIGDEF;
        if new_session {
            flags |= libc::POSIX_SPAWN_SETSID as libc::c_int;
        }
        check(unsafe { libc::posix_spawnattr_setflags(&mut attr.0, flags as libc::c_short) })?;
        Ok(attr)
    }
}

impl Drop for SpawnAttr {
    fn drop(&mut self) {
        // SAFETY: initialized in new.
        unsafe { libc::posix_spawnattr_destroy(&mut self.0) };
    }
}

/// Signals 1 to 64 but SIGKILL and SIGSTOP, as a sigset_t. Built by hand:
/// glibc's `sigfillset`/`sigaddset` leave out 32 and 33, which it uses
/// itself (its `posix_spawn` then sets them to SIG_IGN in the child).
fn all_signals() -> libc::sigset_t {
    // SAFETY: a sigset_t is plain bits; zeroed is the empty set.
    let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
    let bit = |sig: libc::c_int| 1u64 << (sig - 1);
    let word = !(bit(libc::SIGKILL) | bit(libc::SIGSTOP));
    // SAFETY: glibc's sigset_t starts with the bits of signals 1 to 64, and
    // is larger than one u64.
    unsafe { std::ptr::write_unaligned(&mut set as *mut libc::sigset_t as *mut u64, word) };
    set
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::from_raw_os_error(rc))
    }
}

/// Waits for `pid` with waitpid: only where no reaper takes children (the
/// `delete` action). Exit code, or 128 + signal.
pub fn wait(pid: u32) -> io::Result<i32> {
    use nix::sys::wait::{waitpid, WaitStatus};
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid as i32), None) {
            Ok(WaitStatus::Exited(_, code)) => return Ok(code),
            Ok(WaitStatus::Signaled(_, sig, _)) => return Ok(128 + sig as i32),
            Ok(_) | Err(nix::Error::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Most kept of each output.
const OUTPUT_LIMIT: usize = 4 << 20;

/// Reads a child's stdout and stderr until both end or the child has exited
/// (its status arrives on `exit`) and nothing more is waiting: a process the
/// child left behind (runsc starts a gofer) may hold the pipes open for its
/// whole life.
pub fn collect(
    out: Option<OwnedFd>,
    err: Option<OwnedFd>,
    exit: &Receiver<i32>,
) -> io::Result<(Vec<u8>, Vec<u8>, i32)> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::os::fd::AsFd;
    let mut pipes: Vec<(Option<OwnedFd>, Vec<u8>)> = [out, err]
        .into_iter()
        .map(|fd| {
            if let Some(fd) = &fd {
                let _ = nix::fcntl::fcntl(
                    fd,
                    nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_NONBLOCK),
                );
            }
            (fd, Vec::new())
        })
        .collect();
    let mut buf = vec![0u8; 64 * 1024];
    let mut drain = |pipes: &mut Vec<(Option<OwnedFd>, Vec<u8>)>| {
        for (fd, data) in pipes.iter_mut() {
            while let Some(f) = fd.as_ref() {
                match nix::unistd::read(f.as_fd(), &mut buf) {
                    Ok(0) => *fd = None,
                    Ok(n) => {
                        let room = OUTPUT_LIMIT.saturating_sub(data.len());
                        data.extend_from_slice(&buf[..n.min(room)]);
                    }
                    Err(nix::Error::EINTR) => {}
                    Err(_) => break,
                }
            }
        }
    };
    let status = loop {
        drain(&mut pipes);
        if pipes.iter().all(|(fd, _)| fd.is_none()) {
            break exit
                .recv()
                .map_err(|_| io::Error::other("the child's exit status was lost"))?;
        }
        if let Ok(status) = exit.try_recv() {
            drain(&mut pipes);
            break status;
        }
        let mut fds: Vec<PollFd> = pipes
            .iter()
            .filter_map(|(fd, _)| {
                fd.as_ref()
                    .map(|f| PollFd::new(f.as_fd(), PollFlags::POLLIN))
            })
            .collect();
        let _ = poll(&mut fds, PollTimeout::from(50u8));
    };
    let mut it = pipes.into_iter().map(|(_, d)| d);
    Ok((
        it.next().unwrap_or_default(),
        it.next().unwrap_or_default(),
        status,
    ))
}

/// The kernel's `struct sigaction` (x86_64 and aarch64 share this layout).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Highest signal number on Linux (SIGRTMAX as the kernel counts).
const SIGNAL_MAX: libc::c_int = 64;

/// Sets back to the default every signal this process inherited ignored,
/// except SIGPIPE (std ignores it on purpose, and resets it in children).
/// Handlers stay: `execve` resets those. Call while single-threaded, before
/// any child is spawned. Raw system calls: glibc's `sigaction` refuses the
/// signals it reserves for itself (32 and 33), which a Go parent may have
/// left ignored.
pub fn default_inherited_signals() {
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=SIGNAL_MAX {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP || sig == libc::SIGPIPE {
            continue;
        }
        let mut old = KernelSigaction {
            handler: libc::SIG_DFL,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: a valid struct and size; reads the current action only.
        let rc = unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::null::<KernelSigaction>(),
                &mut old as *mut KernelSigaction,
                8usize,
            )
        };
        if rc != 0 || old.handler != libc::SIG_IGN {
            continue;
        }
        // SAFETY: a valid struct and size; failures leave the signal as it was.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> impl Iterator<Item = (OsString, OsString)> {
        v.iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn env_drops_systemd_and_containerd_variables() {
        let env = env_from(vars(&[
            ("NOTIFY_SOCKET", "/run/systemd/notify"),
            ("LISTEN_FDS", "2"),
            ("LISTEN_PID", "1"),
            ("LISTEN_FDNAMES", "a:b"),
            ("TTRPC_ADDRESS", "/run/containerd/containerd.sock.ttrpc"),
            ("GRPC_ADDRESS", "/run/containerd/containerd.sock"),
            ("NAMESPACE", "default"),
            ("MAX_SHIM_VERSION", "2"),
            ("PATH", "/usr/bin"),
            ("HOME", "/root"),
        ]));
        let keys: Vec<_> = env.iter().map(|(k, _)| k.to_string_lossy()).collect();
        assert_eq!(keys, ["PATH", "HOME"]);
    }

    #[test]
    fn env_gets_a_path_when_the_shim_had_none() {
        let env = env_from(vars(&[("LANG", "C.UTF-8")]));
        assert!(env.contains(&("PATH".into(), DEFAULT_PATH.into())));
    }

    /// A child of a process that blocks signals, ignores SIGPIPE (as the
    /// server does) and inherited an ignored SIGHUP starts with none blocked
    /// or ignored.
    #[test]
    fn child_starts_with_empty_mask_and_default_dispositions() {
        let out = std::thread::spawn(|| {
            let mut set = nix::sys::signal::SigSet::empty();
            set.add(nix::sys::signal::Signal::SIGCHLD);
            set.add(nix::sys::signal::Signal::SIGUSR1);
            set.thread_block().unwrap();
            // Process-wide: an ignored SIGHUP as from a parent's nohup,
            // then what main does about it.
            // SAFETY: plain disposition changes.
            unsafe {
                libc::signal(libc::SIGHUP, libc::SIG_IGN);
                libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            }
            default_inherited_signals();
            // SAFETY: reads the disposition (set and put back).
            let hup = unsafe { libc::signal(libc::SIGHUP, libc::SIG_DFL) };
            let pipe = unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
            assert_eq!(hup, libc::SIG_DFL, "SIGHUP left ignored");
            assert_eq!(pipe, libc::SIG_IGN, "SIGPIPE must stay ignored in the shim");
            let mut cmd = command("/bin/sh");
            cmd.args(["-c", "grep -E '^Sig(Blk|Ign):' /proc/self/status; env"])
                .env("NOTIFY_SOCKET", "/run/x-explicitly-set");
            output(cmd)
        })
        .join()
        .unwrap();
        let text = out;
        assert!(text.contains("SigBlk:\t0000000000000000"), "{text}");
        assert!(text.contains("SigIgn:\t0000000000000000"), "{text}");
        // What a caller adds on purpose is kept.
        assert!(
            text.contains("NOTIFY_SOCKET=/run/x-explicitly-set"),
            "{text}"
        );
    }

    /// Runs `cmd` to its end; its stdout.
    fn output(mut cmd: Command) -> String {
        cmd.stdout(ChildIo::Piped);
        let mut child = cmd.spawn().unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(
            &mut std::fs::File::from(child.stdout.take().unwrap()),
            &mut out,
        )
        .unwrap();
        assert_eq!(wait(child.id()).unwrap(), 0, "{out}");
        out
    }

    #[test]
    fn stdio_fds_and_directory_reach_the_child() {
        let dir = std::env::temp_dir();
        let (r, w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let (r_num, w_num) = (r.as_raw_fd().to_string(), w.as_raw_fd().to_string());
        // sh redirects single-digit fds only: 9, and the pipe's own numbers
        // (unless one of them is 9).
        let theirs: Vec<&str> = [r_num.as_str(), w_num.as_str()]
            .into_iter()
            .filter(|n| *n != "9")
            .collect();
        let script = format!(
            "pwd; echo via-9 >&9; for n in 9 {}; do [ -e /proc/$$/fd/$n ] && echo open-$n; done; true",
            theirs.join(" ")
        );
        let mut cmd = command("/bin/sh");
        cmd.args(["-c", &script]).current_dir(&dir).fd(9, w);
        let out = output(cmd);
        let mut lines = out.lines();
        assert_eq!(lines.next(), Some(dir.to_str().unwrap()), "{out}");
        // 9 is there; the shim's own (CLOEXEC) ends of the pipe are not.
        let open: Vec<&str> = lines.collect();
        assert_eq!(open, ["open-9"], "{out}");
        let mut got = String::new();
        std::io::Read::read_to_string(&mut std::fs::File::from(r), &mut got).unwrap();
        assert_eq!(got, "via-9\n");
    }

    #[test]
    fn a_program_that_cannot_run_is_an_error_at_spawn() {
        let e = command("/nonexistent/runtime").spawn().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
        let e = command(std::env::temp_dir()).spawn().unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied, "{e}");
    }

    /// Minor page faults of the calling thread so far.
    fn thread_minor_faults() -> i64 {
        // SAFETY: getrusage fills the struct it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        assert_eq!(unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut u) }, 0);
        u.ru_minflt
    }

    /// Spawning does not fork: after a child was started, writing to memory
    /// the shim had already touched takes no page fault (after a fork every
    /// page is copy-on-write and each first write faults).
    #[test]
    fn spawning_leaves_the_shims_memory_as_it_was() {
        const PAGES: usize = 512;
        let mut buf = vec![0u8; PAGES * 4096];
        let touch = |buf: &mut Vec<u8>, v: u8| {
            for i in (0..buf.len()).step_by(4096) {
                // SAFETY: in bounds; volatile so the writes happen.
                unsafe { std::ptr::write_volatile(buf.as_mut_ptr().add(i), v) };
            }
        };
        touch(&mut buf, 1);
        let child = command("/bin/true").spawn().unwrap();
        let before = thread_minor_faults();
        touch(&mut buf, 2);
        let faults = thread_minor_faults() - before;
        assert_eq!(wait(child.id()).unwrap(), 0);
        assert!(
            faults < (PAGES / 8) as i64,
            "{faults} page faults writing {PAGES} pages after a spawn: the child was forked"
        );
    }
}
