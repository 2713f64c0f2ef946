//! The seccomp floor: when a spec has no `linux.seccomp`, the default and
//! strict levels install an allow-list profile. Everything not listed fails
//! with EPERM; `clone3` fails with ENOSYS (its flags sit in memory seccomp
//! cannot read, and libc falls back to `clone` only on ENOSYS), and `clone`
//! itself is allowed only without CLONE_NEW* flags. The lists are this
//! project's own, written from the syscall table: what common programs
//! (shells, libc, language runtimes, servers) call stays allowed; what
//! reaches kernel surface a container has no business with is refused
//! (modules, kexec, reboot, swap, mounts, namespaces, key rings, BPF, perf,
//! userfaultfd, io_uring, clock setting, raw I/O ports, accounting, quotas,
//! file handles, vsock sockets, odd personalities). Some of those are the
//! tools of one capability (CAP_SYS_ADMIN: mounts and namespaces): they are
//! allowed when the container's final bounding set holds that capability,
//! which only an operator's `allowed_capabilities` or an allowed privileged
//! container can give. Strict refuses cross-process memory access too.
//!
//! runc and crun get the floor; runsc filters syscalls in its own sentry,
//! and gets it (through `--oci-seccomp`, see `runtime::backend`) only when
//! the config asks (`seccomp_floor_on_runsc`).

use serde_json::{json, Map, Value};

use super::policy::{cap_name, Level, Policy, SeccompMode, SECCOMP_ANNOTATION};
use super::report::Report;
use super::{spec, HardenError};
use crate::runtime::Backend;

