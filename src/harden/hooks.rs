//! OCI hooks run as root on the host (all but startContainer), so each must
//! be a binary the host's owner put in a trusted directory: absolute, not a
//! symlink, not writable by others, owned by root or the shim's user, no
//! setuid/setgid. Checked on every level but `off`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use serde_json::Value;

use super::{HardenError, Policy, Report};

/// Hook kinds, in the order the runtime runs them.
pub const HOOK_KINDS: [&str; 6] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "startContainer",
    "poststart",
    "poststop",
];

fn trusted(path: &str, dirs: &[String]) -> bool {
    dirs.iter().any(|d| path.starts_with(d.as_str()))
}

/// Why `path` may not be a hook, or Ok. `in_container`: the path resolves
/// in the container (startContainer), so only its form is checked.
pub fn check_path(
    path: &str,
    dirs: &[String],
    euid: u32,
    in_container: bool,
) -> Result<(), String> {
    if !path.starts_with('/') {
        return Err("is not an absolute path".into());
    }
    if path[1..]
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err("is not a clean path (empty, '.' or '..' components)".into());
    }
    if !trusted(path, dirs) {
        return Err(format!(
            "is not under a trusted directory ({})",
            dirs.join(", ")
        ));
    }
    if in_container {
        return Ok(());
    }
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("cannot be inspected: {e}"))?;
    if meta.file_type().is_symlink() {
        return Err("is a symlink".into());
    }
    if !meta.is_file() {
        return Err("is not a regular file".into());
    }
    let real = std::fs::canonicalize(path).map_err(|e| format!("cannot be resolved: {e}"))?;
    let real_str = real.to_string_lossy();
    if !trusted(&real_str, dirs) {
        return Err(format!(
            "resolves to {real_str}, outside the trusted directories"
        ));
    }
    let mode = meta.permissions().mode();
    if mode & 0o111 == 0 {
        return Err("is not executable".into());
    }
    if mode & 0o6000 != 0 {
        return Err("is setuid or setgid".into());
    }
    check_owner_and_mode(&meta, euid, "")?;
    // Whoever can rename any directory on the way could swap the binary
    // before the runtime runs it (poststop runs hours later).
    for dir in real.ancestors().skip(1) {
        let dmeta = std::fs::metadata(dir)
            .map_err(|e| format!("its directory {} cannot be inspected: {e}", dir.display()))?;
        check_directory(&dmeta, euid)
            .map_err(|why| format!("its directory {} {why}", dir.display()))?;
    }
    Ok(())
}

/// A directory on a hook's path: owned by root or the shim's user, and not
/// writable by anyone else unless sticky (entries then stay their owner's).
fn check_directory(meta: &std::fs::Metadata, euid: u32) -> Result<(), String> {
    let mode = meta.permissions().mode();
    let others_write = mode & 0o002 != 0 || (mode & 0o020 != 0 && meta.gid() != 0);
    if others_write && mode & 0o1000 == 0 {
        return Err("is writable by other users".into());
    }
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(format!(
            "is owned by uid {}, neither root nor the shim's uid {euid}",
            meta.uid()
        ));
    }
    Ok(())
}

fn check_owner_and_mode(meta: &std::fs::Metadata, euid: u32, what: &str) -> Result<(), String> {
    let mode = meta.permissions().mode();
    if mode & 0o002 != 0 {
        return Err(format!("{what}is world-writable"));
    }
    if mode & 0o020 != 0 && (meta.uid() != 0 || meta.gid() != 0) {
        return Err(format!(
            "{what}is group-writable and not owned by root:root"
        ));
    }
    if meta.uid() != 0 && meta.uid() != euid {
        return Err(format!(
            "{what}is owned by uid {}, neither root nor the shim's uid {euid}",
            meta.uid()
        ));
    }
    Ok(())
}

