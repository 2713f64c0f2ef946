//! Process stdio. Output FIFOs from containerd are handed to the runtime
//! directly — no copy threads, no copies — while the shim keeps a read end of
//! each (so a client or containerd going away never SIGPIPEs the container).
//! stdin, when a process has one, goes through a pipe fed by a small thread:
//! it waits for the client's writer, and the container sees EOF when the
//! client closes its end or CloseIO is called.
//!
//! When a process exits, what it wrote last may still sit in an output FIFO.
//! Clients such as ctr close their FIFO readers as soon as they learn of the
//! exit, so the shim reports an exit only once the FIFOs are drained (see
//! [`OutputDrain`]); containerd-shim-runc-v2 loses that tail under load.

pub mod console;
pub mod logging_uri;
pub mod output_copy;
pub mod stdin;

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::stat::{stat, Mode, SFlag};

use crate::runtime::CreateIo;

message_error!(
    /// Stdio that cannot be opened; names the path.
    IoError
);

/// Stdio paths as containerd gives them (empty = none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
    /// Output FIFOs through pipes the shim copies ([`output_copy`]).
    pub copy_output: bool,
}

/// What the shim keeps for a process's lifetime.
#[derive(Debug, Default)]
pub struct HeldIo {
    /// The stdin copy, until CloseIO or exit.
    pub stdin: Option<stdin::StdinCopy>,
    /// Read ends of the output FIFOs.
    pub output_keepalive: Vec<OwnedFd>,
    /// The terminal of a `terminal: true` process.
    pub console: Option<console::Console>,
    /// Its console socket, until the runtime sent the terminal.
    pub console_socket: Option<console::ConsoleSocket>,
    /// Logging binaries of a binary:// log URI.
    pub loggers: Vec<logging_uri::Logger>,
    /// Output copies (`stdio = "copy"`).
    pub output_copies: Vec<output_copy::CopyProgress>,
}

impl HeldIo {
    /// Stops the logging binaries as the IO closes (SIGTERM, SIGKILL after
    /// a bound). Blocks until they are gone: call without locks held.
    pub fn stop_loggers(&mut self) {
        let loggers = std::mem::take(&mut self.loggers);
        let stops: Vec<_> = loggers
            .into_iter()
            .map(|l| {
                std::thread::Builder::new()
                    .stack_size(64 * 1024)
                    .spawn(move || l.stop())
            })
            .collect();
        for s in stops.into_iter().flatten() {
            let _ = s.join();
        }
    }

    /// Gives the process EOF on stdin now, and ends the copy thread.
    pub fn close_stdin(&mut self) {
        if let Some(copy) = self.stdin.take() {
            copy.close();
        }
    }

    /// A watch on the output FIFOs if they hold bytes no client has read
    /// yet; None when they are empty (the usual case) or cannot be watched.
    pub fn unread_output(&self) -> Option<OutputDrain> {
        let copies: Vec<(Arc<AtomicBool>, Arc<AtomicU64>)> = self
            .console
            .iter()
            .map(|c| (c.output_done.clone(), c.output_copied.clone()))
            .chain(
                self.output_copies
                    .iter()
                    .map(|c| (c.done.clone(), c.bytes.clone())),
            )
            .filter(|(done, _)| !done.load(Ordering::SeqCst))
            .collect();
        if unread(&self.output_keepalive) == 0 && copies.is_empty() {
            return None;
        }
        let fds = self.output_keepalive.iter().map(|f| f.try_clone());
        Some(OutputDrain {
            fds: fds.collect::<Result<_, _>>().ok()?,
            copies,
        })
    }
}

/// Bytes waiting in these FIFOs (FIONREAD); errors count as empty.
fn unread(fds: &[OwnedFd]) -> usize {
    fds.iter()
        .map(|fd| {
            let mut n: libc::c_int = 0;
            // SAFETY: FIONREAD writes one c_int to the pointer given.
            let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
            if rc == 0 {
                n.max(0) as usize
            } else {
                0
            }
        })
        .sum()
}

/// Output of an exited process not yet with its client: bytes in the
/// FIFOs, or a terminal copy still running.
#[derive(Debug)]
pub struct OutputDrain {
    fds: Vec<OwnedFd>,
    /// Terminal copies: whether each ended, and the bytes it moved.
    copies: Vec<(Arc<AtomicBool>, Arc<AtomicU64>)>,
}

