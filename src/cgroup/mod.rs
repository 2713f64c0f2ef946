//! A container's cgroup on the host, found from its spec's `cgroupsPath`:
//! statistics for Stats, limits for Update where the runtime has no
//! `update` (runsc), and OOM notifications. Both cgroup v1 (one hierarchy
//! per controller) and the unified v2 hierarchy.

pub mod oom;
pub mod parents;
pub mod stats;

use std::path::{Path, PathBuf};

use serde_json::Value;

message_error!(
    /// A cgroup file that cannot be read or written; names the file.
    CgroupError
);

/// Where cgroup filesystems are mounted.
const ROOT: &str = "/sys/fs/cgroup";
/// The host's huge page sizes (`hugepages-2048kB`, ...): the hugetlb files
/// a cgroup has.
const HUGEPAGES: &str = "/sys/kernel/mm/hugepages";
/// Block device names by major:minor, for blkio entries.
const PARTITIONS: &str = "/proc/partitions";

/// A container's cgroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cgroup {
    /// The path below each hierarchy's root, without a leading slash.
    pub path: String,
    /// The host uses the unified (v2) hierarchy.
    pub unified: bool,
    root: PathBuf,
    /// Host files the statistics read besides the cgroup's (tests point
    /// them at fakes).
    hugepages: PathBuf,
    partitions: PathBuf,
}

/// `slice:prefix:name` (systemd driver) -> `a.slice/a-b.slice/prefix-name.scope`.
fn systemd_path(spec_path: &str) -> Option<String> {
    let mut parts = spec_path.splitn(3, ':');
    let (slice, prefix, name) = (parts.next()?, parts.next()?, parts.next()?);
    let mut dirs = Vec::new();
    if !slice.is_empty() && slice != "-.slice" {
        let base = slice.strip_suffix(".slice")?;
        let mut acc = String::new();
        for part in base.split('-') {
            if !acc.is_empty() {
                acc.push('-');
            }
            acc.push_str(part);
            dirs.push(format!("{acc}.slice"));
        }
    }
    let unit = if name.ends_with(".slice") {
        name.to_string()
    } else if prefix.is_empty() {
        format!("{name}.scope")
    } else {
        format!("{prefix}-{name}.scope")
    };
    dirs.push(unit);
    Some(dirs.join("/"))
}

/// Whether a spec's cgroupsPath is written for the systemd driver
/// (`slice:prefix:name`, as Docker and nerdctl write it on systemd hosts
/// whatever the runtime), not a cgroupfs path.
pub fn systemd_form(spec: &Value) -> bool {
    spec.pointer("/linux/cgroupsPath")
        .and_then(Value::as_str)
        .is_some_and(|p| {
            !p.starts_with('/') && p.matches(':').count() == 2 && systemd_path(p).is_some()
        })
}

/// Whether systemd is this host's init (what runc and crun check too).
pub fn systemd_booted() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

impl Cgroup {
    /// The cgroup of a spec, under `root` (normally /sys/fs/cgroup); None
    /// when the spec names none.
    pub fn at(root: &Path, spec: &Value, systemd: bool) -> Option<Cgroup> {
        let raw = spec.pointer("/linux/cgroupsPath")?.as_str()?;
        let path = if systemd {
            systemd_path(raw)?
        } else {
            raw.trim_start_matches('/').to_string()
        };
        if path.is_empty() || path.split('/').any(|c| c == "..") {
            return None;
        }
        Some(Cgroup {
            path,
            unified: root.join("cgroup.controllers").exists(),
            root: root.to_path_buf(),
            hugepages: PathBuf::from(HUGEPAGES),
            partitions: PathBuf::from(PARTITIONS),
        })
    }

    /// The cgroup of a spec on this host.
    pub fn of_spec(spec: &Value, systemd: bool) -> Option<Cgroup> {
        Self::at(Path::new(ROOT), spec, systemd)
    }

