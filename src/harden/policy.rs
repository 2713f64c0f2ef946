//! The hardening policy: levels and the knobs an operator sets under
//! `[policy]` in nucleus.toml, and the per-container level annotation.

use serde::Deserialize;
use serde_json::Value;

use super::HardenError;

/// Annotation a container uses to choose its level (tighten only, unless
/// the config allows loosening).
pub const LEVEL_ANNOTATION: &str = "io.nucleus.policy";

/// Annotation a container uses to ask for `unconfined` (no seccomp floor;
/// only where the config allows loosening) or `floor`.
pub const SECCOMP_ANNOTATION: &str = "io.nucleus.seccomp";

/// What a spec without a seccomp profile gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SeccompMode {
    /// The nucleus allow-list (see `harden::seccomp`).
    Floor,
    /// No profile: every syscall reaches the kernel.
    Unconfined,
}

impl SeccompMode {
    pub(crate) fn parse(s: &str) -> Option<SeccompMode> {
        match s {
            "floor" => Some(SeccompMode::Floor),
            "unconfined" => Some(SeccompMode::Unconfined),
            _ => None,
        }
    }
}

/// Whether containerd gives `cap` (canonical name) to every container
/// (`ctr run`, CRI): its 14 defaults are the baseline's 13 and NET_RAW. A
/// capability a workload holds beyond these was asked for explicitly.
pub fn containerd_default(cap: &str) -> bool {
    cap == "CAP_NET_RAW" || BASELINE_CAPABILITIES.contains(&cap)
}

/// How hard a spec is clamped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// No rule applies (debugging only; logged loudly).
    Off,
    /// Safe for arbitrary images.
    Default,
    /// For untrusted code.
    Strict,
}

impl Level {
    /// The level's name as written in configs and annotations.
    pub fn name(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Default => "default",
            Level::Strict => "strict",
        }
    }

    fn parse(s: &str) -> Option<Level> {
        [Level::Off, Level::Default, Level::Strict]
            .into_iter()
            .find(|l| l.name() == s)
    }
}

/// The Kubernetes "baseline" capability set: what the default level keeps.
pub const BASELINE_CAPABILITIES: [&str; 13] = [
    "CAP_AUDIT_WRITE",
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_MKNOD",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Directories OCI hooks may live in.
pub const TRUSTED_HOOK_DIRS: [&str; 11] = [
    "/usr/bin/",
    "/usr/sbin/",
    "/usr/lib/",
    "/usr/libexec/",
    "/usr/local/bin/",
    "/usr/local/sbin/",
    "/usr/local/libexec/",
    "/bin/",
    "/sbin/",
    "/nix/store/",
    "/opt/",
];

/// `[policy]` in nucleus.toml. Every field has a safe default.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Policy {
    /// `default` (the default), `strict` or `off`.
    pub level: Level,
    /// Let the `io.nucleus.policy` annotation lower the level.
    pub allow_loosening: bool,
    /// Run privileged containers (all devices, writable /sys) instead of
    /// refusing them; their capabilities and paths are then left alone.
    pub allow_privileged: bool,
    /// Keep `dev.gvisor.*` annotations (they change how runsc runs the sandbox).
    pub allow_gvisor_annotations: bool,
    /// Directories OCI hooks may come from (each ending in `/`).
    pub trusted_hook_dirs: Vec<String>,
    /// Capabilities the default level keeps (the baseline set). One a
    /// workload asks for beyond containerd's defaults and this list is a
    /// Create error; containerd's defaults outside it (NET_RAW) are dropped.
    /// (`capabilities` is the older name.)
    #[serde(alias = "capabilities")]
    pub allowed_capabilities: Vec<String>,
    /// Set no_new_privileges on every process (default). false keeps the
    /// spec's value at the default level: setuid binaries then work where
    /// the workload allows privilege escalation (Kubernetes' default
    /// allowPrivilegeEscalation). Strict always sets it.
    pub no_new_privileges: bool,
    /// What a spec without a seccomp profile gets: `floor` or `unconfined`.
    pub seccomp: SeccompMode,
    /// Give runsc the floor too (runsc filters in its sentry; the floor
    /// adds a filter on the workload's own syscalls).
    pub seccomp_floor_on_runsc: bool,
    /// Paths masked in addition to the built-in list.
    pub extra_masked_paths: Vec<String>,
    /// Paths made read-only in addition to the built-in list.
    pub extra_readonly_paths: Vec<String>,
    /// Mount types allowed besides bind, tmpfs, devpts, mqueue, cgroup(2),
    /// proc and sysfs.
    pub extra_mount_types: Vec<String>,
    /// `linux.resources.pids.limit` when the spec sets none.
    pub pids_limit: i64,
    /// RLIMIT_NOFILE (soft, hard) when the spec sets none.
    pub nofile: [u64; 2],
    /// Strict: RLIMIT_NOFILE.
    pub strict_nofile: u64,
    /// Strict: RLIMIT_NPROC.
    pub strict_nproc: u64,
    /// Strict: RLIMIT_MEMLOCK in bytes.
    pub strict_memlock: u64,
    /// Strict: size of the noexec tmpfs on /tmp and /dev/shm (tmpfs `size=`).
    pub strict_tmpfs_size: String,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            level: Level::Default,
            allow_loosening: false,
            allow_privileged: false,
            allow_gvisor_annotations: false,
            trusted_hook_dirs: TRUSTED_HOOK_DIRS.iter().map(|s| s.to_string()).collect(),
            allowed_capabilities: BASELINE_CAPABILITIES
                .iter()
                .map(|s| s.to_string())
                .collect(),
            no_new_privileges: true,
            seccomp: SeccompMode::Floor,
            seccomp_floor_on_runsc: false,
            extra_masked_paths: Vec::new(),
            extra_readonly_paths: Vec::new(),
            extra_mount_types: Vec::new(),
            pids_limit: 4096,
            nofile: [65536, 1048576],
            strict_nofile: 1024,
            strict_nproc: 1024,
            strict_memlock: 64 * 1024,
            strict_tmpfs_size: "64m".into(),
        }
    }
}

