//! containerd's own gRPC API (the containerd-client crate) over its unix
//! socket, as containerd's Go client, nerdctl, Docker and the CRI plugin
//! reach the tasks a shim serves: the namespace travels in the
//! `containerd-namespace` metadata header.
#![allow(dead_code)]

use std::time::Duration;

use ::containerd_client::services::v1::tasks_client::TasksClient;
use ::containerd_client::services::v1::UpdateTaskRequest;
use ::containerd_client::tonic::{Code, Request, Status};

/// The type URL containerd's Go client (typeurl) gives a `specs.LinuxResources`.
pub const LINUX_RESOURCES: &str =
    "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources";

/// How long one call may take before it fails with DeadlineExceeded.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// A request to containerd in `namespace`.
fn in_namespace<T>(namespace: &str, message: T) -> Result<Request<T>, Status> {
    let mut req = Request::new(message);
    let ns = namespace
        .parse()
        .map_err(|e| Status::invalid_argument(format!("namespace {namespace:?}: {e}")))?;
    req.metadata_mut().insert("containerd-namespace", ns);
    req.set_timeout(CALL_TIMEOUT);
    Ok(req)
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
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        let channel = ::containerd_client::connect(address)
            .await
            .map_err(|e| Status::new(Code::Unavailable, format!("connecting to {address}: {e}")))?;
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
        TasksClient::new(channel)
            .update(in_namespace(namespace, message)?)
            .await
            .map(|_| ())
    })
}
