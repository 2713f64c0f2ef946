//! gVisor specifics: `dev.gvisor.*` annotations change how runsc builds the
//! sandbox (mounts, flags), so a container may not set them unless the
//! operator allows it; SELinux labels mean nothing to runsc and are dropped;
//! and the report says what runsc leaves undone of maskedPaths and
//! readonlyPaths.

use serde_json::{Map, Value};

use super::report::Report;
use crate::runtime::Backend;

/// Prefix of the annotations runsc reads.
pub const GVISOR_ANNOTATION_PREFIX: &str = "dev.gvisor.";

/// Removes `dev.gvisor.*` annotations (on every backend: they are meant for
/// runsc whatever the shim runs today).
pub fn strip_annotations(root: &mut Map<String, Value>, report: &mut Report) {
    let Some(Value::Object(annotations)) = root.get_mut("annotations") else {
        return;
    };
    let keys: Vec<String> = annotations
        .keys()
        .filter(|k| k.starts_with(GVISOR_ANNOTATION_PREFIX))
        .cloned()
        .collect();
    for k in keys {
        annotations.remove(&k);
        report.remove("gvisor-annotations", "annotations", k);
    }
}

/// What runsc does with `linux.maskedPaths` and `linux.readonlyPaths`,
/// measured on runsc 20221219 (Debian 12) and 20240729 (Debian 13, sid)
/// with a spec masking /etc/passwd and /proc/kcore and making /tmp and
/// /proc/sys read-only: neither list is applied. Paths under /proc and /sys
/// are gVisor's own emulation instead: it has no kallsyms, kcore, keys,
/// timer_list or firmware of the host's, its /proc/sys refuses writes, and
/// nothing there reaches the host kernel. A listed path elsewhere (an
/// operator's `extra_masked_paths` such as /etc/secret) stays as the image
/// has it. `version` is `runsc --version`'s first line.
pub fn paths_note(spec: &Value, backend: Backend, version: Option<&str>, report: &mut Report) {
    if backend != Backend::Runsc {
        return;
    }
    let listed = |key: &str| -> Vec<String> {
        spec.pointer(&format!("/linux/{key}"))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    };
    let (masked, readonly) = (listed("maskedPaths"), listed("readonlyPaths"));
    if masked.is_empty() && readonly.is_empty() {
        return;
    }
    let outside: Vec<String> = masked
        .iter()
        .chain(&readonly)
        .filter(|p| {
            !["/proc", "/sys"]
                .iter()
                .any(|d| p == d || p.starts_with(&format!("{d}/")))
        })
        .cloned()
        .collect();
    let mut note = format!(
        "{} applies neither maskedPaths ({}) nor readonlyPaths ({}): under /proc and /sys the \
         sandbox sees gVisor's own files, none of the host kernel's (no kallsyms, kcore, keys; \
         /proc/sys refuses writes)",
        version.unwrap_or("runsc"),
        masked.len(),
        readonly.len()
    );
    if !outside.is_empty() {
        note.push_str(&format!(
            "; outside them these stay as the image has them: {}",
            outside.join(", ")
        ));
    }
    report.notes.push(note);
}

/// runsc enforces a spec's `linux.seccomp` (the shim passes
/// `--oci-seccomp`) on the container's process and its children, but not on
/// a process started by exec (measured on 20221219 and 20240729: Seccomp 0,
/// keyctl reached). The shim's relay installs the profile in those
/// (`runtime::bpf`), where the relay is mounted: not on a read-only rootfs
/// nor with `runsc_host_terminal`. The report says so.
pub fn seccomp_note(spec: &Value, backend: Backend, report: &mut Report) {
    if backend == Backend::Runsc && spec.pointer("/linux/seccomp").is_some_and(|s| !s.is_null()) {
        report.notes.push(
            "runsc enforces linux.seccomp on the container's process; the shim's relay \
             installs it in processes started by exec, except on a read-only rootfs or with \
             runsc_host_terminal (no relay there)"
                .into(),
        );
    }
}

/// Drops `process.selinuxLabel` and `linux.mountLabel` for runsc.
pub fn drop_selinux(root: &mut Map<String, Value>, backend: Backend, report: &mut Report) {
    if backend != Backend::Runsc {
        return;
    }
    for (parent, key) in [("process", "selinuxLabel"), ("linux", "mountLabel")] {
        if let Some(Value::Object(obj)) = root.get_mut(parent) {
            if let Some(v) = obj.remove(key) {
                report.set(
                    "selinux",
                    format!("{parent}.{key}"),
                    Some(super::spec::show(&v)),
                    None,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harden::policy::Level;
    use serde_json::json;

    #[test]
    fn runsc_report_says_which_paths_it_leaves_undone() {
        let spec = json!({"linux": {"maskedPaths": ["/proc/kcore", "/etc/secret"],
                                    "readonlyPaths": ["/proc/sys", "/srv"]}});
        let mut r = Report::new(Level::Default, Backend::Runsc);
        paths_note(
            &spec,
            Backend::Runsc,
            Some("runsc version 0.0~20221219.0"),
            &mut r,
        );
        let note = &r.notes[0];
        assert!(
            note.starts_with("runsc version 0.0~20221219.0 applies neither maskedPaths (2)"),
            "{note}"
        );
        assert!(
            note.ends_with("these stay as the image has them: /etc/secret, /srv"),
            "{note}"
        );
        let mut r = Report::new(Level::Default, Backend::Runc);
        paths_note(&spec, Backend::Runc, None, &mut r);
        assert!(r.notes.is_empty(), "runc and crun apply both lists");
        let filtered = json!({"linux": {"seccomp": {"defaultAction": "SCMP_ACT_ERRNO"}}});
        seccomp_note(&filtered, Backend::Runc, &mut r);
        assert!(r.notes.is_empty());
        seccomp_note(&filtered, Backend::Runsc, &mut r);
        assert!(r.notes[0].contains("started by exec"));
    }

    #[test]
    fn gvisor_annotations_go_others_stay() {
        let mut s = json!({"annotations": {
            "dev.gvisor.spec.mount.data.share": "shared",
            "dev.gvisor.flag.network": "host",
            "io.kubernetes.cri.sandbox-id": "abc"
        }});
        let mut r = Report::new(Level::Default, Backend::Runc);
        strip_annotations(s.as_object_mut().unwrap(), &mut r);
        assert_eq!(
            s["annotations"],
            json!({"io.kubernetes.cri.sandbox-id": "abc"})
        );
        assert_eq!(r.changes.len(), 2);
    }

    #[test]
    fn selinux_labels_dropped_only_for_runsc() {
        let spec = json!({"process": {"selinuxLabel": "system_u:system_r:container_t:s0"},
                          "linux": {"mountLabel": "system_u:object_r:container_file_t:s0"}});
        let mut s = spec.clone();
        let mut r = Report::new(Level::Default, Backend::Crun);
        drop_selinux(s.as_object_mut().unwrap(), Backend::Crun, &mut r);
        assert_eq!(s, spec);
        drop_selinux(s.as_object_mut().unwrap(), Backend::Runsc, &mut r);
        assert!(s["process"].get("selinuxLabel").is_none());
        assert!(s["linux"].get("mountLabel").is_none());
        assert_eq!(r.changes.len(), 2);
    }
}
