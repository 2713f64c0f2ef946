//! Spec hardening: the policy engine that rewrites a bundle's config.json
//! before the runtime reads it. One file per rule family; [`harden`] applies
//! them in order and returns a [`Report`] of every change, [`harden_bundle`]
//! does the same on a bundle directory and writes the result atomically.

pub mod bundle;
pub mod gvisor;
pub mod hooks;
pub mod keys;
pub mod mounts;
pub mod paths;
pub mod policy;
pub mod privileged;
pub mod process;
pub mod report;
pub mod resources;
pub mod rootfs;
pub mod seccomp;
mod spec;

use std::path::Path;

use serde_json::Value;

pub use policy::{Level, Policy, SeccompMode, LEVEL_ANNOTATION, SECCOMP_ANNOTATION};
pub use report::Report;

use crate::runtime::Backend;

message_error!(
    /// A spec the policy refuses or cannot read; names the field or file.
    HardenError
);

/// Hardens `spec` in place for `backend`. `euid` is the shim's effective
/// uid (hooks it owns are trusted). Returns every change made.
pub fn harden(
    spec: &mut Value,
    policy: &Policy,
    backend: Backend,
    euid: u32,
) -> Result<Report, HardenError> {
    let level = policy.level_for(spec)?;
    let mut report = Report::new(level, backend);
    if level == Level::Off {
        report
            .notes
            .push("hardening is OFF (policy level off): the spec runs as written".into());
        return Ok(report);
    }
    keys::check(spec)?;
    let privileged = privileged::detect(spec);
    mounts::check(
        spec,
        policy,
        privileged.is_some() && policy.allow_privileged,
    )?;
    hooks::resolve_process_exe(spec, &mut report)?;
    hooks::check(spec, policy, euid)?;
    if let Some(why) = privileged {
        if !policy.allow_privileged {
            return Err(HardenError(format!(
                "privileged container ({why}) refused by the nucleus policy; \
                 an operator may allow it with allow_privileged = true under [policy] in nucleus.toml"
            )));
        }
        report.notes.push(format!(
            "privileged ({why}) allowed by policy.allow_privileged: capabilities, paths, mounts and seccomp left as written"
        ));
        report.privileged = true;
    }
    let strict = level == Level::Strict;
    let root = spec::root(spec)?;
    if !policy.allow_gvisor_annotations {
        gvisor::strip_annotations(root, &mut report);
    }
    gvisor::drop_selinux(root, backend, &mut report);
    if let Some(process) = spec::existing(root, "process", "process")? {
        process::cwd(process)?;
        if privileged.is_none() {
            if policy.no_new_privileges || level == Level::Strict {
                process::no_new_privileges(process, &mut report);
            }
            process::capabilities(process, level, policy, &mut report)?;
        }
        process::rlimits(process, level, policy, &mut report)?;
    }
    if privileged.is_none() {
        seccomp::apply(root, level, backend, policy, &mut report)?;
    }
    let linux = spec::child(root, "linux", "linux")?;
    if privileged.is_none() {
        paths::apply(linux, policy, &mut report)?;
    }
    resources::pids(linux, policy, &mut report)?;
    if privileged.is_none() {
        mounts::restrict(spec, &mut report)?;
        if strict {
            mounts::strict(spec, policy, &mut report)?;
        }
    }
    Ok(report)
}

/// What a container's exec processes are held to: its level, and whether it
/// is a privileged container the operator allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRules {
    pub level: Level,
    pub privileged: bool,
    pub policy: Policy,
}

impl ExecRules {
    /// The rules for a container hardened with `policy` and `report`.
    pub fn new(policy: &Policy, report: &Report) -> Self {
        ExecRules {
            level: report.level,
            privileged: report.privileged,
            policy: policy.clone(),
        }
    }

    /// Hardens an exec's `specs.Process` like the container's own process:
    /// capabilities, no_new_privileges and rlimits.
    pub fn apply(&self, process: &mut Value, backend: Backend) -> Result<Report, HardenError> {
        let mut report = Report::new(self.level, backend);
        if self.level == Level::Off {
            return Ok(report);
        }
        keys::check_process(process)?;
        let obj = process
            .as_object_mut()
            .ok_or_else(|| HardenError("exec process: expected a JSON object".into()))?;
        process::cwd(obj)?;
        if !self.privileged {
            if self.policy.no_new_privileges || self.level == Level::Strict {
                process::no_new_privileges(obj, &mut report);
            }
            process::capabilities(obj, self.level, &self.policy, &mut report)?;
        }
        process::rlimits(obj, self.level, &self.policy, &mut report)?;
        Ok(report)
    }
}

