//! The stdin copy: a thread moves bytes from the client's stdin FIFO to the
//! process (a pipe, or a terminal's master) until the client closes its end,
//! CloseIO, or the process exits. It never blocks where it cannot be woken:
//! the FIFO is opened non-blocking and every wait is a poll that also
//! watches a cancel eventfd, so closing never waits on the copy (no lock is
//! shared with it).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::eventfd::{EfdFlags, EventFd};

use super::{open_path, IoError};

/// A running stdin copy; cancelled (the process sees EOF) when closed or dropped.
#[derive(Debug)]
pub struct StdinCopy {
    cancel: Arc<EventFd>,
}

impl StdinCopy {
    /// Starts copying `fifo` into `dest` (which the copy then owns).
    pub fn start(fifo: &str, dest: OwnedFd) -> Result<StdinCopy, IoError> {
        let src = open_path(fifo, OFlag::O_RDONLY | OFlag::O_NONBLOCK)?;
        let flags = fcntl(&dest, FcntlArg::F_GETFL).map_err(|e| IoError(format!("stdin: {e}")))?;
        fcntl(
            &dest,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        )
        .map_err(|e| IoError(format!("stdin: {e}")))?;
        let cancel = Arc::new(
            EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
                .map_err(|e| IoError(format!("stdin: eventfd: {e}")))?,
        );
        let c = cancel.clone();
        std::thread::Builder::new()
            .name("stdin".into())
            .stack_size(64 * 1024)
            .spawn(move || copy(src, dest, &c))
            .map_err(|e| IoError(format!("stdin {fifo}: cannot start the copy thread: {e}")))?;
        Ok(StdinCopy { cancel })
    }

    /// Ends the copy now: the process gets EOF.
    pub fn close(&self) {
        let _ = self.cancel.write(1);
    }
}

impl Drop for StdinCopy {
    fn drop(&mut self) {
        self.close();
    }
}

/// Waits until `fd` is ready for `flags` or the copy is cancelled (false).
fn wait(fd: &OwnedFd, flags: PollFlags, cancel: &EventFd) -> bool {
    loop {
        let mut fds = [
            PollFd::new(fd.as_fd(), flags),
            PollFd::new(cancel.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => {}
            Err(nix::Error::EINTR) => continue,
            Err(_) => return false,
        }
        if fds[1].revents().is_some_and(|r| !r.is_empty()) {
            return false;
        }
        if fds[0].revents().is_some_and(|r| !r.is_empty()) {
            return true;
        }
    }
}

/// What is in the FIFO now goes to `dest` as far as it takes it without
/// waiting: a client that writes and then closes stdin (CloseIO) right away
/// loses nothing the process would read.
fn drain_now(src: &OwnedFd, dest: &OwnedFd, buf: &mut [u8]) {
    loop {
        let n = match nix::unistd::read(src.as_fd(), buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let mut off = 0;
        while off < n {
            match nix::unistd::write(dest, &buf[off..n]) {
                Ok(w) => off += w,
                Err(nix::Error::EINTR) => {}
                Err(_) => return,
            }
        }
    }
}

fn copy(src: OwnedFd, dest: OwnedFd, cancel: &EventFd) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        // Before the client's writer ever connects, a FIFO polls as not
        // ready (no POLLHUP): this also waits for the client to show up.
        if !wait(&src, PollFlags::POLLIN, cancel) {
            drain_now(&src, &dest, &mut buf);
            return;
        }
        let n = match nix::unistd::read(src.as_fd(), &mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(nix::Error::EAGAIN) | Err(nix::Error::EINTR) => continue,
            Err(_) => return,
        };
        let mut off = 0;
        while off < n {
            match nix::unistd::write(&dest, &buf[off..n]) {
                Ok(w) => off += w,
                Err(nix::Error::EAGAIN) => {
                    if !wait(&dest, PollFlags::POLLOUT, cancel) {
                        return;
                    }
                }
                Err(nix::Error::EINTR) => {}
                Err(_) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    fn fifo(dir: &std::path::Path) -> String {
        let p = dir.join("in");
        nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        p.to_str().unwrap().to_string()
    }

    #[test]
    fn close_never_waits_on_a_full_pipe() {
        let dir = tempfile::tempdir().unwrap();
        let path = fifo(dir.path());
        let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        let copy = StdinCopy::start(&path, wr).unwrap();
        // A client writes far more than the pipe holds; nobody reads it.
        let mut client = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..4 {
            let _ = client.write(&chunk);
        }
        std::thread::sleep(Duration::from_millis(100));
        let start = Instant::now();
        copy.close();
        drop(copy);
        // The copy ends: the reader drains what was written, then sees EOF.
        let mut r = std::fs::File::from(rd);
        let mut all = Vec::new();
        r.read_to_end(&mut all).unwrap();
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!all.is_empty());
    }

    #[test]
    fn close_right_after_a_write_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = fifo(dir.path());
        for _ in 0..20 {
            let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
            let copy = StdinCopy::start(&path, wr).unwrap();
            let mut client = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
            client.write_all(b"hello\nhello\n").unwrap();
            drop(client);
            copy.close();
            drop(copy);
            let mut all = Vec::new();
            std::fs::File::from(rd).read_to_end(&mut all).unwrap();
            assert_eq!(all, b"hello\nhello\n");
        }
    }

    #[test]
    fn a_client_that_never_comes_does_not_hold_the_thread() {
        let dir = tempfile::tempdir().unwrap();
        let path = fifo(dir.path());
        let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        drop(StdinCopy::start(&path, wr).unwrap());
        let mut all = Vec::new();
        std::fs::File::from(rd).read_to_end(&mut all).unwrap();
        assert!(all.is_empty(), "EOF once cancelled");
    }

    use std::os::unix::fs::OpenOptionsExt;
}
