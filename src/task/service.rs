//! RPC handlers of the Task service.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::SystemTime;

use containerd_shim_protos::api::{
    CloseIORequest, ConnectRequest, ConnectResponse, CreateTaskRequest, CreateTaskResponse,
    DeleteRequest, DeleteResponse, Empty, KillRequest, PidsRequest, PidsResponse, ProcessInfo,
    ShutdownRequest, StartRequest, StartResponse, StateRequest, StateResponse,
    Status as TaskStatus, WaitRequest, WaitResponse,
};
use containerd_shim_protos::events::task::{TaskCreate, TaskDelete, TaskExit, TaskIO, TaskStart};
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::topics;

use super::container::{self, Container};
use super::error::TaskError;
use super::process::{ProcState, Process, Waiter};
use super::Reply;
use crate::events::{timestamp, Publisher};
use crate::reaper::Exit;
use crate::runtime::CommandRunner;

/// Exits of pids no process claimed yet (bounded).
const MAX_UNCLAIMED: usize = 1024;
/// Exit status reported for a process the shim had to kill (128 + SIGKILL).
const KILLED: u32 = 137;

#[derive(Default)]
struct Inner {
    containers: HashMap<String, Container>,
    /// Ids with a Create in flight.
    creating: HashSet<String>,
    unclaimed: VecDeque<Exit>,
}

/// The Task service of one shim process.
pub struct TaskService {
    namespace: String,
    runner: Arc<dyn CommandRunner>,
    events: Publisher,
    inner: Mutex<Inner>,
    on_exit: Box<dyn Fn() + Send + Sync>,
    /// Itself, for threads that report an exit later.
    me: Weak<TaskService>,
}

fn exec_unsupported(id: &str, exec_id: &str) -> TaskError {
    TaskError::not_found(format!(
        "container {id}: exec process {exec_id:?} not found"
    ))
}

fn not_found(id: &str) -> TaskError {
    TaskError::not_found(format!("container {id} not found"))
}

impl Inner {
    fn get(&self, id: &str) -> Result<&Container, TaskError> {
        self.containers.get(id).ok_or_else(|| not_found(id))
    }

    fn get_mut(&mut self, id: &str) -> Result<&mut Container, TaskError> {
        self.containers.get_mut(id).ok_or_else(|| not_found(id))
    }
}

fn answer(waiters: Vec<Waiter>, status: u32, at: SystemTime) {
    for w in waiters {
        w(status, at);
    }
}

