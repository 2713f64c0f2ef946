//! Whether runsc can take a pod's network namespace.
//!
//! runsc builds before 2024 tell the host's network namespace from a pod's by
//! `/proc/sys/net/core/rmem_default`, which older kernels show only in the
//! initial namespace. Newer kernels (6.x) show it in every namespace, and such
//! a runsc then refuses every pod: "cannot run with network enabled in root
//! network namespace". The shim checks both sides (does the runsc binary rely
//! on that file, and does the pod's namespace show it) and, only when runsc
//! would refuse, has the sandbox use the kernel's network stack inside the
//! pod's namespace (`--network=host` with the namespace path) instead.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// The file old runsc builds take as proof of the host's namespace.
const ROOT_MARKER: &str = "/proc/sys/net/core/rmem_default";

/// Whether `runsc` (the binary) would refuse the network namespace at
/// `netns` as the host's own. Errors count as "no": runsc then reports
/// whatever is wrong itself.
pub fn runsc_misreads(runsc: &Path, netns: &Path) -> bool {
    relies_on_marker(runsc) && matches!(marker_visible_in(netns), Ok(true))
}

/// Whether the binary's root-namespace check is the old one: its text holds
/// the marker path. Cached per binary and modification time.
fn relies_on_marker(binary: &Path) -> bool {
    static SEEN: Mutex<Option<HashMap<(PathBuf, SystemTime), bool>>> = Mutex::new(None);
    let Ok(mtime) = std::fs::metadata(binary).and_then(|m| m.modified()) else {
        return false;
    };
    let key = (binary.to_path_buf(), mtime);
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&known) = seen.as_ref().and_then(|m| m.get(&key)) {
        return known;
    }
    let found = File::open(binary)
        .and_then(|f| contains(f, ROOT_MARKER.as_bytes()))
        .unwrap_or(false);
    seen.get_or_insert_with(HashMap::new).insert(key, found);
    found
}

/// Streams `r` looking for `needle`, in fixed-size chunks.
fn contains(mut r: impl Read, needle: &[u8]) -> io::Result<bool> {
    let mut buf = vec![0u8; 64 * 1024 + needle.len()];
    let mut kept = 0;
    loop {
        let n = r.read(&mut buf[kept..])?;
        if n == 0 {
            return Ok(false);
        }
        let end = kept + n;
        if buf[..end].windows(needle.len()).any(|w| w == needle) {
            return Ok(true);
        }
        // Keep the tail that could start a match across chunks.
        kept = (needle.len() - 1).min(end);
        buf.copy_within(end - kept..end, 0);
    }
}

/// Whether the marker shows inside the network namespace at `netns`: a
/// short-lived thread joins it (a namespace is per thread) and looks.
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
            Ok(Path::new(ROOT_MARKER).exists())
        })?
        .join()
        .map_err(|_| io::Error::other("netns probe thread panicked"))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_needles_across_chunk_boundaries() {
        let needle = ROOT_MARKER.as_bytes();
        for at in [0, 1, 64 * 1024 - 5, 64 * 1024, 200_000] {
            let mut data = vec![b'x'; 300_000];
            data[at..at + needle.len()].copy_from_slice(needle);
            assert!(contains(&data[..], needle).unwrap(), "at {at}");
        }
        assert!(!contains(&vec![b'x'; 300_000][..], needle).unwrap());
        assert!(!contains(&b""[..], needle).unwrap());
    }

    #[test]
    fn only_binaries_holding_the_marker_are_suspect() {
        let dir = std::env::temp_dir().join(format!("nucleus-netns-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let plain = dir.join("plain");
        std::fs::write(&plain, b"no marker here").unwrap();
        let old = dir.join("old");
        std::fs::write(&old, format!("..{ROOT_MARKER}..")).unwrap();
        assert!(!relies_on_marker(&plain));
        assert!(relies_on_marker(&old));
        assert!(!relies_on_marker(&dir.join("missing")));
        // A namespace that cannot be opened is not misread.
        assert!(!runsc_misreads(&old, &dir.join("no-such-netns")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn probes_the_namespace_it_is_given() {
        // Our own namespace: the probe agrees with a direct look.
        let own = Path::new("/proc/self/ns/net");
        if own.exists() && unsafe { libc::geteuid() } == 0 {
            let direct = Path::new(ROOT_MARKER).exists();
            assert_eq!(marker_visible_in(own).unwrap(), direct);
        }
    }
}
