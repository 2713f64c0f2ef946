//! The long-lived shim process: a ttrpc server on the socket `start` bound,
//! serving the Task service under both `containerd.task.v2.Task` and
//! `containerd.task.v3.Task`, reaping children on SIGCHLD, and exiting after
//! an accepted Shutdown.
//!
//! One thread runs everything that is not a runtime CLI call: accepting,
//! reading frames, answering fast RPCs, reaping. An idle shim is this thread
//! and the event publisher's, nothing else.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use containerd_shim_protos::ttrpc::{Code, Request, Status};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};

use crate::cli::Flags;
use crate::events::Publisher;
use crate::reaper::Reaper;
use crate::task::TaskService;
use crate::wire;

/// Service names the Task API is served under.
pub const TASK_SERVICES: [&str; 2] = ["containerd.task.v2.Task", "containerd.task.v3.Task"];
/// The fd `start` passes the bound listener on.
pub const LISTENER_FD: i32 = 3;

message_error!(
    /// The server could not start; names what failed.
    ServerError
);

struct Conn {
    stream: Arc<UnixStream>,
    write_lock: Arc<Mutex<()>>,
    frames: wire::FrameBuffer,
}

/// Chunks read from one connection per turn of the loop.
const READS_PER_TURN: usize = 64;

/// Wakes the server loop from other threads.
#[derive(Clone)]
struct Waker {
    fd: Arc<OwnedFd>,
    exit: Arc<AtomicBool>,
}

impl Waker {
    fn request_exit(&self) {
        self.exit.store(true, Ordering::SeqCst);
        self.wake();
    }

    fn wake(&self) {
        let _ = nix::unistd::write(self.fd.as_fd(), &1u64.to_ne_bytes());
    }

    fn drain(&self) {
        let mut buf = [0u8; 8];
        let _ = nix::unistd::read(self.fd.as_fd(), &mut buf);
    }
}

/// Runs the shim server until Shutdown. Called in the daemon `start` spawned.
pub fn run(flags: &Flags) -> Result<(), ServerError> {
    // Block SIGCHLD before any thread exists, so only the signalfd sees it.
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGCHLD);
    mask.thread_block()
        .map_err(|e| ServerError(format!("blocking SIGCHLD: {e}")))?;
    // The daemon's stderr is /dev/null: a panic anywhere goes to the shim
    // log (containerd's), or a dying shim would leave no trace.
    std::panic::set_hook(Box::new(|info| {
        let thread = std::thread::current();
        log::error!(
            "panic in thread {}: {info}",
            thread.name().unwrap_or("unnamed")
        );
    }));
    // SAFETY: setting SIGPIPE to ignored is process-wide and has no other effect.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // Fewer malloc arenas: the shim's memory per container is what counts.
    // SAFETY: mallopt takes plain integers.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    let sigfd = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
        .map_err(|e| ServerError(format!("signalfd: {e}")))?;
    Reaper::become_subreaper().map_err(|e| ServerError(format!("PR_SET_CHILD_SUBREAPER: {e}")))?;

    // SAFETY: fd 3 is the listener `start` handed over; nothing else owns it.
    let listener = unsafe { UnixListener::from_raw_fd(LISTENER_FD) };
    nix::fcntl::fcntl(
        &listener,
        nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
    )
    .map_err(|e| ServerError(format!("listener fd {LISTENER_FD}: {e}")))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| ServerError(format!("listener fd {LISTENER_FD}: {e}")))?;

    let ttrpc_address = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
    let events = Publisher::start(&ttrpc_address, &flags.namespace)
        .map_err(|e| ServerError(format!("starting event publisher: {e}")))?;
    let reaper = Arc::new(Reaper::new());
    let wake_fd = nix::sys::eventfd::EventFd::from_value_and_flags(
        0,
        nix::sys::eventfd::EfdFlags::EFD_CLOEXEC | nix::sys::eventfd::EfdFlags::EFD_NONBLOCK,
    )
    .map_err(|e| ServerError(format!("eventfd: {e}")))?;
    let waker = Waker {
        fd: Arc::new(OwnedFd::from(wake_fd)),
        exit: Arc::new(AtomicBool::new(false)),
    };
    let (w, w2) = (waker.clone(), waker.clone());
    let service = TaskService::new(
        &flags.namespace,
        reaper.clone(),
        events.clone(),
        Box::new(move || w.request_exit()),
        Box::new(move || w2.wake()),
    );
    log::info!("serving {} (pid {})", flags.id, std::process::id());
    event_loop(&listener, &sigfd, &waker, &reaper, &service);

    if !flags.socket.is_empty() {
        let path = flags
            .socket
            .strip_prefix("unix://")
            .unwrap_or(&flags.socket);
        let _ = std::fs::remove_file(path);
    }
    if !events.flush(Duration::from_secs(3)) {
        log::error!("exiting with undelivered events");
    }
    events.close();
    log::info!("shim exiting");
    Ok(())
}