    /// A control file: `v1` under the controller's hierarchy, or `v2` in
    /// the unified one.
    pub fn file(&self, controller: &str, v1: &str, v2: &str) -> PathBuf {
        if self.unified {
            self.root.join(&self.path).join(v2)
        } else {
            self.root.join(controller).join(&self.path).join(v1)
        }
    }

    /// The cgroup is there on the host (in v1: under one of the memory,
    /// cpuacct or pids hierarchies).
    pub fn exists(&self) -> bool {
        ["memory", "cpuacct", "pids"]
            .iter()
            .any(|c| self.file(c, "cgroup.procs", "cgroup.procs").is_file())
    }

    /// Removes this cgroup and the cgroups below it from every hierarchy,
    /// deepest first, where no process is left in them (rmdir refuses a
    /// busy one, which stays). For what a failed start leaves: CRIU makes a
    /// restored container's cgroups itself, and crun does not remove them
    /// when the restore fails (the next create of that id then fails).
    /// Returns the directories removed.
    pub fn remove_if_empty(&self) -> Vec<PathBuf> {
        let tops: Vec<PathBuf> = if self.unified {
            vec![self.root.join(&self.path)]
        } else {
            // One directory per hierarchy: the symlinks (cpu -> cpu,cpuacct)
            // name a hierarchy twice.
            std::fs::read_dir(&self.root)
                .map(|rd| {
                    rd.flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path().join(&self.path))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut removed = Vec::new();
        for top in tops {
            remove_tree(&top, &mut removed);
        }
        removed
    }

    fn write(&self, controller: &str, v1: &str, v2: &str, value: &str) -> Result<(), CgroupError> {
        let f = self.file(controller, v1, v2);
        std::fs::write(&f, value)
            .map_err(|e| CgroupError(format!("writing {value:?} to {}: {e}", f.display())))
    }

    /// Applies the limits of a JSON `LinuxResources` the cgroup files take
    /// directly: memory, cpu shares/quota/period, pids.
    pub fn apply(&self, resources: &Value) -> Result<(), CgroupError> {
        let num = |ptr: &str| resources.pointer(ptr).and_then(Value::as_i64);
        // 0 means "leave as is", as in runc.
        if let Some(limit) = num("/memory/limit").filter(|l| *l != 0) {
            let v2 = if limit < 0 {
                "max".to_string()
            } else {
                limit.to_string()
            };
            let v1 = if limit < 0 {
                "-1".to_string()
            } else {
                limit.to_string()
            };
            if self.unified {
                self.write("memory", "", "memory.max", &v2)?;
            } else {
                // memory+swap may not be below memory: raise it first.
                let memsw = self.file("memory", "memory.memsw.limit_in_bytes", "");
                let current = read_u64(&memsw);
                if memsw.exists() && (limit < 0 || limit as u64 > current) {
                    self.write("memory", "memory.memsw.limit_in_bytes", "", &v1)?;
                }
                self.write("memory", "memory.limit_in_bytes", "", &v1)?;
            }
        }
        if let Some(shares) = num("/cpu/shares").filter(|s| *s > 0) {
            if self.unified {
                // The runc conversion of shares (2..262144) to weight (1..10000).
                let weight = 1 + ((shares.clamp(2, 262_144) - 2) * 9999) / 262_142;
                self.write("cpu", "", "cpu.weight", &weight.to_string())?;
            } else {
                self.write("cpu", "cpu.shares", "", &shares.to_string())?;
            }
        }
        let quota = num("/cpu/quota");
        let period = num("/cpu/period").filter(|p| *p > 0);
        if quota.is_some() || period.is_some() {
            if self.unified {
                // Keep what the update does not name.
                let current =
                    std::fs::read_to_string(self.file("cpu", "", "cpu.max")).unwrap_or_default();
                let mut cur = current.split_whitespace();
                let cur_q = cur.next().unwrap_or("max").to_string();
                let cur_p = cur.next().unwrap_or("100000").to_string();
                let q = match quota {
                    Some(q) if q > 0 => q.to_string(),
                    Some(_) => "max".to_string(),
                    None => cur_q,
                };
                let p = period.map_or(cur_p, |p| p.to_string());
                self.write("cpu", "", "cpu.max", &format!("{q} {p}"))?;
            } else {
                if let Some(p) = period {
                    self.write("cpu", "cpu.cfs_period_us", "", &p.to_string())?;
                }
                if let Some(q) = quota {
                    self.write("cpu", "cpu.cfs_quota_us", "", &q.to_string())?;
                }
            }
        }
        // 0 means "leave as is", as in runc; negative means unlimited.
        if let Some(limit) = num("/pids/limit").filter(|l| *l != 0) {
            let v = if limit > 0 {
                limit.to_string()
            } else {
                "max".to_string()
            };
            self.write("pids", "pids.max", "pids.max", &v)?;
        }
        Ok(())
    }
}

/// rmdir of `dir`'s cgroup subdirectories, deepest first, then of `dir`
/// (a cgroup directory holds only control files, which go with it).
fn remove_tree(dir: &Path, removed: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path(), removed);
        }
    }
    if std::fs::remove_dir(dir).is_ok() {
        removed.push(dir.to_path_buf());
    }
}

