//! Process stdio. FIFOs from containerd are handed to the runtime directly —
//! no copy threads, no copies — while the shim keeps what protects the
//! container: a read end of each output FIFO (so a client or containerd going
//! away never SIGPIPEs the container) and a write end of the stdin FIFO (so
//! the container sees EOF only when CloseIO says so).

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::Path;

use nix::fcntl::{fcntl, open, FcntlArg, OFlag};
use nix::sys::stat::{stat, Mode, SFlag};

use crate::runtime::CreateIo;

/// Stdio that cannot be opened; names the path.
#[derive(Debug)]
pub struct IoError(pub String);

impl fmt::Display for IoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IoError {}

/// Stdio paths as containerd gives them (empty = none).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StdioPaths {
    pub stdin: String,
    pub stdout: String,
    pub stderr: String,
    pub terminal: bool,
}

/// The fds the shim keeps for a process's lifetime.
#[derive(Debug, Default)]
pub struct HeldIo {
    /// Write end of the stdin FIFO; dropped by CloseIO.
    pub stdin_keepalive: Option<OwnedFd>,
    /// Read ends of the output FIFOs.
    pub output_keepalive: Vec<OwnedFd>,
}

impl HeldIo {
    /// Lets the process see EOF on stdin once the client closes its end.
    pub fn close_stdin(&mut self) {
        self.stdin_keepalive = None;
    }
}

fn is_fifo(path: &str) -> Result<bool, IoError> {
    let st = stat(path).map_err(|e| IoError(format!("stdio {path}: {e}")))?;
    Ok(SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFIFO)
}

fn open_path(path: &str, flags: OFlag) -> Result<OwnedFd, IoError> {
    open(Path::new(path), flags | OFlag::O_CLOEXEC, Mode::empty())
        .map_err(|e| IoError(format!("open {path}: {e}")))
}

fn set_blocking(fd: &OwnedFd, path: &str) -> Result<(), IoError> {
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

fn check_uri(path: &str) -> Result<(), IoError> {
    if let Some((scheme, _)) = path.split_once("://") {
        return Err(IoError(format!(
            "stdio {path}: the {scheme}:// log URI is not supported by this shim version"
        )));
    }
    Ok(())
}

/// Opens stdin: the container gets a blocking read end; the shim keeps a
/// write end (opened non-blocking, so it never waits for the client).
fn open_stdin(path: &str, held: &mut HeldIo) -> Result<OwnedFd, IoError> {
    if path.is_empty() {
        return dev_null(false);
    }
    check_uri(path)?;
    if !is_fifo(path)? {
        return open_path(path, OFlag::O_RDONLY);
    }
    let rd = open_path(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
    held.stdin_keepalive = Some(open_path(path, OFlag::O_WRONLY | OFlag::O_NONBLOCK)?);
    set_blocking(&rd, path)?;
    Ok(rd)
}

/// Opens an output: the container gets a blocking write end; the shim keeps
/// a read end it never reads from.
fn open_output(path: &str, held: &mut HeldIo) -> Result<OwnedFd, IoError> {
    if path.is_empty() {
        return dev_null(true);
    }
    check_uri(path)?;
    if !is_fifo(path)? {
        return open_path(path, OFlag::O_WRONLY | OFlag::O_APPEND);
    }
    held.output_keepalive
        .push(open_path(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?);
    let wr = open_path(path, OFlag::O_WRONLY | OFlag::O_NONBLOCK)?;
    set_blocking(&wr, path)?;
    Ok(wr)
}

/// Opens a process's stdio for `create`; returns the fds for the runtime and
/// the ones the shim keeps.
pub fn open_stdio(paths: &StdioPaths) -> Result<(CreateIo, HeldIo), IoError> {
    if paths.terminal {
        return Err(IoError(
            "terminal (tty) processes are not supported by this shim version".into(),
        ));
    }
    let mut held = HeldIo::default();
    let stdin = open_stdin(&paths.stdin, &mut held)?;
    let stdout = open_output(&paths.stdout, &mut held)?;
    let stderr = if !paths.stderr.is_empty() && paths.stderr == paths.stdout {
        stdout
            .try_clone()
            .map_err(|e| IoError(format!("dup {}: {e}", paths.stderr)))?
    } else {
        open_output(&paths.stderr, &mut held)?
    };
    Ok((
        CreateIo {
            stdin,
            stdout,
            stderr,
        },
        held,
    ))
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
        let (io, held) = open_stdio(&StdioPaths::default()).unwrap();
        let mut out = std::fs::File::from(io.stdout);
        out.write_all(b"discarded").unwrap();
        assert!(held.stdin_keepalive.is_none() && held.output_keepalive.is_empty());
    }

    #[test]
    fn fifo_output_survives_without_reader_and_reaches_late_reader() {
        let dir = tempfile::tempdir().unwrap();
        let out = fifo(dir.path(), "out");
        let paths = StdioPaths {
            stdout: out.clone(),
            ..Default::default()
        };
        let (io, held) = open_stdio(&paths).unwrap();
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
    fn stdin_sees_eof_only_after_close_io() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = tempfile::tempdir().unwrap();
        let inp = fifo(dir.path(), "in");
        let paths = StdioPaths {
            stdin: inp.clone(),
            ..Default::default()
        };
        let (io, mut held) = open_stdio(&paths).unwrap();
        let mut client = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&inp)
            .unwrap();
        client.write_all(b"hello").unwrap();
        drop(client);
        let mut r = std::fs::File::from(io.stdin);
        let mut buf = [0u8; 5];
        r.read_exact(&mut buf).unwrap();
        assert_eq!(&buf, b"hello");
        // Client gone but CloseIO not yet called: the read would block, so
        // check that the keepalive writer is still there instead.
        assert!(held.stdin_keepalive.is_some());
        held.close_stdin();
        let mut rest = Vec::new();
        r.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty());
    }

    #[test]
    fn missing_path_and_uri_are_named() {
        let e = open_stdio(&StdioPaths {
            stdout: "/nonexistent/fifo".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.0.contains("/nonexistent/fifo"), "{e}");
        let e = open_stdio(&StdioPaths {
            stdout: "binary:///usr/bin/logger".into(),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.0.contains("binary://"), "{e}");
    }

    use std::os::unix::fs::OpenOptionsExt;
}
