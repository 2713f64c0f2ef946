//! Child reaping for a subreaper shim: one `waitpid(-1)` loop, driven by
//! SIGCHLD, with per-pid subscriptions so runtime CLI calls never lose their
//! exit codes to it.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::Mutex;

use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::runtime::{CommandOutput, CommandRunner};
use crate::spawn::{collect, ChildIo, Command};

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
            cmd.stdout(ChildIo::Piped).stderr(ChildIo::Piped);
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
        let (stdout, stderr, status) = collect(child.stdout.take(), child.stderr.take(), &rx)?;
        Ok(CommandOutput {
            status,
            stdout,
            stderr,
        })
    }
}
