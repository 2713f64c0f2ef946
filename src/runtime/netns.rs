//! Whether runsc can take a pod's network namespace.
//!
//! Older runsc builds tell the host's network namespace from a pod's by
//! `/proc/sys/net/core/rmem_default`, which older kernels show only in the
//! initial namespace. Newer kernels (6.x) show it in every namespace, and such
//! a runsc then refuses every pod: "cannot run with network enabled in root
//! network namespace" (newer gVisor looks at `dev_weight` instead). The shim
//! checks both sides, the pod's namespace first (cheap) and then the runsc
//! binary's own text, so that a pod fails at Create with a clear reason, or,
//! when `runtime.runsc_pod_host_stack` allows it, runs on the kernel's network
//! stack inside the pod's namespace.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The file older runsc builds take as proof of the host's namespace.
const OLD_MARKER: &str = "/proc/sys/net/core/rmem_default";
/// The file newer builds look at instead.
const NEW_MARKER: &str = "/proc/sys/net/core/dev_weight";

/// Whether `runsc` (the binary) would refuse the network namespace at
/// `netns` as the host's own. A probe that cannot run is logged and counts
/// as "no": runsc then reports whatever is wrong itself.
pub fn runsc_misreads(runsc: &Path, netns: &Path) -> bool {
    match marker_visible_in(netns) {
        Ok(false) => false,
        Ok(true) => uses_old_check(runsc),
        Err(e) => {
            log::warn!(
                "cannot look into network namespace {}: {e}",
                netns.display()
            );
            false
        }
    }
}

/// Whether `runsc` would take a network namespace it makes itself (a spec's
/// netns without a path) for the host's: an old-check build on a kernel
/// that shows the old marker outside the initial namespace.
pub fn runsc_misreads_new(runsc: &Path) -> bool {
    marker_visible_in_a_new_namespace() && uses_old_check(runsc)
}

/// Whether this kernel shows [`OLD_MARKER`] in a namespace other than the
/// initial one: looked at once per process, from a short-lived thread that
/// moves into a new network namespace of its own (the namespace goes with
/// it). A probe that cannot run counts as "yes": runsc then gets no
/// namespace it might refuse (loopback only, or the kernel's stack where
/// `runtime.runsc_pod_host_stack` allows it), and the log says why.
fn marker_visible_in_a_new_namespace() -> bool {
    static VISIBLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *VISIBLE.get_or_init(|| {
        let probe = std::thread::Builder::new().spawn(|| {
            // SAFETY: unshare changes only this thread's network namespace;
            // the thread ends right after reading one file.
            if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Path::new(OLD_MARKER).exists())
        });
        match probe.map(|thread| thread.join()) {
            Ok(Ok(Ok(visible))) => visible,
            Ok(Ok(Err(e))) | Err(e) => {
                log::warn!("cannot probe a new network namespace: {e}");
                true
            }
            Ok(Err(_)) => true,
        }
    })
}

/// Whether the binary's root-namespace check is the old one: its text names
/// the old marker and not the new one. Cached per binary and modification
/// time (the scan reads the whole binary).
fn uses_old_check(binary: &Path) -> bool {
    type Seen = HashMap<(PathBuf, SystemTime), bool>;
    static SEEN: Mutex<Option<Seen>> = Mutex::new(None);
    let Ok(mtime) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return false;
    };
    let key = (binary.to_path_buf(), mtime);
    let known = SEEN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|m| m.get(&key).copied());
    if let Some(known) = known {
        return known;
    }
    let old = match File::open(binary).and_then(|f| find_all(f, &[OLD_MARKER, NEW_MARKER])) {
        Ok(found) => found[0] && !found[1],
        Err(e) => {
            log::warn!("cannot read {}: {e}", binary.display());
            false
        }
    };
    SEEN.lock()
        .unwrap_or_else(|e| e.into_inner())
        .get_or_insert_with(HashMap::new)
        .insert(key, old);
    old
}

