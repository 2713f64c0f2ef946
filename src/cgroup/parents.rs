//! The parents of a container's cgroup, made before the runtime runs so
//! that it finds them there and leaves them when the container goes.
//!
//! containerd gives every container of a namespace a cgroupfs path
//! `/<namespace>/<id>`: the parent is shared by all of them. runc and crun
//! create a missing parent but remove only the container's own cgroup.
//! runsc on a unified (v2) hierarchy records every directory it creates,
//! parents included, and removes them all when the container goes
//! (see [`crate::runtime::Backend::removes_created_cgroup_parents`]): with
//! a second container still in the parent, its delete fails. A parent that
//! already exists when runsc creates the container is not its own.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::{CgroupError, ROOT};

/// On a unified (v2) hierarchy mounted at `root`: creates the parents of the
/// spec's cgroupfs `cgroupsPath` that do not exist yet, never the
/// container's own cgroup. As runc does, each parent gets the controllers
/// the deepest existing ancestor offers enabled in its
/// `cgroup.subtree_control` (and so does that ancestor), so the container's
/// cgroup can have its memory, cpu, io and pids limits; a controller that
/// cannot be enabled is left to the runtime, which fails the create if it
/// needs it.
///
/// Returns the directories made (empty: nothing to do). Nothing is done
/// on a v1 host (runsc removes only the container's own directory there),
/// for a spec without a path, a relative one (placed by the runtime below
/// its own cgroup), a systemd `slice:prefix:name`, or a path directly under
/// the root. Nothing here is ever removed: other containers may use it.
pub fn create_parents_at(root: &Path, spec: &Value) -> Result<Vec<PathBuf>, CgroupError> {
    if !root.join("cgroup.controllers").is_file() {
        return Ok(Vec::new());
    }
    let Some(path) = spec
        .pointer("/linux/cgroupsPath")
        .and_then(Value::as_str)
        .and_then(|p| p.strip_prefix('/'))
    else {
        return Ok(Vec::new());
    };
    let parts: Vec<&str> = path
        .split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .collect();
    if parts.contains(&"..") {
        return Ok(Vec::new());
    }
    let Some((_, parents)) = parts.split_last() else {
        return Ok(Vec::new());
    };
    let mut dir = root.to_path_buf();
    let mut missing = parents;
    while let Some((c, rest)) = missing.split_first() {
        if !dir.join(c).is_dir() {
            break;
        }
        dir.push(c);
        missing = rest;
    }
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    // `dir` is the deepest ancestor there is: what it offers its children
    // is what its own parent enabled for it.
    let offered_file = dir.join("cgroup.controllers");
    let offered = std::fs::read_to_string(&offered_file)
        .map_err(|e| CgroupError(format!("reading {}: {e}", offered_file.display())))?;
    let controllers: Vec<&str> = offered.split_whitespace().collect();
    enable(&dir, &controllers);
    let mut made = Vec::new();
    for c in missing {
        dir.push(c);
        match std::fs::create_dir(&dir) {
            Ok(()) => made.push(dir.clone()),
            // Another container's create made it meanwhile.
            Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => {}
            Err(e) => {
                return Err(CgroupError(format!(
                    "creating cgroup {}: {e}",
                    dir.display()
                )))
            }
        }
        enable(&dir, &controllers);
    }
    Ok(made)
}

/// [`create_parents_at`] on this host's /sys/fs/cgroup.
pub fn create_parents(spec: &Value) -> Result<Vec<PathBuf>, CgroupError> {
    create_parents_at(Path::new(ROOT), spec)
}

/// Enables `controllers` for the children of `dir`: all in one write, else
/// one by one, skipping those the kernel refuses (not offered here, or a
/// cgroup with processes of its own).
fn enable(dir: &Path, controllers: &[&str]) {
    if controllers.is_empty() {
        return;
    }
    let file = dir.join("cgroup.subtree_control");
    let all: Vec<String> = controllers.iter().map(|c| format!("+{c}")).collect();
    if std::fs::write(&file, all.join(" ")).is_ok() {
        return;
    }
    for c in &all {
        if let Err(e) = std::fs::write(&file, c) {
            log::debug!("{}: cannot enable {c}: {e}", file.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(path: &str) -> Value {
        json!({"linux": {"cgroupsPath": path}})
    }

    fn read(p: PathBuf) -> String {
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    #[test]
    fn a_missing_namespace_parent_is_made_with_controllers_not_the_leaf() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::write(r.join("cgroup.controllers"), "cpuset cpu io memory pids\n").unwrap();
        let made = create_parents_at(r, &spec("/t-ns/box")).unwrap();
        assert_eq!(made, vec![r.join("t-ns")]);
        assert!(!r.join("t-ns/box").exists(), "the leaf is the runtime's");
        let want = "+cpuset +cpu +io +memory +pids";
        assert_eq!(read(r.join("cgroup.subtree_control")), want);
        assert_eq!(read(r.join("t-ns/cgroup.subtree_control")), want);

        // The second container of the namespace finds the parent there:
        // nothing is made or written.
        std::fs::remove_file(r.join("t-ns/cgroup.subtree_control")).unwrap();
        assert!(create_parents_at(r, &spec("/t-ns/short"))
            .unwrap()
            .is_empty());
        assert!(!r.join("t-ns/cgroup.subtree_control").exists());
    }

    #[test]
    fn deeper_paths_take_what_the_deepest_existing_ancestor_offers() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::write(r.join("cgroup.controllers"), "cpu io memory pids").unwrap();
        std::fs::create_dir(r.join("a")).unwrap();
        std::fs::write(r.join("a/cgroup.controllers"), "memory pids\n").unwrap();
        let made = create_parents_at(r, &spec("//a/./b/c/leaf")).unwrap();
        assert_eq!(made, vec![r.join("a/b"), r.join("a/b/c")]);
        for d in ["a", "a/b", "a/b/c"] {
            assert_eq!(
                read(r.join(d).join("cgroup.subtree_control")),
                "+memory +pids"
            );
        }
        assert!(!r.join("cgroup.subtree_control").exists());
        assert!(!r.join("a/b/c/leaf").exists());
    }

    #[test]
    fn nothing_is_done_where_the_runtime_keeps_to_its_own_cgroup() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        // cgroup v1: no cgroup.controllers at the root.
        assert!(create_parents_at(r, &spec("/ns/box")).unwrap().is_empty());
        assert!(!r.join("ns").exists());
        std::fs::write(r.join("cgroup.controllers"), "memory").unwrap();
        for s in [
            json!({}),
            spec("box"),
            spec("ns/box"),
            spec("/box"),
            spec("system.slice:nucleus:box"),
            spec("/ns/../box"),
        ] {
            assert!(create_parents_at(r, &s).unwrap().is_empty(), "{s}");
        }
        assert_eq!(
            std::fs::read_dir(r).unwrap().count(),
            1,
            "only cgroup.controllers"
        );
    }

    #[test]
    fn a_parent_that_cannot_be_made_is_an_error_naming_it() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        std::fs::write(r.join("cgroup.controllers"), "memory").unwrap();
        // A file where the parent should be.
        std::fs::write(r.join("ns"), "").unwrap();
        let e = create_parents_at(r, &spec("/ns/box")).unwrap_err();
        assert!(e.0.contains(&r.join("ns").display().to_string()), "{e}");
    }
}