impl OutputDrain {
    /// How often the FIFOs are looked at.
    const TICK: Duration = Duration::from_millis(2);
    /// No reader made progress for this long: nobody is reading.
    pub const IDLE: Duration = Duration::from_millis(500);
    /// Upper bound whatever the readers do.
    pub const LIMIT: Duration = Duration::from_secs(5);

    /// Upper bound for Delete, which must not return while output moves:
    /// containerd's client stops reading the FIFOs as soon as Delete returns.
    pub const DELETE_LIMIT: Duration = Duration::from_secs(60);
    /// At Delete the client is reading (it waits on Delete to stop): a
    /// longer pause there (a busy client) is still not giving up.
    pub const DELETE_IDLE: Duration = Duration::from_secs(3);

    /// Blocks until the FIFOs are empty and the terminal copies ended, no
    /// byte moved for [`Self::IDLE`], or [`Self::LIMIT`] passed. Returns
    /// the bytes left unread.
    pub fn wait(&self) -> usize {
        self.wait_for(Self::IDLE, Self::LIMIT)
    }

    /// [`Self::wait`] giving up after `idle` without progress or `limit`.
    pub fn wait_for(&self, idle: Duration, limit: Duration) -> usize {
        let start = Instant::now();
        let state = || {
            let copying = self.copies.iter().any(|(d, _)| !d.load(Ordering::SeqCst));
            let moved: u64 = self
                .copies
                .iter()
                .map(|(_, n)| n.load(Ordering::Relaxed))
                .sum();
            (unread(&self.fds), copying, moved)
        };
        let mut last = state();
        let mut changed = start;
        while (last.0 > 0 || last.1) && changed.elapsed() < idle && start.elapsed() < limit {
            std::thread::sleep(Self::TICK);
            let now = state();
            if now != last {
                changed = Instant::now();
                last = now;
            }
        }
        last.0
    }
}

impl Drop for HeldIo {
    fn drop(&mut self) {
        self.close_stdin();
    }
}

fn is_fifo(path: &str) -> Result<bool, IoError> {
    let st = stat(path).map_err(|e| IoError(format!("stdio {path}: {e}")))?;
    Ok(SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFIFO)
}

pub(crate) fn open_path(path: &str, flags: OFlag) -> Result<OwnedFd, IoError> {
    open(Path::new(path), flags | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| IoError(format!("open {path}: {e}")))
}

pub(crate) fn set_blocking(fd: &OwnedFd, path: &str) -> Result<(), IoError> {
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(|e| IoError(format!("{path}: {e}")))?;
    let flags = OFlag::from_bits_truncate(flags) & !OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(|e| IoError(format!("{path}: {e}")))?;
    Ok(())
}

fn dev_null(write: bool) -> Result<OwnedFd, IoError> {
    open_path(
        "/dev/null",
        if write {
            OFlag::O_WRONLY
        } else {
            OFlag::O_RDONLY
        },
    )
}

fn is_uri(path: &str) -> bool {
    path.contains("://")
}

fn check_uri(path: &str) -> Result<(), IoError> {
    if is_uri(path) {
        return Err(IoError(format!(
            "stdio {path}: a log URI can only take a process's output"
        )));
    }
    Ok(())
}

/// Opens stdin: the container gets the read end of a pipe that a thread
/// fills from the FIFO.
fn open_stdin(path: &str, held: &mut HeldIo) -> Result<OwnedFd, IoError> {
    if path.is_empty() {
        return dev_null(false);
    }
    check_uri(path)?;
    if !is_fifo(path)? {
        return open_path(path, OFlag::O_RDONLY);
    }
    let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| IoError(format!("stdin pipe for {path}: {e}")))?;
    held.stdin = Some(stdin::StdinCopy::start(path, wr)?);
    Ok(rd)
}

