//! Output through the shim (`stdio = "copy"`): the process writes into a
//! pipe and a thread moves it into the client's FIFO, as
//! containerd-shim-runc-v2 does for every process. CRIU can checkpoint a
//! process holding a pipe (runc and crun hand the new pipe over at restore),
//! not one holding containerd's FIFO, which lives on a mount the container
//! cannot see. Costs a thread (64 KiB stack) and a pipe per output stream.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use nix::fcntl::OFlag;

use super::{open_path, set_blocking, IoError};

/// A running copy: whether it ended, and the bytes it moved.
#[derive(Debug, Clone)]
pub struct CopyProgress {
    pub done: Arc<AtomicBool>,
    pub bytes: Arc<AtomicU64>,
}

/// Starts copying a new pipe into the FIFO at `fifo`; returns the pipe's
/// write end for the process, and the copy's progress. The FIFO must have a
/// reader already (the shim's keepalive read end): its write end is opened
/// without waiting.
pub fn start(fifo: &str) -> Result<(OwnedFd, CopyProgress), IoError> {
    let (rd, wr) = nix::unistd::pipe2(OFlag::O_CLOEXEC)
        .map_err(|e| IoError(format!("output pipe for {fifo}: {e}")))?;
    let out = open_path(fifo, OFlag::O_WRONLY | OFlag::O_NONBLOCK)?;
    set_blocking(&out, fifo)?;
    let progress = CopyProgress {
        done: Arc::new(AtomicBool::new(false)),
        bytes: Arc::new(AtomicU64::new(0)),
    };
    let p = progress.clone();
    std::thread::Builder::new()
        .name("output-copy".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            copy(rd, std::fs::File::from(out), &p.bytes);
            p.done.store(true, Ordering::SeqCst);
        })
        .map_err(|e| IoError(format!("output {fifo}: cannot start the copy thread: {e}")))?;
    Ok((wr, progress))
}

/// Pipe -> FIFO until every writer of the pipe is gone or the FIFO fails.
fn copy(from: OwnedFd, mut to: std::fs::File, bytes: &AtomicU64) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match nix::unistd::read(from.as_fd(), &mut buf) {
            Ok(0) => return,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    return;
                }
                bytes.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(nix::Error::EINTR) => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn copies_until_the_writers_are_gone() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("out");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let path = fifo.to_str().unwrap();
        // A reader first, as the shim's keepalive read end is.
        let rd = super::super::open_path(path, OFlag::O_RDONLY | OFlag::O_NONBLOCK).unwrap();
        super::super::set_blocking(&rd, path).unwrap();
        let (wr, progress) = start(fifo.to_str().unwrap()).unwrap();
        // Read once the copy holds the FIFO's write end (no early EOF).
        let reader = std::thread::spawn(move || {
            let mut s = String::new();
            std::fs::File::from(rd).read_to_string(&mut s).unwrap();
            s
        });
        let mut w = std::fs::File::from(wr);
        w.write_all(b"hello\n").unwrap();
        drop(w);
        assert_eq!(reader.join().unwrap(), "hello\n");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !progress.done.load(Ordering::SeqCst) {
            assert!(std::time::Instant::now() < deadline);
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(progress.bytes.load(Ordering::Relaxed), 6);
    }
}