impl TaskService {
    /// `on_exit` is called once the shim may exit (after an accepted Shutdown).
    pub fn new(
        namespace: &str,
        runner: Arc<dyn CommandRunner>,
        events: Publisher,
        on_exit: Box<dyn Fn() + Send + Sync>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| TaskService {
            namespace: namespace.to_string(),
            runner,
            events,
            inner: Mutex::new(Inner::default()),
            on_exit,
            me: me.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// No container is served or being created.
    pub fn idle(&self) -> bool {
        let inner = self.lock();
        inner.containers.is_empty() && inner.creating.is_empty()
    }

    pub(super) fn request_exit(&self) {
        (self.on_exit)();
    }

    /// Marks a process exited and publishes TaskExit, unless a Start is in
    /// flight for it (then TaskStart goes first). Unknown pids are kept for
    /// a Create that has not read its pid file yet.
    pub fn process_exited(&self, exit: Exit) {
        let at = SystemTime::now();
        let status = exit.status as u32;
        let mut inner = self.lock();
        let found = inner.containers.values_mut().find_map(|c| {
            let id = c.id.clone();
            std::iter::once(&mut c.init)
                .chain(c.execs.values_mut())
                .find(|p| p.pid as i32 == exit.pid && p.exit.is_none())
                .map(|p| (id, p))
        });
        match found {
            Some((_, p)) if p.starting => p.pending_exit = Some((status, at)),
            Some((id, p)) => {
                let waiters = self.apply_exit(&id, p, status, at);
                drop(inner);
                answer(waiters, status, at);
            }
            None => {
                if inner.unclaimed.len() >= MAX_UNCLAIMED {
                    inner.unclaimed.pop_front();
                }
                inner.unclaimed.push_back(exit);
            }
        }
    }

    /// Records an exit and reports it (call with the lock held): at once when
    /// the output FIFOs are empty, else from a thread once clients drained
    /// them. Returns the Waits to answer now.
    fn apply_exit(&self, id: &str, p: &mut Process, status: u32, at: SystemTime) -> Vec<Waiter> {
        if !p.set_exited(status, at) {
            return Vec::new();
        }
        log::info!(
            "container {id}: process {} exited with status {status}",
            p.pid
        );
        let Some(drain) = p.held_io.unread_output() else {
            return self.report_exit(id, p);
        };
        let (me, id2, exec_id, pid) = (self.me.clone(), id.to_string(), p.exec_id.clone(), p.pid);
        let spawned = std::thread::Builder::new()
            .name("drain".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let left = drain.wait();
                if left > 0 {
                    log::warn!(
                        "container {id2}: {left} bytes of output were not read by any client"
                    );
                }
                if let Some(service) = me.upgrade() {
                    service.report_drained(&id2, &exec_id, pid);
                }
            });
        match spawned {
            Ok(_) => Vec::new(),
            Err(_) => self.report_exit(id, p),
        }
    }

    /// Publishes TaskExit for a recorded, unreported exit; returns the Waits
    /// to answer (call with the lock held).
    fn report_exit(&self, id: &str, p: &mut Process) -> Vec<Waiter> {
        let (Some((status, at)), Some(waiters)) = (p.exit, p.take_report()) else {
            return Vec::new();
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
        waiters
    }

    /// Reports an exit whose output has drained, unless Delete did already.
    fn report_drained(&self, id: &str, exec_id: &str, pid: u32) {
        let mut inner = self.lock();
        let Some(c) = inner.containers.get_mut(id) else {
            return;
        };
        let p = std::iter::once(&mut c.init)
            .chain(c.execs.values_mut())
            .find(|p| p.exec_id == exec_id && p.pid == pid);
        let Some(p) = p else {
            return;
        };
        let exit = p.exit;
        let waiters = self.report_exit(id, p);
        drop(inner);
        if let Some((status, at)) = exit {
            answer(waiters, status, at);
        }
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
        let created = container::create(&req, &self.namespace, self.runner.as_ref());
        let mut inner = self.lock();
        inner.creating.remove(&req.id);
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
        log::info!("container {}: created, pid {pid}", req.id);
        let early = inner.unclaimed.iter().position(|e| e.pid == pid as i32);
        if let Some(e) = early.and_then(|i| inner.unclaimed.remove(i)) {
            // Died before Start: recorded now, no Wait can be pending yet.
            let waiters = self.apply_exit(&req.id, &mut c.init, e.status as u32, SystemTime::now());
            debug_assert!(waiters.is_empty());
        }
        inner.containers.insert(req.id.clone(), c);
        drop(inner);
        let mut resp = CreateTaskResponse::new();
        resp.pid = pid;
        Ok(resp)
    }

    pub(super) fn start(&self, req: StartRequest) -> Result<StartResponse, TaskError> {
        if !req.exec_id.is_empty() {
            return Err(exec_unsupported(&req.id, &req.exec_id));
        }
        let runtime = {
            let mut inner = self.lock();
            let c = inner.get_mut(&req.id)?;
            match (c.init.state, c.init.starting) {
                (ProcState::Created, false) => c.init.starting = true,
                (ProcState::Created, true) => {
                    return Err(TaskError::precondition(format!(
                        "container {} is already starting",
                        req.id
                    )))
                }
                (ProcState::Running, _) => {
                    return Err(TaskError::precondition(format!(
                        "container {} is already running",
                        req.id
                    )))
                }
                (ProcState::Stopped, _) => {
                    return Err(TaskError::precondition(format!(
                        "container {} has already exited",
                        req.id
                    )))
                }
            }
            c.runtime.clone()
        };
        let result = runtime.start(self.runner.as_ref(), &req.id);
        if result.is_err() {
            // A container whose start failed can do nothing useful: end it now
            // (runsc would otherwise keep its sandbox for a while).
            let _ = runtime.kill(self.runner.as_ref(), &req.id, libc::SIGKILL as u32, true);
        }
        let mut inner = self.lock();
        let c = inner.containers.get_mut(&req.id).ok_or_else(|| {
            TaskError::not_found(format!("container {} was deleted while starting", req.id))
        })?;
        let p = &mut c.init;
        p.starting = false;
        let pid = p.pid;
        if result.is_ok() {
            p.state = ProcState::Running;
            let mut ev = TaskStart::new();
            ev.container_id = req.id.clone();
            ev.pid = pid;
            self.events.publish(topics::TASK_START_EVENT_TOPIC, &ev);
            log::info!("container {}: started", req.id);
        }
        let pending = p.pending_exit.take();
        let waiters =
            pending.map(|(status, at)| (self.apply_exit(&req.id, p, status, at), status, at));
        drop(inner);
        if let Some((w, status, at)) = waiters {
            answer(w, status, at);
        }
        result?;
        let mut resp = StartResponse::new();
        resp.pid = pid;
        Ok(resp)
    }

    pub(super) fn kill(&self, req: KillRequest) -> Result<Empty, TaskError> {
        if !req.exec_id.is_empty() {
            return Err(exec_unsupported(&req.id, &req.exec_id));
        }
        let runtime = {
            let inner = self.lock();
            let c = inner.get(&req.id)?;
            if c.init.exit.is_some() && !req.all {
                return Err(TaskError::not_found(format!(
                    "container {}: process already finished",
                    req.id
                )));
            }
            c.runtime.clone()
        };
        log::info!(
            "container {}: kill signal {} all={}",
            req.id,
            req.signal,
            req.all
        );
        match runtime.kill(self.runner.as_ref(), &req.id, req.signal, req.all) {
            Ok(()) => Ok(Empty::new()),
            Err(e) => {
                let finished = self
                    .lock()
                    .containers
                    .get(&req.id)
                    .is_some_and(|c| c.init.exit.is_some());
                if finished || e.not_found {
                    Err(TaskError::not_found(format!(
                        "container {}: process already finished",
                        req.id
                    )))
                } else {
                    Err(e.into())
                }
            }
        }
    }

    pub(super) fn delete(&self, req: DeleteRequest) -> Result<DeleteResponse, TaskError> {
        if !req.exec_id.is_empty() {
            return Err(exec_unsupported(&req.id, &req.exec_id));
        }
        let c = {
            let mut inner = self.lock();
            let c = inner.get(&req.id)?;
            if c.init.state == ProcState::Running || c.init.starting {
                return Err(TaskError::precondition(format!(
                    "container {}: cannot delete a running process",
                    req.id
                )));
            }
            inner
                .containers
                .remove(&req.id)
                .ok_or_else(|| TaskError::not_found(req.id.clone()))?
        };
        if let Err(e) = c.destroy(self.runner.as_ref()) {
            self.lock().containers.insert(req.id.clone(), c);
            return Err(e);
        }
        let mut c = c;
        let (status, at) = match c.init.exit {
            Some(exit) => {
                // TaskExit goes before TaskDelete, even while output drains.
                let waiters = self.report_exit(&req.id, &mut c.init);
                answer(waiters, exit.0, exit.1);
                exit
            }
            None => {
                // Deleted before it ever ran: the runtime killed it.
                let at = SystemTime::now();
                c.init.set_exited(KILLED, at);
                answer(c.init.take_report().unwrap_or_default(), KILLED, at);
                (KILLED, at)
            }
        };
        let mut ev = TaskDelete::new();
        ev.container_id = req.id.clone();
        ev.id = req.id.clone();
        ev.pid = c.init.pid;
        ev.exit_status = status;
        ev.exited_at = Some(timestamp(at)).into();
        self.events.publish(topics::TASK_DELETE_EVENT_TOPIC, &ev);
        log::info!("container {}: deleted", req.id);
        let mut resp = DeleteResponse::new();
        resp.pid = c.init.pid;
        resp.exit_status = status;
        resp.exited_at = Some(timestamp(at)).into();
        Ok(resp)
    }

    pub(super) fn state(&self, req: StateRequest) -> Result<StateResponse, TaskError> {
        if !req.exec_id.is_empty() {
            return Err(exec_unsupported(&req.id, &req.exec_id));
        }
        let inner = self.lock();
        let c = inner.get(&req.id)?;
        let p = &c.init;
        let mut r = StateResponse::new();
        r.id = c.id.clone();
        r.bundle = c.bundle.to_string_lossy().into_owned();
        r.pid = p.pid;
        r.status = match p.state {
            ProcState::Created => TaskStatus::CREATED,
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
        if !req.exec_id.is_empty() {
            return reply(Err(exec_unsupported(&req.id, &req.exec_id).to_status()));
        }
        let mut inner = self.lock();
        let Some(c) = inner.containers.get_mut(&req.id) else {
            drop(inner);
            return reply(Err(TaskError::not_found(format!(
                "container {} not found",
                req.id
            ))
            .to_status()));
        };
        let exit = c.init.exit;
        let late = c
            .init
            .add_waiter(Box::new(move |status: u32, at: SystemTime| {
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
        let runtime = {
            let inner = self.lock();
            inner.get(&req.id)?.runtime.clone()
        };
        let pids = runtime.ps(self.runner.as_ref(), &req.id)?;
        let mut r = PidsResponse::new();
        r.processes = pids
            .into_iter()
            .map(|pid| {
                let mut p = ProcessInfo::new();
                p.pid = pid;
                p
            })
            .collect();
        Ok(r)
    }

    pub(super) fn close_io(&self, req: CloseIORequest) -> Result<Empty, TaskError> {
        if !req.exec_id.is_empty() {
            return Err(exec_unsupported(&req.id, &req.exec_id));
        }
        let mut inner = self.lock();
        let c = inner.get_mut(&req.id)?;
        if req.stdin {
            c.init.held_io.close_stdin();
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
