//! Log URIs (`ctr run --log-uri`, CRI-less setups): `file:///path` appends
//! the container's stdout and stderr to a file; `binary:///path?k=v` starts
//! a logging program with the container's stdout on fd 3, stderr on fd 4, a
//! pipe on fd 5 it closes once ready, and CONTAINER_ID/CONTAINER_NAMESPACE
//! in its environment. Either way the runtime gets the fds directly: the
//! shim copies nothing.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use super::{HeldIo, IoError};

/// How long a logging binary may take to signal ready.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a logging binary has to exit after SIGTERM before SIGKILL (as
/// containerd-shim-runc-v2's binaryIOProcTermTimeout).
pub const LOGGER_TERM_TIMEOUT: Duration = Duration::from_secs(12);

/// A running logging binary. When the IO it serves is closed, [`Logger::stop`]
/// gives it SIGTERM and, if it is still there after [`LOGGER_TERM_TIMEOUT`],
/// SIGKILL; the shim's reaper reaps it. Dropped without `stop` (a failed
/// Create), the same happens on a thread of its own.
#[derive(Debug)]
pub struct Logger {
    pid: u32,
    /// A pidfd: signals reach this process even after its pid is reused.
    pidfd: Option<OwnedFd>,
    path: String,
    stopped: bool,
}

impl Logger {
    fn new(pid: u32, path: &str) -> Logger {
        // SAFETY: pidfd_open takes a pid and flags and returns a new fd.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
        let pidfd = (fd >= 0).then(|| {
            // SAFETY: the syscall returned a new fd that nothing else owns.
            unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) }
        });
        Logger {
            pid,
            pidfd,
            path: path.to_string(),
            stopped: false,
        }
    }

    /// Sends `sig`; false when the process is gone.
    fn signal(&self, sig: libc::c_int) -> bool {
        let r = match &self.pidfd {
            // SAFETY: a pidfd this Logger owns; no siginfo.
            Some(fd) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            },
            // No pidfd (kernel before 5.3): by pid.
            // SAFETY: kill has no memory effects.
            None => i64::from(unsafe { libc::kill(self.pid as libc::pid_t, sig) }),
        };
        r == 0
    }

    /// Whether the process exits within `limit`. Without a pidfd, whether
    /// its pid is gone (the reaper reaps it).
    fn exits_within(&self, limit: Duration) -> bool {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match &self.pidfd {
                Some(fd) => {
                    let mut fds = [PollFd::new(std::os::fd::AsFd::as_fd(fd), PollFlags::POLLIN)];
                    let ms = left.as_millis().min(u128::from(u16::MAX)) as u16;
                    match poll(&mut fds, PollTimeout::from(ms)) {
                        Ok(n) if n > 0 => return true,
                        Err(nix::Error::EINTR) => {}
                        Err(_) => return false,
                        Ok(_) => {}
                    }
                }
                None => {
                    if !self.signal(0) {
                        return true;
                    }
                    std::thread::sleep(Duration::from_millis(50).min(left));
                }
            }
            if left.is_zero() {
                return false;
            }
        }
    }

    /// SIGTERM, then SIGKILL if it outlives [`LOGGER_TERM_TIMEOUT`].
    /// Blocks until it is gone or killed.
    pub fn stop(mut self) {
        self.stopped = true;
        self.terminate();
    }

    fn terminate(&self) {
        if !self.signal(libc::SIGTERM) {
            return;
        }
        if self.exits_within(LOGGER_TERM_TIMEOUT) {
            log::debug!("logging binary {} (pid {}) exited", self.path, self.pid);
            return;
        }
        log::warn!(
            "logging binary {} (pid {}) still runs {}s after SIGTERM: killed",
            self.path,
            self.pid,
            LOGGER_TERM_TIMEOUT.as_secs()
        );
        self.signal(libc::SIGKILL);
        self.exits_within(Duration::from_secs(1));
    }
}

impl Drop for Logger {
    fn drop(&mut self) {
        if self.stopped {
            return;
        }
        let me = Logger {
            pid: self.pid,
            pidfd: self.pidfd.take(),
            path: std::mem::take(&mut self.path),
            stopped: true,
        };
        // Not on the dropping thread: it may hold the service's lock.
        let spawned = std::thread::Builder::new()
            .name("logger-stop".into())
            .stack_size(64 * 1024)
            .spawn(move || me.terminate());
        if let Err(e) = spawned {
            log::warn!(
                "logging binary (pid {}): no thread to stop it: {e}",
                self.pid
            );
        }
    }
}

