//! `delete`: idempotent cleanup from the files the shim persisted in the
//! bundle (runs within containerd's 5 s budget, even when the server died).

use std::path::PathBuf;
use std::time::SystemTime;

use containerd_shim_protos::api::DeleteResponse;
use containerd_shim_protos::protobuf::Message;

use super::{socket, BootstrapError};
use crate::cli::Flags;
use crate::events::timestamp;
use crate::runtime::{DirectRunner, Runtime};

/// Runs `delete` and returns the encoded `DeleteResponse` to print.
pub fn run(flags: &Flags) -> Result<Vec<u8>, BootstrapError> {
    let bundle = if flags.bundle.is_empty() {
        std::env::current_dir()
            .map_err(|e| BootstrapError(format!("delete: current directory: {e}")))?
    } else {
        PathBuf::from(&flags.bundle)
    };
    let runtime = Runtime::load(&bundle).map_err(|e| {
        BootstrapError(format!(
            "delete {}: bundle {}: runtime record: {e}",
            flags.id,
            bundle.display()
        ))
    })?;
    if let Some(rt) = runtime {
        if let Err(e) = rt.remove(&DirectRunner, &flags.id) {
            log::warn!("delete {}: {e}", flags.id);
        }
    }
    let rootfs = bundle.join("rootfs");
    if let Err(e) = crate::mount::unmount_all(&rootfs) {
        log::warn!("delete {}: {e}", flags.id);
    }
    // The server is gone if nobody answers on its socket: remove the file.
    if let Ok(address) = std::fs::read_to_string(bundle.join("address")) {
        let path = crate::server::socket_path(address.trim());
        if path.exists() && !socket::is_serving(&path) {
            let _ = std::fs::remove_file(&path);
        }
    }
    let mut resp = DeleteResponse::new();
    resp.exit_status = 137;
    resp.exited_at = Some(timestamp(SystemTime::now())).into();
    resp.write_to_bytes()
        .map_err(|e| BootstrapError(format!("delete {}: encoding response: {e}", flags.id)))
}
