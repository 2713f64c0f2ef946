//! Exits and the order they are reported in. An exit is recorded when the
//! reaper sees it and reported (TaskExit published, Waits answered) when
//! every rule allows: TaskStart/TaskExecStarted first, the output FIFOs
//! drained, and an init's exit only after all its execs' exits.

use std::time::SystemTime;

use containerd_shim_protos::events::task::{TaskExit, TaskOOM};
use containerd_shim_protos::topics;

use super::container::Container;
use super::process::{Process, Waiter};
use super::service::{TaskService, MAX_UNCLAIMED};
use crate::events::timestamp;
use crate::reaper::Exit;

/// Waits to answer, outside the lock: waiters with the exit they get.
pub type Reports = Vec<(Vec<Waiter>, u32, SystemTime)>;

/// Answers reported Waits.
pub fn answer_all(reports: Reports) {
    for (waiters, status, at) in reports {
        for w in waiters {
            w(status, at);
        }
    }
}

impl TaskService {
    /// Records the exit of a pid the reaper saw. Pids no process claims yet
    /// are kept for a Create or exec Start that has not read its pid file.
    pub fn process_exited(&self, exit: Exit) {
        let at = SystemTime::now();
        let status = exit.status as u32;
        let mut inner = self.lock();
        let found = inner.containers.values_mut().find_map(|c| {
            let exec_id = std::iter::once(&c.init)
                .chain(c.execs.values())
                .find(|p| {
                    p.exits_with_pid && p.pid as i32 == exit.pid && p.pid != 0 && p.exit.is_none()
                })
                .map(|p| p.exec_id.clone())?;
            Some((c, exec_id))
        });
        let reports = match found {
            Some((c, exec_id)) => self.record_exit(c, &exec_id, status, at),
            None => {
                if inner.unclaimed.len() >= MAX_UNCLAIMED {
                    inner.unclaimed.pop_front();
                }
                inner.unclaimed.push_back((exit, std::time::Instant::now()));
                Vec::new()
            }
        };
        drop(inner);
        answer_all(reports);
    }