/// Syscalls the floor allows, by family. Names of every architecture the
/// profile covers (x86_64, i386, x32, aarch64, arm): runtimes skip a name
/// libseccomp does not know for an architecture.
pub const ALLOWED: [(&str, &[&str]); 12] = [
    (
        "file I/O",
        &[
            "close",
            "close_range",
            "copy_file_range",
            "creat",
            "dup",
            "dup2",
            "dup3",
            "fadvise64",
            "fadvise64_64",
            "fallocate",
            "fcntl",
            "fcntl64",
            "fdatasync",
            "flock",
            "fsync",
            "ftruncate",
            "ftruncate64",
            "ioctl",
            "ioprio_get",
            "ioprio_set",
            "_llseek",
            "lseek",
            "open",
            "openat",
            "openat2",
            "pread64",
            "preadv",
            "preadv2",
            "pwrite64",
            "pwritev",
            "pwritev2",
            "read",
            "readahead",
            "readv",
            "sendfile",
            "sendfile64",
            "splice",
            "sync",
            "sync_file_range",
            "sync_file_range2",
            "syncfs",
            "tee",
            "truncate",
            "truncate64",
            "vmsplice",
            "write",
            "writev",
        ],
    ),
    (
        "files and directories",
        &[
            "access",
            "chdir",
            "chmod",
            "chown",
            "chown32",
            "faccessat",
            "faccessat2",
            "fchdir",
            "fchmod",
            "fchmodat",
            "fchmodat2",
            "fchown",
            "fchown32",
            "fchownat",
            "fgetxattr",
            "flistxattr",
            "fremovexattr",
            "fsetxattr",
            "fstat",
            "fstat64",
            "fstatat64",
            "fstatfs",
            "fstatfs64",
            "futimesat",
            "getcwd",
            "getdents",
            "getdents64",
            "getxattr",
            "inotify_add_watch",
            "inotify_init",
            "inotify_init1",
            "inotify_rm_watch",
            "lchown",
            "lchown32",
            "lgetxattr",
            "link",
            "linkat",
            "listxattr",
            "llistxattr",
            "lremovexattr",
            "lsetxattr",
            "lstat",
            "lstat64",
            "mkdir",
            "mkdirat",
            "mknod",
            "mknodat",
            "newfstatat",
            "readlink",
            "readlinkat",
            "removexattr",
            "rename",
            "renameat",
            "renameat2",
            "rmdir",
            "setxattr",
            "stat",
            "stat64",
            "statfs",
            "statfs64",
            "statx",
            "symlink",
            "symlinkat",
            "umask",
            "unlink",
            "unlinkat",
            "utime",
            "utimensat",
            "utimensat_time64",
            "utimes",
        ],
    ),
    (
        "memory",
        &[
            "brk",
            "cachestat",
            "madvise",
            "map_shadow_stack",
            "membarrier",
            "memfd_create",
            "memfd_secret",
            "mincore",
            "mlock",
            "mlock2",
            "mlockall",
            "mmap",
            "mmap2",
            "mprotect",
            "mremap",
            "mseal",
            "msync",
            "munlock",
            "munlockall",
            "munmap",
            "pkey_alloc",
            "pkey_free",
            "pkey_mprotect",
            "remap_file_pages",
        ],
    ),
    (
        "processes and threads",
        &[
            "arch_prctl",
            "capget",
            "capset",
            "execve",
            "execveat",
            "exit",
            "exit_group",
            "fork",
            "get_robust_list",
            "get_thread_area",
            "getcpu",
            "getpgid",
            "getpgrp",
            "getpid",
            "getppid",
            "getpriority",
            "getrandom",
            "getrlimit",
            "getrusage",
            "getsid",
            "gettid",
            "kill",
            "pidfd_open",
            "pidfd_send_signal",
            "prctl",
            "prlimit64",
            "process_mrelease",
            "ptrace",
            "process_vm_readv",
            "process_vm_writev",
            "rseq",
            "sched_get_priority_max",
            "sched_get_priority_min",
            "sched_getaffinity",
            "sched_getattr",
            "sched_getparam",
            "sched_getscheduler",
            "sched_rr_get_interval",
            "sched_rr_get_interval_time64",
            "sched_setaffinity",
            "sched_setattr",
            "sched_setparam",
            "sched_setscheduler",
            "sched_yield",
            "seccomp",
            "set_robust_list",
            "set_thread_area",
            "set_tid_address",
            "setpgid",
            "setpriority",
            "setrlimit",
            "setsid",
            "sysinfo",
            "tgkill",
            "times",
            "tkill",
            "ugetrlimit",
            "uname",
            "vfork",
            "wait4",
            "waitid",
            "waitpid",
        ],
    ),
    (
        "user and group ids",
        &[
            "getegid",
            "getegid32",
            "geteuid",
            "geteuid32",
            "getgid",
            "getgid32",
            "getgroups",
            "getgroups32",
            "getresgid",
            "getresgid32",
            "getresuid",
            "getresuid32",
            "getuid",
            "getuid32",
            "setfsgid",
            "setfsgid32",
            "setfsuid",
            "setfsuid32",
            "setgid",
            "setgid32",
            "setgroups",
            "setgroups32",
            "setregid",
            "setregid32",
            "setresgid",
            "setresgid32",
            "setresuid",
            "setresuid32",
            "setreuid",
            "setreuid32",
            "setuid",
            "setuid32",
        ],
    ),
    (
        "signals",
        &[
            "pause",
            "restart_syscall",
            "rt_sigaction",
            "rt_sigpending",
            "rt_sigprocmask",
            "rt_sigqueueinfo",
            "rt_sigreturn",
            "rt_sigsuspend",
            "rt_sigtimedwait",
            "rt_sigtimedwait_time64",
            "rt_tgsigqueueinfo",
            "sigaction",
            "sigaltstack",
            "signal",
            "signalfd",
            "signalfd4",
            "sigpending",
            "sigprocmask",
            "sigreturn",
            "sigsuspend",
        ],
    ),
    (
        "time and timers",
        &[
            "adjtimex",
            "alarm",
            "clock_getres",
            "clock_getres_time64",
            "clock_gettime",
            "clock_gettime64",
            "clock_nanosleep",
            "clock_nanosleep_time64",
            "getitimer",
            "gettimeofday",
            "nanosleep",
            "setitimer",
            "time",
            "timer_create",
            "timer_delete",
            "timer_getoverrun",
            "timer_gettime",
            "timer_gettime64",
            "timer_settime",
            "timer_settime64",
            "timerfd_create",
            "timerfd_gettime",
            "timerfd_gettime64",
            "timerfd_settime",
            "timerfd_settime64",
        ],
    ),
    (
        "waiting and events",
        &[
            "_newselect",
            "epoll_create",
            "epoll_create1",
            "epoll_ctl",
            "epoll_ctl_old",
            "epoll_pwait",
            "epoll_pwait2",
            "epoll_wait",
            "epoll_wait_old",
            "eventfd",
            "eventfd2",
            "futex",
            "futex_requeue",
            "futex_time64",
            "futex_wait",
            "futex_waitv",
            "futex_wake",
            "pipe",
            "pipe2",
            "poll",
            "ppoll",
            "ppoll_time64",
            "pselect6",
            "pselect6_time64",
            "select",
        ],
    ),
    (
        "System V and POSIX IPC, AIO",
        &[
            "io_cancel",
            "io_destroy",
            "io_getevents",
            "io_pgetevents",
            "io_pgetevents_time64",
            "io_setup",
            "io_submit",
            "ipc",
            "mq_getsetattr",
            "mq_notify",
            "mq_open",
            "mq_timedreceive",
            "mq_timedreceive_time64",
            "mq_timedsend",
            "mq_timedsend_time64",
            "mq_unlink",
            "msgctl",
            "msgget",
            "msgrcv",
            "msgsnd",
            "semctl",
            "semget",
            "semop",
            "semtimedop",
            "semtimedop_time64",
            "shmat",
            "shmctl",
            "shmdt",
            "shmget",
        ],
    ),
    (
        "sockets",
        &[
            "accept",
            "accept4",
            "bind",
            "connect",
            "getpeername",
            "getsockname",
            "getsockopt",
            "listen",
            "recv",
            "recvfrom",
            "recvmmsg",
            "recvmmsg_time64",
            "recvmsg",
            "send",
            "sendmmsg",
            "sendmsg",
            "sendto",
            "setsockopt",
            "shutdown",
            "socketcall",
            "socketpair",
        ],
    ),
    (
        "sandboxing a process further",
        &[
            "landlock_add_rule",
            "landlock_create_ruleset",
            "landlock_restrict_self",
        ],
    ),
    (
        "arm-specific",
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
    ),
];

