//! The Task service's state (containers keyed by id) and the RPC handlers
//! of the container lifecycle. Exec processes are in `exec.rs`, exits and
//! their ordering in `exits.rs`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Instant, SystemTime};

use containerd_shim_protos::api::{
    CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse,
    DeleteRequest, DeleteResponse, Empty, KillRequest, PidsRequest, PidsResponse, ProcessInfo,
    ShutdownRequest, StartRequest, StartResponse, StateRequest, StateResponse,
    Status as TaskStatus, WaitRequest, WaitResponse,
};
use containerd_shim_protos::events::task::{TaskCreate, TaskDelete, TaskIO, TaskStart};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::oci::ProcessDetails;
use containerd_shim_protos::topics;

use super::container::{self, Container};
use super::error::TaskError;
use super::exits::{answer_all, label};
use super::process::{ProcState, Process};
use super::Reply;
use crate::events::{timestamp, Publisher};
use crate::reaper::Exit;
use crate::runtime::CommandRunner;

/// Exits of pids no process claimed yet (bounded).
pub(super) const MAX_UNCLAIMED: usize = 1024;
/// Exit status reported for a process the shim had to kill (128 + SIGKILL).
pub(super) const KILLED: u32 = 137;

#[derive(Default)]
pub(super) struct Inner {
    pub containers: HashMap<String, Container>,
    /// Ids with a Create in flight.
    pub creating: HashSet<String>,
    /// Exits no process claimed yet, with when they were seen.
    pub unclaimed: VecDeque<(Exit, Instant)>,
}

/// The Task service of one shim process.
pub struct TaskService {
    pub(super) namespace: String,
    pub(super) runner: Arc<dyn CommandRunner>,
    pub(super) events: Publisher,
    inner: Mutex<Inner>,
    on_exit: Box<dyn Fn() + Send + Sync>,
    /// Makes the server loop poll again (a watch fd was added).
    wake: Box<dyn Fn() + Send + Sync>,
    /// Create RPCs dispatched and not finished (Shutdown must wait for them).
    creates_in_flight: std::sync::atomic::AtomicUsize,
    /// Itself, for threads that report an exit later.
    pub(super) me: Weak<TaskService>,
}

fn not_found(id: &str) -> TaskError {
    TaskError::not_found(format!("container {id} not found"))
}

impl Inner {
    pub fn get(&self, id: &str) -> Result<&Container, TaskError> {
        self.containers.get(id).ok_or_else(|| not_found(id))
    }

    pub fn get_mut(&mut self, id: &str) -> Result<&mut Container, TaskError> {
        self.containers.get_mut(id).ok_or_else(|| not_found(id))
    }

    /// The init (empty `exec_id`) or an exec of container `id`.
    pub fn process(&self, id: &str, exec_id: &str) -> Result<&Process, TaskError> {
        self.get(id)?
            .process(exec_id)
            .ok_or_else(|| TaskError::not_found(format!("{} not found", label(id, exec_id))))
    }

    /// Takes the exit of `pid` if the reaper saw it after `since` (when the
    /// runtime call that made the pid began: an older exit is another
    /// process that had the same pid).
    pub fn take_unclaimed(&mut self, pid: u32, since: Instant) -> Option<Exit> {
        let i = self
            .unclaimed
            .iter()
            .position(|(e, at)| e.pid == pid as i32 && *at >= since)?;
        self.unclaimed.remove(i).map(|(e, _)| e)
    }
}

