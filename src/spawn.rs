//! A clean start for every process the shim spawns: runtime CLI calls,
//! `binary://` loggers and the shim's own server daemon.
//!
//! A child inherits more than its arguments: the environment, the signal mask
//! and every ignored signal disposition survive `execve`. The shim's own
//! state must not leak into them:
//! - containerd run by systemd (`Type=notify`) hands its `NOTIFY_SOCKET` to
//!   the shim; `runc start`/`crun start` seeing it wait for READY=1 from the
//!   container (or fail dialing it), so `ctr run -d` hangs;
//! - the server blocks SIGCHLD for its signalfd and ignores SIGPIPE; a blocked
//!   or ignored signal reaches the container process through the runtime
//!   (a shell's `wait` then sleeps forever).
//!
//! [`command`] is the only way the shim builds a [`Command`].

use std::ffi::{OsStr, OsString};
use std::os::unix::process::CommandExt;
use std::process::Command;

/// Variables of the shim's environment no child gets, and why.
pub const DROPPED_ENV: [&str; 8] = [
    // systemd's readiness socket, meant for containerd's own unit: runc and
    // crun `start` take it as the container's sd_notify socket and block
    // until the container writes READY=1 (containerd-shim-runc-v2 drops it).
    "NOTIFY_SOCKET",
    // Socket activation (sd_listen_fds): the fds numbered from 3 belong to
    // the process that systemd started. runc passes LISTEN_FDS on to the
    // container with fds of its own when LISTEN_PID matches; a child must
    // never claim fds that systemd handed to containerd.
    "LISTEN_FDS",
    // The pid LISTEN_FDS is meant for (containerd's, never a child's).
    "LISTEN_PID",
    // The names of those activated fds, meaningless without them.
    "LISTEN_FDNAMES",
    // containerd's messages to this shim (its ttrpc and gRPC addresses, the
    // namespace, the highest shim protocol it speaks): the shim passes what
    // a child needs explicitly (a logger gets CONTAINER_NAMESPACE); nothing
    // it starts should find containerd's sockets in its environment.
    "TTRPC_ADDRESS",
    "GRPC_ADDRESS",
    "NAMESPACE",
    "MAX_SHIM_VERSION",
];

/// PATH when the shim was started without one (runc looks up criu and
/// newuidmap on it; runsc its own binary for the gofer).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment a child starts with: the shim's own, without
/// [`DROPPED_ENV`], with a PATH.
pub fn child_env() -> Vec<(OsString, OsString)> {
    env_from(std::env::vars_os())
}

fn env_from(vars: impl Iterator<Item = (OsString, OsString)>) -> Vec<(OsString, OsString)> {
    let mut env: Vec<(OsString, OsString)> = vars
        .filter(|(k, _)| !DROPPED_ENV.iter().any(|d| OsStr::new(d) == k))
        .collect();
    if !env.iter().any(|(k, _)| k == "PATH") {
        env.push(("PATH".into(), DEFAULT_PATH.into()));
    }
    env
}

/// A [`Command`] for `program` that starts clean: the environment of
/// [`child_env`] (add to it with `.env`), an empty signal mask and the
/// default disposition for every signal. Further `pre_exec` hooks run after
/// this reset.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear().envs(child_env());
    // SAFETY: reset_signals makes raw system calls only (async-signal-safe).
    unsafe {
        cmd.pre_exec(|| {
            reset_signals();
            Ok(())
        });
    }
    cmd
}

/// The kernel's `struct sigaction` (x86_64 and aarch64 share this layout).
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

/// Highest signal number on Linux (SIGRTMAX as the kernel counts).
const SIGNAL_MAX: libc::c_int = 64;

/// Sets every signal to its default disposition and unblocks all of them.
/// Raw system calls: glibc's `sigaction` refuses the signals it reserves for
/// itself (32 and 33), which a Go parent may have left ignored; and only
/// async-signal-safe calls are allowed between fork and exec.
pub fn reset_signals() {
    let dfl = KernelSigaction {
        handler: libc::SIG_DFL,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    for sig in 1..=SIGNAL_MAX {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: a valid struct and size; failures leave the signal as it was.
        unsafe {
            libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                &dfl as *const KernelSigaction,
                std::ptr::null_mut::<KernelSigaction>(),
                8usize,
            );
        }
    }
    let empty: u64 = 0;
    // SAFETY: an 8-byte kernel sigset, no old set wanted.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty as *const u64,
            std::ptr::null_mut::<u64>(),
            8usize,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: &[(&str, &str)]) -> impl Iterator<Item = (OsString, OsString)> {
        v.iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn env_drops_systemd_and_containerd_variables() {
        let env = env_from(vars(&[
            ("NOTIFY_SOCKET", "/run/systemd/notify"),
            ("LISTEN_FDS", "2"),
            ("LISTEN_PID", "1"),
            ("LISTEN_FDNAMES", "a:b"),
            ("TTRPC_ADDRESS", "/run/containerd/containerd.sock.ttrpc"),
            ("GRPC_ADDRESS", "/run/containerd/containerd.sock"),
            ("NAMESPACE", "default"),
            ("MAX_SHIM_VERSION", "2"),
            ("PATH", "/usr/bin"),
            ("HOME", "/root"),
        ]));
        let keys: Vec<_> = env.iter().map(|(k, _)| k.to_string_lossy()).collect();
        assert_eq!(keys, ["PATH", "HOME"]);
    }

    #[test]
    fn env_gets_a_path_when_the_shim_had_none() {
        let env = env_from(vars(&[("LANG", "C.UTF-8")]));
        assert!(env.contains(&("PATH".into(), DEFAULT_PATH.into())));
    }

    /// A child of a process that blocks and ignores signals starts with
    /// none blocked or ignored.
    #[test]
    fn child_starts_with_empty_mask_and_default_dispositions() {
        let out = std::thread::spawn(|| {
            let mut set = nix::sys::signal::SigSet::empty();
            set.add(nix::sys::signal::Signal::SIGCHLD);
            set.add(nix::sys::signal::Signal::SIGUSR1);
            set.thread_block().unwrap();
            // Ignoring SIGHUP is process-wide; restored below.
            // SAFETY: plain disposition change.
            let old = unsafe { libc::signal(libc::SIGHUP, libc::SIG_IGN) };
            let out = command("/bin/sh")
                .args(["-c", "grep -E '^Sig(Blk|Ign):' /proc/self/status; env"])
                .env("NOTIFY_SOCKET", "/run/x-explicitly-set")
                .output()
                .unwrap();
            // SAFETY: restores the previous disposition.
            unsafe { libc::signal(libc::SIGHUP, old) };
            out
        })
        .join()
        .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("SigBlk:\t0000000000000000"), "{text}");
        assert!(text.contains("SigIgn:\t0000000000000000"), "{text}");
        // What a caller adds on purpose is kept.
        assert!(
            text.contains("NOTIFY_SOCKET=/run/x-explicitly-set"),
            "{text}"
        );
    }
}
