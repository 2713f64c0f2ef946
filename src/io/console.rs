//! Terminals: the runtime is given a console socket (`--console-socket`),
//! connects to it and sends the pty master over SCM_RIGHTS; the shim then
//! copies the master to the stdout FIFO and the stdin FIFO to the master,
//! and resizes it for ResizePty.
//!
//! Until the client's first ResizePty (ctr sends it only after Start has
//! returned) a fresh pty is 0x0, which programs take for "no terminal size"
//! (`stty size` fails): a pty the runtime left at 0x0 gets the process's
//! starting size first ([`initial_size`]).
//!
//! On runsc the container gets the pty as an imported host fd, which has no
//! name inside the sandbox (`tty` says "not a tty"): terminal processes run
//! under the relay of cmd/nucleus-tty, which the shim carries and installs
//! with [`relay_binary`] (see `Backend::add_terminal_relay`).

use std::io::Write;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};

use super::IoError;

/// Where console sockets are made (short: socket paths are limited to 108 bytes).
const SOCKET_DIR: &str = "/run/nucleus/console";

/// The terminal relay as the shim carries it, built statically by build.rs
/// (empty if that failed), with its SHA-256 (hex) from build.rs too. Its
/// bytes (over a megabyte of the shim's image) are read only to install it:
/// checking an installed copy reads the file instead, so a running shim
/// does not page them in.
struct Relay<'a> {
    bytes: &'a [u8],
    sha256: &'a str,
}

/// The relay's bytes on 64 KiB boundaries of their own: the kernel maps
/// file pages around a fault in aligned 64 KiB windows (fault-around), so a
/// read of data next to an unaligned blob would map relay pages into every
/// shim's RSS.
#[repr(C, align(65536))]
struct PageAligned<T: ?Sized>(T);

const RELAY_LEN: usize = include_bytes!(concat!(env!("OUT_DIR"), "/nucleus-tty")).len();
static RELAY_BYTES: PageAligned<[u8; RELAY_LEN]> =
    PageAligned(*include_bytes!(concat!(env!("OUT_DIR"), "/nucleus-tty")));

static RELAY: Relay<'static> = Relay {
    bytes: &RELAY_BYTES.0,
    sha256: include_str!(concat!(env!("OUT_DIR"), "/nucleus-tty.sha256")),
};

/// Drops the pages of `bytes` (part of the shim's read-only image) from this
/// process's memory once they were copied out: they come back from the
/// binary if ever read again.
fn release_pages(bytes: &[u8]) {
    const WINDOW: usize = 65536;
    let start = bytes.as_ptr() as usize;
    let first = start.div_ceil(WINDOW) * WINDOW;
    let end = (start + bytes.len()) / WINDOW * WINDOW;
    if end > first {
        // SAFETY: the range lies inside a read-only mapping of the shim's
        // own image; MADV_DONTNEED on it only drops clean file pages.
        unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_DONTNEED) };
    }
}

/// Where the relay is installed, one file per build (named by its hash).
const RELAY_DIR: &str = "/run/nucleus/tty";

/// The host path of the terminal relay, installed on first use (once per
/// shim process). An existing file is used only if it is a regular file of
/// this user, not writable by others, with exactly the relay's bytes.
pub fn relay_binary() -> Result<PathBuf, IoError> {
    // Only a success is kept, and only while the file is still there: a
    // failure (a full /run at the first Create) is tried again by the next
    // Create, and a copy removed under a running shim is installed again.
    static INSTALLED: std::sync::Mutex<Option<PathBuf>> = std::sync::Mutex::new(None);
    let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = installed.as_ref().filter(|p| p.is_file()) {
        return Ok(path.clone());
    }
    let path = install_relay(Path::new(RELAY_DIR), &RELAY).map_err(IoError)?;
    *installed = Some(path.clone());
    Ok(path)
}

fn install_relay(dir: &Path, relay: &Relay) -> Result<PathBuf, String> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
    if relay.bytes.is_empty() || relay.sha256.len() != 64 {
        return Err(
            "this shim was built without its terminal relay (see the build's warnings)".into(),
        );
    }
    let name = format!("nucleus-tty-{}", &relay.sha256[..16]);
    let path = dir.join(&name);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| format!("terminal relay dir {}: {e}", dir.display()))?;
    // One shim at a time: two must not both mount over a noexec dir.
    let _lock = lock_beside(dir)?;
    allow_exec(dir)?;
    if relay_installed(&path, relay) {
        return Ok(path);
    }
    let tmp = dir.join(format!(".{name}.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o555)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(relay.bytes)?;
            release_pages(relay.bytes);
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "installing the terminal relay {}: {e}",
            path.display()
        ));
    }
    Ok(path)
}

