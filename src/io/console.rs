//! Terminals: the runtime is given a console socket (`--console-socket`),
//! connects to it and sends the pty master over SCM_RIGHTS; the shim then
//! copies the master to the stdout FIFO and the stdin FIFO to the master,
//! and resizes it for ResizePty.

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use super::IoError;

/// Where console sockets are made (short: socket paths are limited to 108 bytes).
const SOCKET_DIR: &str = "/run/nucleus/console";

/// A listening console socket, removed when dropped.
#[derive(Debug)]
pub struct ConsoleSocket {
    path: PathBuf,
    listener: UnixListener,
}

impl ConsoleSocket {
    /// Binds a new console socket (mode 0700 directory).
    pub fn new() -> Result<Self, IoError> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(SOCKET_DIR)
            .map_err(|e| IoError(format!("console socket dir {SOCKET_DIR}: {e}")))?;
        let path = PathBuf::from(SOCKET_DIR).join(format!(
            "{}-{}.sock",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path)
            .map_err(|e| IoError(format!("console socket {}: {e}", path.display())))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| IoError(format!("console socket {}: {e}", path.display())))?;
        Ok(ConsoleSocket { path, listener })
    }

    /// The path to give the runtime.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Takes the pty master the runtime sent (it connected during its
    /// create/exec, which has returned), waiting at most until `deadline`.
    pub fn receive(&self, deadline: Instant) -> Result<OwnedFd, IoError> {
        let stream = loop {
            match self.listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() > deadline {
                        return Err(IoError(
                            "the runtime did not send a terminal on the console socket".into(),
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(IoError(format!("console socket: accept: {e}"))),
            }
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .map_err(|e| IoError(format!("console socket: {e}")))?;
        let mut buf = [0u8; 4096];
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 1]);
        let msg = recvmsg::<()>(
            stream.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .map_err(|e| IoError(format!("console socket: recvmsg: {e}")))?;
        for cmsg in msg
            .cmsgs()
            .map_err(|e| IoError(format!("console socket: {e}")))?
        {
            if let ControlMessageOwned::ScmRights(fds) = cmsg {
                // SAFETY: SCM_RIGHTS handed this process new fds it owns.
                let mut owned: Vec<OwnedFd> = fds
                    .iter()
                    .map(|fd| unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(*fd) })
                    .collect();
                if !owned.is_empty() {
                    // Any extra fds are closed as `owned` drops.
                    return Ok(owned.swap_remove(0));
                }
            }
        }
        Err(IoError(
            "console socket: no terminal fd in the message".into(),
        ))
    }
}

impl Drop for ConsoleSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A process's terminal while it runs: the master and the output copy.
#[derive(Debug)]
pub struct Console {
    master: Arc<OwnedFd>,
    /// The master -> stdout copy ended (the process side closed).
    pub output_done: Arc<AtomicBool>,
}

impl Console {
    /// Starts copying `master` to the stdout FIFO. A read end of the FIFO is
    /// pushed to `keepalive` (no SIGPIPE when the client goes, and drain
    /// tracking). stdin is a [`super::stdin::StdinCopy`] into the master.
    pub fn start(
        master: OwnedFd,
        stdout: &str,
        keepalive: &mut Vec<OwnedFd>,
    ) -> Result<Console, IoError> {
        let master = Arc::new(master);
        let output_done = Arc::new(AtomicBool::new(stdout.is_empty()));
        if !stdout.is_empty() {
            keepalive.push(super::open_path(
                stdout,
                OFlag::O_RDONLY | OFlag::O_NONBLOCK,
            )?);
            let wr = super::open_path(stdout, OFlag::O_WRONLY | OFlag::O_NONBLOCK)?;
            super::set_blocking(&wr, stdout)?;
            let out = std::fs::File::from(wr);
            let (m, done) = (master.clone(), output_done.clone());
            spawn("console-out", move || {
                copy(&m, out);
                done.store(true, Ordering::SeqCst);
            })?;
        }
        Ok(Console {
            master,
            output_done,
        })
    }