/// Moves process `pid` into the cgroup at `path` (relative to the cgroup
/// root `root`, as a client names it: `/containerd/shim`): on v2 the one
/// hierarchy, on v1 every hierarchy that has it (at least one must).
pub fn join(root: &Path, path: &str, pid: u32) -> Result<(), CgroupError> {
    let rel = Path::new(path.trim_start_matches('/'));
    if rel.as_os_str().is_empty()
        || rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
    {
        return Err(CgroupError(format!(
            "{path:?} is not a cgroup path (absolute, no . or ..)"
        )));
    }
    let write = |dir: &Path| {
        std::fs::write(dir.join("cgroup.procs"), pid.to_string())
            .map_err(|e| CgroupError(format!("{}: {e}", dir.join("cgroup.procs").display())))
    };
    if root.join("cgroup.controllers").exists() {
        let dir = root.join(rel);
        if !dir.is_dir() {
            return Err(CgroupError(format!("{} does not exist", dir.display())));
        }
        return write(&dir);
    }
    let mut joined = 0;
    let hierarchies =
        std::fs::read_dir(root).map_err(|e| CgroupError(format!("{}: {e}", root.display())))?;
    for h in hierarchies.flatten() {
        // cpu and cpuacct are links to cpu,cpuacct: each hierarchy once.
        if h.file_type().map(|t| !t.is_dir()).unwrap_or(true) {
            continue;
        }
        let dir = h.path().join(rel);
        if dir.is_dir() {
            write(&dir)?;
            joined += 1;
        }
    }
    if joined == 0 {
        return Err(CgroupError(format!(
            "no cgroup v1 hierarchy under {} has it",
            root.display()
        )));
    }
    Ok(())
}

/// The host mounts the unified (v2) hierarchy.
pub fn host_unified() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

