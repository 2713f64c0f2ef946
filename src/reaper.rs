//! Child reaping for a subreaper shim: one `waitpid(-1)` loop, driven by
//! SIGCHLD, with per-pid subscriptions so runtime CLI calls never lose their
//! exit codes to it.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Mutex;

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::runtime::{CommandOutput, CommandRunner};

/// One reaped child: pid and exit code (128 + signal when signalled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exit {
    pub pid: i32,
    pub status: i32,
}

/// Owns every `waitpid` in the shim.
#[derive(Default)]
pub struct Reaper {
    subscribers: Mutex<HashMap<i32, SyncSender<i32>>>,
}

impl Reaper {
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes this process a child subreaper: orphaned container processes
    /// are re-parented to the shim, which then reaps them.
    pub fn become_subreaper() -> std::io::Result<()> {
        // SAFETY: prctl with integer arguments has no memory effects.
        let rc = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
        if rc == 0 {
            Ok(())
        } else {
            Err(std::io::Error::last_os_error())
        }
    }

    /// Reaps every exited child. Exits of subscribed pids (runtime CLI calls)
    /// are delivered to their callers; the rest are returned.
    pub fn reap(&self) -> Vec<Exit> {
        let mut others = Vec::new();
        loop {
            let (pid, status) = match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) => (pid.as_raw(), code),
                Ok(WaitStatus::Signaled(pid, sig, _)) => (pid.as_raw(), 128 + sig as i32),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            };
            let sub = self
                .subscribers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&pid);
            match sub {
                Some(tx) => {
                    let _ = tx.send(status);
                }
                None => others.push(Exit { pid, status }),
            }
        }
        others
    }
}

impl CommandRunner for Reaper {
    fn run(&self, mut cmd: Command, capture: bool) -> std::io::Result<CommandOutput> {
        if capture {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        let (tx, rx) = sync_channel(1);
        let mut child = {
            // Spawn and subscribe under the lock: the reaper cannot hand this
            // pid's exit to anyone else before the subscription exists.
            let mut subs = self.subscribers.lock().unwrap_or_else(|p| p.into_inner());
            let child = cmd.spawn()?;
            subs.insert(child.id() as i32, tx);
            child
        };
        drop(cmd);
        let (stdout, stderr, status) = collect(child.stdout.take(), child.stderr.take(), &rx)?;
        Ok(CommandOutput {
            status,
            stdout,
            stderr,
        })
    }
}

/// Most kept of each output.
const OUTPUT_LIMIT: usize = 4 << 20;

/// Reads the command's stdout and stderr until both end or the command has
/// exited and nothing more is waiting: a process the command left behind
/// (runsc starts a gofer) may hold the pipes open for its whole life.
fn collect(
    out: Option<std::process::ChildStdout>,
    err: Option<std::process::ChildStderr>,
    exit: &Receiver<i32>,
) -> std::io::Result<(Vec<u8>, Vec<u8>, i32)> {
    use std::os::fd::{AsFd, OwnedFd};
    let mut pipes: Vec<(Option<OwnedFd>, Vec<u8>)> =
        [out.map(OwnedFd::from), err.map(OwnedFd::from)]
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
                .map_err(|_| std::io::Error::other("reaper dropped the exit subscription"))?;
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