fn event_loop(
    listener: &UnixListener,
    sigfd: &SignalFd,
    waker: &Waker,
    reaper: &Reaper,
    service: &Arc<TaskService>,
) {
    let mut conns: Vec<Conn> = Vec::new();
    while !waker.exit.load(Ordering::SeqCst) {
        let watches = service.watch_fds();
        let (ready_listener, ready_sig, ready_wake, ready_conns, ready_watches) =
            {
                let mut fds = vec![
                    PollFd::new(listener.as_fd(), PollFlags::POLLIN),
                    PollFd::new(sigfd.as_fd(), PollFlags::POLLIN),
                    PollFd::new(waker.fd.as_fd(), PollFlags::POLLIN),
                ];
                fds.extend(
                    conns
                        .iter()
                        .map(|c| PollFd::new(c.stream.as_fd(), PollFlags::POLLIN)),
                );
                // SAFETY: poll only reads the numbers; a watch closed meanwhile (its
                // container deleted) yields POLLNVAL or a readiness the service
                // ignores, and the set is rebuilt on the next turn.
                fds.extend(watches.iter().map(|fd| {
                    PollFd::new(unsafe { BorrowedFd::borrow_raw(*fd) }, PollFlags::POLLIN)
                }));
                match poll(&mut fds, PollTimeout::NONE) {
                    Ok(_) => {}
                    Err(nix::Error::EINTR) => continue,
                    Err(e) => {
                        log::error!("poll: {e}");
                        std::thread::sleep(Duration::from_millis(100));
                        continue;
                    }
                }
                let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
                let split = 3 + conns.len();
                (
                    ready(&fds[0]),
                    ready(&fds[1]),
                    ready(&fds[2]),
                    fds[3..split].iter().map(ready).collect::<Vec<_>>(),
                    fds[split..].iter().map(ready).collect::<Vec<_>>(),
                )
            };
        if ready_wake {
            waker.drain();
        }
        // OOM before exits: TaskOOM precedes the TaskExit it caused.
        for (fd, ready) in watches.iter().zip(ready_watches) {
            if ready {
                service.watch_ready(*fd);
            }
        }
        if ready_sig {
            while let Ok(Some(_)) = sigfd.read_signal() {}
            for exit in reaper.reap() {
                service.process_exited(exit);
            }
        }
        let mut closed = Vec::new();
        for (i, ready) in ready_conns.into_iter().enumerate() {
            if ready && !read_conn(&mut conns[i], service) {
                closed.push(i);
            }
        }
        for i in closed.into_iter().rev() {
            conns.swap_remove(i);
        }
        if ready_listener {
            while let Ok((stream, _)) = listener.accept() {
                if stream.set_nonblocking(true).is_ok() {
                    conns.push(Conn {
                        stream: Arc::new(stream),
                        write_lock: Arc::new(Mutex::new(())),
                        frames: wire::FrameBuffer::default(),
                    });
                }
            }
        }
    }
}

/// Reads from a connection: at most [`READS_PER_TURN`] chunks per turn (poll
/// is level-triggered, the rest is read on the next turn, so one busy peer
/// cannot keep the loop from the others), each chunk's whole frames
/// dispatched before the next is read (the buffer holds one frame at most);
/// false when the connection is closed or must be.
fn read_conn(conn: &mut Conn, service: &Arc<TaskService>) -> bool {
    let mut chunk = [0u8; 16 * 1024];
    for _ in 0..READS_PER_TURN {
        match (&*conn.stream).read(&mut chunk) {
            Ok(0) => return false,
            Ok(n) => conn.frames.push(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => return false,
        }
        loop {
            match conn.frames.next_frame() {
                Ok(Some((h, body))) => {
                    if h.kind == wire::TYPE_REQUEST {
                        handle_request(conn, h.stream_id, &body, service);
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    log::warn!("closing connection fd {}: {e}", conn.stream.as_raw_fd());
                    return false;
                }
            }
        }
    }
    true
}

fn status(code: Code, message: String) -> Status {
    let mut s = Status::new();
    s.code = code.into();
    s.message = message;
    s
}

fn handle_request(conn: &Conn, stream_id: u32, body: &[u8], service: &Arc<TaskService>) {
    let stream = conn.stream.clone();
    let write_lock = conn.write_lock.clone();
    let reply = Box::new(move |result: Result<Vec<u8>, Status>| {
        let frame = wire::response_frame(stream_id, result);
        let _guard = write_lock.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = wire::write_all_wait(&mut &*stream, &frame) {
            // A frame cut short leaves the stream unusable: the peer gets
            // EOF, and the loop's next read of it closes the connection.
            log::warn!(
                "writing response to fd {}: {e}; shutting the connection down",
                stream.as_raw_fd()
            );
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    });
    let req = match wire::decode_message::<Request>(body) {
        Ok(r) => r,
        Err(e) => {
            return reply(Err(status(
                Code::INVALID_ARGUMENT,
                format!("malformed ttrpc request: {e}"),
            )))
        }
    };
    if !TASK_SERVICES.contains(&req.service.as_str()) {
        return reply(Err(status(
            Code::UNIMPLEMENTED,
            format!("service {} is not served by this shim", req.service),
        )));
    }
    log::debug!("rpc {}/{}", req.service, req.method);
    service.dispatch(&req.method, req.payload, reply);
}

/// The socket path in an address.
pub fn socket_path(address: &str) -> PathBuf {
    PathBuf::from(address.strip_prefix("unix://").unwrap_or(address))
}