/// Streams `r` once, telling which of `needles` (non-empty) occur in it.
fn find_all(mut r: impl Read, needles: &[&str]) -> io::Result<Vec<bool>> {
    let longest = needles.iter().map(|n| n.len()).max().unwrap_or(1).max(1);
    let mut found = vec![false; needles.len()];
    let mut buf = vec![0u8; 256 * 1024 + longest];
    let mut kept = 0;
    loop {
        let n = r.read(&mut buf[kept..])?;
        let end = kept + n;
        for (i, needle) in needles.iter().enumerate() {
            if !found[i] {
                found[i] = contains(&buf[..end], needle.as_bytes());
            }
        }
        if n == 0 || found.iter().all(|f| *f) {
            return Ok(found);
        }
        // Keep the tail that could start a match across reads.
        kept = (longest - 1).min(end);
        buf.copy_within(end - kept..end, 0);
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    let Some((&first, rest)) = needle.split_first() else {
        return true;
    };
    let mut at = 0;
    while let Some(i) = hay[at..].iter().position(|&b| b == first) {
        let start = at + i;
        if hay.len() - start < needle.len() {
            return false;
        }
        if &hay[start + 1..start + needle.len()] == rest {
            return true;
        }
        at = start + 1;
    }
    false
}

/// Whether the old marker shows inside the network namespace at `netns`: a
/// short-lived thread joins it (a network namespace is per thread, and
/// /proc/sys/net follows the looking thread's) and looks.
fn marker_visible_in(netns: &Path) -> io::Result<bool> {
    let ns = File::open(netns)?;
    std::thread::Builder::new()
        .name("netns-probe".into())
        .stack_size(64 * 1024)
        .spawn(move || {
            // SAFETY: setns on this thread only, with an fd we own; the
            // thread ends right after, taking the namespace with it.
            if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(Path::new(OLD_MARKER).exists())
        })?
        .join()
        .map_err(|_| io::Error::other("netns probe thread panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_needles_across_read_boundaries() {
        let needle = OLD_MARKER.as_bytes();
        for at in [0, 1, 256 * 1024 - 5, 256 * 1024, 600_000] {
            let mut data = vec![b'/'; 700_000];
            data[at..at + needle.len()].copy_from_slice(needle);
            assert_eq!(
                find_all(&data[..], &[OLD_MARKER, NEW_MARKER]).unwrap(),
                [true, false],
                "at {at}"
            );
        }
        assert_eq!(find_all(&b""[..], &[OLD_MARKER]).unwrap(), [false]);
        assert!(contains(b"xx/proc", b"/proc"));
        assert!(!contains(b"xx/pro", b"/proc"));
    }

    #[test]
    fn only_builds_with_the_old_check_are_suspect() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, body: String| {
            let p = dir.path().join(name);
            std::fs::write(&p, body).unwrap();
            p
        };
        let plain = write("plain", "no marker here".into());
        let old = write("old", format!("..{OLD_MARKER}.."));
        let new = write("new", format!("..{OLD_MARKER}..{NEW_MARKER}.."));
        assert!(!uses_old_check(&plain));
        assert!(uses_old_check(&old));
        assert!(!uses_old_check(&new));
        assert!(!uses_old_check(&dir.path().join("missing")));
        // A namespace that cannot be opened is not misread.
        assert!(!runsc_misreads(&old, &dir.path().join("no-such-netns")));
    }

    #[test]
    fn probes_the_namespace_it_is_given() {
        // The shim's own namespace: the probe agrees with a direct look.
        let own = Path::new("/proc/self/ns/net");
        // SAFETY: geteuid has no side effects.
        if own.exists() && unsafe { libc::geteuid() } == 0 {
            let direct = Path::new(OLD_MARKER).exists();
            assert_eq!(marker_visible_in(own).unwrap(), direct);
        }
    }
}