/// A parsed log URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogUri {
    File(String),
    Binary { path: String, args: Vec<String> },
}

fn percent_decode(s: &str) -> Result<String, String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("truncated %-escape")?;
            // Two hex digits; from_str_radix alone would take "+f".
            let byte = hex
                .bytes()
                .all(|c| c.is_ascii_hexdigit())
                .then(|| u8::from_str_radix(hex, 16).ok())
                .flatten()
                .ok_or_else(|| format!("bad %-escape %{hex}"))?;
            if byte == 0 {
                return Err("a %00 (NUL) cannot be in a path or argument".into());
            }
            out.push(byte);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "not UTF-8 after %-decoding".to_string())
}

impl LogUri {
    /// Parses `file://` and `binary://` URIs; other schemes are named in
    /// the error.
    pub fn parse(uri: &str) -> Result<LogUri, IoError> {
        let bad = |why: &str| IoError(format!("log URI {uri:?}: {why}"));
        let (scheme, rest) = uri.split_once("://").ok_or_else(|| bad("not a URI"))?;
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, q),
            None => (rest, ""),
        };
        let path = percent_decode(path).map_err(|e| bad(&e))?;
        if !path.starts_with('/') {
            return Err(bad("the path must be absolute (scheme:///abs/path)"));
        }
        match scheme {
            "file" => Ok(LogUri::File(path)),
            "binary" => {
                let mut args = Vec::new();
                for pair in query.split('&').filter(|p| !p.is_empty()) {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    args.push(percent_decode(k).map_err(|e| bad(&e))?);
                    if !v.is_empty() {
                        args.push(percent_decode(v).map_err(|e| bad(&e))?);
                    }
                }
                Ok(LogUri::Binary { path, args })
            }
            other => Err(bad(&format!(
                "the {other}:// scheme is not supported (file:// and binary:// are)"
            ))),
        }
    }
}

/// The stdout and stderr fds for the runtime, for a log URI.
pub fn open(
    uri: &str,
    container: &str,
    namespace: &str,
    held: &mut HeldIo,
) -> Result<(OwnedFd, OwnedFd), IoError> {
    match LogUri::parse(uri)? {
        LogUri::File(path) => {
            if let Some(dir) = Path::new(&path).parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| IoError(format!("log file {path}: {}: {e}", dir.display())))?;
            }
            let f = nix::fcntl::open(
                Path::new(&path),
                OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT | OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::from_bits_truncate(0o640),
            )
            .map_err(|e| IoError(format!("log file {path}: {e}")))?;
            let dup = f
                .try_clone()
                .map_err(|e| IoError(format!("log file {path}: {e}")))?;
            Ok((f, dup))
        }
        LogUri::Binary { path, args } => start_logger(&path, &args, container, namespace, held),
    }
}

fn pipe(what: &str) -> Result<(OwnedFd, OwnedFd), IoError> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| IoError(format!("{what} pipe: {e}")))
}

