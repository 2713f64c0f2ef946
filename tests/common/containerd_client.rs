//! containerd's own gRPC API (the containerd-client crate) over its unix
//! socket, as containerd's Go client, nerdctl, Docker and the CRI plugin
//! reach the tasks a shim serves: the namespace travels in the
//! `containerd-namespace` metadata header.
#![allow(dead_code)]

use std::time::Duration;

use ::containerd_client::services::v1::containers_client::ContainersClient;
use ::containerd_client::services::v1::tasks_client::TasksClient;
use ::containerd_client::services::v1::{
    CheckpointTaskRequest, CloseIoRequest, CreateContainerRequest, CreateTaskRequest,
    DeleteContainerRequest, DeleteProcessRequest, DeleteTaskRequest, ExecProcessRequest,
    GetContainerRequest, ListPidsRequest, StartRequest, UpdateTaskRequest, WaitRequest,
};
use ::containerd_client::tonic::transport::Channel;
use ::containerd_client::tonic::{Code, Request, Status};

/// The type URL containerd's Go client (typeurl) gives a `specs.LinuxResources`.
pub const LINUX_RESOURCES: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

/// How long one call may take before it fails with DeadlineExceeded.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a Wait may take (a process's whole life).
const WAIT_TIMEOUT: Duration = Duration::from_secs(600);

/// A request to containerd in `namespace`.
fn in_namespace<T>(namespace: &str, message: T) -> Result<Request<T>, Status> {
    in_namespace_within(namespace, message, CALL_TIMEOUT)
}

/// [`in_namespace`] with its own timeout.
fn in_namespace_within<T>(
    namespace: &str,
    message: T,
    timeout: Duration,
) -> Result<Request<T>, Status> {
    let mut req = Request::new(message);
    let ns = namespace
        .parse()
        .map_err(|e| Status::invalid_argument(format!("namespace {namespace:?}: {e}")))?;
    req.metadata_mut().insert("containerd-namespace", ns);
    req.set_timeout(timeout);
    Ok(req)
}

/// A Tasks/Create request for container `id` with the given stdio.
fn task_request(id: &str, stdout: &str, stderr: &str) -> CreateTaskRequest {
    CreateTaskRequest {
        container_id: id.to_string(),
        stdout: stdout.to_string(),
        stderr: stderr.to_string(),
        ..Default::default()
    }
}

/// `containerd.services.tasks.v1.Tasks/Update` on task `id` of the containerd
/// at `address` (a unix socket path), in `namespace`, with `resources` as the
/// Go client's `task.Update(ctx, WithResources(r))` sends it: an Any of
/// [`LINUX_RESOURCES`] holding the JSON. containerd's status comes back
/// as it is (code and message), a failed connection as Unavailable.
pub fn update_task(
    address: &str,
    namespace: &str,
    id: &str,
    resources: &[u8],
) -> Result<(), Status> {
    Containerd::connect(address, namespace)?.update(id, resources)
}

/// The process spec type URL containerd's Go client gives an exec's spec.
pub const PROCESS_SPEC: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// containerd's Tasks and Containers services, called the way its Go
/// client calls them, for what ctr cannot ask: a task created and not
/// started, an exec whose request and spec disagree on the terminal, Update,
/// runc options for a runtime other than runc.v2.
pub struct Containerd {
    runtime: tokio::runtime::Runtime,
    channel: Channel,
    namespace: String,
}

/// What containerd answered to Delete of a task or process.
#[derive(Debug)]
pub struct Deleted {
    pub pid: u32,
    pub exit_status: u32,
}

