//! gVisor specifics: `dev.gvisor.*` annotations change how runsc builds the
//! sandbox (mounts, flags), so a container may not set them unless the
//! operator allows it; SELinux labels mean nothing to runsc and are dropped.

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
