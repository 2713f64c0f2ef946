//! Child reaping for a subreaper shim: one `waitpid(-1)` loop, driven by
//! SIGCHLD, with per-pid subscriptions so runtime CLI calls never lose their
//! exit codes to it.

use std::collections::HashMap;
use std::io::Read;
use std::os::fd::AsFd;
use std::process::{Command, Stdio};
use std::sync::mpsc::{sync_channel, SyncSender};
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
        let (stdout, stderr) = read_both(child.stdout.take(), child.stderr.take());
        let status = rx
            .recv()
            .map_err(|_| std::io::Error::other("reaper dropped the exit subscription"))?;
        Ok(CommandOutput {
            status,
            stdout,
            stderr,
        })
    }
}

/// Reads two pipes to their ends without letting either fill up (bounded).
fn read_both(
    out: Option<std::process::ChildStdout>,
    err: Option<std::process::ChildStderr>,
) -> (Vec<u8>, Vec<u8>) {
    const LIMIT: usize = 4 << 20;
    let mut pipes: Vec<(Box<dyn ReadFd>, Vec<u8>, bool)> = Vec::new();
    if let Some(o) = out {
        pipes.push((Box::new(o), Vec::new(), true));
    }
    if let Some(e) = err {
        pipes.push((Box::new(e), Vec::new(), true));
    }
    let mut buf = [0u8; 8192];
    while pipes.iter().any(|p| p.2) {
        let ready: Vec<bool> = {
            let mut fds: Vec<PollFd> = pipes
                .iter()
                .filter(|p| p.2)
                .map(|p| PollFd::new(p.0.fd(), PollFlags::POLLIN))
                .collect();
            if poll(&mut fds, PollTimeout::NONE).is_err() {
                continue;
            }
            fds.iter()
                .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
                .collect()
        };
        let mut k = 0;
        for p in pipes.iter_mut().filter(|p| p.2) {
            if ready[k] {
                match p.0.read(&mut buf) {
                    Ok(0) | Err(_) => p.2 = false,
                    Ok(n) => {
                        if p.1.len() < LIMIT {
                            p.1.extend_from_slice(&buf[..n]);
                        }
                    }
                }
            }
            k += 1;
        }
    }
    let mut it = pipes.into_iter().map(|p| p.1);
    let a = it.next().unwrap_or_default();
    let b = it.next().unwrap_or_default();
    (a, b)
}

trait ReadFd: Read {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_>;
}

impl ReadFd for std::process::ChildStdout {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.as_fd()
    }
}

impl ReadFd for std::process::ChildStderr {
    fn fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.as_fd()
    }
}