/// An exclusive lock on the file `DIR.lock` beside `dir`, held until the
/// returned value is dropped.
fn lock_beside(dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.with_extension("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&path)
        .map_err(|e| format!("terminal relay lock {}: {e}", path.display()))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| format!("terminal relay lock {}: {e}", path.display()))
}

/// Makes sure a program in `dir` can be executed in a runsc sandbox.
///
/// gVisor maps a program's text from the host file itself (runsc 20240729's
/// directfs and 20221219's gofer alike), so the host's mount flags apply: on
/// a `noexec` mount the host refuses the PROT_EXEC mapping and the relay
/// dies with SIGSEGV before its first instruction (exit 139, no output).
/// Debian mounts /run that way (initramfs-tools' `nodev,noexec,nosuid`
/// tmpfs, moved into the system). There `dir` gets a small tmpfs of its own
/// (nosuid, nodev, but exec). Mount flags belong to the mount, so this
/// holds however /run is mounted.
fn allow_exec(dir: &Path) -> Result<(), String> {
    use nix::mount::{mount, MsFlags};
    use nix::sys::statvfs::{statvfs, FsFlags};
    let noexec = || {
        statvfs(dir)
            .map(|s| s.flags().contains(FsFlags::ST_NOEXEC))
            .map_err(|e| format!("terminal relay dir {}: {e}", dir.display()))
    };
    if !noexec()? {
        return Ok(());
    }
    mount(
        Some("tmpfs"),
        dir,
        Some("tmpfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        Some("mode=0755,size=16m"),
    )
    .map_err(|e| {
        format!(
            "terminal relay dir {} is on a noexec mount, where runsc cannot run \
             programs, and a tmpfs could not be mounted there: {e}",
            dir.display()
        )
    })?;
    if noexec()? {
        return Err(format!(
            "terminal relay dir {}: still noexec after mounting a tmpfs there",
            dir.display()
        ));
    }
    log::info!(
        "terminal relay dir {} was on a noexec mount (runsc could not run the relay \
         from there): mounted a tmpfs of its own on it",
        dir.display()
    );
    Ok(())
}

fn relay_installed(path: &Path, relay: &Relay) -> bool {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let Ok(mut f) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    else {
        return false;
    };
    let Ok(meta) = f.metadata() else {
        return false;
    };
    // SAFETY: geteuid has no side effects.
    let me = unsafe { libc::geteuid() };
    if !meta.is_file()
        || meta.uid() != me
        || meta.mode() & 0o022 != 0
        || meta.len() != relay.bytes.len() as u64
    {
        return false;
    }
    crate::digest::sha256_hex_of(&mut f).is_ok_and(|hex| hex == relay.sha256)
}

/// Gives `master` `size` (columns, rows) if it has none yet (0x0).
pub fn initial_size(master: &OwnedFd, size: (u16, u16)) -> Result<(), IoError> {
    let mut ws = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills one winsize.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) } != 0 {
        return Err(IoError(format!(
            "terminal size: {}",
            std::io::Error::last_os_error()
        )));
    }
    if ws.ws_row != 0 && ws.ws_col != 0 {
        return Ok(());
    }
    set_size(master, size.0, size.1)
}

