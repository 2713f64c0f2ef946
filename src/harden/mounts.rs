//! Mounts: destinations that would hide or replace /proc or /sys are
//! refused; bind mounts get nosuid (and nodev unless they bind a device);
//! sysfs and cgroupfs are read-only; strict adds noexec tmpfs on /tmp and
//! /dev/shm and a read-only rootfs.

use std::os::unix::fs::FileTypeExt;

use serde_json::{json, Map, Value};

use super::report::Report;
use super::{spec, HardenError, Policy};

/// Files under /proc a bind may cover (the ones LXCFS provides; runc allows
/// the same).
const PROC_BIND_ALLOWED: [&str; 10] = [
    "/proc/cpuinfo",
    "/proc/diskstats",
    "/proc/loadavg",
    "/proc/meminfo",
    "/proc/slabinfo",
    "/proc/stat",
    "/proc/swaps",
    "/proc/uptime",
    "/proc/net/dev",
    "/proc/sys/kernel/ns_last_pid",
];

/// A destination without `.`/empty components; errors name the problem.
fn normalize(dest: &str) -> Result<String, &'static str> {
    if !dest.starts_with('/') {
        return Err("is not an absolute path");
    }
    let mut parts = Vec::new();
    for c in dest.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err("contains '..'"),
            c => parts.push(c),
        }
    }
    Ok(format!("/{}", parts.join("/")))
}

fn mount_type(m: &Map<String, Value>) -> &str {
    m.get("type").and_then(Value::as_str).unwrap_or("")
}

fn is_bind(m: &Map<String, Value>, options: &[String]) -> bool {
    mount_type(m) == "bind" || options.iter().any(|o| o == "bind" || o == "rbind")
}

/// Filesystem types a container may mount (plus `policy.extra_mount_types`).
pub const MOUNT_TYPES: [&str; 8] = [
    "bind", "tmpfs", "devpts", "mqueue", "cgroup", "cgroup2", "proc", "sysfs",
];

fn is_read_only(options: &[String]) -> bool {
    options.iter().any(|o| o == "ro" || o == "rro")
}

/// Refuses destinations that are relative, contain `..`, cover the root or
/// put something other than proc/sysfs over /proc or /sys; proc and sysfs
/// anywhere else (a second, unmasked procfs); filesystem types outside the
/// allowed list (a host disk); and writable binds of the host's /, /proc or
/// /sys. A privileged container the operator allowed keeps its types and
/// sources.
pub fn check(spec: &mut Value, policy: &Policy, privileged: bool) -> Result<(), HardenError> {
    let root = spec::root(spec)?;
    for (i, m) in spec::objects(root.get_mut("mounts"), "mounts")?
        .into_iter()
        .enumerate()
    {
        let raw = m.get("destination").and_then(Value::as_str).unwrap_or("");
        let refuse = |why: &str| {
            Err(HardenError(format!(
                "mounts[{i}] destination {raw:?} {why}: refused by the nucleus policy"
            )))
        };
        let dest = match normalize(raw) {
            Ok(d) => d,
            Err(why) => return refuse(why),
        };
        let options = spec::strings(m.get("options"), &format!("mounts[{i}].options"))?;
        let bind = is_bind(m, &options);
        let ty = if bind { "bind" } else { mount_type(m) };
        if dest == "/" {
            return refuse("would cover the container's root");
        }
        if dest == "/proc" && ty != "proc" {
            return refuse(&format!("puts a {ty:?} filesystem over /proc"));
        }
        if dest == "/sys" && ty != "sysfs" {
            return refuse(&format!("puts a {ty:?} filesystem over /sys"));
        }
        if dest.starts_with("/proc/") && !PROC_BIND_ALLOWED.contains(&dest.as_str()) {
            return refuse("covers a file under /proc");
        }
        if ty == "proc" && dest != "/proc" {
            return refuse("mounts a second procfs, outside the masked /proc");
        }
        if ty == "sysfs" && dest != "/sys" {
            return refuse("mounts a second sysfs, outside the read-only /sys");
        }
        if privileged {
            continue;
        }
        if !MOUNT_TYPES.contains(&ty) && !policy.extra_mount_types.iter().any(|t| t == ty) {
            return refuse(&format!(
                "has type {ty:?}, not one of {} (policy.extra_mount_types adds more)",
                MOUNT_TYPES.join(", ")
            ));
        }
        if bind {
            let source = m.get("source").and_then(Value::as_str).unwrap_or("");
            let source = normalize(source).unwrap_or_else(|_| source.to_string());
            let host_kernel = ["/proc", "/sys"]
                .iter()
                .any(|p| source == *p || source.starts_with(&format!("{p}/")));
            if source == "/" {
                return refuse("binds the host's root directory");
            }
            if host_kernel && !is_read_only(&options) {
                return refuse(&format!("binds the host's {source} writable"));
            }
        }
    }
    Ok(())
}

