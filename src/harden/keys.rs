//! runc and runsc read config.json with Go's encoding/json, which matches
//! object keys to spec fields ignoring case (and folds `ſ` to s, the Kelvin
//! sign to k): `"Hooks"` reaches runc as `hooks`, and Go merges it with the
//! real one. crun matches exactly. A key that only Go would take for a spec
//! field is refused, so every runtime reads the fields the policy read.

use serde_json::Value;

use super::HardenError;

/// The shape of the spec objects the policy reads or writes.
enum Kind {
    Leaf,
    Object(&'static [(&'static str, Kind)]),
    List(&'static [(&'static str, Kind)]),
}

use Kind::{Leaf, List, Object};

const CAPABILITIES: &[(&str, Kind)] = &[
    ("bounding", Leaf),
    ("effective", Leaf),
    ("inheritable", Leaf),
    ("permitted", Leaf),
    ("ambient", Leaf),
];
const RLIMIT: &[(&str, Kind)] = &[("type", Leaf), ("hard", Leaf), ("soft", Leaf)];
const USER: &[(&str, Kind)] = &[
    ("uid", Leaf),
    ("gid", Leaf),
    ("umask", Leaf),
    ("additionalGids", Leaf),
    ("username", Leaf),
];
const PROCESS: &[(&str, Kind)] = &[
    ("terminal", Leaf),
    ("consoleSize", Leaf),
    ("user", Object(USER)),
    ("args", Leaf),
    ("commandLine", Leaf),
    ("env", Leaf),
    ("cwd", Leaf),
    ("capabilities", Object(CAPABILITIES)),
    ("rlimits", List(RLIMIT)),
    ("noNewPrivileges", Leaf),
    ("apparmorProfile", Leaf),
    ("oomScoreAdj", Leaf),
    ("selinuxLabel", Leaf),
    ("ioPriority", Leaf),
    ("scheduler", Leaf),
    ("execCPUAffinity", Leaf),
];
const ROOT: &[(&str, Kind)] = &[("path", Leaf), ("readonly", Leaf)];
const MOUNT: &[(&str, Kind)] = &[
    ("destination", Leaf),
    ("source", Leaf),
    ("options", Leaf),
    ("type", Leaf),
    ("uidMappings", Leaf),
    ("gidMappings", Leaf),
];
const HOOK: &[(&str, Kind)] = &[
    ("path", Leaf),
    ("args", Leaf),
    ("env", Leaf),
    ("timeout", Leaf),
];
const HOOKS: &[(&str, Kind)] = &[
    ("prestart", List(HOOK)),
    ("createRuntime", List(HOOK)),
    ("createContainer", List(HOOK)),
    ("startContainer", List(HOOK)),
    ("poststart", List(HOOK)),
    ("poststop", List(HOOK)),
];
const DEVICE_RULE: &[(&str, Kind)] = &[
    ("allow", Leaf),
    ("type", Leaf),
    ("major", Leaf),
    ("minor", Leaf),
    ("access", Leaf),
];
const PIDS: &[(&str, Kind)] = &[("limit", Leaf)];
const RESOURCES: &[(&str, Kind)] = &[
    ("devices", List(DEVICE_RULE)),
    ("memory", Leaf),
    ("cpu", Leaf),
    ("blockIO", Leaf),
    ("hugepageLimits", Leaf),
    ("network", Leaf),
    ("pids", Object(PIDS)),
    ("rdma", Leaf),
    ("unified", Leaf),
];
const NAMESPACE: &[(&str, Kind)] = &[("type", Leaf), ("path", Leaf)];
const LINUX: &[(&str, Kind)] = &[
    ("uidMappings", Leaf),
    ("gidMappings", Leaf),
    ("sysctl", Leaf),
    ("resources", Object(RESOURCES)),
    ("cgroupsPath", Leaf),
    ("namespaces", List(NAMESPACE)),
    ("devices", Leaf),
    ("seccomp", Leaf),
    ("rootfsPropagation", Leaf),
    ("maskedPaths", Leaf),
    ("readonlyPaths", Leaf),
    ("mountLabel", Leaf),
    ("intelRdt", Leaf),
    ("personality", Leaf),
    ("timeOffsets", Leaf),
];
const SPEC: &[(&str, Kind)] = &[
    ("ociVersion", Leaf),
    ("process", Object(PROCESS)),
    ("root", Object(ROOT)),
    ("hostname", Leaf),
    ("domainname", Leaf),
    ("mounts", List(MOUNT)),
    ("hooks", Object(HOOKS)),
    ("annotations", Leaf),
    ("linux", Object(LINUX)),
    ("solaris", Leaf),
    ("windows", Leaf),
    ("vm", Leaf),
    ("zos", Leaf),
];

