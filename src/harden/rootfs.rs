//! Breakout patterns in the container's root filesystem, checked at Create
//! once the rootfs is mounted and before the runtime mounts anything into
//! it: whatever the runtime's patch level, a rootfs that would redirect the
//! runtime's own mounts is refused, naming the path and the advisory.
//!
//! - `/proc`, `/sys` or `/dev` a symlink or not a directory: the runtime
//!   would mount procfs, sysfs or the /dev tmpfs where the link points.
//! - With no mount of its own at /dev, a device file the runtime binds
//!   over or from (`/dev/null` for masked paths, `/dev/console`, `/dev/ptmx`,
//!   `/dev/pts/ptmx`, …) a symlink, or `/dev/null` not a character device:
//!   runc up to 1.2.7 / 1.3.2 would bind the link's target over a masked
//!   path, writable (CVE-2025-31133, CVE-2025-52565).
//! - The parent of a masked or read-only path outside /proc and /sys a
//!   symlink: the mask would land elsewhere.
//! - A mount destination that reaches /proc, /sys or /dev through a symlink
//!   in the image: a volume mounted over kernel interfaces
//!   (CVE-2019-19921, CVE-2025-52881).
//! - A bind source that reaches /proc through a symlink, or one inside the
//!   rootfs that leaves it through a symlink.
//!
//! [`walk`] resolves a path inside the rootfs the way a runtime does (as if
//! the rootfs were `/`); `crate::entrypoint` uses it too.

use std::ffi::OsStr;
use std::fs::Metadata;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileTypeExt;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use super::HardenError;

/// Symlinks followed in one lookup before giving up (as the kernel's 40).
const MAX_LINKS: usize = 40;

/// Where the kernel's own filesystems go.
const KERNEL_DIRS: [&str; 3] = ["/proc", "/sys", "/dev"];

/// Device files a runtime creates, binds over or binds from in /dev.
const DEVICE_FILES: [&str; 10] = [
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/console",
    "/dev/ptmx",
    "/dev/pts",
    "/dev/pts/ptmx",
];

/// How a walk ended.
#[derive(Debug)]
pub enum End {
    /// The path exists: what it is.
    Found(Metadata),
    /// A component does not exist, or one before the last is not a directory.
    Missing,
    /// The walk reached a path `stop` claimed (under a mount of the spec):
    /// what lies beyond is not the image's.
    Stopped,
    /// Unreadable, or too many links.
    Unknown,
}

/// A path resolved inside a rootfs.
#[derive(Debug)]
pub struct Walk {
    /// The container path reached (where it stopped, for [`End::Stopped`]).
    pub at: PathBuf,
    /// Every symlink followed: its container path and its target.
    pub links: Vec<(PathBuf, PathBuf)>,
    pub end: End,
}

/// The components of `p`, `..` kept.
fn components(p: &Path) -> Vec<Vec<u8>> {
    p.components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.as_bytes().to_vec()),
            Component::ParentDir => Some(b"..".to_vec()),
            _ => None,
        })
        .collect()
}

/// Resolves container path `path` under `rootfs`, following symlinks as if
/// `rootfs` were `/` (`..` stops at its root). Before each component it
/// asks `stop` whether the path reached is beyond the image (a mount).
pub fn walk(rootfs: &Path, path: &Path, stop: impl Fn(&Path) -> bool) -> Walk {
    let mut todo = components(path);
    todo.reverse();
    let mut at = PathBuf::from("/");
    let mut links = Vec::new();
    let end = loop {
        let Some(name) = todo.pop() else {
            match std::fs::symlink_metadata(rootfs) {
                Ok(m) => break End::Found(m),
                Err(_) => break End::Unknown,
            }
        };
        if name == b".." {
            at.pop();
            continue;
        }
        let next = at.join(OsStr::from_bytes(&name));
        if stop(&next) {
            at = next;
            break End::Stopped;
        }
        let host = rootfs.join(next.strip_prefix("/").unwrap_or(&next));
        let meta = match std::fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                at = next;
                break End::Missing;
            }
            Err(_) => break End::Unknown,
        };
        if meta.file_type().is_symlink() {
            let Ok(target) = std::fs::read_link(&host) else {
                break End::Unknown;
            };
            if links.len() >= MAX_LINKS {
                break End::Unknown;
            }
            if target.is_absolute() {
                at = PathBuf::from("/");
            }
            let mut more = components(&target);
            more.reverse();
            todo.extend(more);
            links.push((next, target));
            continue;
        }
        at = next;
        if todo.is_empty() {
            break End::Found(meta);
        }
        if !meta.is_dir() {
            break End::Missing;
        }
    };
    Walk { at, links, end }
}