fn is_device_source(source: &str) -> bool {
    source == "/dev"
        || source.starts_with("/dev/")
        || std::fs::metadata(source)
            .map(|m| m.file_type().is_char_device() || m.file_type().is_block_device())
            .unwrap_or(false)
}

/// Makes `options` contain `flag` and neither `opposite` nor its recursive
/// form (`rsuid`, `rrw`: applied after the mount, they would undo `flag`);
/// reports what changed.
fn ensure_flag(
    options: &mut Vec<String>,
    flag: &str,
    opposite: &str,
    rule: &'static str,
    field: &str,
    report: &mut Report,
) {
    let recursive = format!("r{opposite}");
    options.retain(|o| {
        let undoes = o == opposite || *o == recursive;
        if undoes {
            report.remove(rule, field, o.as_str());
        }
        !undoes
    });
    if !options.iter().any(|o| o == flag) {
        options.push(flag.to_string());
        report.add(rule, field, flag);
    }
}

/// nosuid/nodev on binds and read-only sysfs/cgroupfs (default and strict).
pub fn restrict(spec: &mut Value, report: &mut Report) -> Result<(), HardenError> {
    let root = spec::root(spec)?;
    for (i, m) in spec::objects(root.get_mut("mounts"), "mounts")?
        .into_iter()
        .enumerate()
    {
        let dest = m
            .get("destination")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let field = format!("mounts[{i}] {dest} options");
        let mut options = spec::strings(m.get("options"), &format!("mounts[{i}].options"))?;
        let before = options.clone();
        if is_bind(m, &options) {
            ensure_flag(&mut options, "nosuid", "suid", "mounts", &field, report);
            let source = m.get("source").and_then(Value::as_str).unwrap_or("");
            if !is_device_source(source) {
                ensure_flag(&mut options, "nodev", "dev", "mounts", &field, report);
            }
        } else if matches!(mount_type(m), "sysfs" | "cgroup" | "cgroup2") {
            ensure_flag(&mut options, "ro", "rw", "mounts", &field, report);
        }
        if options != before {
            m.insert("options".into(), options.into());
        }
    }
    Ok(())
}

