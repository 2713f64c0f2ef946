//! The shim's ttrpc socket: named like containerd-shim-runc-v2's (sha256 of
//! containerd's address, namespace and id, under /run/containerd/s), a
//! filesystem socket (never abstract: CVE-2020-15257), mode 0600 in a 0700 dir.

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

/// Where containerd expects shim sockets.
pub const DEFAULT_SOCKET_DIR: &str = "/run/containerd/s";
/// Longest path a unix socket address can hold.
pub const MAX_SOCKET_PATH: usize = 106;

/// Joins path elements the way Go's `filepath.Join` does (cleaning `//`).
fn join_clean(parts: &[&str]) -> String {
    let joined = parts
        .iter()
        .filter(|p| !p.is_empty())
        .cloned()
        .collect::<Vec<_>>()
        .join("/");
    let absolute = joined.starts_with('/');
    let mut out: Vec<&str> = Vec::new();
    for seg in joined.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                if out.last().is_some_and(|s| *s != "..") {
                    out.pop();
                } else if !absolute {
                    out.push("..");
                }
            }
            s => out.push(s),
        }
    }
    let body = out.join("/");
    if absolute {
        format!("/{body}")
    } else {
        body
    }
}

/// The socket path for a shim: `<dir>/<sha256(address/namespace/id)>`.
pub fn socket_path(dir: &str, containerd_address: &str, namespace: &str, id: &str) -> PathBuf {
    let key = join_clean(&[containerd_address, namespace, id]);
    Path::new(dir).join(crate::digest::sha256_hex(key.as_bytes()))
}

/// Whether a shim is already serving on `path`.
pub fn is_serving(path: &Path) -> bool {
    UnixStream::connect(path).is_ok()
}

/// Binds the socket: creates the directory 0700, refuses over-long paths,
/// sets the socket to 0600.
pub fn bind(path: &Path) -> std::io::Result<UnixListener> {
    let len = path.as_os_str().len();
    if len >= MAX_SOCKET_PATH {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!(
                "socket path {} is {len} bytes, longer than {MAX_SOCKET_PATH}",
                path.display()
            ),
        ));
    }
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_style_join() {
        assert_eq!(
            join_clean(&["/run/containerd/containerd.sock", "default", "c1"]),
            "/run/containerd/containerd.sock/default/c1"
        );
        assert_eq!(join_clean(&["/a//b/", "ns", "id"]), "/a/b/ns/id");
        assert_eq!(join_clean(&["/a/../b", "ns", "id"]), "/b/ns/id");
    }

    #[test]
    fn socket_name_is_sha256_of_address_namespace_id() {
        let p = socket_path(
            DEFAULT_SOCKET_DIR,
            "/run/containerd/containerd.sock",
            "default",
            "c1",
        );
        let expected = crate::digest::sha256_hex(b"/run/containerd/containerd.sock/default/c1");
        assert_eq!(p, Path::new("/run/containerd/s").join(expected));
        assert!(p.as_os_str().len() < MAX_SOCKET_PATH);
        assert_ne!(
            p,
            socket_path(
                DEFAULT_SOCKET_DIR,
                "/run/containerd/containerd.sock",
                "other",
                "c1"
            )
        );
    }

    #[test]
    fn bind_sets_modes_and_detects_serving() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("s").join("sock");
        let l = bind(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(path.parent().unwrap())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dmode, 0o700);
        assert!(is_serving(&path));
        drop(l);
        assert!(!is_serving(&path));
    }

    #[test]
    fn overlong_path_is_refused() {
        let long = format!("/tmp/{}", "x".repeat(120));
        let e = bind(Path::new(&long)).unwrap_err();
        assert!(e.to_string().contains("longer than"), "{e}");
    }
}