/// Go's case folding, as far as it can reach ASCII field names.
fn fold(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '\u{17f}' => 's',
            '\u{212a}' => 'k',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

fn walk(v: &Value, fields: &'static [(&'static str, Kind)], at: &str) -> Result<(), HardenError> {
    let Some(obj) = v.as_object() else {
        return Ok(());
    };
    for (key, child) in obj {
        let here = if at.is_empty() {
            key.clone()
        } else {
            format!("{at}.{key}")
        };
        if let Some((_, kind)) = fields.iter().find(|(f, _)| f == key) {
            match kind {
                Leaf => {}
                Object(sub) => walk(child, sub, &here)?,
                List(sub) => {
                    for (i, item) in child.as_array().into_iter().flatten().enumerate() {
                        walk(item, sub, &format!("{here}[{i}]"))?;
                    }
                }
            }
        } else if let Some((field, _)) = fields.iter().find(|(f, _)| fold(f) == fold(key)) {
            return Err(HardenError(format!(
                "spec key {here:?} is a case variant of {field:?}: runc and runsc would read \
                 it as {field:?} behind the policy's back; refused"
            )));
        }
    }
    Ok(())
}

/// Refuses keys that Go's JSON decoder would match to a spec field the
/// policy reads under another spelling.
pub fn check(spec: &Value) -> Result<(), HardenError> {
    walk(spec, SPEC, "")
}

/// The same for an Update's `LinuxResources`.
pub fn check_resources(resources: &Value) -> Result<(), HardenError> {
    walk(resources, RESOURCES, "resources")
}

/// The same for an exec's `specs.Process`.
pub fn check_process(process: &Value) -> Result<(), HardenError> {
    walk(process, PROCESS, "process")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn case_variants_are_refused_wherever_the_policy_reads() {
        let cases = [
            (
                json!({"Hooks": {"prestart": [{"path": "/tmp/evil"}]}}),
                "Hooks",
            ),
            (json!({"hook\u{17f}": {}}), "hook\u{17f}"),
            (
                json!({"process": {"capabilities": {"Bounding": ["CAP_SYS_ADMIN"]}}}),
                "process.capabilities.Bounding",
            ),
            (
                json!({"linux": {"Resources": {"devices": []}}}),
                "linux.Resources",
            ),
            (
                json!({"linux": {"resources": {"devices": [{"Allow": true}]}}}),
                "linux.resources.devices[0].Allow",
            ),
            (
                json!({"Annotations": {"dev.gvisor.flag.network": "host"}}),
                "Annotations",
            ),
            (
                json!({"mounts": [{"destination": "/x", "Type": "proc"}]}),
                "mounts[0].Type",
            ),
            (
                json!({"hooks": {"prestart": [{"PATH": "/tmp/evil"}]}}),
                "hooks.prestart[0].PATH",
            ),
            (
                json!({"process": {"rlimits": [{"type": "RLIMIT_NOFILE", "Soft": 1}]}}),
                "process.rlimits[0].Soft",
            ),
            (
                json!({"linux": {"resources": {"pids": {"LIMIT": 1}}}}),
                "pids.LIMIT",
            ),
            (json!({"hoo\u{212a}s": {}}), "hoo\u{212a}s"),
        ];
        for (spec, named) in cases {
            let e = check(&spec).expect_err(named);
            assert!(
                e.0.contains(named) && e.0.contains("case variant"),
                "{named}: {e}"
            );
        }
    }

    #[test]
    fn exact_keys_vendor_extensions_and_annotation_keys_pass() {
        check(&json!({
            "ociVersion": "1.0.2",
            "process": {"args": ["/bin/sh"], "capabilities": {"bounding": []}},
            "linux": {"resources": {"pids": {"limit": 10}}, "sysctl": {"Net.Ipv4.X": "1"}},
            "annotations": {"Io.Example": "kept", "DEV.GVISOR.X": "exact map keys"},
            "x-vendor": {"Hooks": "not a spec field at this level"}
        }))
        .unwrap();
    }
}
