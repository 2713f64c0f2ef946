//! Rootfs mounts from `CreateTaskRequest.rootfs` (overlay or bind from the
//! snapshotter), mounted on the bundle's `rootfs` and undone at delete.

use std::path::Path;

use containerd_shim_protos::types::mount::Mount;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

message_error!(
    /// A mount that failed; names type, source and target.
    MountError
);

/// Splits mount options into flags and the filesystem data string.
pub fn parse_options(options: &[String]) -> (MsFlags, MsFlags, String) {
    let mut flags = MsFlags::empty();
    let mut propagation = MsFlags::empty();
    let mut data = Vec::new();
    for o in options {
        let (set, clear) = match o.as_str() {
            "ro" => (MsFlags::MS_RDONLY, MsFlags::empty()),
            "rw" => (MsFlags::empty(), MsFlags::MS_RDONLY),
            "bind" => (MsFlags::MS_BIND, MsFlags::empty()),
            "rbind" => (MsFlags::MS_BIND | MsFlags::MS_REC, MsFlags::empty()),
            "nosuid" => (MsFlags::MS_NOSUID, MsFlags::empty()),
            "suid" => (MsFlags::empty(), MsFlags::MS_NOSUID),
            "nodev" => (MsFlags::MS_NODEV, MsFlags::empty()),
            "dev" => (MsFlags::empty(), MsFlags::MS_NODEV),
            "noexec" => (MsFlags::MS_NOEXEC, MsFlags::empty()),
            "exec" => (MsFlags::empty(), MsFlags::MS_NOEXEC),
            "noatime" => (MsFlags::MS_NOATIME, MsFlags::empty()),
            "relatime" => (MsFlags::MS_RELATIME, MsFlags::empty()),
            "strictatime" => (MsFlags::MS_STRICTATIME, MsFlags::empty()),
            "sync" => (MsFlags::MS_SYNCHRONOUS, MsFlags::empty()),
            "remount" => (MsFlags::MS_REMOUNT, MsFlags::empty()),
            "private" | "rprivate" | "slave" | "rslave" | "shared" | "rshared" => {
                let mut p = match o.trim_start_matches('r') {
                    "private" => MsFlags::MS_PRIVATE,
                    "slave" => MsFlags::MS_SLAVE,
                    _ => MsFlags::MS_SHARED,
                };
                if o.starts_with('r') {
                    p |= MsFlags::MS_REC;
                }
                propagation |= p;
                continue;
            }
            "defaults" => continue,
            other => {
                data.push(other.to_string());
                continue;
            }
        };
        flags |= set;
        flags &= !clear;
    }
    (flags, propagation, data.join(","))
}

/// Mounts every entry on `target`, in order. On failure, what was mounted is undone.
pub fn mount_all(mounts: &[Mount], target: &Path) -> Result<(), MountError> {
    for (i, m) in mounts.iter().enumerate() {
        if let Err(e) = mount_one(m, target) {
            for _ in 0..i {
                let _ = umount2(target, MntFlags::MNT_DETACH);
            }
            return Err(e);
        }
    }
    Ok(())
}

fn mount_one(m: &Mount, target: &Path) -> Result<(), MountError> {
    let (flags, propagation, data) = parse_options(&m.options);
    let fstype = if m.type_ == "bind" {
        None
    } else {
        Some(m.type_.as_str())
    };
    let err = |e: nix::Error| {
        MountError(format!(
            "mount {} {} on {}: {e}",
            m.type_,
            m.source,
            target.display()
        ))
    };
    let data_opt = (!data.is_empty()).then_some(data.as_str());
    mount(Some(m.source.as_str()), target, fstype, flags, data_opt).map_err(err)?;
    // A read-only bind needs a remount to take effect.
    if flags.contains(MsFlags::MS_BIND) && flags.contains(MsFlags::MS_RDONLY) {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            flags | MsFlags::MS_REMOUNT,
            None::<&str>,
        )
        .map_err(err)?;
    }
    if !propagation.is_empty() {
        mount(
            None::<&str>,
            target,
            None::<&str>,
            propagation,
            None::<&str>,
        )
        .map_err(err)?;
    }
    Ok(())
}

/// Unmounts everything stacked on `target` (lazily); not-mounted is success.
pub fn unmount_all(target: &Path) -> Result<(), MountError> {
    for _ in 0..32 {
        match umount2(target, MntFlags::MNT_DETACH) {
            Ok(()) => continue,
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => return Ok(()),
            Err(e) => return Err(MountError(format!("unmount {}: {e}", target.display()))),
        }
    }
    Ok(())
}

/// Whether `path` is on a filesystem mounted read-only (an overlay without
/// an upper dir, a `ro` bind). Unknown (statvfs fails): not read-only.
pub fn read_only(path: &Path) -> bool {
    nix::sys::statvfs::statvfs(path)
        .is_ok_and(|s| s.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_filesystems_are_told_apart() {
        assert!(!read_only(&std::env::temp_dir()));
        assert!(!read_only(Path::new("/nonexistent/path")));
        // A read-only bind of a temp dir (needs root).
        if nix::unistd::geteuid().is_root() {
            let dir = std::env::temp_dir().join(format!("nucleus-ro-{}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let ro = ["rbind".to_string(), "ro".to_string()];
            let m = Mount {
                type_: "bind".into(),
                source: dir.display().to_string(),
                options: ro.to_vec(),
                ..Default::default()
            };
            mount_all(&[m], &dir).unwrap();
            let was = read_only(&dir);
            unmount_all(&dir).unwrap();
            std::fs::remove_dir(&dir).unwrap();
            assert!(was, "a ro bind is read-only");
        }
    }

    #[test]
    fn options_split_into_flags_and_data() {
        let opts: Vec<String> = [
            "ro",
            "rbind",
            "nosuid",
            "lowerdir=/a:/b",
            "index=off",
            "rprivate",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (flags, prop, data) = parse_options(&opts);
        assert!(flags.contains(
            MsFlags::MS_RDONLY | MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_NOSUID
        ));
        assert_eq!(prop, MsFlags::MS_PRIVATE | MsFlags::MS_REC);
        assert_eq!(data, "lowerdir=/a:/b,index=off");
        let (flags, _, _) = parse_options(&["ro".into(), "rw".into()]);
        assert!(!flags.contains(MsFlags::MS_RDONLY));
    }

    #[test]
    fn unmounting_a_plain_dir_is_fine() {
        let d = tempfile::tempdir().unwrap();
        unmount_all(d.path()).unwrap();
    }
}