/// Canonical capability name: upper case with the `CAP_` prefix.
pub fn cap_name(s: &str) -> String {
    let up = s.trim().to_ascii_uppercase();
    if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    }
}

fn is_clean_absolute(p: &str) -> bool {
    p.starts_with('/') && !p.split('/').any(|c| c == "..")
}

impl Policy {
    /// Checks the operator's values; `origin` names the config in errors.
    pub fn validate(&self, origin: &str) -> Result<(), String> {
        for d in &self.trusted_hook_dirs {
            if !is_clean_absolute(d) || !d.ends_with('/') || d == "/" {
                return Err(format!(
                    "config {origin}: policy.trusted_hook_dirs entry {d:?} must be an absolute directory ending in '/' (and not '/')"
                ));
            }
        }
        for c in &self.allowed_capabilities {
            let n = cap_name(c);
            if n.len() <= 4 || !n[4..].chars().all(|c| c.is_ascii_uppercase() || c == '_') {
                return Err(format!(
                    "config {origin}: policy.allowed_capabilities entry {c:?} is not a capability name"
                ));
            }
        }
        for p in self
            .extra_masked_paths
            .iter()
            .chain(&self.extra_readonly_paths)
        {
            if !is_clean_absolute(p) {
                return Err(format!(
                    "config {origin}: policy path {p:?} must be absolute without '..'"
                ));
            }
        }
        if self.pids_limit <= 0 {
            return Err(format!(
                "config {origin}: policy.pids_limit = {} must be positive",
                self.pids_limit
            ));
        }
        let [soft, hard] = self.nofile;
        if soft == 0 || soft > hard {
            return Err(format!(
                "config {origin}: policy.nofile = [{soft}, {hard}] must be [soft, hard] with 0 < soft <= hard"
            ));
        }
        if self.strict_nofile == 0 || self.strict_nproc == 0 {
            return Err(format!(
                "config {origin}: policy.strict_nofile and policy.strict_nproc must be positive"
            ));
        }
        let size = &self.strict_tmpfs_size;
        let digits = size.trim_end_matches(['k', 'm', 'g', '%']);
        if digits.is_empty()
            || !digits.chars().all(|c| c.is_ascii_digit())
            || size.len() - digits.len() > 1
        {
            return Err(format!(
                "config {origin}: policy.strict_tmpfs_size = {size:?} must be a tmpfs size like \"64m\""
            ));
        }
        Ok(())
    }

    /// The level for one container: the config's, or the annotation's when
    /// it tightens (or loosens and the config allows it).
    pub fn level_for(&self, spec: &Value) -> Result<Level, HardenError> {
        let Some(asked) = spec
            .pointer("/annotations")
            .and_then(|a| a.get(LEVEL_ANNOTATION))
        else {
            return Ok(self.level);
        };
        let name = asked.as_str().unwrap_or_default();
        let Some(level) = Level::parse(name) else {
            return Err(HardenError(format!(
                "annotation {LEVEL_ANNOTATION}={asked} is not one of off, default, strict"
            )));
        };
        if level < self.level && !self.allow_loosening {
            return Err(HardenError(format!(
                "annotation {LEVEL_ANNOTATION}={name} would loosen the configured level {}; \
                 the config does not allow it (policy.allow_loosening)",
                self.level.name()
            )));
        }
        Ok(level)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn annotation_tightens_and_never_loosens_unless_allowed() {
        let p = Policy::default();
        let spec = |l: &str| json!({"annotations": {LEVEL_ANNOTATION: l}});
        assert_eq!(p.level_for(&json!({})).unwrap(), Level::Default);
        assert_eq!(p.level_for(&spec("strict")).unwrap(), Level::Strict);
        let e = p.level_for(&spec("off")).unwrap_err();
        assert!(
            e.0.contains("loosen") && e.0.contains("allow_loosening"),
            "{e}"
        );
        let e = p.level_for(&spec("lax")).unwrap_err();
        assert!(e.0.contains("lax"), "{e}");
        let open = Policy {
            allow_loosening: true,
            ..Policy::default()
        };
        assert_eq!(open.level_for(&spec("off")).unwrap(), Level::Off);
        let strict = Policy {
            level: Level::Strict,
            ..Policy::default()
        };
        assert!(strict.level_for(&spec("default")).is_err());
    }

    #[test]
    fn bad_knobs_are_named() {
        let bad = [
            Policy {
                trusted_hook_dirs: vec!["opt/".into()],
                ..Policy::default()
            },
            Policy {
                trusted_hook_dirs: vec!["/".into()],
                ..Policy::default()
            },
            Policy {
                allowed_capabilities: vec!["NET-RAW".into()],
                ..Policy::default()
            },
            Policy {
                extra_masked_paths: vec!["/proc/../etc".into()],
                ..Policy::default()
            },
            Policy {
                pids_limit: 0,
                ..Policy::default()
            },
            Policy {
                nofile: [10, 5],
                ..Policy::default()
            },
            Policy {
                strict_tmpfs_size: "lots".into(),
                ..Policy::default()
            },
        ];
        for p in bad {
            let e = p.validate("test.toml").unwrap_err();
            assert!(e.contains("test.toml") && e.contains("policy"), "{e}");
        }
        Policy::default().validate("x").unwrap();
        assert_eq!(cap_name("net_raw"), "CAP_NET_RAW");
    }
}