impl Containerd {
    /// Connects to the containerd at `address` (a unix socket path).
    pub fn connect(address: &str, namespace: &str) -> Result<Containerd, Status> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a tokio runtime");
        let channel = runtime
            .block_on(::containerd_client::connect(address))
            .map_err(|e| Status::new(Code::Unavailable, format!("connecting to {address}: {e}")))?;
        Ok(Containerd {
            runtime,
            channel,
            namespace: namespace.to_string(),
        })
    }

    fn client(&self) -> TasksClient<Channel> {
        TasksClient::new(self.channel.clone())
    }

    /// Creates the task of container `id` (a container whose spec names its
    /// rootfs, as `ctr containers create --rootfs` makes) with the given stdio.
    pub fn create(&self, id: &str, stdout: &str, stderr: &str) -> Result<u32, Status> {
        self.create_with_options(id, stdout, stderr, None)
    }

    /// [`Containerd::create`] with task options (`type_url`, encoded value),
    /// as the Go client's `NewTask(.., WithShimCgroup(..))` sends them.
    pub fn create_with_options(
        &self,
        id: &str,
        stdout: &str,
        stderr: &str,
        options: Option<(&str, Vec<u8>)>,
    ) -> Result<u32, Status> {
        let mut message = task_request(id, stdout, stderr);
        if let Some((type_url, value)) = options {
            let mut any = message.options.take().unwrap_or_default();
            any.type_url = type_url.to_string();
            any.value = value;
            message.options = Some(any);
        }
        self.create_task(message)
    }

    /// Sends Tasks/Create; the task's pid.
    fn create_task(&self, message: CreateTaskRequest) -> Result<u32, Status> {
        let req = in_namespace(&self.namespace, message)?;
        self.runtime
            .block_on(self.client().create(req))
            .map(|r| r.into_inner().pid)
    }

    /// Creates the task of container `id` on a read-only overlay of `layers`
    /// (top first; what containerd sends for a snapshot view of an image of
    /// several layers: no upper dir, so the filesystem itself is read-only;
    /// the spec's root is the bundle's `rootfs`), with the given stdio.
    pub fn create_on_read_only_rootfs(
        &self,
        id: &str,
        layers: &[&str],
        stdout: &str,
        stderr: &str,
    ) -> Result<u32, Status> {
        self.create_task(CreateTaskRequest {
            rootfs: vec![::containerd_client::types::Mount {
                r#type: "overlay".to_string(),
                source: "overlay".to_string(),
                options: vec![format!("lowerdir={}", layers.join(":"))],
                ..Default::default()
            }],
            ..task_request(id, stdout, stderr)
        })
    }

    /// Creates the task of container `id` (on its overlayfs snapshot `id`)
    /// restored from the CRIU layer `(media type, digest, size)` of a
    /// checkpoint image, with the given stdio: what the Go client's
    /// `NewTask(.., WithTaskCheckpoint(image))` sends.
    pub fn create_from_checkpoint(
        &self,
        id: &str,
        criu_layer: (&str, &str, i64),
        stdout: &str,
        stderr: &str,
    ) -> Result<u32, Status> {
        let (media_type, digest, size) = criu_layer;
        // The container's snapshot (ctr names it after the container), as
        // the Go client sends its mounts with every NewTask.
        let mounts_req = in_namespace(
            &self.namespace,
            ::containerd_client::services::v1::snapshots::MountsRequest {
                snapshotter: "overlayfs".to_string(),
                key: id.to_string(),
            },
        )?;
        let rootfs = self
            .runtime
            .block_on(
                ::containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient::new(
                    self.channel.clone(),
                )
                .mounts(mounts_req),
            )?
            .into_inner()
            .mounts;
        self.create_task(CreateTaskRequest {
            rootfs,
            checkpoint: Some(::containerd_client::types::Descriptor {
                media_type: media_type.to_string(),
                digest: digest.to_string(),
                size,
                ..Default::default()
            }),
            ..task_request(id, stdout, stderr)
        })
    }

    /// Starts the init (`exec_id` empty) or an exec.
    pub fn start(&self, id: &str, exec_id: &str) -> Result<u32, Status> {
        let message = StartRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
        };
        let req = in_namespace(&self.namespace, message)?;
        self.runtime
            .block_on(self.client().start(req))
            .map(|r| r.into_inner().pid)
    }

    /// Adds exec `exec_id` running `spec` (an OCI process as JSON).
    pub fn exec(
        &self,
        id: &str,
        exec_id: &str,
        spec: &serde_json::Value,
        terminal: bool,
        stdout: &str,
    ) -> Result<(), Status> {
        self.exec_with_stdin(id, exec_id, spec, terminal, "", stdout)
    }

    /// [`Containerd::exec`] with a stdin FIFO.
    pub fn exec_with_stdin(
        &self,
        id: &str,
        exec_id: &str,
        spec: &serde_json::Value,
        terminal: bool,
        stdin: &str,
        stdout: &str,
    ) -> Result<(), Status> {
        let mut message = ExecProcessRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            terminal,
            stdin: stdin.to_string(),
            stdout: stdout.to_string(),
            spec: Some(Default::default()),
            ..Default::default()
        };
        if let Some(any) = message.spec.as_mut() {
            any.type_url = PROCESS_SPEC.to_string();
            any.value = serde_json::to_vec(spec).expect("a process spec as JSON");
        }
        let req = in_namespace(&self.namespace, message)?;
        self.runtime.block_on(self.client().exec(req)).map(|_| ())
    }

    /// Closes the process's stdin (the Go client's `CloseIO(WithStdinCloser)`).
    pub fn close_stdin(&self, id: &str, exec_id: &str) -> Result<(), Status> {
        let message = CloseIoRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
            stdin: true,
        };
        let req = in_namespace(&self.namespace, message)?;
        self.runtime
            .block_on(self.client().close_io(req))
            .map(|_| ())
    }

    /// Checkpoints task `id` with runc's `CheckpointOptions` (`exit`: stop it
    /// after), as the Go client's `task.Checkpoint(ctx, WithExit)` does for
    /// runc-named runtimes; the number of descriptors containerd stored.
    pub fn checkpoint(&self, id: &str, exit: bool) -> Result<usize, Status> {
        let mut message = CheckpointTaskRequest {
            container_id: id.to_string(),
            options: Some(Default::default()),
            ..Default::default()
        };
        if let Some(any) = message.options.as_mut() {
            any.type_url = "containerd.runc.v1.CheckpointOptions".to_string();
            // Field 1, varint: exit.
            any.value = if exit { vec![8, 1] } else { Vec::new() };
        }
        let req = in_namespace(&self.namespace, message)?;
        self.runtime
            .block_on(self.client().checkpoint(req))
            .map(|r| r.into_inner().descriptors.len())
    }

    /// Waits for the init (`exec_id` empty) or an exec; its exit status.
    pub fn wait(&self, id: &str, exec_id: &str) -> Result<u32, Status> {
        let message = WaitRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
        };
        let req = in_namespace_within(&self.namespace, message, WAIT_TIMEOUT)?;
        self.runtime
            .block_on(self.client().wait(req))
            .map(|r| r.into_inner().exit_status)
    }

    /// Deletes exec `exec_id`.
    pub fn delete_process(&self, id: &str, exec_id: &str) -> Result<Deleted, Status> {
        let message = DeleteProcessRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
        };
        let req = in_namespace(&self.namespace, message)?;
        self.runtime
            .block_on(self.client().delete_process(req))
            .map(|r| {
                let r = r.into_inner();
                Deleted {
                    pid: r.pid,
                    exit_status: r.exit_status,
                }
            })
    }

    /// Deletes the task of container `id`.
    pub fn delete(&self, id: &str) -> Result<Deleted, Status> {
        let message = DeleteTaskRequest {
            container_id: id.to_string(),
        };
        let req = in_namespace(&self.namespace, message)?;
        self.runtime.block_on(self.client().delete(req)).map(|r| {
            let r = r.into_inner();
            Deleted {
                pid: r.pid,
                exit_status: r.exit_status,
            }
        })
    }

    /// Update of task `id`'s resources (JSON of a `LinuxResources`), as the
    /// Go client's `task.Update(ctx, WithResources(r))` sends it.
    pub fn update(&self, id: &str, resources: &[u8]) -> Result<(), Status> {
        let mut message = UpdateTaskRequest {
            container_id: id.to_string(),
            // A prost_types::Any, reached through the field's type.
            resources: Some(Default::default()),
            ..Default::default()
        };
        if let Some(any) = message.resources.as_mut() {
            any.type_url = LINUX_RESOURCES.to_string();
            any.value = resources.to_vec();
        }
        let req = in_namespace(&self.namespace, message)?;
        self.runtime.block_on(self.client().update(req)).map(|_| ())
    }

    /// Gives container `id` (no task yet) the runtime options `value` of
    /// type `type_url`, as the Go client's `WithRuntime(name, options)`
    /// does (ctr sends runc options only for runc.v2): the record is read,
    /// deleted and made again with the same spec and snapshot.
    pub fn set_runtime_options(
        &self,
        id: &str,
        type_url: &str,
        value: Vec<u8>,
    ) -> Result<(), Status> {
        let mut containers = ContainersClient::new(self.channel.clone());
        let get = in_namespace(&self.namespace, GetContainerRequest { id: id.to_string() })?;
        let mut container = self
            .runtime
            .block_on(containers.get(get))?
            .into_inner()
            .container
            .ok_or_else(|| Status::not_found(format!("container {id}")))?;
        let runtime = container
            .runtime
            .as_mut()
            .ok_or_else(|| Status::failed_precondition(format!("container {id} has no runtime")))?;
        let mut options = runtime.options.take().unwrap_or_default();
        options.type_url = type_url.to_string();
        options.value = value;
        runtime.options = Some(options);
        let delete = in_namespace(
            &self.namespace,
            DeleteContainerRequest { id: id.to_string() },
        )?;
        self.runtime.block_on(containers.delete(delete))?;
        let create = in_namespace(
            &self.namespace,
            CreateContainerRequest {
                container: Some(container),
            },
        )?;
        self.runtime.block_on(containers.create(create)).map(|_| ())
    }

    /// The host pids of the task's processes.
    pub fn pids(&self, id: &str) -> Result<Vec<u32>, Status> {
        let message = ListPidsRequest {
            container_id: id.to_string(),
        };
        let req = in_namespace(&self.namespace, message)?;
        self.runtime
            .block_on(self.client().list_pids(req))
            .map(|r| r.into_inner().processes.iter().map(|p| p.pid).collect())
    }
}