    /// Records an exit of a process of `c` (call with the lock held); while
    /// its Start is in flight it waits for the start event. Returns what can
    /// be reported now.
    pub(super) fn record_exit(
        &self,
        c: &mut Container,
        exec_id: &str,
        status: u32,
        at: SystemTime,
    ) -> Reports {
        // An OOM kill is announced before the exit it caused.
        self.check_oom(c);
        let id = c.id.clone();
        let Some(p) = c.process_mut(exec_id) else {
            return Vec::new();
        };
        if p.starting {
            p.pending_exit = Some((status, at));
            return Vec::new();
        }
        if !p.set_exited(status, at) {
            return Vec::new();
        }
        if exec_id.is_empty() {
            c.paused = false;
        }
        let Some(p) = c.process_mut(exec_id) else {
            return Vec::new();
        };
        log::info!(
            "{}: pid {} exited with status {status}",
            label(&id, exec_id),
            p.pid
        );
        if let Some(drain) = p.held_io.unread_output() {
            let (me, id, exec, pid) = (self.me.clone(), id.clone(), p.exec_id.clone(), p.pid);
            let spawned = std::thread::Builder::new()
                .name("drain".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    let left = drain.wait();
                    if left > 0 {
                        log::warn!(
                            "{}: {left} bytes of output were not read by any client",
                            label(&id, &exec)
                        );
                    }
                    if let Some(service) = me.upgrade() {
                        service.drained(&id, &exec, pid);
                    }
                });
            p.draining = spawned.is_ok();
        }
        if exec_id.is_empty()
            && c.execs
                .values()
                .any(|e| e.state == super::process::ProcState::Running)
        {
            // The init is gone: its execs go too (already so in a pid namespace).
            let (runtime, id, runner) = (c.runtime.clone(), c.id.clone(), self.runner.clone());
            let _ = std::thread::Builder::new()
                .name("kill-execs".into())
                .stack_size(64 * 1024)
                .spawn(move || {
                    let _ = runtime.kill(runner.as_ref(), &id, libc::SIGKILL as u32, true);
                });
        }
        self.report_ready(c)
    }

    /// The runtime reported the exit of a container it tracks itself.
    pub(super) fn runtime_exited(&self, id: &str, status: u32) {
        let mut inner = self.lock();
        let Some(c) = inner.containers.get_mut(id) else {
            return;
        };
        let reports = self.record_exit(c, "", status, SystemTime::now());
        drop(inner);
        answer_all(reports);
    }

    /// Publishes TaskOOM if the container's memory cgroup OOM-killed since
    /// the last look (call with the lock held).
    pub(super) fn check_oom(&self, c: &mut Container) {
        if c.oom.as_mut().is_some_and(|w| w.fired()) {
            log::warn!("container {}: OOM kill", c.id);
            let mut ev = TaskOOM::new();
            ev.container_id = c.id.clone();
            self.events.publish(topics::TASK_OOM_EVENT_TOPIC, &ev);
        }
    }

    /// The fds the server loop polls for this service: OOM watches.
    pub fn watch_fds(&self) -> Vec<std::os::fd::RawFd> {
        use std::os::fd::AsRawFd;
        self.lock()
            .containers
            .values()
            .filter_map(|c| c.oom.as_ref().map(|w| w.fd().as_raw_fd()))
            .collect()
    }

    /// One of [`Self::watch_fds`] is readable.
    pub fn watch_ready(&self, fd: std::os::fd::RawFd) {
        use std::os::fd::AsRawFd;
        let mut inner = self.lock();
        let c = inner
            .containers
            .values_mut()
            .find(|c| c.oom.as_ref().is_some_and(|w| w.fd().as_raw_fd() == fd));
        if let Some(c) = c {
            self.check_oom(c);
        }
    }

    /// A drain thread is done with a process's output.
    fn drained(&self, id: &str, exec_id: &str, pid: u32) {
        let mut inner = self.lock();
        let Some(c) = inner.containers.get_mut(id) else {
            return;
        };
        match c.process_mut(exec_id) {
            Some(p) if p.pid == pid => p.draining = false,
            _ => return,
        }
        let reports = self.report_ready(c);
        drop(inner);
        answer_all(reports);
    }

    /// Reports every exit whose turn has come: execs whose output drained,
    /// then the init once no exec is left unreported.
    pub(super) fn report_ready(&self, c: &mut Container) -> Reports {
        let mut out = Vec::new();
        let id = c.id.clone();
        for p in c.execs.values_mut() {
            if p.unreported_exit() && !p.draining {
                out.extend(self.report(&id, p));
            }
        }
        let execs_live = c.execs.values().any(Process::live);
        if c.init.unreported_exit() && !c.init.draining && !execs_live {
            out.extend(self.report(&id, &mut c.init));
        }
        out
    }

    /// Reports every recorded exit now, drained or not (Delete: TaskExit
    /// must precede TaskDelete).
    pub(super) fn report_all(&self, c: &mut Container) -> Reports {
        let mut out = Vec::new();
        let id = c.id.clone();
        for p in c.execs.values_mut().chain(std::iter::once(&mut c.init)) {
            out.extend(self.report(&id, p));
        }
        out
    }

    /// Reports one process's recorded exit now (an exec being deleted).
    pub(super) fn report_one(&self, id: &str, p: &mut Process) -> Reports {
        self.report(id, p).into_iter().collect()
    }

    /// Publishes TaskExit for a recorded, unreported exit.
    fn report(&self, id: &str, p: &mut Process) -> Option<(Vec<Waiter>, u32, SystemTime)> {
        let (Some((status, at)), Some(waiters)) = (p.exit, p.take_report()) else {
            return None;
        };
        let mut ev = TaskExit::new();
        ev.container_id = id.to_string();
        ev.id = if p.exec_id.is_empty() {
            id.to_string()
        } else {
            p.exec_id.clone()
        };
        ev.pid = p.pid;
        ev.exit_status = status;
        ev.exited_at = Some(timestamp(at)).into();
        self.events.publish(topics::TASK_EXIT_EVENT_TOPIC, &ev);
        Some((waiters, status, at))
    }
}

/// "container X" or "container X exec Y", for logs and errors.
pub fn label(id: &str, exec_id: &str) -> String {
    if exec_id.is_empty() {
        format!("container {id}")
    } else {
        format!("container {id} exec {exec_id}")
    }
}