impl ExecRules {
    /// Holds an Update's `LinuxResources` to the policy: device rules are
    /// the container's for life (an update could otherwise allow every
    /// device), and the pids limit cannot be lifted.
    pub fn apply_update(
        &self,
        resources: &mut Value,
        backend: Backend,
    ) -> Result<Report, HardenError> {
        let mut report = Report::new(self.level, backend);
        if !resources.is_object() {
            return Err(HardenError("resources: expected a JSON object".into()));
        }
        if self.level == Level::Off || self.privileged {
            return Ok(report);
        }
        keys::check_resources(resources)?;
        let obj = resources
            .as_object_mut()
            .ok_or_else(|| HardenError("resources: expected a JSON object".into()))?;
        if let Some(devices) = obj.remove("devices") {
            report.set(
                "update",
                "resources.devices",
                Some(spec::show(&devices)),
                None,
            );
        }
        if let Some(pids) = spec::existing(obj, "pids", "resources.pids")? {
            let limit = pids.get("limit").and_then(Value::as_i64);
            if limit.is_some_and(|l| l < 0) || pids.contains_key("limit") && limit.is_none() {
                report.set(
                    "update",
                    "resources.pids.limit",
                    pids.get("limit").map(spec::show),
                    Some(self.policy.pids_limit.to_string()),
                );
                pids.insert("limit".into(), self.policy.pids_limit.into());
            }
        }
        Ok(report)
    }
}

/// A hardened bundle spec and what changed.
pub struct Hardened {
    pub spec: Value,
    pub report: Report,
}