/// Hooks that name a process's own binary by `/proc/<pid>/exe` (Docker's
/// network hook, `libnetwork-setkey`, names dockerd so) run as the file the
/// link points to: it is followed once, here, and that path is checked
/// like any other (a symlink is refused, and this one is a link to a file
/// that can change with the pid). The runtime then runs the checked file,
/// whatever the pid has become; argv\[0\] stays the hook's own, which is
/// how such a binary knows what to do. A process whose binary was replaced
/// on disk since it started (an upgrade without a restart) is refused by
/// name: the file at that path is not the one it runs. Not for
/// startContainer hooks, whose paths resolve inside the container.
pub fn resolve_process_exe(spec: &mut Value, report: &mut Report) -> Result<(), HardenError> {
    let Some(hooks) = spec.get_mut("hooks").and_then(Value::as_object_mut) else {
        return Ok(());
    };
    for (kind, list) in hooks.iter_mut() {
        if kind == "startContainer" {
            continue;
        }
        let Some(items) = list.as_array_mut() else {
            continue;
        };
        for (i, hook) in items.iter_mut().enumerate() {
            let Some(path) = hook.get("path").and_then(Value::as_str) else {
                continue;
            };
            let is_process_exe = path
                .strip_prefix("/proc/")
                .and_then(|rest| rest.strip_suffix("/exe"))
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()));
            if !is_process_exe {
                continue;
            }
            // Unreadable (the process is gone): left as it is, and refused
            // by `check` as a link.
            let Ok(target) = std::fs::read_link(path) else {
                continue;
            };
            let target = target.to_string_lossy().into_owned();
            // The file the process runs (the link's own target, even when
            // deleted) and the one at its path must be one file.
            let same = match (std::fs::metadata(path), std::fs::metadata(&target)) {
                (Ok(running), Ok(named)) => {
                    running.dev() == named.dev() && running.ino() == named.ino()
                }
                _ => false,
            };
            if !same {
                return Err(HardenError(format!(
                    "hook {path} (hooks.{kind}[{i}]) names {target}, which is no longer the \
                     file that process runs (replaced on disk since it started): restart it"
                )));
            }
            let before = path.to_string();
            hook["path"] = Value::String(target.clone());
            report.set(
                "hook_process_exe",
                format!("hooks.{kind}[{i}].path"),
                Some(before),
                Some(target),
            );
        }
    }
    Ok(())
}

/// Checks every hook in the spec; the error names the hook and the reason.
pub fn check(spec: &Value, policy: &Policy, euid: u32) -> Result<(), HardenError> {
    let Some(hooks) = spec.get("hooks").filter(|h| !h.is_null()) else {
        return Ok(());
    };
    let hooks = hooks
        .as_object()
        .ok_or_else(|| HardenError("hooks: expected a JSON object".into()))?;
    for (kind, list) in hooks {
        if !HOOK_KINDS.contains(&kind.as_str()) {
            return Err(HardenError(format!(
                "hooks.{kind}: unknown hook kind (known: {})",
                HOOK_KINDS.join(", ")
            )));
        }
        let items = match list {
            Value::Null => continue,
            Value::Array(items) => items,
            _ => return Err(HardenError(format!("hooks.{kind}: expected a list"))),
        };
        for (i, hook) in items.iter().enumerate() {
            let path = hook
                .get("path")
                .and_then(Value::as_str)
                .ok_or_else(|| HardenError(format!("hooks.{kind}[{i}]: no \"path\"")))?;
            check_path(
                path,
                &policy.trusted_hook_dirs,
                euid,
                kind == "startContainer",
            )
            .map_err(|why| {
                HardenError(format!(
                    "hook {path} (hooks.{kind}[{i}]) {why}: refused by the nucleus policy"
                ))
            })?;
        }
    }
    Ok(())
}

/// `kind[i] path` of every hook in the spec, to name them when a runtime
/// reports a failing hook only by number (runc: "error running hook #0").
pub fn describe(spec: &Value) -> Vec<String> {
    let Some(hooks) = spec.get("hooks").and_then(Value::as_object) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for kind in HOOK_KINDS {
        let Some(items) = hooks.get(kind).and_then(Value::as_array) else {
            continue;
        };
        for (i, h) in items.iter().enumerate() {
            let path = h.get("path").and_then(Value::as_str).unwrap_or("?");
            out.push(format!("{kind}[{i}] {path}"));
        }
    }
    out
}

