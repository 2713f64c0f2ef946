//! Where the shim server runs, as containerd-shim-runc-v2 places its own:
//! in the cgroup a client names for it (runc `Options.ShimCgroup`,
//! containerd's `WithShimCgroup`), and with an OOM score one above
//! containerd's, so the kernel's OOM killer takes a shim before containerd.

use std::path::Path;

use super::BootstrapError;
use crate::options::{self, RuntimeOptions};

/// The most an `oom_score_adj` can be.
const OOM_SCORE_ADJ_MAX: i32 = 1000;

/// Places server `pid` (started by the `start` action whose parent is
/// containerd) after the start options `options_any` (encoded Any).
pub fn place(pid: u32, options_any: Option<&[u8]>) -> Result<(), BootstrapError> {
    let shim_cgroup = match options_any.map(options::decode_any_bytes) {
        Some(Ok(RuntimeOptions::Runc { shim_cgroup, .. }))
        | Some(Ok(RuntimeOptions::RuncCreate { shim_cgroup, .. })) => shim_cgroup,
        _ => String::new(),
    };
    if !shim_cgroup.is_empty() {
        crate::cgroup::join(Path::new("/sys/fs/cgroup"), &shim_cgroup, pid)
            .map_err(|e| BootstrapError(format!("shim cgroup {shim_cgroup:?}: {e}")))?;
        log::info!("shim pid {pid} placed in cgroup {shim_cgroup}");
    }
    let parent = nix::unistd::getppid().as_raw();
    match oom_score_above(Path::new("/proc"), parent, pid) {
        Ok(score) => log::debug!("shim pid {pid}: oom_score_adj {score}"),
        // As unprivileged: the score stays where it is.
        Err(e) => log::warn!("shim pid {pid}: oom_score_adj: {e}"),
    }
    Ok(())
}

/// Sets `pid`'s oom_score_adj to `parent`'s plus one (at most the maximum).
fn oom_score_above(proc: &Path, parent: i32, pid: u32) -> std::io::Result<i32> {
    let of = |p: String| proc.join(p).join("oom_score_adj");
    let text = std::fs::read_to_string(of(parent.to_string()))?;
    let score: i32 = text.trim().parse().map_err(|e| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{text:?}: {e}"))
    })?;
    let mine = (score + 1).min(OOM_SCORE_ADJ_MAX);
    std::fs::write(of(pid.to_string()), mine.to_string())?;
    Ok(mine)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oom_score_is_one_above_the_parents_up_to_the_maximum() {
        let d = tempfile::tempdir().unwrap();
        for (pid, score) in [("10", "-999\n"), ("11", "0"), ("12", "1000"), ("20", "0")] {
            std::fs::create_dir_all(d.path().join(pid)).unwrap();
            std::fs::write(d.path().join(pid).join("oom_score_adj"), score).unwrap();
        }
        assert_eq!(oom_score_above(d.path(), 10, 20).unwrap(), -998);
        assert_eq!(oom_score_above(d.path(), 11, 20).unwrap(), 1);
        assert_eq!(oom_score_above(d.path(), 12, 20).unwrap(), 1000);
        let got = std::fs::read_to_string(d.path().join("20/oom_score_adj")).unwrap();
        assert_eq!(got, "1000");
        assert!(oom_score_above(d.path(), 13, 20).is_err());
    }
}
