//! Whether a container's process has an executable to run, looked up in its
//! root filesystem before the runtime is asked to create it. runc fails
//! Create when the executable is missing; crun and runsc fail only at
//! Start, where containerd's clients do not expect it (they clean up a
//! failed Create, not a failed Start). The lookup follows the process's
//! PATH and cwd and resolves symlinks inside the rootfs, never on the host;
//! it answers "missing" only when sure: a path under one of the spec's
//! mounts, or one it cannot read, counts as present.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harden::rootfs::{clean_from as clean, walk, End};

/// runc's PATH when the process gives none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What one path in the rootfs is.
#[derive(Debug, PartialEq, Eq)]
enum Found {
    /// A regular file with an execute bit.
    Executable,
    /// Something that cannot be run (a directory, a file without x bits).
    NotExecutable(&'static str),
    Missing,
    /// Under a mount, unreadable, or too many links: not known here.
    Unknown,
}

/// Checks `process` (an OCI process) of a spec whose root is `rootfs` and
/// whose mounts are `mounts` (the spec's array). Err names what is wrong.
pub fn check(rootfs: &Path, process: &Value, mounts: &Value) -> Result<(), String> {
    if !rootfs.is_dir() {
        return Ok(()); // The runtime says what is wrong with it.
    }
    let Some(arg0) = process
        .pointer("/args/0")
        .and_then(Value::as_str)
        .filter(|a| !a.is_empty())
    else {
        return Err("the process has no args: nothing to run".into());
    };
    let mount_points: Vec<PathBuf> = mounts
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(|m| m.get("destination").and_then(Value::as_str))
                .map(|d| clean(Path::new("/"), d))
                .collect()
        })
        .unwrap_or_default();
    let cwd = clean(
        Path::new("/"),
        process.get("cwd").and_then(Value::as_str).unwrap_or("/"),
    );
    let look = |p: &Path| lookup(rootfs, p, &mount_points);
    if arg0.contains('/') {
        let path = clean(&cwd, arg0);
        return match look(&path) {
            Found::Executable | Found::Unknown => Ok(()),
            Found::NotExecutable(what) => Err(format!(
                "the process's executable {arg0:?} is {what} in the container's root filesystem"
            )),
            Found::Missing => Err(format!(
                "the process's executable {arg0:?} does not exist in the container's root filesystem"
            )),
        };
    }
    let path_var = process
        .get("env")
        .and_then(Value::as_array)
        .and_then(|env| {
            env.iter()
                .filter_map(Value::as_str)
                .filter_map(|e| e.strip_prefix("PATH="))
                .next_back()
        })
        .unwrap_or(DEFAULT_PATH);
    for dir in path_var.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        match look(&clean(&cwd, dir).join(arg0)) {
            Found::Executable | Found::Unknown => return Ok(()),
            Found::NotExecutable(_) | Found::Missing => {}
        }
    }
    Err(format!(
        "the process's executable {arg0:?} is not found in the container's root filesystem (PATH {path_var})"
    ))
}

/// Looks container path `path` (absolute, clean) up under `rootfs`,
/// following symlinks as if `rootfs` were `/`; a path under one of
/// `mount_points` is not the image's to judge.
fn lookup(rootfs: &Path, path: &Path, mount_points: &[PathBuf]) -> Found {
    let under_mount = |p: &Path| {
        mount_points
            .iter()
            .any(|m| m != Path::new("/") && p.starts_with(m))
    };
    if under_mount(path) {
        return Found::Unknown;
    }
    match walk(rootfs, path, under_mount).end {
        End::Found(meta) => {
            if meta.is_dir() {
                Found::NotExecutable("a directory")
            } else if !meta.is_file() {
                Found::NotExecutable("not a regular file")
            } else if meta.permissions().mode() & 0o111 == 0 {
                Found::NotExecutable("not executable (no x permission)")
            } else {
                Found::Executable
            }
        }
        End::Missing => Found::Missing,
        End::Stopped | End::Unknown => Found::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::symlink;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        std::fs::create_dir_all(r.join("app")).unwrap();
        std::fs::write(r.join("bin/busybox"), b"elf").unwrap();
        std::fs::set_permissions(r.join("bin/busybox"), PermissionsExt::from_mode(0o755)).unwrap();
        std::fs::write(r.join("app/data"), b"x").unwrap();
        symlink("busybox", r.join("bin/sh")).unwrap();
        symlink("/bin/busybox", r.join("usr/bin/env")).unwrap();
        // A link that points outside: resolved inside the rootfs.
        symlink("../../../../../../bin/busybox", r.join("app/run")).unwrap();
        symlink("/etc/passwd", r.join("app/host")).unwrap();
        symlink("loop", r.join("app/loop")).unwrap();
        d
    }

    fn proc(args: &[&str], env: &[&str], cwd: &str) -> Value {
        json!({"args": args, "env": env, "cwd": cwd})
    }

    #[test]
    fn present_executables_pass() {
        let r = rootfs();
        let none = json!([]);
        for (args, env, cwd) in [
            (vec!["/bin/sh", "-c", "x"], vec![], "/"),
            (vec!["sh"], vec![], "/"),
            (vec!["env"], vec!["PATH=/usr/bin"], "/"),
            (vec!["./busybox"], vec![], "/bin"),
            (vec!["../bin/sh"], vec![], "/app"),
            (vec!["/app/run"], vec![], "/"),
            (vec!["run"], vec!["PATH=/nope:/app"], "/"),
        ] {
            check(r.path(), &proc(&args, &env, cwd), &none)
                .unwrap_or_else(|e| panic!("{args:?}: {e}"));
        }
    }

    #[test]
    fn missing_executables_are_named() {
        let r = rootfs();
        let none = json!([]);
        let e = check(r.path(), &proc(&["nonexistent"], &[], "/"), &none).unwrap_err();
        assert!(
            e.contains("\"nonexistent\" is not found") && e.contains(DEFAULT_PATH),
            "{e}"
        );
        let e = check(r.path(), &proc(&["/bin/nope"], &[], "/"), &none).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let e = check(r.path(), &proc(&["/app/data"], &[], "/"), &none).unwrap_err();
        assert!(e.contains("not executable"), "{e}");
        let e = check(r.path(), &proc(&["/app"], &[], "/"), &none).unwrap_err();
        assert!(e.contains("a directory"), "{e}");
        // Host paths are not looked at: /etc/passwd is not in this rootfs.
        let e = check(r.path(), &proc(&["/app/host"], &[], "/"), &none).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let e = check(r.path(), &proc(&["/bin/busybox/x"], &[], "/"), &none).unwrap_err();
        assert!(e.contains("does not exist"), "{e}");
        let e = check(r.path(), &json!({"args": []}), &none).unwrap_err();
        assert!(e.contains("no args"), "{e}");
    }

    #[test]
    fn what_cannot_be_known_passes() {
        let r = rootfs();
        // Under a mount: the runtime will see what is there.
        let mounts = json!([{"destination": "/probe"}, {"destination": "/opt/tools"}]);
        check(r.path(), &proc(&["/probe"], &[], "/"), &mounts).unwrap();
        check(
            r.path(),
            &proc(&["tool"], &["PATH=/opt/tools"], "/"),
            &mounts,
        )
        .unwrap();
        // A symlink loop.
        check(r.path(), &proc(&["/app/loop"], &[], "/"), &json!([])).unwrap();
    }
}
