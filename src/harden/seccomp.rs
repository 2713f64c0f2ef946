//! Strict level, runc and crun: a seccomp profile when the spec has none.
//! It allows by default and refuses (EPERM) the syscalls that reach kernel
//! surface a container never needs: module and kexec loading, key rings,
//! BPF, perf, userfaultfd, io_uring, namespace and mount changes, clock and
//! swap control, cross-process memory access. (runsc filters syscalls in
//! its own sentry and does not get one.)

use serde_json::{json, Map, Value};

use super::report::Report;
use crate::runtime::Backend;

/// Syscalls the strict profile refuses.
pub const DENIED_SYSCALLS: [&str; 46] = [
    "acct",
    "add_key",
    "bpf",
    "clock_adjtime",
    "clock_settime",
    "create_module",
    "delete_module",
    "fanotify_init",
    "finit_module",
    "fsconfig",
    "fsmount",
    "fsopen",
    "fspick",
    "get_kernel_syms",
    "init_module",
    "io_uring_enter",
    "io_uring_register",
    "io_uring_setup",
    "ioperm",
    "iopl",
    "kcmp",
    "kexec_file_load",
    "kexec_load",
    "keyctl",
    "lookup_dcookie",
    "mount",
    "mount_setattr",
    "move_mount",
    "name_to_handle_at",
    "open_by_handle_at",
    "open_tree",
    "perf_event_open",
    "pivot_root",
    "process_vm_readv",
    "process_vm_writev",
    "ptrace",
    "quotactl",
    "reboot",
    "request_key",
    "setns",
    "settimeofday",
    "swapoff",
    "swapon",
    "umount2",
    "unshare",
    "userfaultfd",
];

/// The architectures the profile names (native plus compat ones).
fn architectures() -> Value {
    if cfg!(target_arch = "aarch64") {
        json!(["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"])
    } else {
        json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
    }
}

/// `clone` flags that make a namespace (CLONE_NEWNS, NEWCGROUP, NEWUTS,
/// NEWIPC, NEWUSER, NEWPID, NEWNET): refused like `unshare`.
pub const CLONE_NAMESPACE_FLAGS: [u64; 7] = [
    0x0002_0000,
    0x0200_0000,
    0x0400_0000,
    0x0800_0000,
    0x1000_0000,
    0x2000_0000,
    0x4000_0000,
];

/// The profile as an OCI `linux.seccomp` object.
pub fn profile() -> Value {
    let mut rules = vec![
        json!({
            "names": DENIED_SYSCALLS.to_vec(),
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": libc::EPERM,
        }),
        // clone3 passes its flags in memory seccomp cannot read: ENOSYS makes
        // libc fall back to clone, whose flags are checked below.
        json!({"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": libc::ENOSYS}),
    ];
    for flag in CLONE_NAMESPACE_FLAGS {
        rules.push(json!({
            "names": ["clone"],
            "action": "SCMP_ACT_ERRNO",
            "errnoRet": libc::EPERM,
            "args": [{"index": 0, "value": flag, "valueTwo": flag, "op": "SCMP_CMP_MASKED_EQ"}],
        }));
    }
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": architectures(),
        "syscalls": rules,
    })
}

/// Adds the profile for runc/crun when the spec has no seccomp section.
pub fn apply(linux: &mut Map<String, Value>, backend: Backend, report: &mut Report) {
    if backend == Backend::Runsc {
        return;
    }
    if linux.get("seccomp").is_some_and(|s| !s.is_null()) {
        return;
    }
    linux.insert("seccomp".into(), profile());
    report.set(
        "seccomp",
        "linux.seccomp",
        None,
        Some(format!(
            "nucleus strict profile ({} syscalls refused)",
            DENIED_SYSCALLS.len()
        )),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::policy::Level;

    #[test]
    fn added_only_for_runc_and_crun_without_a_profile() {
        for backend in [Backend::Runc, Backend::Crun] {
            let mut linux = Map::new();
            let mut r = Report::new(Level::Strict, backend);
            apply(&mut linux, backend, &mut r);
            assert_eq!(linux["seccomp"]["defaultAction"], "SCMP_ACT_ALLOW");
            assert_eq!(r.changes.len(), 1);
        }
        let mut linux = Map::new();
        let mut r = Report::new(Level::Strict, Backend::Runsc);
        apply(&mut linux, Backend::Runsc, &mut r);
        assert!(linux.is_empty() && r.changes.is_empty());
        let own = json!({"defaultAction": "SCMP_ACT_ERRNO"});
        let mut linux = Map::new();
        linux.insert("seccomp".into(), own.clone());
        apply(&mut linux, Backend::Runc, &mut r);
        assert_eq!(linux["seccomp"], own, "the spec's own profile stays");
    }

    #[test]
    fn namespace_clones_and_clone3_are_refused() {
        let p = profile();
        let rules = p["syscalls"].as_array().unwrap();
        let clone_rules: Vec<&Value> = rules
            .iter()
            .filter(|r| r["names"] == json!(["clone"]))
            .collect();
        assert_eq!(clone_rules.len(), CLONE_NAMESPACE_FLAGS.len());
        let mask: u64 = clone_rules
            .iter()
            .map(|r| r["args"][0]["value"].as_u64().unwrap())
            .sum();
        assert_eq!(mask, 0x7E02_0000, "all CLONE_NEW* bits");
        assert!(rules
            .iter()
            .any(|r| r["names"] == json!(["clone3"]) && r["errnoRet"] == libc::ENOSYS));
    }

    #[test]
    fn denied_names_are_sorted_and_unique() {
        let mut sorted = DENIED_SYSCALLS.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted, DENIED_SYSCALLS);
    }
}