/// Adds the spec's hooks to a runtime error about a hook that does not
/// name the hook's path.
pub fn name_failed_hook(message: &str, spec: &Value) -> Option<String> {
    let hooks = describe(spec);
    let names_one = spec
        .get("hooks")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|h| h.values())
        .filter_map(Value::as_array)
        .flatten()
        .filter_map(|h| h.get("path").and_then(Value::as_str))
        .any(|p| message.contains(p));
    (message.contains("hook") && !hooks.is_empty() && !names_one)
        .then(|| format!("{message} (the spec's hooks: {})", hooks.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_process_exe_hook_runs_as_the_binary_it_names() {
        let me = std::env::current_exe().unwrap().display().to_string();
        let link = format!("/proc/{}/exe", std::process::id());
        let mut spec = json!({"hooks": {
            "prestart": [{"path": link, "args": ["libnetwork-setkey", "-exec-root=/run/docker", "c1", "abc"]}],
            "createRuntime": [{"path": "/usr/bin/true"}, {"path": "/proc/self/exe"}],
            "startContainer": [{"path": link}]
        }});
        let mut report = Report::new(crate::harden::Level::Default, crate::runtime::Backend::Runc);
        resolve_process_exe(&mut spec, &mut report).unwrap();
        assert_eq!(spec["hooks"]["prestart"][0]["path"], me.as_str());
        assert_eq!(spec["hooks"]["prestart"][0]["args"][0], "libnetwork-setkey");
        assert_eq!(report.changes.len(), 1, "{:?}", report.changes);
        // Others are left for `check`: plain paths, /proc/self (not a
        // process's pid), and hooks that run inside the container.
        assert_eq!(spec["hooks"]["createRuntime"][0]["path"], "/usr/bin/true");
        assert_eq!(spec["hooks"]["createRuntime"][1]["path"], "/proc/self/exe");
        assert_eq!(spec["hooks"]["startContainer"][0]["path"], link.as_str());
        // The binary it names is checked like any hook: here, outside the
        // trusted directories, and named.
        let mut one = json!({"hooks": {"prestart": [{"path": link}]}});
        resolve_process_exe(&mut one, &mut report).unwrap();
        let e = check(&one, &Policy::default(), euid()).unwrap_err();
        assert!(e.0.contains(&me) && e.0.contains("trusted"), "{e}");
        // A process whose binary was replaced on disk: refused by name.
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("daemon");
        std::fs::copy("/bin/sleep", &bin).unwrap();
        let mut child = std::process::Command::new(&bin).arg("30").spawn().unwrap();
        std::fs::remove_file(&bin).unwrap();
        std::fs::copy("/bin/sleep", &bin).unwrap();
        let mut replaced =
            json!({"hooks": {"prestart": [{"path": format!("/proc/{}/exe", child.id())}]}});
        let e = resolve_process_exe(&mut replaced, &mut report).unwrap_err();
        let _ = child.kill();
        let _ = child.wait();
        assert!(e.0.contains("replaced on disk"), "{e}");
    }

    struct Dir {
        tmp: tempfile::TempDir,
        dirs: Vec<String>,
    }

    fn trusted_dir() -> Dir {
        let tmp = tempfile::tempdir().unwrap();
        let dirs = vec![format!("{}/", tmp.path().display())];
        Dir { tmp, dirs }
    }

    fn file(dir: &Dir, name: &str, mode: u32) -> String {
        let p = dir.tmp.path().join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p.display().to_string()
    }

    fn euid() -> u32 {
        nix::unistd::geteuid().as_raw()
    }

    #[test]
    fn a_clean_hook_passes() {
        let d = trusted_dir();
        let ok = file(&d, "hook", 0o755);
        check_path(&ok, &d.dirs, euid(), false).unwrap();
    }

    #[test]
    fn every_refusal_names_its_reason() {
        let d = trusted_dir();
        let base = d.dirs[0].clone();
        let ww = file(&d, "world", 0o757);
        let suid = file(&d, "suid", 0o4755);
        let noexec = file(&d, "noexec", 0o644);
        let real = file(&d, "real", 0o755);
        let link = format!("{base}link");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let sub = format!("{base}sub");
        std::fs::create_dir(&sub).unwrap();
        let other = tempfile::tempdir().unwrap();
        let escape = format!("{base}escape");
        std::os::unix::fs::symlink(other.path(), &escape).unwrap();
        let outside_file = other.path().join("hook");
        std::fs::write(&outside_file, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&outside_file, std::fs::Permissions::from_mode(0o755)).unwrap();
        let cases = [
            ("relative/hook".to_string(), "absolute"),
            (format!("{base}../x"), "clean path"),
            (
                "/tmp/evil-hook".to_string(),
                "not under a trusted directory",
            ),
            (ww, "world-writable"),
            (suid, "setuid"),
            (noexec, "not executable"),
            (link, "symlink"),
            (sub, "not a regular file"),
            (format!("{base}missing"), "cannot be inspected"),
            (format!("{escape}/hook"), "outside the trusted directories"),
        ];
        for (path, why) in cases {
            let e = check_path(&path, &d.dirs, euid(), false).unwrap_err();
            assert!(e.contains(why), "{path}: expected {why:?}, got {e:?}");
        }
    }

    #[test]
    fn ownership_rules() {
        let d = trusted_dir();
        let foreign = file(&d, "foreign", 0o755);
        std::os::unix::fs::chown(&foreign, Some(4242), Some(4242)).unwrap();
        let e = check_path(&foreign, &d.dirs, 0, false).unwrap_err();
        assert!(e.contains("uid 4242"), "{e}");
        // The shim's own uid may own hooks.
        check_path(&foreign, &d.dirs, 4242, false).unwrap();
        let group = file(&d, "group", 0o775);
        std::os::unix::fs::chown(&group, Some(0), Some(4242)).unwrap();
        let e = check_path(&group, &d.dirs, 0, false).unwrap_err();
        assert!(e.contains("group-writable"), "{e}");
        std::os::unix::fs::chown(&group, Some(0), Some(0)).unwrap();
        check_path(&group, &d.dirs, 0, false).unwrap();
        // A directory writable by others lets anyone swap the binary.
        let hook = file(&d, "inopen", 0o755);
        std::fs::set_permissions(d.tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = check_path(&hook, &d.dirs, 0, false).unwrap_err();
        assert!(
            e.contains("its directory") && e.contains("writable by other users"),
            "{e}"
        );
        // Sticky is fine (entries stay their owners'); a foreign owner higher up is not.
        std::fs::set_permissions(d.tmp.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        check_path(&hook, &d.dirs, 0, false).unwrap();
        std::fs::set_permissions(d.tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let sub = d.tmp.path().join("vendor/bin");
        std::fs::create_dir_all(&sub).unwrap();
        let deep = sub.join("hook");
        std::fs::write(&deep, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&deep, std::fs::Permissions::from_mode(0o755)).unwrap();
        check_path(deep.to_str().unwrap(), &d.dirs, 0, false).unwrap();
        std::os::unix::fs::chown(d.tmp.path().join("vendor"), Some(4242), None).unwrap();
        let e = check_path(deep.to_str().unwrap(), &d.dirs, 0, false).unwrap_err();
        assert!(e.contains("vendor") && e.contains("uid 4242"), "{e}");
    }

    #[test]
    fn start_container_hooks_are_checked_by_form_only() {
        let dirs = vec!["/usr/bin/".to_string()];
        check_path("/usr/bin/not-on-this-host", &dirs, 0, true).unwrap();
        assert!(check_path("/tmp/x", &dirs, 0, true).is_err());
    }

    #[test]
    fn a_runtime_error_by_hook_number_gets_the_paths() {
        let spec = json!({"hooks": {"createRuntime": [{"path": "/usr/bin/false"}], "poststop": [{"path": "/usr/bin/true"}]}});
        let runc = "error running hook #0: error running hook: exit status 1";
        let named = name_failed_hook(runc, &spec).unwrap();
        assert!(
            named.contains("createRuntime[0] /usr/bin/false, poststop[0] /usr/bin/true"),
            "{named}"
        );
        let crun = "error executing hook `/usr/bin/false` (exit code: 1)";
        assert!(name_failed_hook(crun, &spec).is_none(), "already named");
        assert!(name_failed_hook("no such file", &spec).is_none());
        assert!(name_failed_hook(runc, &json!({})).is_none());
    }

    #[test]
    fn spec_errors_name_the_hook() {
        let policy = Policy::default();
        let spec = json!({"hooks": {"prestart": [{"path": "/bin/true"}, {"path": "/tmp/evil-hook", "args": ["x"]}]}});
        let e = check(&spec, &policy, 0).unwrap_err();
        assert!(
            e.0.contains("/tmp/evil-hook") && e.0.contains("hooks.prestart[1]"),
            "{e}"
        );
        let e = check(&json!({"hooks": {"prestart": [{"args": []}]}}), &policy, 0).unwrap_err();
        assert!(e.0.contains("no \"path\""), "{e}");
        let e = check(&json!({"hooks": {"preboot": []}}), &policy, 0).unwrap_err();
        assert!(e.0.contains("unknown hook kind"), "{e}");
        check(
            &json!({"hooks": {"poststop": [{"path": "/bin/true"}]}}),
            &policy,
            0,
        )
        .unwrap();
        check(&json!({}), &policy, 0).unwrap();
    }
}