/// Strict: read-only rootfs, and noexec tmpfs on /tmp and /dev/shm.
pub fn strict(spec: &mut Value, policy: &Policy, report: &mut Report) -> Result<(), HardenError> {
    let root_obj = spec::root(spec)?;
    let rootfs = spec::child(root_obj, "root", "root")?;
    if rootfs.get("readonly") != Some(&Value::Bool(true)) {
        report.set(
            "rootfs",
            "root.readonly",
            rootfs.get("readonly").map(spec::show),
            Some("true".into()),
        );
        rootfs.insert("readonly".into(), Value::Bool(true));
    }
    let root_obj = spec::root(spec)?;
    for target in ["/tmp", "/dev/shm"] {
        let mut found = false;
        for (i, m) in spec::objects(root_obj.get_mut("mounts"), "mounts")?
            .into_iter()
            .enumerate()
        {
            let dest = m.get("destination").and_then(Value::as_str).unwrap_or("");
            if normalize(dest).ok().as_deref() != Some(target) {
                continue;
            }
            found = true;
            let field = format!("mounts[{i}] {target} options");
            let mut options = spec::strings(m.get("options"), &format!("mounts[{i}].options"))?;
            for (flag, opposite) in [("nosuid", "suid"), ("nodev", "dev"), ("noexec", "exec")] {
                ensure_flag(&mut options, flag, opposite, "tmpfs", &field, report);
            }
            m.insert("options".into(), options.into());
        }
        if !found {
            let mount = json!({
                "destination": target,
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "nodev", "noexec", "mode=1777",
                            format!("size={}", policy.strict_tmpfs_size)],
            });
            report.add(
                "tmpfs",
                "mounts",
                format!("{target} tmpfs nosuid,nodev,noexec"),
            );
            let list = root_obj
                .entry("mounts")
                .or_insert_with(|| Value::Array(Vec::new()));
            if list.is_null() {
                *list = Value::Array(Vec::new());
            }
            list.as_array_mut()
                .ok_or_else(|| HardenError("mounts: expected a list".into()))?
                .push(mount);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::policy::Level;
    use crate::runtime::Backend;
    use serde_json::json;

    fn report() -> Report {
        Report::new(Level::Default, Backend::Runc)
    }

    #[test]
    fn bad_destinations_are_refused_with_the_reason() {
        let cases = [
            (
                json!({"destination": "data", "type": "bind", "source": "/x"}),
                "absolute",
            ),
            (json!({"destination": "/data/../etc", "type": "bind"}), ".."),
            (
                json!({"destination": "/proc", "type": "tmpfs"}),
                "over /proc",
            ),
            (
                json!({"destination": "//proc/", "type": "bind", "source": "/x"}),
                "over /proc",
            ),
            (json!({"destination": "/sys", "type": "tmpfs"}), "over /sys"),
            (
                json!({"destination": "/proc/sysrq-trigger", "type": "bind", "source": "/x"}),
                "under /proc",
            ),
            (
                json!({"destination": "/", "type": "bind", "source": "/"}),
                "root",
            ),
        ];
        for (m, why) in cases {
            let mut s = json!({"mounts": [{"destination": "/proc", "type": "proc"}, m]});
            let e = check(&mut s, &Policy::default(), false).unwrap_err();
            assert!(e.0.contains("mounts[1]") && e.0.contains(why), "{why}: {e}");
        }
        let mut ok = json!({"mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs"},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup"},
            {"destination": "/proc/meminfo", "type": "bind", "source": "/var/lib/lxcfs/proc/meminfo"},
            {"destination": "/data/./x/", "type": "bind", "source": "/srv"},
            {"destination": "/host/proc", "type": "bind", "source": "/proc", "options": ["rbind", "ro"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm"}
        ]});
        check(&mut ok, &Policy::default(), false).unwrap();
        let mut disk =
            json!({"mounts": [{"destination": "/d", "type": "ext4", "source": "/dev/sda1"}]});
        let extra = Policy {
            extra_mount_types: vec!["ext4".into()],
            ..Policy::default()
        };
        check(&mut disk, &extra, false).unwrap();
        check(&mut disk, &Policy::default(), true).unwrap();
    }

    #[test]
    fn binds_get_nosuid_and_nodev_except_devices() {
        let mut s = json!({"mounts": [
            {"destination": "/data", "source": "/srv", "options": ["rbind", "rw", "suid"]},
            {"destination": "/dev/fuse", "type": "bind", "source": "/dev/fuse", "options": ["bind"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["exec"]},
        ]});
        let mut r = report();
        restrict(&mut s, &mut r).unwrap();
        assert_eq!(
            s["mounts"][0]["options"],
            json!(["rbind", "rw", "nosuid", "nodev"])
        );
        assert_eq!(s["mounts"][1]["options"], json!(["bind", "nosuid"]));
        assert_eq!(
            s["mounts"][2]["options"],
            json!(["exec"]),
            "not a bind: untouched"
        );
        assert_eq!(r.changes.len(), 4, "{:?}", r.changes);
    }

    #[test]
    fn every_undoing_option_goes_and_a_second_pass_changes_nothing() {
        let mut s = json!({"mounts": [
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro", "rw", "rw", "rrw"]},
            {"destination": "/d", "type": "bind", "source": "/srv",
             "options": ["rbind", "nosuid", "suid", "suid", "rsuid", "rdev"]},
        ]});
        let mut r = report();
        restrict(&mut s, &mut r).unwrap();
        assert_eq!(s["mounts"][0]["options"], json!(["ro"]));
        assert_eq!(
            s["mounts"][1]["options"],
            json!(["rbind", "nosuid", "nodev"])
        );
        let mut again = report();
        restrict(&mut s, &mut again).unwrap();
        assert!(again.changes.is_empty(), "{:?}", again.changes);
    }

    #[test]
    fn sysfs_and_cgroupfs_become_read_only() {
        let mut s = json!({"mounts": [
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "rw"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup", "options": ["ro"]},
        ]});
        let mut r = report();
        restrict(&mut s, &mut r).unwrap();
        assert_eq!(s["mounts"][0]["options"], json!(["nosuid", "ro"]));
        assert_eq!(s["mounts"][1]["options"], json!(["ro"]));
        assert_eq!(r.changes.len(), 2);
    }

    #[test]
    fn strict_makes_root_read_only_and_tmp_shm_noexec() {
        let mut s = json!({"root": {"path": "rootfs"}, "mounts": [
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["exec", "mode=1777"]},
        ]});
        let mut r = report();
        strict(&mut s, &Policy::default(), &mut r).unwrap();
        assert_eq!(s["root"]["readonly"], true);
        assert_eq!(
            s["mounts"][0]["options"],
            json!(["mode=1777", "nosuid", "nodev", "noexec"])
        );
        assert_eq!(s["mounts"][1]["destination"], "/tmp");
        assert_eq!(
            s["mounts"][1]["options"],
            json!(["nosuid", "nodev", "noexec", "mode=1777", "size=64m"])
        );
        let mut again = report();
        strict(&mut s, &Policy::default(), &mut again).unwrap();
        assert!(again.changes.is_empty(), "{:?}", again.changes);
    }
}
