//! Pause, Resume and Update of a running container.

use containerd_shim_protos::api::{
    CheckpointTaskRequest, Empty, PauseRequest, ResizePtyRequest, ResumeRequest, StatsRequest,
    StatsResponse, UpdateTaskRequest,
};
use containerd_shim_protos::events::task::{TaskCheckpointed, TaskPaused, TaskResumed};
use containerd_shim_protos::shim::oci::CheckpointOptions;
use containerd_shim_protos::topics;

use super::container::Container;
use super::error::TaskError;
use super::process::ProcState;
use super::service::TaskService;
use crate::cgroup::{self, stats};
use crate::harden::bundle::write_atomic;
use crate::runtime::{Backend, Runtime};

/// Largest LinuxResources JSON accepted by Update.
const MAX_RESOURCES: usize = 1 << 20;

fn running(c: &Container) -> Result<(), TaskError> {
    if c.init.state != ProcState::Running || c.init.exit.is_some() {
        return Err(TaskError::precondition(format!(
            "container {} is not running",
            c.id
        )));
    }
    Ok(())
}

impl TaskService {
    /// The runtime of a running container whose paused state is `paused`.
    fn runtime_if(&self, id: &str, paused: bool) -> Result<Runtime, TaskError> {
        let inner = self.lock();
        let c = inner.get(id)?;
        running(c)?;
        if c.paused != paused {
            let why = if paused {
                "is not paused"
            } else {
                "is already paused"
            };
            return Err(TaskError::precondition(format!("container {id} {why}")));
        }
        Ok(c.runtime.clone())
    }

    pub(super) fn pause(&self, req: PauseRequest) -> Result<Empty, TaskError> {
        let runtime = self.runtime_if(&req.id, false)?;
        runtime.pause(self.runner.as_ref(), &req.id)?;
        if let Ok(c) = self.lock().get_mut(&req.id) {
            c.paused = true;
        }
        let mut ev = TaskPaused::new();
        ev.container_id = req.id.clone();
        self.events.publish(topics::TASK_PAUSED_EVENT_TOPIC, &ev);
        log::info!("container {}: paused", req.id);
        Ok(Empty::new())
    }

    pub(super) fn resume(&self, req: ResumeRequest) -> Result<Empty, TaskError> {
        let runtime = self.runtime_if(&req.id, true)?;
        runtime.resume(self.runner.as_ref(), &req.id)?;
        if let Ok(c) = self.lock().get_mut(&req.id) {
            c.paused = false;
        }
        let mut ev = TaskResumed::new();
        ev.container_id = req.id.clone();
        self.events.publish(topics::TASK_RESUMED_EVENT_TOPIC, &ev);
        log::info!("container {}: resumed", req.id);
        Ok(Empty::new())
    }