/// Puts the terminal of `master` in raw mode: for a relayed terminal, whose
/// line discipline is the sandbox pty's (no echo or newline translation
/// twice, not even for input sent before the relay has started).
pub fn make_raw(master: &OwnedFd) -> Result<(), IoError> {
    // SAFETY: termios is plain data that tcgetattr fills.
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    // SAFETY: the fd is open; tcgetattr/cfmakeraw/tcsetattr read and write `t` only.
    let ok = unsafe {
        libc::tcgetattr(master.as_raw_fd(), &mut t) == 0 && {
            libc::cfmakeraw(&mut t);
            libc::tcsetattr(master.as_raw_fd(), libc::TCSANOW, &t) == 0
        }
    };
    if !ok {
        return Err(IoError(format!(
            "terminal raw mode: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

fn set_size(master: &OwnedFd, cols: u16, rows: u16) -> Result<(), IoError> {
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
    let rc = unsafe { libc::ioctl(master.as_fd().as_raw_fd(), libc::TIOCSWINSZ, &ws) };
    if rc != 0 {
        return Err(IoError(format!(
            "resizing the terminal: {}",
            std::io::Error::last_os_error()
        )));
    }
    Ok(())
}

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
    /// Bytes that copy moved so far (its progress, while a client reads).
    pub output_copied: Arc<AtomicU64>,
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
        let output_copied = Arc::new(AtomicU64::new(0));
        if !stdout.is_empty() {
            keepalive.push(super::open_path(
                stdout,
                OFlag::O_RDONLY | OFlag::O_NONBLOCK,
            )?);
            let wr = super::open_path(stdout, OFlag::O_WRONLY | OFlag::O_NONBLOCK)?;
            super::set_blocking(&wr, stdout)?;
            let out = std::fs::File::from(wr);
            let (m, done, copied) = (master.clone(), output_done.clone(), output_copied.clone());
            spawn("console-out", move || {
                copy(&m, out, &copied);
                done.store(true, Ordering::SeqCst);
            })?;
        }
        Ok(Console {
            master,
            output_done,
            output_copied,
        })
    }

    /// Sets the terminal size (ResizePty).
    pub fn resize(&self, width: u32, height: u32) -> Result<(), IoError> {
        set_size(
            &self.master,
            width.min(u16::MAX as u32) as u16,
            height.min(u16::MAX as u32) as u16,
        )
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
fn copy(master: &OwnedFd, mut out: std::fs::File, copied: &AtomicU64) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match nix::unistd::read(master.as_fd(), &mut buf) {
            Ok(0) | Err(nix::Error::EIO) => break,
            Ok(n) => {
                if out.write_all(&buf[..n]).is_err() {
                    break;
                }
                copied.fetch_add(n as u64, Ordering::Relaxed);
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

    #[test]
    fn the_relay_is_installed_once_and_checked() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        // Its lock file goes beside it, in the temporary dir too.
        let dir = tmp.path().join("tty");
        let bytes = b"\x7fELF relay";
        let sha256 = crate::digest::sha256_hex(bytes);
        let relay = Relay {
            bytes,
            sha256: &sha256,
        };
        let path = install_relay(&dir, &relay).unwrap();
        assert!(tmp.path().join("tty.lock").is_file());
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o555);
        assert_eq!(
            path.file_name().unwrap().to_string_lossy(),
            format!("nucleus-tty-{}", &sha256[..16])
        );
        assert_eq!(install_relay(&dir, &relay).unwrap(), path, "reused");
        // A file that is not the relay (or writable by others) is replaced.
        std::fs::remove_file(&path).unwrap();
        std::fs::write(&path, b"something \x7fELF").unwrap();
        assert!(!relay_installed(&path, &relay), "same size, other bytes");
        assert_eq!(install_relay(&dir, &relay).unwrap(), path);
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!relay_installed(&path, &relay));
        assert_eq!(install_relay(&dir, &relay).unwrap(), path);
        assert!(relay_installed(&path, &relay));
        // A symlink there is not followed.
        std::fs::remove_file(&path).unwrap();
        let elsewhere = dir.join("elsewhere");
        std::fs::write(&elsewhere, bytes).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert!(!relay_installed(&path, &relay));
        let empty = Relay {
            bytes: b"",
            sha256: "",
        };
        assert!(install_relay(&dir, &empty).is_err());
    }

    #[test]
    fn the_shim_carries_a_static_relay() {
        // Built by build.rs unless static linking failed there: a build
        // without the relay (runsc terminals fall back to gVisor's host
        // terminal) never passes under CI.
        if RELAY.bytes.is_empty() {
            assert!(
                std::env::var("CI").is_err(),
                "build.rs could not build the static terminal relay (libc6-dev's libc.a?)"
            );
            return;
        }
        assert_eq!(&RELAY.bytes[..4], b"\x7fELF");
        assert_eq!(RELAY.sha256.len(), 64);
    }

    #[test]
    fn a_new_terminal_gets_a_size_and_can_be_raw() {
        // SAFETY: posix_openpt/grantpt/unlockpt take plain values.
        let master = unsafe { libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY) };
        assert!(master >= 0);
        unsafe {
            assert_eq!(libc::grantpt(master), 0);
            assert_eq!(libc::unlockpt(master), 0);
        }
        // SAFETY: the fd was just opened and is owned here.
        let master = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(master) };
        let size = |m: &OwnedFd| {
            let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
            // SAFETY: TIOCGWINSZ fills the winsize.
            assert_eq!(
                unsafe { libc::ioctl(m.as_raw_fd(), libc::TIOCGWINSZ, &mut ws) },
                0
            );
            (ws.ws_col, ws.ws_row)
        };
        assert_eq!(size(&master), (0, 0));
        initial_size(&master, (80, 24)).unwrap();
        assert_eq!(size(&master), (80, 24));
        initial_size(&master, (100, 30)).unwrap();
        assert_eq!(size(&master), (80, 24), "a size already set stays");
        make_raw(&master).unwrap();
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: tcgetattr fills the termios.
        assert_eq!(unsafe { libc::tcgetattr(master.as_raw_fd(), &mut t) }, 0);
        assert_eq!(t.c_lflag & (libc::ECHO | libc::ICANON), 0);
    }

    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
}