/// Opens an output: the container gets a blocking write end; the shim keeps
/// a read end it never reads from. With `copy`, the container gets a pipe
/// the shim copies into the FIFO instead.
fn open_output(path: &str, copy: bool, held: &mut HeldIo) -> Result<OwnedFd, IoError> {
    if path.is_empty() {
        return dev_null(true);
    }
    check_uri(path)?;
    if !is_fifo(path)? {
        return open_path(path, OFlag::O_WRONLY | OFlag::O_APPEND);
    }
    held.output_keepalive
        .push(open_path(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?);
    if copy {
        let (wr, progress) = output_copy::start(path)?;
        held.output_copies.push(progress);
        return Ok(wr);
    }
    let wr = open_path(path, OFlag::O_WRONLY | OFlag::O_NONBLOCK)?;
    set_blocking(&wr, path)?;
    Ok(wr)
}

/// Opens a process's stdio for `create`/`exec`; returns the fds for the
/// runtime and the ones the shim keeps. `container` and `namespace` go to a
/// `binary://` logger's environment.
pub fn open_stdio(
    paths: &StdioPaths,
    container: &str,
    namespace: &str,
) -> Result<(CreateIo, HeldIo), IoError> {
    let mut held = HeldIo::default();
    if paths.terminal {
        // The runtime makes the pty; its own stdio goes nowhere.
        for p in [&paths.stdin, &paths.stdout, &paths.stderr] {
            check_uri(p)?;
        }
        let socket = console::ConsoleSocket::new()?;
        let mut io = null_stdio()?;
        io.console_socket = Some(socket.path().to_path_buf());
        held.console_socket = Some(socket);
        return Ok((io, held));
    }
    let stdin = open_stdin(&paths.stdin, &mut held)?;
    if is_uri(&paths.stdout) {
        if !paths.stderr.is_empty() && paths.stderr != paths.stdout {
            return Err(IoError(format!(
                "log URI {}: stderr must go to the same URI (got {:?})",
                paths.stdout, paths.stderr
            )));
        }
        let (stdout, stderr) = logging_uri::open(&paths.stdout, container, namespace, &mut held)?;
        return Ok((
            CreateIo {
                stdin,
                stdout,
                stderr,
                console_socket: None,
            },
            held,
        ));
    }
    let stdout = open_output(&paths.stdout, paths.copy_output, &mut held)?;
    let stderr = if !paths.stderr.is_empty() && paths.stderr == paths.stdout {
        stdout
            .try_clone()
            .map_err(|e| IoError(format!("dup {}: {e}", paths.stderr)))?
    } else {
        open_output(&paths.stderr, paths.copy_output, &mut held)?
    };
    Ok((
        CreateIo {
            stdin,
            stdout,
            stderr,
            console_socket: None,
        },
        held,
    ))
}

/// Stdio that goes nowhere (/dev/null), for runtime calls whose own stdio
/// the container must not get.
pub fn null_stdio() -> Result<CreateIo, IoError> {
    Ok(CreateIo {
        stdin: dev_null(false)?,
        stdout: dev_null(true)?,
        stderr: dev_null(true)?,
        console_socket: None,
    })
}

/// After a successful `create`/`exec` of a terminal process: takes the pty
/// master the runtime sent on the console socket, gives it `size` (columns,
/// rows) if the runtime left it 0x0, makes it raw if the process runs under
/// the terminal relay (`relayed`), and starts copying it to and from the
/// FIFOs. Nothing to do for other processes.
pub fn attach_console(
    paths: &StdioPaths,
    held: &mut HeldIo,
    size: (u16, u16),
    relayed: bool,
) -> Result<(), IoError> {
    let Some(socket) = held.console_socket.take() else {
        return Ok(());
    };
    let master = socket.receive(Instant::now() + Duration::from_secs(5))?;
    console::initial_size(&master, size)?;
    if relayed {
        console::make_raw(&master)?;
    }
    if !paths.stdin.is_empty() {
        let dest = master
            .try_clone()
            .map_err(|e| IoError(format!("terminal: {e}")))?;
        held.stdin = Some(stdin::StdinCopy::start(&paths.stdin, dest)?);
    }
    held.console = Some(console::Console::start(
        master,
        &paths.stdout,
        &mut held.output_keepalive,
    )?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn fifo(dir: &Path, name: &str) -> String {
        let p = dir.join(name);
        nix::unistd::mkfifo(&p, Mode::from_bits_truncate(0o600)).unwrap();
        p.to_str().unwrap().to_string()
    }

    #[test]
    fn null_io_uses_dev_null() {
        let (io, held) = open_stdio(&StdioPaths::default(), "c", "ns").unwrap();
        let mut out = std::fs::File::from(io.stdout);
        out.write_all(b"discarded").unwrap();
        assert!(held.stdin.is_none() && held.output_keepalive.is_empty());
    }

    #[test]
    fn fifo_output_survives_without_reader_and_reaches_late_reader() {
        let dir = tempfile::tempdir().unwrap();
        let out = fifo(dir.path(), "out");
        let paths = StdioPaths {
            stdout: out.clone(),
            ..Default::default()
        };
        let (io, held) = open_stdio(&paths, "c", "ns").unwrap();
        // No client reader: writing must not SIGPIPE/EPIPE thanks to the kept read end.
        let mut w = std::fs::File::from(io.stdout);
        w.write_all(b"early output").unwrap();
        drop(w);
        drop(io.stdin);
        drop(io.stderr);
        // A client that opens later still reads it.
        let mut r = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&out)
            .unwrap();
        let mut buf = [0u8; 64];
        let n = r.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"early output");
        drop(held);
    }

    #[test]
    fn exit_waits_for_a_reader_to_drain_the_output() {
        let dir = tempfile::tempdir().unwrap();
        let out = fifo(dir.path(), "out");
        let paths = StdioPaths {
            stdout: out.clone(),
            ..Default::default()
        };
        let (io, held) = open_stdio(&paths, "c", "ns").unwrap();
        assert!(held.unread_output().is_none(), "nothing written yet");
        let mut r = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&out)
            .unwrap();
        let mut w = std::fs::File::from(io.stdout);
        w.write_all(&[7u8; 40_000]).unwrap();
        drop(w);
        let drain = held.unread_output().expect("bytes are waiting");
        let reader = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            let mut all = Vec::new();
            r.read_to_end(&mut all).unwrap();
            all.len()
        });
        assert_eq!(drain.wait(), 0);
        assert!(held.unread_output().is_none());
        drop(held);
        assert_eq!(reader.join().unwrap(), 40_000);
    }

    #[test]
    fn exit_without_a_reader_is_reported_after_the_idle_time() {
        let dir = tempfile::tempdir().unwrap();
        let out = fifo(dir.path(), "out");
        let paths = StdioPaths {
            stdout: out,
            ..Default::default()
        };
        let (io, held) = open_stdio(&paths, "c", "ns").unwrap();
        std::fs::File::from(io.stdout).write_all(b"unread").unwrap();
        let start = Instant::now();
        assert_eq!(held.unread_output().unwrap().wait(), 6);
        let took = start.elapsed();
        assert!(
            took >= OutputDrain::IDLE && took < OutputDrain::LIMIT,
            "{took:?}"
        );
    }

    #[test]
    fn stdin_passes_data_then_eof_when_the_client_closes() {
        let dir = tempfile::tempdir().unwrap();
        let inp = fifo(dir.path(), "in");
        let paths = StdioPaths {
            stdin: inp.clone(),
            ..Default::default()
        };
        let (io, held) = open_stdio(&paths, "c", "ns").unwrap();
        let mut client = std::fs::OpenOptions::new().write(true).open(&inp).unwrap();
        client.write_all(b"hello").unwrap();
        drop(client);
        let mut r = std::fs::File::from(io.stdin);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert_eq!(all, b"hello");
        drop(held);
    }

    #[test]
    fn close_io_gives_eof_without_any_client() {
        let dir = tempfile::tempdir().unwrap();
        let inp = fifo(dir.path(), "in");
        let paths = StdioPaths {
            stdin: inp,
            ..Default::default()
        };
        let (io, mut held) = open_stdio(&paths, "c", "ns").unwrap();
        held.close_stdin();
        let mut all = Vec::new();
        std::fs::File::from(io.stdin).read_to_end(&mut all).unwrap();
        assert!(all.is_empty());
    }

    #[test]
    fn missing_path_and_uri_are_named() {
        let e = open_stdio(
            &StdioPaths {
                stdout: "/nonexistent/fifo".into(),
                ..Default::default()
            },
            "c",
            "ns",
        )
        .unwrap_err();
        assert!(e.0.contains("/nonexistent/fifo"), "{e}");
        let e = open_stdio(
            &StdioPaths {
                stdout: "syslog:///dev/log".into(),
                ..Default::default()
            },
            "c",
            "ns",
        )
        .unwrap_err();
        assert!(e.0.contains("syslog://"), "{e}");
    }

    use std::os::unix::fs::OpenOptionsExt;
}
