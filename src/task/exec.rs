//! Exec processes: Exec registers one (its `specs.Process` hardened like the
//! container's own), Start runs `runtime exec --detach`, and Kill, Delete,
//! State, Wait and CloseIO reach it by exec id.

use std::path::Path;
use std::time::SystemTime;

use containerd_shim_protos::api::{
    DeleteRequest, DeleteResponse, Empty, ExecProcessRequest, KillRequest, StartRequest,
    StartResponse,
};
use containerd_shim_protos::events::task::{TaskExecAdded, TaskExecStarted};
use containerd_shim_protos::topics;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::container::check_id;
use super::error::TaskError;
use super::exits::{answer_all, label};
use super::process::{ProcState, Process};
use super::service::{check_startable, delete_response, finished, TaskService, KILLED};
use crate::harden::bundle::write_atomic;
use crate::io::{self, HeldIo, StdioPaths};
use crate::runtime::Backend;

/// Largest exec process spec accepted.
const MAX_PROCESS_SPEC: usize = 1 << 20;

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|p| *p > 0)
}

impl TaskService {
    pub(super) fn exec(&self, req: ExecProcessRequest) -> Result<Empty, TaskError> {
        let what = label(&req.id, &req.exec_id);
        check_id(&req.exec_id).map_err(|e| TaskError::invalid(format!("{what}: {}", e.message)))?;
        let body = req
            .spec
            .as_ref()
            .map(|a| a.value.as_slice())
            .unwrap_or_default();
        if body.len() > MAX_PROCESS_SPEC {
            return Err(TaskError::invalid(format!(
                "{what}: process spec of {} bytes exceeds {MAX_PROCESS_SPEC}",
                body.len()
            )));
        }
        let mut spec: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
            TaskError::invalid(format!("{what}: process spec: malformed JSON: {e}"))
        })?;
        let mut inner = self.lock();
        let c = inner.get_mut(&req.id)?;
        if c.init.state != ProcState::Running || c.init.exit.is_some() {
            return Err(TaskError::precondition(format!(
                "container {} is not running: cannot exec {}",
                req.id, req.exec_id
            )));
        }
        if c.execs.contains_key(&req.exec_id) {
            return Err(TaskError::exists(format!("{what} already exists")));
        }
        let report = c
            .exec_rules
            .apply(&mut spec, c.runtime.backend)
            .map_err(|e| TaskError::invalid(format!("{what}: {e}")))?;
        if !report.changes.is_empty() {
            log::info!("{what}: {}", report.summary());
        }
        // The request decides the terminal, as containerd-shim-runc-v2 does:
        // containerd's client asks for one in the request (its IO creator)
        // and may leave the process spec's `terminal` false.
        if let Some(obj) = spec.as_object_mut() {
            obj.insert("terminal".into(), serde_json::Value::Bool(req.terminal));
        }
        let mut adapted = c
            .runtime
            .backend
            .terminal_process(&mut spec, c.terminal_relay);
        adapted.extend(
            c.runtime
                .backend
                .exec_seccomp(&mut spec, c.exec_seccomp.as_deref()),
        );
        if !adapted.is_empty() {
            log::info!("{what}: {}", adapted.join(", "));
        }
        let stdio = StdioPaths {
            stdin: req.stdin.clone(),
            stdout: req.stdout.clone(),
            stderr: req.stderr.clone(),
            terminal: req.terminal,
            copy_output: c.copy_stdio,
        };
        let mut p = Process::new(&req.exec_id, 0, stdio, HeldIo::default());
        p.exec_spec = Some(spec);
        c.execs.insert(req.exec_id.clone(), p);
        let mut ev = TaskExecAdded::new();
        ev.container_id = req.id.clone();
        ev.exec_id = req.exec_id.clone();
        self.events
            .publish(topics::TASK_EXEC_ADDED_EVENT_TOPIC, &ev);
        Ok(Empty::new())
    }

    pub(super) fn start_exec(&self, req: StartRequest) -> Result<StartResponse, TaskError> {
        let what = label(&req.id, &req.exec_id);
        let (runtime, spec, stdio, bundle) = {
            let mut inner = self.lock();
            let c = inner.get_mut(&req.id)?;
            if c.init.state != ProcState::Running || c.init.exit.is_some() {
                return Err(TaskError::precondition(format!(
                    "container {} is not running: cannot start {what}",
                    req.id
                )));
            }
            let (runtime, bundle) = (c.runtime.clone(), c.bundle.clone());
            let p = c
                .execs
                .get_mut(&req.exec_id)
                .ok_or_else(|| TaskError::not_found(format!("{what} not found")))?;
            check_startable(p, &what)?;
            p.starting = true;
            (runtime, p.exec_spec.clone(), p.stdio.clone(), bundle)
        };
        let since = std::time::Instant::now();
        let result = self.run_exec(&req, &runtime, spec, &stdio, &bundle);
        let mut inner = self.lock();
        let early = match &result {
            Ok((pid, _, _)) => inner.take_unclaimed(*pid, since),
            Err(_) => None,
        };
        let c = inner
            .containers
            .get_mut(&req.id)
            .ok_or_else(|| TaskError::not_found(format!("container {} was deleted", req.id)))?;
        let p = c
            .execs
            .get_mut(&req.exec_id)
            .ok_or_else(|| TaskError::not_found(format!("{what} was deleted while starting")))?;
        p.starting = false;
        let (pid, internal_pid, held) = match result {
            Ok(v) => v,
            Err(e) => {
                // An exec whose start failed never ran: Wait and Delete can
                // finish, and no TaskExit follows a start that did not happen.
                let waiters = p.abandon(255, SystemTime::now());
                drop(inner);
                for w in waiters {
                    w(255, SystemTime::now());
                }
                return Err(e);
            }
        };
        if c.init.exit.is_some() {
            // The init died while this exec was starting: it goes too (its
            // exit is then reported before the init's).
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
        }
        let p = c
            .execs
            .get_mut(&req.exec_id)
            .ok_or_else(|| TaskError::not_found(format!("{what} was deleted while starting")))?;
        p.pid = pid;
        p.internal_pid = internal_pid;
        p.held_io = held;
        p.exec_spec = None;
        p.state = ProcState::Running;
        if let Some(e) = early {
            p.pending_exit
                .get_or_insert((e.status as u32, SystemTime::now()));
        }
        let mut ev = TaskExecStarted::new();
        ev.container_id = req.id.clone();
        ev.exec_id = req.exec_id.clone();
        ev.pid = pid;
        self.events
            .publish(topics::TASK_EXEC_STARTED_EVENT_TOPIC, &ev);
        log::info!("{what}: started, pid {pid}");
        let reports = match p.pending_exit.take() {
            Some((status, at)) => self.record_exit(c, &req.exec_id, status, at),
            None => Vec::new(),
        };
        drop(inner);
        answer_all(reports);
        let mut resp = StartResponse::new();
        resp.pid = pid;
        Ok(resp)
    }

    /// Writes the process spec, opens stdio and runs `runtime exec`; returns
    /// the host pid, the sandbox pid (runsc) and the stdio the shim keeps.
    fn run_exec(
        &self,
        req: &StartRequest,
        runtime: &crate::runtime::Runtime,
        spec: Option<serde_json::Value>,
        stdio: &StdioPaths,
        bundle: &Path,
    ) -> Result<(u32, u32, HeldIo), TaskError> {
        let what = label(&req.id, &req.exec_id);
        let spec = spec.ok_or_else(|| TaskError::internal(format!("{what}: no process spec")))?;
        let name = format!(".exec-{}", req.exec_id);
        let (spec_file, pid_file, internal_file) = (
            bundle.join(format!("{name}.json")),
            bundle.join(format!("{name}.pid")),
            bundle.join(format!("{name}.ipid")),
        );
        let cleanup = || {
            for f in [&spec_file, &pid_file, &internal_file] {
                let _ = std::fs::remove_file(f);
            }
        };
        cleanup();
        let body = serde_json::to_vec(&spec)
            .map_err(|e| TaskError::internal(format!("{what}: process spec: {e}")))?;
        write_atomic(bundle, &format!("{name}.json"), &body)
            .map_err(|e| TaskError::internal(format!("{what}: {e}")))?;
        let (create_io, mut held) = match io::open_stdio(stdio, &req.id, &self.namespace) {
            Ok(v) => v,
            Err(e) => {
                cleanup();
                return Err(TaskError::invalid(format!("{what}: {e}")));
            }
        };
        let ran = runtime.exec_process(
            self.runner.as_ref(),
            &req.id,
            &spec_file,
            &pid_file,
            &internal_file,
            create_io,
        );
        let pids = (read_pid(&pid_file), read_pid(&internal_file));
        cleanup();
        ran?;
        let Some(pid) = pids.0 else {
            return Err(TaskError::internal(format!(
                "{what}: {} exec left no valid pid",
                runtime.backend.name()
            )));
        };
        let relayed = runtime.backend.relayed(&spec);
        if let Err(e) = io::attach_console(stdio, &mut held, Backend::console_size(&spec), relayed)
        {
            // It runs, but cannot be given its terminal: end it.
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            return Err(TaskError::internal(format!("{what}: {e}")));
        }
        Ok((pid, pids.1.unwrap_or(0), held))
    }

    pub(super) fn kill_exec(&self, req: KillRequest) -> Result<Empty, TaskError> {
        let what = label(&req.id, &req.exec_id);
        let (runtime, pid, internal_pid) = {
            let inner = self.lock();
            let c = inner.get(&req.id)?;
            let p = inner.process(&req.id, &req.exec_id)?;
            if p.exit.is_some() {
                return Err(finished(&req.id, &req.exec_id));
            }
            if p.pid == 0 {
                return Err(TaskError::precondition(format!("{what} has not started")));
            }
            (c.runtime.clone(), p.pid, p.internal_pid)
        };
        log::info!("{what}: kill signal {}", req.signal);
        if runtime.backend == Backend::Runsc && internal_pid != 0 {
            return match runtime.kill_internal(
                self.runner.as_ref(),
                &req.id,
                internal_pid,
                req.signal,
            ) {
                Ok(()) => Ok(Empty::new()),
                Err(e) if e.not_found => Err(finished(&req.id, &req.exec_id)),
                Err(e) => Err(e.into()),
            };
        }
        let sig = Signal::try_from(req.signal as i32)
            .map_err(|_| TaskError::invalid(format!("{what}: invalid signal {}", req.signal)))?;
        match kill(Pid::from_raw(pid as i32), sig) {
            Ok(()) => Ok(Empty::new()),
            Err(nix::Error::ESRCH) => Err(finished(&req.id, &req.exec_id)),
            Err(e) => Err(TaskError::internal(format!("{what}: kill pid {pid}: {e}"))),
        }
    }

    pub(super) fn delete_exec(&self, req: DeleteRequest) -> Result<DeleteResponse, TaskError> {
        let what = label(&req.id, &req.exec_id);
        self.drain_before_delete(&req.id, &req.exec_id);
        let mut inner = self.lock();
        let c = inner.get_mut(&req.id)?;
        let p = c
            .execs
            .get(&req.exec_id)
            .ok_or_else(|| TaskError::not_found(format!("{what} not found")))?;
        if p.state == ProcState::Running || p.starting {
            return Err(TaskError::precondition(format!(
                "{what}: cannot delete a running process"
            )));
        }
        let mut p = c
            .execs
            .remove(&req.exec_id)
            .ok_or_else(|| TaskError::not_found(format!("{what} not found")))?;
        let mut reports = if p.exit.is_none() {
            // Never ran, so nothing exited: status 0, as containerd-shim-runc-v2
            // answers; its Waits end, and no TaskExit is published.
            let at = SystemTime::now();
            p.set_exited(0, at);
            p.take_report().map(|w| (w, 0, at)).into_iter().collect()
        } else {
            self.report_one(&req.id, &mut p)
        };
        // The init's exit may have been waiting for this exec.
        reports.extend(self.report_ready(c));
        drop(inner);
        answer_all(reports);
        let (status, at) = p.exit.unwrap_or((KILLED, SystemTime::now()));
        log::info!("{what}: deleted");
        Ok(delete_response(p.pid, status, at))
    }
}
