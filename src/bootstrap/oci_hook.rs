//! `oci-hook`: runs one OCI hook with containerd's container id in the
//! state it reads on stdin. runsc knows a container by an id of the shim's
//! making (see `runtime::Backend::runtime_id`) and hands that id to the
//! hooks it runs; hooks such as nerdctl's (CNI setup, its name store) look
//! the container up by containerd's id. The shim puts this action in front
//! of each host-side hook of a runsc spec: it reads the state, sets `id`,
//! and runs the hook with that state on a memory file as stdin, with the
//! args and environment the runtime gave. It waits for the hook and exits
//! as the hook did; a failure is said on stderr naming the hook (the runtime
//! names only the program it ran, this one). Should the runtime kill it (a
//! hook's timeout), the hook is killed with it (parent-death signal).

use std::io::{Read, Seek, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};

use nix::sys::memfd::{memfd_create, MFdFlags};
use serde_json::Value;

use crate::cli::OciHookArgs;

message_error!(
    /// The hook could not be run; the runtime shows the message.
    HookError
);

/// Sets the state's `id` to `id`; Err names what is wrong with the state.
pub fn rewrite_state(state: &[u8], id: &str) -> Result<Vec<u8>, HookError> {
    let mut v: Value = serde_json::from_slice(state)
        .map_err(|e| HookError(format!("oci-hook: the state on stdin is not JSON: {e}")))?;
    let obj = v
        .as_object_mut()
        .ok_or_else(|| HookError("oci-hook: the state on stdin is not a JSON object".into()))?;
    obj.insert("id".into(), Value::String(id.to_string()));
    serde_json::to_vec(&v).map_err(|e| HookError(format!("oci-hook: {e}")))
}

/// Reads the state from stdin, rewrites it, runs the hook and waits for
/// it; returns the exit status to leave with.
pub fn run(args: &OciHookArgs) -> Result<u8, HookError> {
    let mut state = Vec::new();
    std::io::stdin()
        .read_to_end(&mut state)
        .map_err(|e| HookError(format!("oci-hook: reading the state from stdin: {e}")))?;
    run_with_state(args, &state)
}

/// Runs the hook with `state` (as the runtime gave it) rewritten on its
/// stdin; returns the exit status to leave with.
fn run_with_state(args: &OciHookArgs, state: &[u8]) -> Result<u8, HookError> {
    let state = rewrite_state(state, &args.id)?;
    let mut file = memfd_create(c"oci-state", MFdFlags::MFD_CLOEXEC)
        .map(std::fs::File::from)
        .map_err(|e| HookError(format!("oci-hook: memfd_create: {e}")))?;
    file.write_all(&state)
        .and_then(|_| file.rewind())
        .map_err(|e| HookError(format!("oci-hook: writing the state: {e}")))?;
    let mut cmd = std::process::Command::new(&args.path);
    if let Some((arg0, rest)) = args.args.split_first() {
        cmd.arg0(arg0).args(rest);
    }
    let parent = std::process::id();
    // SAFETY: between fork and exec the child only makes two syscalls
    // (prctl, getppid) and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // Killed before the prctl took: go with it.
            if libc::getppid() as u32 != parent {
                libc::_exit(137);
            }
            Ok(())
        });
    }
    let status = cmd
        .stdin(file)
        .status()
        .map_err(|e| HookError(format!("oci-hook: running hook {}: {e}", args.path)))?;
    Ok(match (status.code(), status.signal()) {
        (Some(0), _) => 0,
        (Some(code), _) => {
            eprintln!("hook {} exited with status {code}", args.path);
            u8::try_from(code).unwrap_or(1)
        }
        (None, signal) => {
            let signal = signal.unwrap_or(0);
            eprintln!("hook {} was killed by signal {signal}", args.path);
            u8::try_from(128 + signal).unwrap_or(255)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_state_carries_containerds_id() {
        let state = br#"{"ociVersion":"1.0.2","id":"2.7.c1.default","status":"created","pid":42,"bundle":"/b","annotations":{"a":"b"}}"#;
        let out: Value = serde_json::from_slice(&rewrite_state(state, "c1").unwrap()).unwrap();
        assert_eq!(out["id"], "c1");
        assert_eq!(out["pid"], 42);
        assert_eq!(out["bundle"], "/b");
        assert_eq!(out["annotations"]["a"], "b");
        let e = rewrite_state(b"nope", "c1").unwrap_err();
        assert!(e.0.contains("not JSON"), "{e}");
        let e = rewrite_state(b"[1]", "c1").unwrap_err();
        assert!(e.0.contains("not a JSON object"), "{e}");
    }

    /// `sh -c SCRIPT` run as `my-hook` (its $0).
    fn hook(script: &str) -> OciHookArgs {
        OciHookArgs {
            id: "c1".into(),
            path: "/bin/sh".into(),
            args: vec!["my-hook".into(), "-c".into(), script.into()],
        }
    }

    #[test]
    fn the_hook_reads_the_state_and_its_status_is_the_actions() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("seen");
        let state = br#"{"id":"2.7.c1.default","pid":1}"#;
        // argv[0] as the runtime gave it, the rewritten state on stdin.
        let args = hook(&format!(r#"{{ echo "$0"; cat; }} > {}"#, out.display()));
        assert_eq!(run_with_state(&args, state).unwrap(), 0);
        let seen = std::fs::read_to_string(&out).unwrap();
        let (arg0, json) = seen.split_once('\n').unwrap();
        assert_eq!(arg0, "my-hook");
        let v: Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["id"], "c1");
        // Its exit status, and a signal as 128 + N.
        assert_eq!(run_with_state(&hook("exit 7"), state).unwrap(), 7);
        assert_eq!(run_with_state(&hook("kill -9 $$"), state).unwrap(), 137);
        // A hook that cannot be run is named.
        let mut missing = hook("true");
        missing.path = "/nonexistent/hook".into();
        let e = run_with_state(&missing, state).unwrap_err();
        assert!(e.0.contains("/nonexistent/hook"), "{e}");
    }
}
