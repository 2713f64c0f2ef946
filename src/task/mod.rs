//! The Task service: RPC handlers over a map of containers keyed by id (one
//! shim may serve a whole pod), the process state machine, and the rules
//! that keep events in order.

mod container;
mod control;
mod error;
mod exec;
mod exits;
mod process;
mod service;

pub use container::START_OPTIONS_FILE;
pub use error::TaskError;
pub use service::TaskService;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::ttrpc::Status;

/// Answers one RPC: the encoded response or an error status.
pub type Reply = Box<dyn FnOnce(Result<Vec<u8>, Status>) + Send>;

/// Decodes a request, runs the handler (a panic becomes an Internal error,
/// never a dead shim) and encodes the response.
fn call<Req, Resp>(
    method: &str,
    payload: &[u8],
    handler: impl FnOnce(Req) -> Result<Resp, TaskError>,
) -> Result<Vec<u8>, Status>
where
    Req: Message,
    Resp: Message,
{
    let req = crate::wire::decode_message::<Req>(payload)
        .map_err(|e| TaskError::invalid(format!("{method}: malformed request: {e}")).to_status())?;
    match catch_unwind(AssertUnwindSafe(|| handler(req))) {
        Ok(Ok(resp)) => resp.write_to_bytes().map_err(|e| {
            TaskError::internal(format!("{method}: encoding response: {e}")).to_status()
        }),
        Ok(Err(e)) => {
            log::warn!("{method}: {e}");
            Err(e.to_status())
        }
        Err(_) => {
            log::error!("{method}: handler panicked");
            Err(TaskError::internal(format!("{method}: internal error in the shim")).to_status())
        }
    }
}

/// Runs `f` on a short-lived thread; idle shims keep no worker threads.
fn spawn(method: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("rpc-{method}"))
        .stack_size(256 * 1024)
        .spawn(f)
        .map(drop)
}

impl TaskService {
    /// Serves one Task RPC. Fast methods answer inline; methods that run the
    /// runtime CLI run on their own thread; Wait answers when the process exits.
    pub fn dispatch(self: &Arc<Self>, method: &str, payload: Vec<u8>, reply: Reply) {
        let s = self.clone();
        match method {
            "State" => reply(call(method, &payload, |r| s.state(r))),
            "Connect" => reply(call(method, &payload, |r| s.connect(r))),
            "Shutdown" => {
                let shut = call(method, &payload, |r| s.shutdown(r));
                let exiting = shut.is_ok() && s.idle();
                reply(shut);
                if exiting {
                    s.request_exit();
                }
            }
            "CloseIO" => reply(call(method, &payload, |r| s.close_io(r))),
            "Exec" => reply(call(method, &payload, |r| s.exec(r))),
            "ResizePty" => reply(call(method, &payload, |r| s.resize_pty(r))),
            "Wait" => {
                let req = crate::wire::decode_message::<containerd_shim_protos::api::WaitRequest>(
                    &payload,
                );
                match req {
                    Ok(req) => s.wait(req, reply),
                    Err(e) => reply(Err(TaskError::invalid(format!(
                        "Wait: malformed request: {e}"
                    ))
                    .to_status())),
                }
            }
            "Create" | "Start" | "Delete" | "Kill" | "Pids" | "Pause" | "Resume" | "Update"
            | "Stats" | "Checkpoint" => {
                let m = method.to_string();
                let slot = Arc::new(std::sync::Mutex::new(Some(reply)));
                let worker_slot = slot.clone();
                let creating = method == "Create";
                if creating {
                    self.create_dispatched();
                }
                let s2 = self.clone();
                let spawned = spawn(method, move || {
                    let result = match m.as_str() {
                        "Create" => call(&m, &payload, |r| s.create(r)),
                        "Start" => call(&m, &payload, |r| s.start(r)),
                        "Delete" => call(&m, &payload, |r| s.delete(r)),
                        "Kill" => call(&m, &payload, |r| s.kill(r)),
                        "Pause" => call(&m, &payload, |r| s.pause(r)),
                        "Resume" => call(&m, &payload, |r| s.resume(r)),
                        "Update" => call(&m, &payload, |r| s.update(r)),
                        "Stats" => call(&m, &payload, |r| s.stats(r)),
                        "Checkpoint" => call(&m, &payload, |r| s.checkpoint(r)),
                        _ => call(&m, &payload, |r| s.pids(r)),
                    };
                    if m == "Create" {
                        // Done before containerd hears of it: after a failed
                        // Create it sends Delete and Shutdown at once, and a
                        // Shutdown that still saw this Create in flight was
                        // ignored, leaving the shim and its socket.
                        s2.create_done();
                    }
                    let reply = worker_slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                    if let Some(reply) = reply {
                        reply(result);
                    }
                    if m == "Create" {
                        // The spec's JSON tree and the runtime's output were
                        // freed: hand the pages back, the shim idles for hours.
                        // SAFETY: malloc_trim only releases free heap memory.
                        unsafe { libc::malloc_trim(0) };
                    }
                });
                if spawned.is_err() && creating {
                    self.create_done();
                }
                if let Err(e) = spawned {
                    let reply = slot.lock().unwrap_or_else(|p| p.into_inner()).take();
                    if let Some(reply) = reply {
                        reply(Err(TaskError::internal(format!(
                            "{method}: cannot start a thread: {e}"
                        ))
                        .to_status()));
                    }
                }
            }
            other => reply(Err(TaskError::unimplemented(format!(
                "{other} is not implemented by containerd-shim-nucleus-v1 {}",
                crate::VERSION
            ))
            .to_status())),
        }
    }
}
