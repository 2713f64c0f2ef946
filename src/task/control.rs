//! Pause, Resume and Update of a running container.

use containerd_shim_protos::api::{Empty, PauseRequest, ResumeRequest, UpdateTaskRequest};
use containerd_shim_protos::events::task::{TaskPaused, TaskResumed};
use containerd_shim_protos::topics;

use super::container::Container;
use super::error::TaskError;
use super::process::ProcState;
use super::service::TaskService;
use crate::harden::bundle::write_atomic;
use crate::runtime::Runtime;

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
        let (runtime, rules, bundle) = {
            let inner = self.lock();
            let c = inner.get(&req.id)?;
            running(c)?;
            (c.runtime.clone(), c.exec_rules.clone(), c.bundle.clone())
        };
        let report = rules
            .apply_update(&mut resources, runtime.backend)
            .map_err(|e| TaskError::invalid(format!("{what}: {e}")))?;
        if !report.changes.is_empty() {
            log::info!("{what}: update {}", report.summary());
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
}