/// `p` as a clean absolute container path (`..` folded, stopping at `/`).
fn clean(p: &str) -> PathBuf {
    clean_from(Path::new("/"), p)
}

/// `p` made absolute against `base`, with `.` and `..` folded lexically
/// (as a path inside the container; `..` stops at its root).
pub fn clean_from(base: &Path, p: &str) -> PathBuf {
    let mut out = if p.starts_with('/') {
        PathBuf::from("/")
    } else {
        base.to_path_buf()
    };
    for c in Path::new(p).components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            _ => {}
        }
    }
    out
}

/// The kernel directory (/proc, /sys, /dev) `p` is in, if any.
fn kernel_dir(p: &Path) -> Option<&'static str> {
    KERNEL_DIRS.into_iter().find(|d| p.starts_with(d))
}

fn show_links(links: &[(PathBuf, PathBuf)]) -> String {
    links
        .iter()
        .map(|(l, t)| format!("{} -> {}", l.display(), t.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

fn refuse(what: String) -> HardenError {
    HardenError(format!(
        "{what}; refused by the nucleus policy whatever the runtime's version"
    ))
}

/// One spec mount: its clean destination, and its source if a bind.
struct SpecMount {
    destination: PathBuf,
    bind_source: Option<PathBuf>,
}

fn spec_mounts(spec: &Value) -> Vec<SpecMount> {
    let Some(list) = spec.get("mounts").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|m| {
            let destination = clean(m.get("destination")?.as_str()?);
            let bind = m.get("type").and_then(Value::as_str) == Some("bind")
                || m.get("options")
                    .and_then(Value::as_array)
                    .is_some_and(|o| o.iter().any(|o| o == "bind" || o == "rbind"));
            let bind_source = bind
                .then(|| m.get("source").and_then(Value::as_str).map(PathBuf::from))
                .flatten();
            Some(SpecMount {
                destination,
                bind_source,
            })
        })
        .collect()
}

/// Checks the rootfs at `root` (host path) of `spec` for the patterns
/// above. Err names the path, the link and the advisory.
pub fn check(root: &Path, spec: &Value) -> Result<(), HardenError> {
    if !root.is_dir() {
        return Ok(()); // The runtime says what is wrong with it.
    }
    let mounts = spec_mounts(spec);
    let none = |_: &Path| false;
    for dir in KERNEL_DIRS {
        let host = root.join(&dir[1..]);
        match std::fs::symlink_metadata(&host) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&host).unwrap_or_default();
                return Err(refuse(format!(
                    "the container's root filesystem has {dir} as a symlink to {}: the runtime \
                     would mount the kernel's {dir} where it points (CVE-2025-52565, CVE-2025-52881)",
                    target.display()
                )));
            }
            Ok(m) if !m.is_dir() => {
                return Err(refuse(format!(
                    "the container's root filesystem has {dir} as a file, not a directory"
                )));
            }
            _ => {}
        }
    }
    if !mounts.iter().any(|m| m.destination == Path::new("/dev")) {
        for dev in DEVICE_FILES {
            let host = root.join(&dev[1..]);
            let Ok(meta) = std::fs::symlink_metadata(&host) else {
                continue;
            };
            if meta.file_type().is_symlink() {
                let target = std::fs::read_link(&host).unwrap_or_default();
                return Err(refuse(format!(
                    "the container's root filesystem has {dev} as a symlink to {} and the spec \
                     mounts nothing at /dev: the runtime would bind the link's target where it \
                     means {dev} (CVE-2025-31133, CVE-2025-52565)",
                    target.display()
                )));
            }
            if dev == "/dev/null" && !meta.file_type().is_char_device() {
                return Err(refuse(format!(
                    "the container's root filesystem has {dev} as something other than a \
                     character device and the spec mounts nothing at /dev: masked paths would \
                     show it (CVE-2025-31133)"
                )));
            }
        }
    }
    for key in ["maskedPaths", "readonlyPaths"] {
        let paths = spec
            .pointer(&format!("/linux/{key}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str);
        for p in paths {
            let path = clean(p);
            if kernel_dir(&path).is_some_and(|d| d != "/dev") {
                continue; // Inside procfs or sysfs: the kernel's own.
            }
            let Some(parent) = path.parent() else {
                continue;
            };
            let w = walk(root, parent, none);
            if !w.links.is_empty() {
                return Err(refuse(format!(
                    "linux.{key} entry {p} has a parent that is a symlink in the container's \
                     root filesystem ({}): the runtime would mask or protect another path \
                     (CVE-2025-31133)",
                    show_links(&w.links)
                )));
            }
        }
    }
    for (i, m) in mounts.iter().enumerate() {
        let earlier: Vec<&Path> = mounts[..i]
            .iter()
            .map(|e| e.destination.as_path())
            .filter(|d| *d != Path::new("/"))
            .collect();
        let w = walk(root, &m.destination, |p| earlier.contains(&p));
        if w.links.is_empty() {
            continue;
        }
        if let Some(dir) = kernel_dir(&w.at) {
            if !m.destination.starts_with(dir) {
                return Err(refuse(format!(
                    "mount destination {} reaches {} through a symlink in the container's root \
                     filesystem ({}): a mount over the kernel's {dir} (CVE-2019-19921, \
                     CVE-2025-52881)",
                    m.destination.display(),
                    w.at.display(),
                    show_links(&w.links)
                )));
            }
        }
    }
    let canonical_root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    for m in &mounts {
        let Some(source) = &m.bind_source else {
            continue;
        };
        let host = walk(Path::new("/"), source, none);
        if !source.starts_with("/proc")
            && (host.at.starts_with("/proc")
                || host.links.iter().any(|(_, t)| t.starts_with("/proc")))
        {
            return Err(refuse(format!(
                "bind mount source {} goes through /proc by a symlink ({}): a bind of the \
                 host's /proc (CVE-2025-52881)",
                source.display(),
                show_links(&host.links)
            )));
        }
        let Ok(resolved) = std::fs::canonicalize(source) else {
            continue; // The runtime names a missing source.
        };
        if (source.starts_with(root) || source.starts_with(&canonical_root))
            && !resolved.starts_with(&canonical_root)
        {
            return Err(refuse(format!(
                "bind mount source {} is inside the container's root filesystem but leads \
                 out of it, to {}, through a symlink",
                source.display(),
                resolved.display()
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::os::unix::fs::symlink;

    fn rootfs() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for dir in ["proc", "sys", "dev", "etc", "run", "var"] {
            std::fs::create_dir_all(d.path().join(dir)).unwrap();
        }
        d
    }

    fn spec(mounts: Value) -> Value {
        json!({"mounts": mounts, "linux": {"maskedPaths": ["/proc/kcore"]}})
    }

    fn dev_tmpfs() -> Value {
        json!([{"destination": "/proc", "type": "proc", "source": "proc"},
               {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"}])
    }

    #[test]
    fn an_ordinary_rootfs_passes_with_its_relative_and_absolute_links() {
        let r = rootfs();
        symlink("/run", r.path().join("var/run")).unwrap();
        symlink("../run/x", r.path().join("etc/x")).unwrap();
        let s = spec(json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs"},
            {"destination": "/var/run/secrets", "type": "bind", "source": "/tmp", "options": ["rbind"]}
        ]));
        check(r.path(), &s).unwrap();
        // A junk /dev in the image is shadowed by the spec's /dev tmpfs.
        symlink("/proc/kallsyms", r.path().join("dev/null")).unwrap();
        check(r.path(), &s).unwrap();
    }

    #[test]
    fn kernel_directories_must_be_directories() {
        for dir in KERNEL_DIRS {
            let r = rootfs();
            std::fs::remove_dir(r.path().join(&dir[1..])).unwrap();
            symlink("/etc", r.path().join(&dir[1..])).unwrap();
            let e = check(r.path(), &spec(dev_tmpfs())).unwrap_err();
            assert!(e.0.contains(dir) && e.0.contains("CVE-2025-"), "{e}");
        }
    }

    #[test]
    fn device_links_are_refused_without_a_dev_mount() {
        let no_dev = json!([{"destination": "/proc", "type": "proc", "source": "proc"}]);
        for dev in ["/dev/null", "/dev/console", "/dev/pts"] {
            let r = rootfs();
            symlink("/proc/kallsyms", r.path().join(&dev[1..])).unwrap();
            let e = check(r.path(), &spec(no_dev.clone())).unwrap_err();
            assert!(e.0.contains(dev) && e.0.contains("CVE-2025-"), "{e}");
        }
        let r = rootfs();
        std::fs::write(r.path().join("dev/null"), b"").unwrap();
        let e = check(r.path(), &spec(no_dev)).unwrap_err();
        assert!(e.0.contains("character device"), "{e}");
    }

    #[test]
    fn a_masked_paths_parent_may_not_be_a_link() {
        let r = rootfs();
        symlink("/etc", r.path().join("secrets")).unwrap();
        let mut s = spec(dev_tmpfs());
        s["linux"]["maskedPaths"] = json!(["/secrets/key"]);
        let e = check(r.path(), &s).unwrap_err();
        assert!(
            e.0.contains("/secrets/key") && e.0.contains("/secrets -> /etc"),
            "{e}"
        );
        s["linux"]["maskedPaths"] = json!(["/proc/sys/kernel/x"]);
        check(r.path(), &s).unwrap();
    }

    #[test]
    fn a_mount_through_a_link_into_proc_is_refused() {
        let r = rootfs();
        symlink("/proc/sys/kernel", r.path().join("etc/evil")).unwrap();
        let mut mounts = dev_tmpfs();
        mounts
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/etc/evil", "type": "tmpfs", "source": "tmpfs"}));
        let e = check(r.path(), &spec(mounts)).unwrap_err();
        assert!(
            e.0.contains("/etc/evil")
                && e.0.contains("/proc/sys/kernel")
                && e.0.contains("CVE-2019-19921"),
            "{e}"
        );
        // Literally under /proc: the spec's own choice, not a redirect.
        let mut mounts = dev_tmpfs();
        mounts
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/proc/x", "type": "tmpfs", "source": "tmpfs"}));
        check(r.path(), &spec(mounts)).unwrap();
    }

    #[test]
    fn bind_sources_may_not_leave_through_links() {
        let r = rootfs();
        let root = r.path();
        symlink("/proc/self/root", root.join("etc/host")).unwrap();
        let bind = |src: &Path| {
            let mut m = dev_tmpfs();
            m.as_array_mut().unwrap().push(
                json!({"destination": "/mnt", "type": "bind", "source": src, "options": ["rbind"]}),
            );
            spec(m)
        };
        let e = check(root, &bind(&root.join("etc/host"))).unwrap_err();
        assert!(e.0.contains("/proc"), "{e}");
        let outside = tempfile::tempdir().unwrap();
        symlink(outside.path(), root.join("etc/out")).unwrap();
        let e = check(root, &bind(&root.join("etc/out"))).unwrap_err();
        assert!(e.0.contains("leads out"), "{e}");
        check(root, &bind(outside.path())).unwrap();
    }

    #[test]
    fn walk_follows_links_inside_the_root_and_stops_at_mounts() {
        let r = rootfs();
        symlink("/run", r.path().join("var/run")).unwrap();
        symlink("../../../../etc", r.path().join("run/up")).unwrap();
        let w = walk(r.path(), Path::new("/var/run/up"), |_| false);
        assert_eq!(w.at, Path::new("/etc"));
        assert_eq!(w.links.len(), 2);
        assert!(matches!(w.end, End::Found(_)));
        let w = walk(r.path(), Path::new("/var/run/x/y"), |p| {
            p == Path::new("/run")
        });
        assert!(
            matches!(w.end, End::Stopped) && w.at == Path::new("/run"),
            "{w:?}"
        );
        let w = walk(r.path(), Path::new("/nope/x"), |_| false);
        assert!(matches!(w.end, End::Missing));
    }
}
