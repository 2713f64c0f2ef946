//! The short-lived actions containerd runs: `start` (bind the socket, spawn
//! the server, reply with its address) and `delete` (clean up from the files
//! in the bundle). Plus `-v`, `-info`, `harden` (for operators) and
//! `oci-hook` (runsc's hooks, with containerd's id in their state).

pub mod delete;
pub mod harden;
pub mod oci_hook;
pub mod placement;
pub mod socket;
pub mod start;

message_error!(
    /// A bootstrap action failed; the message is what containerd shows.
    BootstrapError
);

/// `-info`: a protobuf `RuntimeInfo` on stdout.
pub fn info() -> Vec<u8> {
    use containerd_shim_protos::protobuf::Message;
    use containerd_shim_protos::types::introspection::{RuntimeInfo, RuntimeVersion};
    let mut v = RuntimeVersion::new();
    v.version = crate::VERSION.to_string();
    let mut info = RuntimeInfo::new();
    info.name = crate::RUNTIME_NAME.to_string();
    info.version = Some(v).into();
    info.write_to_bytes().unwrap_or_default()
}

/// `-v`: the version text.
pub fn version() -> String {
    format!(
        "containerd-shim-nucleus-v1:\n  Version:  {}\n  Runtime:  {}\n",
        crate::VERSION,
        crate::RUNTIME_NAME
    )
}