    /// Sets the terminal size (ResizePty).
    pub fn resize(&self, width: u32, height: u32) -> Result<(), IoError> {
        let ws = libc::winsize {
            ws_row: height.min(u16::MAX as u32) as u16,
            ws_col: width.min(u16::MAX as u32) as u16,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
        let rc = unsafe { libc::ioctl(self.master.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        if rc != 0 {
            return Err(IoError(format!(
                "resizing the terminal: {}",
                std::io::Error::last_os_error()
            )));
        }
        Ok(())
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), IoError> {
    std::thread::Builder::new()
        .name(name.into())
        .stack_size(64 * 1024)
        .spawn(f)
        .map(drop)
        .map_err(|e| IoError(format!("{name}: cannot start a thread: {e}")))
}

/// Master -> output until the process side closes (EIO) or the output fails.
fn copy(master: &OwnedFd, mut out: std::fs::File) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match nix::unistd::read(master.as_fd(), &mut buf) {
            Ok(0) | Err(nix::Error::EIO) => break,
            Ok(n) => {
                if out.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
            Err(nix::Error::EINTR) => continue,
            // The stdin copy shares the master's file description and makes
            // it non-blocking: wait for data (or the hangup) instead.
            Err(nix::Error::EAGAIN) => {
                let mut fds = [PollFd::new(master.as_fd(), PollFlags::POLLIN)];
                let _ = poll(&mut fds, PollTimeout::NONE);
            }
            Err(_) => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::socket::{sendmsg, ControlMessage};
    use std::os::unix::net::UnixStream;

    #[test]
    fn receives_the_fd_the_runtime_sends_and_cleans_up() {
        let sock = ConsoleSocket::new().unwrap();
        let path = sock.path().to_path_buf();
        let sender = UnixStream::connect(&path).unwrap();
        let sent = std::fs::File::open("/dev/null").unwrap();
        let fds = [sent.as_raw_fd()];
        let iov = [std::io::IoSlice::new(b"/dev/ptmx")];
        sendmsg::<()>(
            sender.as_raw_fd(),
            &iov,
            &[ControlMessage::ScmRights(&fds)],
            MsgFlags::empty(),
            None,
        )
        .unwrap();
        let got = sock
            .receive(Instant::now() + Duration::from_secs(5))
            .unwrap();
        assert!(got.as_raw_fd() >= 0);
        drop(sock);
        assert!(!path.exists(), "the socket file is removed");
    }

    #[test]
    fn no_terminal_is_a_clear_error() {
        let sock = ConsoleSocket::new().unwrap();
        let e = sock.receive(Instant::now()).unwrap_err();
        assert!(e.0.contains("did not send a terminal"), "{e}");
    }

    #[test]
    fn output_is_copied_and_the_terminal_resized() {
        // SAFETY: posix_openpt/grantpt/unlockpt/ptsname take plain values.
        let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
        assert!(master >= 0);
        unsafe {
            assert_eq!(libc::grantpt(master), 0);
            assert_eq!(libc::unlockpt(master), 0);
        }
        let name = unsafe { std::ffi::CStr::from_ptr(libc::ptsname(master)) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: the fd was just opened and is owned here.
        let master = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(master) };
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        nix::unistd::mkfifo(&out, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let out_s = out.to_str().unwrap().to_string();
        let mut reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&out)
            .unwrap();
        let mut keep = Vec::new();
        let console = Console::start(master, &out_s, &mut keep).unwrap();
        console.resize(77, 22).unwrap();
        let mut slave = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&name)
            .unwrap();
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        // SAFETY: TIOCGWINSZ fills the winsize.
        assert_eq!(
            unsafe { libc::ioctl(slave.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) },
            0
        );
        assert_eq!((ws.ws_col, ws.ws_row), (77, 22));
        slave.write_all(b"hi\n").unwrap();
        drop(slave);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !console.output_done.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "copy did not end at hangup");
            std::thread::sleep(Duration::from_millis(5));
        }
        let mut got = String::new();
        let _ = reader.read_to_string(&mut got);
        assert!(got.starts_with("hi"), "{got:?}");
    }

    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
}