fn start_logger(
    path: &str,
    args: &[String],
    container: &str,
    namespace: &str,
    held: &mut HeldIo,
) -> Result<(OwnedFd, OwnedFd), IoError> {
    // posix_spawn reports a failed exec too, but only as an errno: say what
    // is wrong with the file here.
    let executable = std::fs::metadata(path)
        .map(|m| {
            m.is_file() && std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o111 != 0
        })
        .unwrap_or(false);
    if !executable {
        return Err(IoError(format!(
            "logging binary {path}: cannot start: not an executable file"
        )));
    }
    let (out_r, out_w) = pipe("stdout")?;
    let (err_r, err_w) = pipe("stderr")?;
    let (ready_r, ready_w) = pipe("ready")?;
    let dup = |fd: &OwnedFd| {
        fd.try_clone()
            .map_err(|e| IoError(format!("logging binary {path}: {e}")))
    };
    let mut cmd = crate::spawn::command(path);
    // The logging protocol: stdout on 3, stderr on 4, the ready pipe on 5.
    cmd.args(args)
        .env("CONTAINER_ID", container)
        .env("CONTAINER_NAMESPACE", namespace)
        .fd(3, dup(&out_r)?)
        .fd(4, dup(&err_r)?)
        .fd(5, ready_w);
    let child = cmd
        .spawn()
        .map_err(|e| IoError(format!("logging binary {path}: cannot start: {e}")))?;
    // From here on the logger is stopped with the IO (or this failure).
    let logger = Logger::new(child.id(), path);
    // Keep read ends to see when the logger has consumed everything.
    held.output_keepalive.push(
        out_r
            .try_clone()
            .map_err(|e| IoError(format!("logging binary {path}: {e}")))?,
    );
    held.output_keepalive.push(
        err_r
            .try_clone()
            .map_err(|e| IoError(format!("logging binary {path}: {e}")))?,
    );
    drop((out_r, err_r));
    let mut fds = [PollFd::new(
        std::os::fd::AsFd::as_fd(&ready_r),
        PollFlags::POLLIN,
    )];
    let ms = READY_TIMEOUT.as_millis() as u16;
    let ready = matches!(poll(&mut fds, PollTimeout::from(ms)), Ok(n) if n > 0);
    if !ready {
        logger.signal(libc::SIGKILL);
        return Err(IoError(format!(
            "logging binary {path} (pid {}) did not signal ready on fd 5 within {}s",
            child.id(),
            READY_TIMEOUT.as_secs()
        )));
    }
    log::info!(
        "container {container}: logging through {path} (pid {})",
        child.id()
    );
    held.loggers.push(logger);
    Ok((out_w, err_w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_file_and_binary_uris() {
        assert_eq!(
            LogUri::parse("file:///var/log/c.log").unwrap(),
            LogUri::File("/var/log/c.log".into())
        );
        assert_eq!(
            LogUri::parse("binary:///usr/bin/logger?tag=my%20app&-v").unwrap(),
            LogUri::Binary {
                path: "/usr/bin/logger".into(),
                args: vec!["tag".into(), "my app".into(), "-v".into()]
            }
        );
        for (bad, why) in [
            ("syslog:///x", "syslog://"),
            ("file://relative", "absolute"),
            ("binary:///x%zz", "%-escape"),
            ("file:///a%+f", "%-escape"),
            ("binary:///bin/x?a=%00", "NUL"),
        ] {
            let e = LogUri::parse(bad).unwrap_err();
            assert!(e.0.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn file_uri_appends_both_streams() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/c.log");
        let mut held = HeldIo::default();
        let (out, err) = open(&format!("file://{}", path.display()), "c", "ns", &mut held).unwrap();
        nix::unistd::write(&out, b"out\n").unwrap();
        nix::unistd::write(&err, b"err\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "out\nerr\n");
    }

    #[test]
    fn binary_uri_starts_the_logger_with_fds_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let logger = dir.path().join("logger.sh");
        let out = dir.path().join("log");
        std::fs::write(
            &logger,
            format!(
                "#!/bin/sh\necho \"$CONTAINER_NAMESPACE/$CONTAINER_ID $1\" > {o}.meta\nexec 5>&-\ncat <&3 > {o}.out &\ncat <&4 > {o}.err\nwait\n",
                o = out.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&logger, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut held = HeldIo::default();
        let uri = format!("binary://{}?tag", logger.display());
        let (o, e) = open(&uri, "c1", "ns1", &mut held).unwrap();
        nix::unistd::write(&o, b"to stdout\n").unwrap();
        nix::unistd::write(&e, b"to stderr\n").unwrap();
        drop((o, e));
        let read = |ext: &str| {
            let p = dir.path().join(format!("log.{ext}"));
            for _ in 0..200 {
                if let Ok(s) = std::fs::read_to_string(&p) {
                    if !s.is_empty() {
                        return s;
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            panic!("{} stayed empty", p.display());
        };
        assert_eq!(read("meta"), "ns1/c1 tag\n");
        assert_eq!(read("out"), "to stdout\n");
        assert_eq!(read("err"), "to stderr\n");
        let e = open(
            "binary:///nonexistent/logger",
            "c",
            "n",
            &mut HeldIo::default(),
        )
        .unwrap_err();
        assert!(e.0.contains("cannot start"), "{e}");
        let e = open(
            &format!("binary://{}", dir.path().display()),
            "c",
            "n",
            &mut HeldIo::default(),
        )
        .unwrap_err();
        assert!(e.0.contains("not an executable"), "{e}");
    }
}