/// Syscalls that serve one capability: allowed when the container's final
/// bounding set holds it (the kernel checks the capability as well).
pub const BY_CAPABILITY: [(&str, &[&str]); 12] = [
    (
        "CAP_SYS_ADMIN",
        &[
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "mount",
            "mount_setattr",
            "move_mount",
            "name_to_handle_at",
            "open_tree",
            "pivot_root",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "umount",
            "umount2",
            "unshare",
        ],
    ),
    ("CAP_SYS_CHROOT", &["chroot"]),
    ("CAP_SYS_BOOT", &["reboot"]),
    (
        "CAP_SYS_MODULE",
        &["delete_module", "finit_module", "init_module"],
    ),
    ("CAP_SYS_PACCT", &["acct"]),
    ("CAP_SYS_PTRACE", &["kcmp", "pidfd_getfd"]),
    ("CAP_SYS_RAWIO", &["ioperm", "iopl"]),
    (
        "CAP_SYS_TIME",
        &[
            "clock_adjtime",
            "clock_adjtime64",
            "clock_settime",
            "clock_settime64",
            "settimeofday",
            "stime",
        ],
    ),
    ("CAP_SYS_TTY_CONFIG", &["vhangup"]),
    (
        "CAP_SYS_NICE",
        &[
            "get_mempolicy",
            "mbind",
            "migrate_pages",
            "move_pages",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
    ),
    ("CAP_SYSLOG", &["syslog"]),
    ("CAP_DAC_READ_SEARCH", &["open_by_handle_at"]),
];

/// Syscalls of the floor that strict refuses: reading and writing another
/// process's memory, and tracing it.
pub const STRICT_REFUSED: [&str; 3] = ["process_vm_readv", "process_vm_writev", "ptrace"];

/// `clone` flags that make a namespace (CLONE_NEWNS, NEWCGROUP, NEWUTS,
/// NEWIPC, NEWUSER, NEWPID, NEWNET).
pub const CLONE_NAMESPACE_MASK: u64 = 0x7E02_0000;

/// `personality` values common programs set: PER_LINUX, PER_LINUX32,
/// UNAME26, PER_LINUX32|UNAME26, and 0xffffffff (a query).
pub const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// AF_VSOCK: a socket to the hypervisor, outside the container's network.
pub const AF_VSOCK: u64 = 40;

/// The architectures the profile names (native plus compat ones).
fn architectures() -> Value {
    if cfg!(target_arch = "aarch64") {
        json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
    } else {
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    }
}

fn allow(names: Vec<&str>) -> Value {
    json!({"names": names, "action": "SCMP_ACT_ALLOW"})
}

/// The floor as an OCI `linux.seccomp` object, for a container whose final
/// bounding set is `caps`, at `level`.
pub fn profile(caps: &[String], level: Level) -> Value {
    let has = |c: &str| caps.iter().any(|have| cap_name(have) == c);
    let strict = level == Level::Strict;
    let mut names: Vec<&str> = ALLOWED
        .iter()
        .flat_map(|(_, names)| names.iter().copied())
        .filter(|n| !(strict && STRICT_REFUSED.contains(n)))
        .collect();
    for (cap, extra) in BY_CAPABILITY {
        if has(cap) {
            names.extend(extra.iter().copied());
        }
    }
    names.sort_unstable();
    let mut rules = vec![allow(names)];
    if has("CAP_SYS_ADMIN") {
        rules.push(allow(vec!["clone", "clone3"]));
    } else {
        rules.push(json!({
            "names": ["clone"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": CLONE_NAMESPACE_MASK, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}],
        }));
        rules.push(
            json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}),
        );
    }
    for p in PERSONALITIES {
        rules.push(json!({
            "names": ["personality"], "action": "SCMP_ACT_ALLOW",
            "args": [{"index": 0, "value": p, "op": "SCMP_CMP_EQ"}],
        }));
    }
    rules.push(json!({
        "names": ["socket"], "action": "SCMP_ACT_ALLOW",
        "args": [{"index": 0, "value": AF_VSOCK, "op": "SCMP_CMP_NE"}],
    }));
    json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": libc::EPERM,
        "architectures": architectures(),
        "syscalls": rules,
    })
}