/// Hardens the spec `source` read from `bundle` ([`bundle::read`]: the kept
/// original if hardened before) and, unless `dry_run`, writes config.json,
/// the original and the report into the bundle. `runtime_version` (the runtime's `--version`
/// line, where the report depends on it) names the runtime in the report.
pub fn harden_bundle(
    bundle: &Path,
    source: bundle::Source,
    policy: &Policy,
    backend: Backend,
    runtime_version: Option<&str>,
    dry_run: bool,
) -> Result<Hardened, HardenError> {
    let mut spec = source.spec.clone();
    let euid = nix::unistd::geteuid().as_raw();
    let mut report = harden(&mut spec, policy, backend, euid)
        .map_err(|e| HardenError(format!("{}: {e}", source.path.display())))?;
    if report.level != Level::Off {
        gvisor::paths_note(&spec, backend, runtime_version, &mut report);
        gvisor::seccomp_note(&spec, backend, &mut report);
    }
    if !dry_run {
        bundle::write(bundle, &source, &spec, &report)?;
    }
    Ok(Hardened { spec, report })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// containerd 1.6's default capability set (what `ctr run` gives).
    pub(crate) const CONTAINERD_DEFAULT_CAPS: [&str; 14] = [
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    ];

    /// The spec `ctr run` writes (containerd 1.6 defaults), trimmed.
    fn ctr_spec() -> Value {
        let caps = json!(CONTAINERD_DEFAULT_CAPS);
        json!({
            "ociVersion": "1.0.2-dev",
            "process": {"user": {"uid": 0, "gid": 0}, "args": ["/bin/sh"], "cwd": "/",
                "capabilities": {"bounding": caps, "effective": caps, "permitted": caps},
                "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
                "noNewPrivileges": true},
            "root": {"path": "rootfs"},
            "mounts": [
                {"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]},
                {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
                {"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}
            ],
            "linux": {"resources": {"devices": [{"allow": false, "access": "rwm"}]},
                "namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "network"}],
                "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"]},
            "annotations": {"dev.gvisor.flag.network": "host"},
            "x-vendor-extension": {"kept": true}
        })
    }

    fn run(spec: &mut Value, policy: &Policy, backend: Backend) -> Result<Report, HardenError> {
        harden(spec, policy, backend, 0)
    }

    #[test]
    fn default_closes_what_runc_v2_leaves_open() {
        let mut s = ctr_spec();
        let r = run(&mut s, &Policy::default(), Backend::Runc).unwrap();
        let bounding = spec::strings(s.pointer("/process/capabilities/bounding"), "b").unwrap();
        assert!(!bounding.contains(&"CAP_NET_RAW".to_string()));
        let masked = spec::strings(s.pointer("/linux/maskedPaths"), "m").unwrap();
        assert!(masked.contains(&"/proc/kallsyms".to_string()));
        assert_eq!(s["linux"]["resources"]["pids"]["limit"], 4096);
        assert!(s
            .get("annotations")
            .unwrap()
            .get("dev.gvisor.flag.network")
            .is_none());
        assert_eq!(
            s["x-vendor-extension"],
            json!({"kept": true}),
            "unknown fields survive"
        );
        assert_eq!(
            s["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO",
            "the seccomp floor under default"
        );
        assert_ne!(s["root"]["readonly"], true);
        assert!(
            r.summary().starts_with("policy default on runc:"),
            "{}",
            r.summary()
        );
        // Hardening a hardened spec changes nothing more.
        let again = run(&mut s, &Policy::default(), Backend::Runc).unwrap();
        assert!(again.changes.is_empty(), "{:?}", again.changes);
    }

    #[test]
    fn strict_adds_the_seed_choices() {
        let mut s = ctr_spec();
        s["annotations"][LEVEL_ANNOTATION] = json!("strict");
        let r = run(&mut s, &Policy::default(), Backend::Crun).unwrap();
        assert_eq!(r.level, Level::Strict);
        assert_eq!(s["process"]["capabilities"]["bounding"], json!([]));
        assert_eq!(s["root"]["readonly"], true);
        assert_eq!(s["linux"]["seccomp"]["defaultAction"], "SCMP_ACT_ERRNO");
        let allowed = s["linux"]["seccomp"]["syscalls"][0]["names"]
            .as_array()
            .unwrap();
        assert!(!allowed.contains(&json!("ptrace")), "strict refuses ptrace");
        let tmp = s["mounts"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["destination"] == "/tmp");
        assert!(tmp.is_some());
    }

    #[test]
    fn no_new_privileges_can_be_left_to_the_spec() {
        let keep = Policy {
            no_new_privileges: false,
            ..Policy::default()
        };
        let mut s = ctr_spec();
        s["process"]["noNewPrivileges"] = json!(false);
        let r = run(&mut s, &keep, Backend::Runc).unwrap();
        assert_eq!(s["process"]["noNewPrivileges"], false);
        assert!(!r.changes.iter().any(|c| c.rule == "no-new-privileges"));
        let rules = ExecRules::new(&keep, &r);
        let mut p = json!({"noNewPrivileges": false, "args": ["/bin/su"]});
        rules.apply(&mut p, Backend::Runc).unwrap();
        assert_eq!(p["noNewPrivileges"], false);
        run(&mut s, &Policy::default(), Backend::Runc).unwrap();
        assert_eq!(s["process"]["noNewPrivileges"], true, "forced by default");
    }

    #[test]
    fn privileged_is_refused_unless_allowed() {
        let mut s = ctr_spec();
        s["linux"]["resources"]["devices"] = json!([{"allow": true, "access": "rwm"}]);
        let e = run(&mut s.clone(), &Policy::default(), Backend::Runc).unwrap_err();
        assert!(
            e.0.contains("privileged") && e.0.contains("allow_privileged"),
            "{e}"
        );
        let allow = Policy {
            allow_privileged: true,
            ..Policy::default()
        };
        let r = run(&mut s, &allow, Backend::Runc).unwrap();
        assert!(r.notes.iter().any(|n| n.contains("privileged")));
        let bounding = spec::strings(s.pointer("/process/capabilities/bounding"), "b").unwrap();
        assert!(
            bounding.contains(&"CAP_NET_RAW".to_string()),
            "left as written"
        );
    }

    #[test]
    fn off_changes_nothing_and_says_so() {
        let mut s = ctr_spec();
        let before = s.clone();
        let off = Policy {
            level: Level::Off,
            ..Policy::default()
        };
        let r = run(&mut s, &off, Backend::Runsc).unwrap();
        assert_eq!(s, before);
        assert!(r.summary().contains("OFF"), "{}", r.summary());
    }

    #[test]
    fn gvisor_annotations_kept_when_allowed_and_selinux_dropped_for_runsc() {
        let mut s = ctr_spec();
        s["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0");
        let p = Policy {
            allow_gvisor_annotations: true,
            ..Policy::default()
        };
        run(&mut s, &p, Backend::Runsc).unwrap();
        assert_eq!(s["annotations"]["dev.gvisor.flag.network"], "host");
        assert!(s["process"].get("selinuxLabel").is_none());
    }

    #[test]
    fn exec_processes_get_the_containers_process_rules() {
        let mut s = ctr_spec();
        let policy = Policy::default();
        let r = run(&mut s, &policy, Backend::Runc).unwrap();
        let rules = ExecRules::new(&policy, &r);
        let mut p = ctr_spec()["process"].clone();
        p["noNewPrivileges"] = json!(false);
        let er = rules.apply(&mut p, Backend::Runc).unwrap();
        assert_eq!(p["noNewPrivileges"], true);
        let b = spec::strings(p.pointer("/capabilities/bounding"), "b").unwrap();
        assert!(!b.iter().any(|c| c == "CAP_NET_RAW"));
        assert!(!er.changes.is_empty());
        p["capabilities"]["bounding"]
            .as_array_mut()
            .unwrap()
            .push(json!("CAP_SYS_ADMIN"));
        let e = rules.apply(&mut p, Backend::Runc).unwrap_err();
        assert!(
            e.0.contains("CAP_SYS_ADMIN"),
            "an exec asking for more: {e}"
        );
        let e = rules
            .apply(&mut json!({"Capabilities": {}}), Backend::Runc)
            .unwrap_err();
        assert!(e.0.contains("process.Capabilities"), "{e}");
        let strict = ExecRules {
            level: Level::Strict,
            ..rules
        };
        let mut p = ctr_spec()["process"].clone();
        strict.apply(&mut p, Backend::Runc).unwrap();
        assert_eq!(p["capabilities"]["bounding"], json!([]));
    }

    #[test]
    fn updates_keep_devices_and_the_pids_limit() {
        let rules = ExecRules {
            level: Level::Default,
            privileged: false,
            policy: Policy::default(),
        };
        let mut res = json!({"devices": [{"allow": true, "access": "rwm"}],
                             "pids": {"limit": -1}, "memory": {"limit": 1048576}});
        let r = rules.apply_update(&mut res, Backend::Runc).unwrap();
        assert_eq!(
            res,
            json!({"pids": {"limit": 4096}, "memory": {"limit": 1048576}})
        );
        assert_eq!(r.changes.len(), 2);
        let mut fine = json!({"pids": {"limit": 100}, "cpu": {"shares": 512}});
        let mut unchanged = json!({"pids": {"limit": 0}});
        assert!(rules
            .apply_update(&mut unchanged, Backend::Runc)
            .unwrap()
            .changes
            .is_empty());
        assert!(rules
            .apply_update(&mut fine, Backend::Runc)
            .unwrap()
            .changes
            .is_empty());
        let e = rules
            .apply_update(&mut json!({"Devices": []}), Backend::Runc)
            .unwrap_err();
        assert!(e.0.contains("resources.Devices"), "{e}");
        assert!(rules.apply_update(&mut json!([1]), Backend::Runc).is_err());
    }

    #[test]
    fn bundle_round_trip_and_dry_run() {
        let dir = tempfile::tempdir().unwrap();
        let spec_path = dir.path().join(bundle::SPEC_FILE);
        let original = serde_json::to_vec(&ctr_spec()).unwrap();
        std::fs::write(&spec_path, &original).unwrap();
        let read = || bundle::read(dir.path()).unwrap();
        let dry = harden_bundle(
            dir.path(),
            read(),
            &Policy::default(),
            Backend::Runc,
            None,
            true,
        )
        .unwrap();
        assert!(!dry.report.changes.is_empty());
        assert_eq!(
            std::fs::read(&spec_path).unwrap(),
            original,
            "dry run writes nothing"
        );
        assert!(!dir.path().join(bundle::REPORT_FILE).exists());
        let done = harden_bundle(
            dir.path(),
            read(),
            &Policy::default(),
            Backend::Runc,
            None,
            false,
        )
        .unwrap();
        let written: Value = serde_json::from_slice(&std::fs::read(&spec_path).unwrap()).unwrap();
        assert_eq!(written, done.spec);
        assert_eq!(
            std::fs::read(dir.path().join(bundle::ORIGINAL_FILE)).unwrap(),
            original
        );
        let report: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(bundle::REPORT_FILE)).unwrap())
                .unwrap();
        assert_eq!(
            report["changes"].as_array().unwrap().len(),
            done.report.changes.len()
        );
    }
}
