//! `start`: bind the socket, spawn the long-lived server (which must not hold
//! containerd's stdout/stderr pipe), record the address in the bundle, and
//! reply: a plain address for containerd 1.6-2.2, a `BootstrapResult` for 2.3+.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use containerd_shim_protos::bootstrap_api::BootstrapResult;
use containerd_shim_protos::protobuf::Message;

use super::BootstrapError;
use super::{placement, socket};
use crate::cli::Flags;
use crate::options::{self, StartInput};
use crate::server::LISTENER_FD;
use crate::task::START_OPTIONS_FILE;

pub use crate::runtime::SANDBOX_ID_ANNOTATION;
/// Largest stdin accepted.
const MAX_STDIN: u64 = 1 << 20;

fn err(msg: impl Into<String>) -> BootstrapError {
    BootstrapError(msg.into())
}

/// The id that names the shim: the pod's sandbox id when CRI groups
/// containers, else the container id.
pub fn group_id(bundle: &Path, id: &str) -> String {
    std::fs::read(bundle.join("config.json"))
        .ok()
        .and_then(|d| serde_json::from_slice::<serde_json::Value>(&d).ok())
        .and_then(|spec| {
            spec.pointer("/annotations")
                .and_then(|a| a.get(SANDBOX_ID_ANNOTATION))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| id.to_string())
}

fn read_stdin() -> Result<Vec<u8>, BootstrapError> {
    let stdin = std::io::stdin();
    if nix::unistd::isatty(&stdin).unwrap_or(false) {
        return Ok(Vec::new());
    }
    let mut data = Vec::new();
    stdin
        .lock()
        .take(MAX_STDIN)
        .read_to_end(&mut data)
        .map_err(|e| err(format!("reading start options from stdin: {e}")))?;
    Ok(data)
}

/// The reply containerd reads from stdout.
pub fn reply(address: &str, bootstrap: bool) -> Vec<u8> {
    if !bootstrap {
        return address.as_bytes().to_vec();
    }
    let mut r = BootstrapResult::new();
    r.version = 3;
    r.address = address.to_string();
    r.protocol = "ttrpc".to_string();
    r.write_to_bytes().unwrap_or_default()
}

/// Runs `start` and returns the bytes to print.
pub fn run(flags: &Flags) -> Result<Vec<u8>, BootstrapError> {
    let input: StartInput =
        options::decode_start_stdin(&read_stdin()?).map_err(|e| err(e.to_string()))?;
    let bundle = if flags.bundle.is_empty() {
        std::env::current_dir().map_err(|e| err(format!("start: current directory: {e}")))?
    } else {
        PathBuf::from(&flags.bundle)
    };
    let mut namespace = flags.namespace.clone();
    let mut ttrpc_address = std::env::var("TTRPC_ADDRESS").unwrap_or_default();
    let mut socket_dir = socket::DEFAULT_SOCKET_DIR.to_string();
    if let Some(b) = &input.bootstrap {
        if namespace.is_empty() {
            namespace = b.namespace.clone();
        }
        if ttrpc_address.is_empty() {
            ttrpc_address = b.ttrpc_address.clone();
        }
        if let Some(dir) = b.socket_dir.as_ref().filter(|d| !d.is_empty()) {
            socket_dir = dir.clone();
        }
    }
    if let Some(any) = &input.options_any {
        write_private(&bundle.join(START_OPTIONS_FILE), any).map_err(|e| {
            err(format!(
                "bundle {}: saving start options: {e}",
                bundle.display()
            ))
        })?;
    }
    let group = group_id(&bundle, &flags.id);
    let path = socket::socket_path(&socket_dir, &flags.address, &namespace, &group);
    let address = format!("unix://{}", path.display());

    if path.exists() {
        if socket::is_serving(&path) {
            log::info!(
                "start {}: joining the shim serving {group} at {address}",
                flags.id
            );
            write_address(&bundle, &address)?;
            return Ok(reply(&address, input.bootstrap.is_some()));
        }
        std::fs::remove_file(&path)
            .map_err(|e| err(format!("removing stale socket {}: {e}", path.display())))?;
    }
    let listener =
        socket::bind(&path).map_err(|e| err(format!("shim socket {}: {e}", path.display())))?;
    let spawned = spawn_server(
        flags,
        &namespace,
        &bundle,
        &address,
        &ttrpc_address,
        listener.as_fd(),
    );
    drop(listener);
    let pid = match spawned {
        Ok(pid) => pid,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
    };
    let recorded = placement::place(pid, input.options_any.as_deref())
        .and_then(|()| write_address(&bundle, &address))
        .and_then(|_| {
            write_private(&bundle.join("shim.pid"), pid.to_string().as_bytes())
                .map_err(|e| err(e.to_string()))
        });
    if let Err(e) = recorded {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
        let _ = std::fs::remove_file(&path);
        return Err(e);
    }
    log::info!("start {}: shim pid {pid} serving at {address}", flags.id);
    Ok(reply(&address, input.bootstrap.is_some()))
}

fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all(data)
}

fn write_address(bundle: &Path, address: &str) -> Result<(), BootstrapError> {
    write_private(&bundle.join("address"), address.as_bytes()).map_err(|e| {
        err(format!(
            "bundle {}: writing address file: {e}",
            bundle.display()
        ))
    })
}

fn spawn_server(
    flags: &Flags,
    namespace: &str,
    bundle: &Path,
    address: &str,
    ttrpc_address: &str,
    listener: std::os::fd::BorrowedFd<'_>,
) -> Result<u32, BootstrapError> {
    let exe = std::env::current_exe().map_err(|e| err(format!("start: own executable: {e}")))?;
    let mut cmd = crate::spawn::command(exe);
    cmd.args([
        "-namespace",
        namespace,
        "-id",
        &flags.id,
        "-address",
        &flags.address,
    ]);
    cmd.args(["-publish-binary", &flags.publish_binary, "-socket", address]);
    if flags.debug {
        cmd.arg("-debug");
    }
    let listener = listener
        .try_clone_to_owned()
        .map_err(|e| err(format!("start: listener fd: {e}")))?;
    cmd.current_dir(bundle)
        .env("TTRPC_ADDRESS", ttrpc_address)
        .fd(LISTENER_FD, listener)
        .new_session();
    let child = cmd
        .spawn()
        .map_err(|e| err(format!("start: spawning the shim server: {e}")))?;
    Ok(child.id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_id_uses_the_sandbox_annotation() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(group_id(d.path(), "c1"), "c1");
        std::fs::write(
            d.path().join("config.json"),
            r#"{"annotations":{"io.kubernetes.cri.sandbox-id":"pod1"}}"#,
        )
        .unwrap();
        assert_eq!(group_id(d.path(), "c2"), "pod1");
    }

    #[test]
    fn reply_shapes() {
        assert_eq!(
            reply("unix:///run/containerd/s/x", false),
            b"unix:///run/containerd/s/x"
        );
        let r = BootstrapResult::parse_from_bytes(&reply("unix:///s/x", true)).unwrap();
        assert_eq!(r.version, 3);
        assert_eq!(r.address, "unix:///s/x");
        assert_eq!(r.protocol, "ttrpc");
    }
}