/// Reads a cgroup file as one number ("max" = 0, absent = 0).
pub fn read_u64(path: &Path) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// Reads `key value` lines (memory.stat, cpu.stat, memory.events); a line
/// that is not one key and one number is skipped.
pub fn read_keyed(path: &Path) -> std::collections::HashMap<String, u64> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let (k, v) = (words.next()?, words.next()?);
            if words.next().is_some() {
                return None;
            }
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// v1: in every hierarchy, the container's cgroup and those below it
    /// go where empty; a busy one (here: a directory with a file, which
    /// rmdir refuses as it refuses a cgroup with a process) stays, and so
    /// do the namespace's parent and its other containers.
    #[test]
    fn remove_if_empty_takes_the_container_cgroups_only() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        for d in [
            "memory/ns/box/.proxy-crun",
            "pids/ns/box",
            "pids/ns/other",
            "freezer/ns/box/busy",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        std::fs::write(r.join("freezer/ns/box/busy/tasks"), "7").unwrap();
        std::os::unix::fs::symlink(r.join("memory"), r.join("memory-link")).unwrap();
        let cg = Cgroup::at(r, &json!({"linux": {"cgroupsPath": "/ns/box"}}), false).unwrap();
        let mut removed = cg.remove_if_empty();
        removed.sort();
        assert_eq!(
            removed,
            [
                r.join("memory/ns/box"),
                r.join("memory/ns/box/.proxy-crun"),
                r.join("pids/ns/box"),
            ]
        );
        assert!(r.join("freezer/ns/box/busy").is_dir());
        assert!(r.join("pids/ns/other").is_dir() && r.join("memory/ns").is_dir());
    }

    #[test]
    fn join_writes_the_pid_in_each_hierarchy_that_has_the_cgroup() {
        // v2: one hierarchy.
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.controllers"), "cpu memory").unwrap();
        std::fs::create_dir_all(v2.path().join("containerd/shim")).unwrap();
        join(v2.path(), "/containerd/shim", 42).unwrap();
        let procs = std::fs::read_to_string(v2.path().join("containerd/shim/cgroup.procs"));
        assert_eq!(procs.unwrap(), "42");
        let e = join(v2.path(), "/containerd/none", 42).unwrap_err();
        assert!(e.0.contains("does not exist"), "{e}");
        for bad in ["", "/", "/a/../b", "a/./b"] {
            assert!(join(v2.path(), bad, 42).is_err(), "{bad:?}");
        }
        // v1: every hierarchy that has it; links (cpu -> cpu,cpuacct) once.
        let v1 = tempfile::tempdir().unwrap();
        for h in [
            "memory/containerd/shim",
            "cpu,cpuacct/containerd/shim",
            "pids",
        ] {
            std::fs::create_dir_all(v1.path().join(h)).unwrap();
        }
        std::os::unix::fs::symlink("cpu,cpuacct", v1.path().join("cpu")).unwrap();
        join(v1.path(), "containerd/shim", 7).unwrap();
        for h in ["memory", "cpu,cpuacct"] {
            let f = v1.path().join(h).join("containerd/shim/cgroup.procs");
            assert_eq!(std::fs::read_to_string(f).unwrap(), "7");
        }
        assert!(join(v1.path(), "nowhere", 7).is_err());
    }

    #[test]
    fn paths_from_both_drivers() {
        assert_eq!(
            systemd_path("system.slice:docker:abc").unwrap(),
            "system.slice/docker-abc.scope"
        );
        let form = |p: &str| systemd_form(&serde_json::json!({"linux": {"cgroupsPath": p}}));
        assert!(form("system.slice:docker:abc"));
        assert!(form(":nerdctl:abc"));
        assert!(!form("/default/abc"));
        assert!(!form("/a:b:c"));
        assert!(!form("default/abc"));
        assert!(!form("a.scope:b:c:d"));
        assert_eq!(
            systemd_path("kubepods-besteffort.slice:cri-containerd:123").unwrap(),
            "kubepods.slice/kubepods-besteffort.slice/cri-containerd-123.scope"
        );
        let root = tempfile::tempdir().unwrap();
        let spec = json!({"linux": {"cgroupsPath": "/default/box"}});
        let cg = Cgroup::at(root.path(), &spec, false).unwrap();
        assert_eq!(cg.path, "default/box");
        assert!(!cg.unified);
        assert_eq!(
            cg.file("pids", "pids.max", "pids.max"),
            root.path().join("pids/default/box/pids.max")
        );
        std::fs::write(root.path().join("cgroup.controllers"), "cpu memory pids").unwrap();
        let cg = Cgroup::at(root.path(), &spec, false).unwrap();
        assert_eq!(
            cg.file("memory", "memory.limit_in_bytes", "memory.max"),
            root.path().join("default/box/memory.max")
        );
        assert!(Cgroup::at(
            root.path(),
            &json!({"linux": {"cgroupsPath": "/a/../../etc"}}),
            false
        )
        .is_none());
        assert!(Cgroup::at(root.path(), &json!({}), false).is_none());
    }

    #[test]
    fn exists_looks_for_the_cgroup_on_the_host() {
        let root = tempfile::tempdir().unwrap();
        let spec = json!({"linux": {"cgroupsPath": "/ns/c"}});
        let cg = Cgroup::at(root.path(), &spec, false).unwrap();
        assert!(!cg.exists());
        std::fs::create_dir_all(root.path().join("pids/ns/c")).unwrap();
        std::fs::write(root.path().join("pids/ns/c/cgroup.procs"), "").unwrap();
        assert!(cg.exists());
        std::fs::write(root.path().join("cgroup.controllers"), "").unwrap();
        let cg = Cgroup::at(root.path(), &spec, false).unwrap();
        assert!(!cg.exists());
        std::fs::create_dir_all(root.path().join("ns/c")).unwrap();
        std::fs::write(root.path().join("ns/c/cgroup.procs"), "").unwrap();
        assert!(cg.exists());
    }

    #[test]
    fn apply_writes_v1_and_v2_files() {
        let root = tempfile::tempdir().unwrap();
        for c in ["memory", "cpu", "pids"] {
            std::fs::create_dir_all(root.path().join(c).join("ns/c")).unwrap();
        }
        let spec = json!({"linux": {"cgroupsPath": "ns/c"}});
        let cg = Cgroup::at(root.path(), &spec, false).unwrap();
        cg.apply(&json!({"memory": {"limit": 1048576}, "cpu": {"shares": 512, "quota": 50000, "period": 100000}, "pids": {"limit": 64}})).unwrap();
        let r = |p: &str| std::fs::read_to_string(root.path().join(p)).unwrap();
        assert_eq!(r("memory/ns/c/memory.limit_in_bytes"), "1048576");
        assert_eq!(r("cpu/ns/c/cpu.shares"), "512");
        assert_eq!(r("cpu/ns/c/cpu.cfs_quota_us"), "50000");
        assert_eq!(r("pids/ns/c/pids.max"), "64");

        let root2 = tempfile::tempdir().unwrap();
        std::fs::write(root2.path().join("cgroup.controllers"), "").unwrap();
        std::fs::create_dir_all(root2.path().join("ns/c")).unwrap();
        let cg = Cgroup::at(root2.path(), &spec, false).unwrap();
        std::fs::write(root2.path().join("ns/c/cpu.max"), "50000 200000\n").unwrap();
        std::fs::write(root2.path().join("ns/c/pids.max"), "64\n").unwrap();
        cg.apply(&json!({"memory": {"limit": -1}, "cpu": {"quota": 20000}, "pids": {"limit": 0}}))
            .unwrap();
        let r = |p: &str| std::fs::read_to_string(root2.path().join(p)).unwrap();
        assert_eq!(r("ns/c/memory.max"), "max");
        assert_eq!(r("ns/c/cpu.max"), "20000 200000", "the period is kept");
        assert_eq!(r("ns/c/pids.max"), "64\n", "0 leaves the limit as is");
        cg.apply(&json!({"pids": {"limit": -1}, "memory": {"limit": 0}}))
            .unwrap();
        assert_eq!(r("ns/c/pids.max"), "max");
        assert_eq!(
            r("ns/c/memory.max"),
            "max",
            "0 leaves the memory limit as is"
        );
        let e = Cgroup::at(tempfile::tempdir().unwrap().path(), &spec, false)
            .unwrap()
            .apply(&json!({"pids": {"limit": 1}}))
            .unwrap_err();
        assert!(e.0.contains("pids.max"), "{e}");
    }
}