impl TaskService {
    /// `on_exit` is called once the shim may exit (after an accepted
    /// Shutdown); `wake` when [`Self::watch_fds`] changed.
    pub fn new(
        namespace: &str,
        runner: Arc<dyn CommandRunner>,
        events: Publisher,
        on_exit: Box<dyn Fn() + Send + Sync>,
        wake: Box<dyn Fn() + Send + Sync>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| TaskService {
            namespace: namespace.to_string(),
            runner,
            events,
            inner: Mutex::new(Inner::default()),
            on_exit,
            wake,
            creates_in_flight: std::sync::atomic::AtomicUsize::new(0),
            me: me.clone(),
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// No container is served or being created.
    pub fn idle(&self) -> bool {
        use std::sync::atomic::Ordering;
        let inner = self.lock();
        inner.containers.is_empty()
            && inner.creating.is_empty()
            && self.creates_in_flight.load(Ordering::SeqCst) == 0
    }

    /// A Create was dispatched (counted before its thread starts, so a
    /// Shutdown read in the same batch does not see an idle shim).
    pub(super) fn create_dispatched(&self) {
        use std::sync::atomic::Ordering;
        self.creates_in_flight.fetch_add(1, Ordering::SeqCst);
    }

    /// A dispatched Create finished (or never started).
    pub(super) fn create_done(&self) {
        use std::sync::atomic::Ordering;
        self.creates_in_flight.fetch_sub(1, Ordering::SeqCst);
    }

    pub(super) fn request_exit(&self) {
        (self.on_exit)();
    }

    pub(super) fn create(&self, req: CreateTaskRequest) -> Result<CreateTaskResponse, TaskError> {
        {
            let mut inner = self.lock();
            if inner.containers.contains_key(&req.id) || !inner.creating.insert(req.id.clone()) {
                return Err(TaskError::exists(format!(
                    "container {} already exists",
                    req.id
                )));
            }
        }
        // The id is released whatever happens below, a panic included.
        struct Creating<'a>(&'a TaskService, &'a str);
        impl Drop for Creating<'_> {
            fn drop(&mut self) {
                self.0.lock().creating.remove(self.1);
            }
        }
        let guard = Creating(self, &req.id);
        let since = Instant::now();
        let created = container::create(&req, &self.namespace, self.runner.as_ref());
        drop(guard);
        let mut inner = self.lock();
        let mut c = created?;
        let pid = c.init.pid;
        let mut ev = TaskCreate::new();
        ev.container_id = req.id.clone();
        ev.bundle = req.bundle.clone();
        ev.rootfs = req.rootfs.clone();
        let mut io = TaskIO::new();
        io.stdin = req.stdin.clone();
        io.stdout = req.stdout.clone();
        io.stderr = req.stderr.clone();
        io.terminal = req.terminal;
        ev.io = Some(io).into();
        ev.checkpoint = req.checkpoint.clone();
        ev.pid = pid;
        self.events.publish(topics::TASK_CREATE_EVENT_TOPIC, &ev);
        if let Some(report) = c.hardening.take() {
            self.events.publish(
                crate::events::HARDENING_TOPIC,
                &hardening_event(&req.id, &req.bundle, &report),
            );
        }
        log::info!("container {}: created, pid {pid}", req.id);
        if let Some(e) = inner.take_unclaimed(pid, since) {
            // Died before Start: recorded now, no Wait can be pending yet.
            let reports = self.record_exit(&mut c, "", e.status as u32, SystemTime::now());
            debug_assert!(reports.iter().all(|(w, _, _)| w.is_empty()));
        }
        let watched = c.oom.is_some();
        inner.containers.insert(req.id.clone(), c);
        drop(inner);
        if watched {
            (self.wake)();
        }
        let mut resp = CreateTaskResponse::new();
        resp.pid = pid;
        Ok(resp)
    }

    pub(super) fn start(&self, req: StartRequest) -> Result<StartResponse, TaskError> {
        if !req.exec_id.is_empty() {
            return self.start_exec(req);
        }
        let (runtime, start_io, restore, bundle) = {
            let mut inner = self.lock();
            let c = inner.get_mut(&req.id)?;
            check_startable(&c.init, &label(&req.id, ""))?;
            c.init.starting = true;
            (
                c.runtime.clone(),
                c.start_io.take(),
                c.restore.take(),
                c.bundle.clone(),
            )
        };
        let since = std::time::Instant::now();
        let restoring = restore.is_some();
        let result: Result<(), TaskError> = match restore {
            Some(r) => self
                .restore(&req.id, &runtime, &bundle, &r, start_io)
                .map(|pid| {
                    let mut inner = self.lock();
                    let early = inner.take_unclaimed(pid, since);
                    if let Some(c) = inner.containers.get_mut(&req.id) {
                        c.init.pid = pid;
                        if let Some(e) = early {
                            let at = std::time::SystemTime::now();
                            c.init.pending_exit = Some((e.status as u32, at));
                        }
                    }
                }),
            None => runtime
                .start(self.runner.as_ref(), &req.id, start_io)
                .map_err(TaskError::from),
        };
        if result.is_err() {
            // A container whose start failed can do nothing useful: end it now
            // (runsc would otherwise keep its sandbox for a while).
            let _ = runtime.kill(self.runner.as_ref(), &req.id, libc::SIGKILL as u32, true);
            if restoring {
                // CRIU made the cgroups; a failed crun restore leaves them.
                let cgroup = self.lock().get(&req.id).ok().and_then(|c| c.cgroup.clone());
                if let Some(cg) = cgroup {
                    let removed = cg.remove_if_empty();
                    if !removed.is_empty() {
                        log::info!(
                            "container {}: failed restore's cgroups removed: {removed:?}",
                            req.id
                        );
                    }
                }
            }
        }
        let mut inner = self.lock();
        let c = inner.containers.get_mut(&req.id).ok_or_else(|| {
            TaskError::not_found(format!("container {} was deleted while starting", req.id))
        })?;
        c.init.starting = false;
        let pid = c.init.pid;
        if result.is_ok() && !c.init.exits_with_pid {
            // Its host pid is the pod sandbox's: runsc tells when it exits.
            let (me, id, runtime, runner) = (
                self.me.clone(),
                req.id.clone(),
                runtime.clone(),
                self.runner.clone(),
            );
            let spawned = std::thread::Builder::new()
                .name("runsc-wait".into())
                .stack_size(128 * 1024)
                .spawn(move || {
                    let status = match runtime.wait(runner.as_ref(), &id) {
                        Ok(s) => s,
                        Err(e) => {
                            log::warn!("container {id}: {e}");
                            KILLED
                        }
                    };
                    if let Some(service) = me.upgrade() {
                        service.runtime_exited(&id, status);
                    }
                });
            if let Err(e) = spawned {
                log::error!("container {}: cannot watch its exit: {e}", req.id);
            }
        }
        if result.is_ok() {
            c.init.state = ProcState::Running;
            let mut ev = TaskStart::new();
            ev.container_id = req.id.clone();
            ev.pid = pid;
            self.events.publish(topics::TASK_START_EVENT_TOPIC, &ev);
            log::info!("container {}: started", req.id);
        }
        let reports = match c.init.pending_exit.take() {
            Some((status, at)) => self.record_exit(c, "", status, at),
            None => Vec::new(),
        };
        drop(inner);
        answer_all(reports);
        result?;
        let mut resp = StartResponse::new();
        resp.pid = pid;
        Ok(resp)
    }

    /// Restores a container created from a checkpoint; its init's pid.
    fn restore(
        &self,
        id: &str,
        runtime: &crate::runtime::Runtime,
        bundle: &std::path::Path,
        from: &super::container::Restore,
        io: Option<crate::runtime::CreateIo>,
    ) -> Result<u32, TaskError> {
        let what = format!("container {id}");
        let io = match io {
            Some(io) => io,
            None => {
                crate::io::null_stdio().map_err(|e| TaskError::internal(format!("{what}: {e}")))?
            }
        };
        let pid_file = bundle.join("init.pid");
        let work = bundle.join("criu-work");
        let _ = std::fs::create_dir_all(&work);
        runtime.restore(
            self.runner.as_ref(),
            id,
            bundle,
            &pid_file,
            &from.image,
            &work,
            from.parent.as_deref(),
            io,
        )?;
        let pid = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .filter(|p| *p > 0)
            .ok_or_else(|| {
                TaskError::internal(format!(
                    "{what}: restore left no valid pid in {}",
                    pid_file.display()
                ))
            })?;
        log::info!("{what}: restored from {}, pid {pid}", from.image.display());
        Ok(pid)
    }

    pub(super) fn kill(&self, req: KillRequest) -> Result<Empty, TaskError> {
        if !req.exec_id.is_empty() {
            return self.kill_exec(req);
        }
        let (runtime, created) = {
            let inner = self.lock();
            let c = inner.get(&req.id)?;
            if c.init.exit.is_some() && !req.all {
                return Err(finished(&req.id, ""));
            }
            let created = c.init.state == ProcState::Created && c.init.exit.is_none();
            (c.runtime.clone(), created)
        };
        log::info!(
            "container {}: kill signal {} all={}",
            req.id,
            req.signal,
            req.all
        );
        if created && !runtime.backend.signals_created_containers() {
            return self.kill_created(&req, &runtime);
        }
        match runtime.kill(self.runner.as_ref(), &req.id, req.signal, req.all) {
            Ok(()) => Ok(Empty::new()),
            Err(e) => {
                let exited = self
                    .lock()
                    .containers
                    .get(&req.id)
                    .is_some_and(|c| c.init.exit.is_some());
                if exited || e.not_found {
                    Err(finished(&req.id, ""))
                } else {
                    Err(e.into())
                }
            }
        }
    }

    /// Kill of a created container on a runtime that cannot signal one: the
    /// runtime deletes it, and its init is reported exited by the signal
    /// (128 + signal, as runc's `runc init` dies of it). The sandbox
    /// process's own exit is not taken for the init's meanwhile.
    fn kill_created(
        &self,
        req: &KillRequest,
        runtime: &crate::runtime::Runtime,
    ) -> Result<Empty, TaskError> {
        let claimed = {
            let mut inner = self.lock();
            let c = inner.get_mut(&req.id)?;
            std::mem::replace(&mut c.init.exits_with_pid, false)
        };
        let result = runtime.delete(self.runner.as_ref(), &req.id, true);
        let mut inner = self.lock();
        let c = inner.get_mut(&req.id)?;
        if let Err(e) = result.or_else(|e| if e.not_found { Ok(()) } else { Err(e) }) {
            c.init.exits_with_pid = claimed;
            return Err(e.into());
        }
        let status = 128 + (req.signal & 0x7f);
        log::info!(
            "container {}: deleted while created (signal {})",
            req.id,
            req.signal
        );
        let reports = self.record_exit(c, "", status, SystemTime::now());
        drop(inner);
        answer_all(reports);
        Ok(Empty::new())
    }

    pub(super) fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse, TaskError> {
        if !req.exec_id.is_empty() {
            return self.delete_exec(req);
        }
        self.wait_drained(&req.id);
        self.drain_before_delete(&req.id, "");
        let c = {
            let mut inner = self.lock();
            let c = inner.get(&req.id)?;
            if c.init.state == ProcState::Running || c.init.starting {
                return Err(TaskError::precondition(format!(
                    "container {}: cannot delete a running process",
                    req.id
                )));
            }
            if let Some(e) = c.execs.values().find(|p| p.starting) {
                return Err(TaskError::precondition(format!(
                    "{}: still starting",
                    label(&req.id, &e.exec_id)
                )));
            }
            inner
                .containers
                .remove(&req.id)
                .ok_or_else(|| not_found(&req.id))?
        };
        if let Err(e) = c.destroy(self.runner.as_ref()) {
            self.lock().containers.insert(req.id.clone(), c);
            return Err(e);
        }
        let mut c = c;
        // Its IO closes: logging binaries get SIGTERM (SIGKILL after a bound).
        for p in c.execs.values_mut().chain(std::iter::once(&mut c.init)) {
            p.held_io.stop_loggers();
        }
        // Whatever never ran or outlived the init was killed with it.
        let now = SystemTime::now();
        for p in c.execs.values_mut().chain(std::iter::once(&mut c.init)) {
            if p.exit.is_none() {
                p.set_exited(KILLED, now);
            }
        }
        // TaskExit (execs' first) goes before TaskDelete, even while output drains.
        let reports = self.report_all(&mut c);
        let (status, at) = c.init.exit.unwrap_or((KILLED, SystemTime::now()));
        let mut ev = TaskDelete::new();
        ev.container_id = req.id.clone();
        ev.id = req.id.clone();
        ev.pid = c.init.pid;
        ev.exit_status = status;
        ev.exited_at = Some(timestamp(at)).into();
        self.events.publish(topics::TASK_DELETE_EVENT_TOPIC, &ev);
        log::info!("container {}: deleted", req.id);
        answer_all(reports);
        Ok(delete_response(c.init.pid, status, at))
    }

    /// Output of an exited process still on its way to the client is given
    /// time before Delete answers: containerd's client stops reading the
    /// FIFOs as soon as Delete returns (its IO's Cancel closes them), so a
    /// terminal copy still running or bytes still in a FIFO would be lost.
    /// Waits while output moves (see [`crate::io::OutputDrain`]).
    pub(super) fn drain_before_delete(&self, id: &str, exec_id: &str) {
        let drain = {
            let inner = self.lock();
            inner
                .process(id, exec_id)
                .ok()
                .filter(|p| p.exit.is_some())
                .and_then(|p| p.held_io.unread_output())
        };
        if let Some(d) = drain {
            use crate::io::OutputDrain;
            let left = d.wait_for(OutputDrain::DELETE_IDLE, OutputDrain::DELETE_LIMIT);
            if left > 0 {
                log::warn!(
                    "{}: deleted with {left} bytes of output no client read",
                    label(id, exec_id)
                );
            }
        }
    }

    /// Output still on its way to a client is given its bounded time
    /// before Delete tears the container down.
    fn wait_drained(&self, id: &str) {
        let deadline = std::time::Instant::now() + crate::io::OutputDrain::LIMIT;
        loop {
            let draining = self.lock().containers.get(id).is_some_and(|c| {
                std::iter::once(&c.init)
                    .chain(c.execs.values())
                    .any(|p| p.draining)
            });
            if !draining || std::time::Instant::now() > deadline {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    pub(super) fn state(&self, req: StateRequest) -> Result<StateResponse, TaskError> {
        let inner = self.lock();
        let c = inner.get(&req.id)?;
        let p = inner.process(&req.id, &req.exec_id)?;
        let mut r = StateResponse::new();
        r.id = if req.exec_id.is_empty() {
            c.id.clone()
        } else {
            req.exec_id.clone()
        };
        r.exec_id = req.exec_id.clone();
        r.bundle = c.bundle.to_string_lossy().into_owned();
        r.pid = p.pid;
        r.status = match p.state {
            ProcState::Created => TaskStatus::CREATED,
            ProcState::Running if c.paused => TaskStatus::PAUSED,
            ProcState::Running => TaskStatus::RUNNING,
            ProcState::Stopped => TaskStatus::STOPPED,
        }
        .into();
        r.stdin = p.stdio.stdin.clone();
        r.stdout = p.stdio.stdout.clone();
        r.stderr = p.stdio.stderr.clone();
        r.terminal = p.stdio.terminal;
        if let Some((status, at)) = p.exit {
            r.exit_status = status;
            r.exited_at = Some(timestamp(at)).into();
        }
        Ok(r)
    }

    pub(super) fn wait(&self, req: WaitRequest, reply: Reply) {
        let mut inner = self.lock();
        let p = inner
            .containers
            .get_mut(&req.id)
            .and_then(|c| c.process_mut(&req.exec_id));
        let Some(p) = p else {
            drop(inner);
            let e = TaskError::not_found(format!("{} not found", label(&req.id, &req.exec_id)));
            return reply(Err(e.to_status()));
        };
        let exit = p.exit;
        let late = p.add_waiter(Box::new(move |status: u32, at: SystemTime| {
            let mut r = WaitResponse::new();
            r.exit_status = status;
            r.exited_at = Some(timestamp(at)).into();
            reply(
                r.write_to_bytes()
                    .map_err(|e| TaskError::internal(format!("Wait: {e}")).to_status()),
            );
        }));
        drop(inner);
        if let (Some(w), Some((status, at))) = (late, exit) {
            w(status, at);
        }
    }

    pub(super) fn pids(&self, req: PidsRequest) -> Result<PidsResponse, TaskError> {
        let (runtime, init_pid, created, execs) = {
            let inner = self.lock();
            let c = inner.get(&req.id)?;
            // An init that has exited, not yet deleted: its pid. containerd
            // 1.7+ takes a shim whose Pids is empty when it reloads its
            // shims (after a restart) for one whose task was never created,
            // and deletes it: a task that ended while containerd was away
            // would vanish with its exit status (it does under
            // containerd-shim-runc-v2). With the pid it shows as STOPPED.
            // (An exec created but never started has no process: pid 0.)
            if c.init.exit.is_some() && c.execs.values().all(|p| p.exit.is_some() || p.pid == 0) {
                let mut p = ProcessInfo::new();
                p.pid = c.init.pid;
                let mut r = PidsResponse::new();
                r.processes = vec![p];
                return Ok(r);
            }
            let execs: Vec<(u32, u32, String)> = c
                .execs
                .values()
                .filter(|p| p.pid != 0)
                .map(|p| (p.pid, p.internal_pid, p.exec_id.clone()))
                .collect();
            let created = c.init.state == ProcState::Created;
            (c.runtime.clone(), c.init.pid, created, execs)
        };
        let known: Vec<(u32, u32)> = execs
            .iter()
            .map(|(host, sandbox, _)| (*host, *sandbox))
            .collect();
        let pids = runtime.host_pids(self.runner.as_ref(), &req.id, init_pid, created, &known)?;
        let mut r = PidsResponse::new();
        r.processes = pids
            .into_iter()
            .map(|pid| {
                let mut p = ProcessInfo::new();
                p.pid = pid;
                // Like runc-v2: an exec's pid carries its exec id.
                if let Some((_, _, exec_id)) = execs.iter().find(|(host, _, _)| *host == pid) {
                    let mut details = ProcessDetails::new();
                    details.exec_id = exec_id.clone();
                    let mut any = Any::new();
                    any.type_url = "containerd.runc.v1.ProcessDetails".into();
                    any.value = details.write_to_bytes().unwrap_or_default();
                    p.info = Some(any).into();
                }
                p
            })
            .collect();
        Ok(r)
    }

    pub(super) fn close_io(&self, req: CloseIORequest) -> Result<Empty, TaskError> {
        let mut inner = self.lock();
        let p = inner
            .get_mut(&req.id)?
            .process_mut(&req.exec_id)
            .ok_or_else(|| {
                TaskError::not_found(format!("{} not found", label(&req.id, &req.exec_id)))
            })?;
        if req.stdin {
            p.held_io.close_stdin();
        }
        Ok(Empty::new())
    }

    pub(super) fn connect(&self, req: ConnectRequest) -> Result<ConnectResponse, TaskError> {
        let inner = self.lock();
        let mut r = ConnectResponse::new();
        r.shim_pid = std::process::id();
        r.task_pid = inner
            .containers
            .get(&req.id)
            .map(|c| c.init.pid)
            .unwrap_or(0);
        r.version = crate::VERSION.to_string();
        Ok(r)
    }

    pub(super) fn shutdown(&self, _req: ShutdownRequest) -> Result<Empty, TaskError> {
        if !self.idle() {
            log::debug!("shutdown ignored: containers remain");
        }
        Ok(Empty::new())
    }
}

/// A process can be started once: not while starting, running or after exit.
pub(super) fn check_startable(p: &Process, what: &str) -> Result<(), TaskError> {
    let why = match (p.state, p.starting) {
        (ProcState::Created, false) => return Ok(()),
        (ProcState::Created, true) => "is already starting",
        (ProcState::Running, _) => "is already running",
        (ProcState::Stopped, _) => "has already exited",
    };
    Err(TaskError::precondition(format!("{what} {why}")))
}

/// The error for signalling a process that is gone.
pub(super) fn finished(id: &str, exec_id: &str) -> TaskError {
    TaskError::not_found(format!("{}: process already finished", label(id, exec_id)))
}

pub(super) fn delete_response(pid: u32, status: u32, at: SystemTime) -> DeleteResponse {
    let mut resp = DeleteResponse::new();
    resp.pid = pid;
    resp.exit_status = status;
    resp.exited_at = Some(timestamp(at)).into();
    resp
}

/// The hardening report as containerd sees it: a ContainerUpdate of the
/// container whose labels say what the policy did, so a platform team can
/// follow every container's changes with `ctr events` or the events API
/// without reading shim logs.
fn hardening_event(
    id: &str,
    bundle: &str,
    report: &crate::harden::Report,
) -> containerd_shim_protos::events::container::ContainerUpdate {
    let mut ev = containerd_shim_protos::events::container::ContainerUpdate::new();
    ev.id = id.to_string();
    let labels = [
        ("level", report.level.name().to_string()),
        ("backend", report.backend.name().to_string()),
        ("changes", report.changes.len().to_string()),
        ("summary", report.summary()),
        (
            "report",
            std::path::Path::new(bundle)
                .join(crate::harden::bundle::REPORT_FILE)
                .display()
                .to_string(),
        ),
    ];
    ev.labels = labels
        .into_iter()
        .map(|(k, v)| (format!("io.nucleus.hardening.{k}"), v))
        .collect();
    ev
}