/// The container's final bounding set (after the capability rules).
fn bounding(root: &Map<String, Value>) -> Result<Vec<String>, HardenError> {
    spec::strings(
        root.get("process")
            .and_then(|p| p.get("capabilities"))
            .and_then(|c| c.get("bounding")),
        "process.capabilities.bounding",
    )
}

/// What the spec's `io.nucleus.seccomp` annotation asks for, if anything.
fn asked(root: &Map<String, Value>) -> Result<Option<SeccompMode>, HardenError> {
    let Some(v) = root
        .get("annotations")
        .and_then(|a| a.get(SECCOMP_ANNOTATION))
    else {
        return Ok(None);
    };
    SeccompMode::parse(v.as_str().unwrap_or_default())
        .map(Some)
        .ok_or_else(|| {
            HardenError(format!(
                "annotation {SECCOMP_ANNOTATION}={v} is not one of floor, unconfined"
            ))
        })
}

/// Installs the floor when the spec has no profile, unless the config (or
/// an annotation the config lets loosen) chooses `unconfined`. On runsc
/// only when the config asks for it.
pub fn apply(
    root: &mut Map<String, Value>,
    level: Level,
    backend: Backend,
    policy: &Policy,
    report: &mut Report,
) -> Result<(), HardenError> {
    let mode = match asked(root)? {
        Some(SeccompMode::Unconfined) if !policy.allow_loosening => {
            return Err(HardenError(format!(
                "annotation {SECCOMP_ANNOTATION}=unconfined asks to run without the nucleus seccomp floor; \
                 the config does not allow it (allow_loosening = true under [policy] in nucleus.toml, \
                 or seccomp = \"unconfined\" there)"
            )));
        }
        Some(mode) => mode,
        None => policy.seccomp,
    };
    let has_own = root
        .get("linux")
        .and_then(|l| l.get("seccomp"))
        .is_some_and(|s| !s.is_null());
    if has_own {
        return Ok(());
    }
    if mode == SeccompMode::Unconfined {
        report.notes.push(format!(
            "seccomp: no profile, as the {} chose (seccomp = \"unconfined\")",
            if policy.seccomp == SeccompMode::Unconfined {
                "config"
            } else {
                "annotation"
            }
        ));
        return Ok(());
    }
    if backend == Backend::Runsc && !policy.seccomp_floor_on_runsc {
        return Ok(());
    }
    let caps = bounding(root)?;
    let linux = spec::child(root, "linux", "linux")?;
    linux.insert("seccomp".into(), profile(&caps, level));
    report.set(
        "seccomp",
        "linux.seccomp",
        None,
        Some(format!("nucleus {} floor (allow-list)", level.name())),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn allowed_names(p: &Value) -> Vec<String> {
        p["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["action"] == "SCMP_ACT_ALLOW" && r.get("args").is_none())
            .flat_map(|r| r["names"].as_array().unwrap().clone())
            .map(|n| n.as_str().unwrap().to_string())
            .collect()
    }

    fn root(spec: Value) -> Map<String, Value> {
        spec.as_object().unwrap().clone()
    }

    fn run(
        spec: &mut Map<String, Value>,
        level: Level,
        backend: Backend,
        policy: &Policy,
    ) -> Result<Report, HardenError> {
        let mut r = Report::new(level, backend);
        apply(spec, level, backend, policy, &mut r)?;
        Ok(r)
    }

    #[test]
    fn floor_is_an_allow_list_refusing_the_dangerous_families() {
        let p = profile(&caps(&["CAP_CHOWN"]), Level::Default);
        assert_eq!(p["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(p["defaultErrnoRet"], libc::EPERM);
        let allowed = allowed_names(&p);
        for common in [
            "read", "openat", "execve", "futex", "rseq", "statx", "ptrace",
        ] {
            assert!(allowed.iter().any(|n| n == common), "{common}");
        }
        for refused in [
            "mount",
            "unshare",
            "setns",
            "keyctl",
            "add_key",
            "bpf",
            "perf_event_open",
            "userfaultfd",
            "io_uring_setup",
            "init_module",
            "kexec_load",
            "reboot",
            "swapon",
            "clock_settime",
            "iopl",
            "open_by_handle_at",
            "chroot",
            "acct",
        ] {
            assert!(!allowed.iter().any(|n| n == refused), "{refused}");
        }
        let rules = p["syscalls"].as_array().unwrap();
        let clone = rules
            .iter()
            .find(|r| r["names"] == json!(["clone"]))
            .unwrap();
        assert_eq!(clone["args"][0]["value"], CLONE_NAMESPACE_MASK);
        assert_eq!(clone["args"][0]["op"], "SCMP_CMP_MASKED_EQ");
        assert!(rules
            .iter()
            .any(|r| r["names"] == json!(["clone3"]) && r["errnoRet"] == libc::ENOSYS));
        let socket = rules
            .iter()
            .find(|r| r["names"] == json!(["socket"]))
            .unwrap();
        assert_eq!(socket["args"][0]["op"], "SCMP_CMP_NE");
    }

    #[test]
    fn capabilities_open_their_own_syscalls() {
        let p = profile(&caps(&["CAP_SYS_ADMIN", "sys_chroot"]), Level::Default);
        let allowed = allowed_names(&p);
        for n in [
            "mount",
            "unshare",
            "setns",
            "sethostname",
            "chroot",
            "clone",
            "clone3",
        ] {
            assert!(allowed.iter().any(|a| a == n), "{n}");
        }
        assert!(!allowed.iter().any(|a| a == "reboot"));
    }

    #[test]
    fn strict_also_refuses_cross_process_memory() {
        let allowed = allowed_names(&profile(&[], Level::Strict));
        for n in STRICT_REFUSED {
            assert!(!allowed.iter().any(|a| a == n), "{n}");
        }
        assert!(allowed.iter().any(|a| a == "read"));
    }

    #[test]
    fn names_are_unique_across_families() {
        let mut all: Vec<&str> = ALLOWED
            .iter()
            .chain(BY_CAPABILITY.iter())
            .flat_map(|(_, n)| n.iter().copied())
            .collect();
        let count = all.len();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), count, "a syscall listed twice");
        for special in ["clone", "clone3", "personality", "socket"] {
            assert!(!all.contains(&special), "{special} has its own rule");
        }
    }

    #[test]
    fn added_only_without_a_profile_and_on_runsc_only_when_asked() {
        let spec = json!({"process": {"capabilities": {"bounding": ["CAP_CHOWN"]}}});
        for backend in [Backend::Runc, Backend::Crun] {
            let mut s = root(spec.clone());
            let r = run(&mut s, Level::Default, backend, &Policy::default()).unwrap();
            assert_eq!(s["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
            assert_eq!(r.changes.len(), 1);
        }
        let mut s = root(spec.clone());
        let r = run(&mut s, Level::Default, Backend::Runsc, &Policy::default()).unwrap();
        assert!(s.get("linux").is_none() && r.changes.is_empty());
        let asks = Policy {
            seccomp_floor_on_runsc: true,
            ..Policy::default()
        };
        run(&mut s, Level::Default, Backend::Runsc, &asks).unwrap();
        assert!(s["linux"]["seccomp"].is_object());
        let own = json!({"defaultAction": "SCMP_ACT_LOG"});
        let mut s = root(json!({"linux": {"seccomp": own}}));
        let r = run(&mut s, Level::Strict, Backend::Runc, &Policy::default()).unwrap();
        assert_eq!(s["linux"]["seccomp"], own, "the spec's own profile stays");
        assert!(r.changes.is_empty());
    }

    #[test]
    fn unconfined_only_where_loosening_is_allowed() {
        let spec = json!({"annotations": {SECCOMP_ANNOTATION: "unconfined"}});
        let e = run(
            &mut root(spec.clone()),
            Level::Default,
            Backend::Runc,
            &Policy::default(),
        )
        .unwrap_err();
        assert!(
            e.0.contains(SECCOMP_ANNOTATION) && e.0.contains("allow_loosening"),
            "{e}"
        );
        let loose = Policy {
            allow_loosening: true,
            ..Policy::default()
        };
        let mut s = root(spec);
        let r = run(&mut s, Level::Default, Backend::Runc, &loose).unwrap();
        assert!(s.get("linux").is_none());
        assert!(
            r.notes.iter().any(|n| n.contains("annotation")),
            "{:?}",
            r.notes
        );
        let config = Policy {
            seccomp: SeccompMode::Unconfined,
            ..Policy::default()
        };
        let mut s = root(json!({}));
        let r = run(&mut s, Level::Default, Backend::Crun, &config).unwrap();
        assert!(s.get("linux").is_none());
        assert!(
            r.notes.iter().any(|n| n.contains("config")),
            "{:?}",
            r.notes
        );
        let mut s = root(json!({"annotations": {SECCOMP_ANNOTATION: "floor"}}));
        run(&mut s, Level::Default, Backend::Crun, &config).unwrap();
        assert!(
            s["linux"]["seccomp"].is_object(),
            "an annotation may tighten"
        );
        let e = run(
            &mut root(json!({"annotations": {SECCOMP_ANNOTATION: "none"}})),
            Level::Default,
            Backend::Crun,
            &Policy::default(),
        )
        .unwrap_err();
        assert!(e.0.contains("none"), "{e}");
    }
}