    /// Applies a JSON `LinuxResources` through the runtime's `update`, after
    /// the policy: device rules cannot be changed and the pids limit stays.
    pub(super) fn update(&self, req: UpdateTaskRequest) -> Result<Empty, TaskError> {
        let what = format!("container {}", req.id);
        let body = req
            .resources
            .as_ref()
            .map(|a| a.value.as_slice())
            .unwrap_or_default();
        if body.len() > MAX_RESOURCES {
            return Err(TaskError::invalid(format!(
                "{what}: resources of {} bytes exceed {MAX_RESOURCES}",
                body.len()
            )));
        }
        let mut resources: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| TaskError::invalid(format!("{what}: resources: malformed JSON: {e}")))?;
        let (runtime, rules, bundle, cgroup) = {
            let inner = self.lock();
            let c = inner.get(&req.id)?;
            // A created task takes its limits too, before it starts (as
            // containerd-shim-runc-v2 allows); an exited one has none.
            if c.init.state == ProcState::Stopped || c.init.exit.is_some() {
                return Err(TaskError::precondition(format!(
                    "container {} has exited: nothing to update",
                    c.id
                )));
            }
            (
                c.runtime.clone(),
                c.exec_rules.clone(),
                c.bundle.clone(),
                c.cgroup.clone(),
            )
        };
        let report = rules
            .apply_update(&mut resources, runtime.backend)
            .map_err(|e| TaskError::invalid(format!("{what}: {e}")))?;
        if !report.changes.is_empty() {
            log::info!("{what}: update {}", report.summary());
        }
        if runtime.backend == Backend::Runsc {
            // runsc has no `update`: its sandbox lives in the spec's cgroup.
            let cg = cgroup.ok_or_else(|| {
                TaskError::precondition(format!(
                    "{what}: no cgroup to update (the spec has no cgroupsPath)"
                ))
            })?;
            cg.apply(&resources)
                .map_err(|e| TaskError::internal(format!("{what}: {e}")))?;
            log::info!("{what}: resources updated in its cgroup");
            return Ok(Empty::new());
        }
        let name = ".update-resources.json";
        let data = serde_json::to_vec(&resources)
            .map_err(|e| TaskError::internal(format!("{what}: {e}")))?;
        write_atomic(&bundle, name, &data)
            .map_err(|e| TaskError::internal(format!("{what}: {e}")))?;
        let result = runtime.update(self.runner.as_ref(), &req.id, &bundle.join(name));
        let _ = std::fs::remove_file(bundle.join(name));
        result?;
        log::info!("{what}: resources updated");
        Ok(Empty::new())
    }

    /// Statistics from the container's cgroup files. On runsc that is the
    /// cgroup of the sandbox the container owns; a container joining a pod's
    /// sandbox has no host cgroup of its own, so gVisor's accounting
    /// (`events --stats`) is reported for it.
    pub(super) fn stats(&self, req: StatsRequest) -> Result<StatsResponse, TaskError> {
        let what = format!("container {}", req.id);
        let (runtime, cgroup, owns_sandbox) = {
            let inner = self.lock();
            let c = inner.get(&req.id)?;
            (c.runtime.clone(), c.cgroup.clone(), c.init.exits_with_pid)
        };
        let runsc = runtime.backend == Backend::Runsc;
        let any = match cgroup {
            Some(cg) if !runsc || (owns_sandbox && cg.exists()) => cg.metrics(),
            limits if runsc => {
                let json = runtime.stats(self.runner.as_ref(), &req.id)?;
                stats::from_runtime_stats(&json, cgroup::host_unified(), limits.as_ref())
            }
            _ => {
                return Err(TaskError::precondition(format!(
                    "{what}: no cgroup (the spec has no cgroupsPath)"
                )))
            }
        }
        .map_err(|e| TaskError::internal(format!("{what}: {e}")))?;
        let mut resp = StatsResponse::new();
        resp.stats = Some(any).into();
        Ok(resp)
    }

    /// Resizes the terminal of a `terminal: true` process.
    pub(super) fn resize_pty(&self, req: ResizePtyRequest) -> Result<Empty, TaskError> {
        let inner = self.lock();
        let p = inner.process(&req.id, &req.exec_id)?;
        let what = super::exits::label(&req.id, &req.exec_id);
        let console = p
            .held_io
            .console
            .as_ref()
            .ok_or_else(|| TaskError::precondition(format!("{what} has no terminal")))?;
        console
            .resize(req.width, req.height)
            .map_err(|e| TaskError::internal(format!("{what}: {e}")))?;
        Ok(Empty::new())
    }

    /// Checkpoint through runc or crun with CRIU; on runsc, and where CRIU
    /// or the runtime's checkpoint command is missing, Unimplemented with
    /// the reason.
    pub(super) fn checkpoint(&self, req: CheckpointTaskRequest) -> Result<Empty, TaskError> {
        let what = format!("container {}", req.id);
        let (runtime, bundle, fifo_stdio) = {
            let inner = self.lock();
            let c = inner.get(&req.id)?;
            running(c)?;
            let fifo_stdio =
                !c.copy_stdio && !c.init.stdio.terminal && !c.init.stdio.stdout.is_empty();
            (c.runtime.clone(), c.bundle.clone(), fifo_stdio)
        };
        if runtime.backend == Backend::Runsc {
            return Err(TaskError::unimplemented(format!(
                "{what}: checkpoint is not supported on runsc by this shim (runsc's experimental \
                 checkpoint is not the CRIU image containerd expects)"
            )));
        }
        if crate::config::find_binary("criu", std::env::var("PATH").ok().as_deref()).is_none() {
            return Err(TaskError::unimplemented(format!(
                "{what}: checkpoint needs CRIU, and criu is not on PATH"
            )));
        }
        let opts = match req.options.as_ref().filter(|a| !a.value.is_empty()) {
            Some(any) => crate::wire::decode_message::<CheckpointOptions>(&any.value)
                .map_err(|e| TaskError::invalid(format!("{what}: checkpoint options: {e}")))?,
            None => CheckpointOptions::new(),
        };
        let image = if opts.image_path.is_empty() {
            req.path.clone()
        } else {
            opts.image_path.clone()
        };
        if image.is_empty() {
            return Err(TaskError::invalid(format!(
                "{what}: checkpoint needs an image path"
            )));
        }
        let work = if opts.work_path.is_empty() {
            bundle.join("criu-work")
        } else {
            std::path::PathBuf::from(&opts.work_path)
        };
        let _ = std::fs::create_dir_all(&work);
        let mut extra = Vec::new();
        for (on, flag) in [
            (opts.open_tcp, "--tcp-established"),
            (opts.external_unix_sockets, "--ext-unix-sk"),
            (opts.terminal, "--shell-job"),
            (opts.file_locks, "--file-locks"),
        ] {
            if on {
                extra.push(flag);
            }
        }
        let result = runtime.checkpoint(
            self.runner.as_ref(),
            &req.id,
            std::path::Path::new(&image),
            &work,
            !opts.exit,
            &extra,
        );
        if let Err(e) = result {
            if e.message.contains("unknown command") {
                return Err(TaskError::unimplemented(format!(
                    "{what}: {} on this host has no checkpoint command (built without CRIU)",
                    runtime.backend.name()
                )));
            }
            let named = e.to_string().contains("log file");
            let log = work.join("dump.log");
            let mut msg = if named || !log.exists() {
                format!("{what}: {e}")
            } else {
                format!("{what}: {e} (CRIU's log: {})", log.display())
            };
            if fifo_stdio {
                msg.push_str(
                    "; its output goes straight into containerd's FIFOs, which CRIU cannot dump: \
                     set stdio = \"copy\" in the runtime's nucleus.toml",
                );
            }
            return Err(TaskError::internal(msg));
        }
        let mut ev = TaskCheckpointed::new();
        ev.container_id = req.id.clone();
        ev.checkpoint = image.clone();
        self.events
            .publish(topics::TASK_CHECKPOINTED_EVENT_TOPIC, &ev);
        log::info!("{what}: checkpointed to {image}");
        Ok(Empty::new())
    }
}
