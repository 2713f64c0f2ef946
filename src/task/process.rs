//! One process of a container (the init, or later an exec) and its state
//! machine: Created -> (Starting) -> Running -> Stopped.

use std::time::SystemTime;

use crate::io::{HeldIo, StdioPaths};

/// Sends a deferred Wait answer: exit status and time.
pub type Waiter = Box<dyn FnOnce(u32, SystemTime) + Send>;

/// Lifecycle state of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    Created,
    Running,
    Stopped,
}

/// A process the shim tracks.
pub struct Process {
    /// Exec id; empty for the init process.
    pub exec_id: String,
    pub pid: u32,
    pub state: ProcState,
    pub stdio: StdioPaths,
    pub held_io: HeldIo,
    /// Exit status and time, once stopped.
    pub exit: Option<(u32, SystemTime)>,
    /// A Start RPC is running the runtime's `start` right now.
    pub starting: bool,
    /// An exit that arrived while starting, applied after TaskStart is published.
    pub pending_exit: Option<(u32, SystemTime)>,
    /// Its output FIFOs still hold bytes a client is reading: the exit is
    /// reported once they are drained.
    pub draining: bool,
    /// runsc: the process's pid inside the sandbox (for `kill --pid`).
    pub internal_pid: u32,
    /// Its exit is the exit of `pid` (false: reported by `runsc wait`, the
    /// pid being the shared sandbox's).
    pub exits_with_pid: bool,
    /// An exec's `specs.Process` (hardened), until it is started.
    pub exec_spec: Option<serde_json::Value>,
    /// The exit was reported (TaskExit published, Waits answered). It can
    /// lag the exit while the output FIFOs drain.
    reported: bool,
    waiters: Vec<Waiter>,
}

impl Process {
    pub fn new(exec_id: &str, pid: u32, stdio: StdioPaths, held_io: HeldIo) -> Self {
        Process {
            exec_id: exec_id.to_string(),
            pid,
            state: ProcState::Created,
            stdio,
            held_io,
            exit: None,
            starting: false,
            pending_exit: None,
            draining: false,
            internal_pid: 0,
            exits_with_pid: true,
            exec_spec: None,
            reported: false,
            waiters: Vec::new(),
        }
    }

    /// The exit is recorded and waits to be reported.
    pub fn unreported_exit(&self) -> bool {
        self.exit.is_some() && !self.reported
    }

    /// Started and not yet reported as exited: holds back the init's exit.
    pub fn live(&self) -> bool {
        self.state == ProcState::Running || self.starting || self.unreported_exit()
    }

    /// Registers a Wait. If the exit was already reported, the waiter is
    /// handed back to be answered by the caller (outside any lock).
    pub fn add_waiter(&mut self, w: Waiter) -> Option<Waiter> {
        if self.reported {
            return Some(w);
        }
        self.waiters.push(w);
        None
    }

    /// Records the exit; false if it was already recorded.
    pub fn set_exited(&mut self, status: u32, at: SystemTime) -> bool {
        if self.exit.is_some() {
            return false;
        }
        self.state = ProcState::Stopped;
        self.exit = Some((status, at));
        self.held_io.close_stdin();
        true
    }

    /// Ends a process that never ran (its start failed): Waits get `status`,
    /// but no TaskExit is published for it (no start event preceded it).
    pub fn abandon(&mut self, status: u32, at: SystemTime) -> Vec<Waiter> {
        self.set_exited(status, at);
        self.reported = true;
        std::mem::take(&mut self.waiters)
    }

    /// Marks a recorded exit reported. Returns the Waits to answer (outside
    /// any lock), or None if there is no exit or it was reported already.
    pub fn take_report(&mut self) -> Option<Vec<Waiter>> {
        if self.exit.is_none() || self.reported {
            return None;
        }
        self.reported = true;
        Some(std::mem::take(&mut self.waiters))
    }
}

impl Drop for Process {
    /// A Wait must never go unanswered (containerd would wait forever):
    /// any left when a process is dropped gets its exit, or 137.
    fn drop(&mut self) {
        let (status, at) = self.exit.unwrap_or((137, SystemTime::now()));
        for w in std::mem::take(&mut self.waiters) {
            w(status, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn waiters_get_the_exit_once() {
        let got = Arc::new(Mutex::new(Vec::new()));
        let mut p = Process::new("", 10, StdioPaths::default(), HeldIo::default());
        let g = got.clone();
        assert!(p
            .add_waiter(Box::new(move |s, _| g.lock().unwrap().push(s)))
            .is_none());
        assert!(got.lock().unwrap().is_empty());
        let now = SystemTime::now();
        assert!(p.set_exited(42, now));
        assert!(!p.set_exited(1, now));
        let g = got.clone();
        assert!(
            p.add_waiter(Box::new(move |s, _| g.lock().unwrap().push(s)))
                .is_none(),
            "exited but not reported yet: the Wait is held"
        );
        for w in p.take_report().unwrap() {
            w(42, now);
        }
        assert!(p.take_report().is_none());
        let g = got.clone();
        let late = p.add_waiter(Box::new(move |s, _| g.lock().unwrap().push(s)));
        late.unwrap()(42, now);
        assert_eq!(*got.lock().unwrap(), vec![42, 42, 42]);
        // Dropped with a Wait pending: answered, not lost.
        let mut q = Process::new("x", 11, StdioPaths::default(), HeldIo::default());
        let g = got.clone();
        assert!(q
            .add_waiter(Box::new(move |s, _| g.lock().unwrap().push(s)))
            .is_none());
        drop(q);
        assert_eq!(got.lock().unwrap().last(), Some(&137));
        assert_eq!(p.state, ProcState::Stopped);
    }
}
