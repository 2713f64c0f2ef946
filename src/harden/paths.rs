//! Masked and read-only paths: kernel interfaces a container must not read
//! (symbol tables, key rings, firmware) or write (/proc/sys, sysrq).

use serde_json::{Map, Value};

use super::report::Report;
use super::{spec, HardenError, Policy};

/// Union of containerd's, Docker's and the nucleus runtime's masked paths.
pub const MASKED_PATHS: [&str; 16] = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/config.gz",
    "/proc/kallsyms",
    "/proc/kcore",
    "/proc/keys",
    "/proc/kpagecgroup",
    "/proc/kpagecount",
    "/proc/kpageflags",
    "/proc/latency_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/sys/devices/virtual/powercap",
    "/sys/firmware",
];

/// Read-only paths. /proc/sysrq-trigger is read-only rather than masked: a
/// mask is a bind of /dev/null, which accepts writes.
pub const READONLY_PATHS: [&str; 5] = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

fn ensure_all(
    linux: &mut Map<String, Value>,
    key: &str,
    wanted: impl Iterator<Item = String>,
    rule: &'static str,
    report: &mut Report,
) -> Result<(), HardenError> {
    let field = format!("linux.{key}");
    let mut have = spec::strings(linux.get(key), &field)?;
    for p in wanted {
        if !have.contains(&p) {
            report.add(rule, &field, &p);
            have.push(p);
        }
    }
    linux.insert(key.to_string(), have.into());
    Ok(())
}

/// Adds the built-in and configured masked and read-only paths.
pub fn apply(
    linux: &mut Map<String, Value>,
    policy: &Policy,
    report: &mut Report,
) -> Result<(), HardenError> {
    let masked = MASKED_PATHS
        .iter()
        .map(|s| s.to_string())
        .chain(policy.extra_masked_paths.iter().cloned());
    ensure_all(linux, "maskedPaths", masked, "masked-paths", report)?;
    let readonly = READONLY_PATHS
        .iter()
        .map(|s| s.to_string())
        .chain(policy.extra_readonly_paths.iter().cloned());
    ensure_all(linux, "readonlyPaths", readonly, "readonly-paths", report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::policy::Level;
    use crate::runtime::Backend;
    use serde_json::json;

    #[test]
    fn adds_missing_paths_once_and_keeps_the_specs_own() {
        let mut linux = json!({"maskedPaths": ["/proc/kcore", "/custom"]});
        let linux = linux.as_object_mut().unwrap();
        let mut r = Report::new(Level::Default, Backend::Runc);
        let policy = Policy {
            extra_masked_paths: vec!["/proc/extra".into()],
            ..Policy::default()
        };
        apply(linux, &policy, &mut r).unwrap();
        let masked = spec::strings(linux.get("maskedPaths"), "m").unwrap();
        assert!(masked.contains(&"/custom".to_string()));
        assert!(masked.contains(&"/proc/kallsyms".to_string()));
        assert!(masked.contains(&"/proc/extra".to_string()));
        assert_eq!(masked.iter().filter(|p| *p == "/proc/kcore").count(), 1);
        assert!(!masked.contains(&"/proc/sysrq-trigger".to_string()));
        let ro = spec::strings(linux.get("readonlyPaths"), "r").unwrap();
        assert_eq!(ro, READONLY_PATHS);
        // kcore was there already: 15 masked + 1 extra + 5 read-only.
        assert_eq!(r.changes.len(), 15 + 1 + 5);
        let mut again = Report::new(Level::Default, Backend::Runc);
        apply(linux, &policy, &mut again).unwrap();
        assert!(again.changes.is_empty(), "idempotent");
    }

    #[test]
    fn a_non_list_is_named() {
        let mut linux = json!({"maskedPaths": "/proc/kcore"});
        let mut r = Report::new(Level::Default, Backend::Runc);
        let e = apply(linux.as_object_mut().unwrap(), &Policy::default(), &mut r).unwrap_err();
        assert!(e.0.contains("linux.maskedPaths"), "{e}");
    }
}
