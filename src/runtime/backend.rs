//! The differences between runsc, crun and runc, kept in one place.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The CRI annotation naming a container's pod sandbox.
pub const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

/// The CRI annotation saying whether a container is a pod's sandbox or one
/// of its containers.
pub const CONTAINER_TYPE_ANNOTATION: &str = "io.kubernetes.cri.container-type";

/// Which OCI runtime CLI the shim drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Runsc,
    Crun,
    Runc,
}

impl Backend {
    /// Auto-detection order: strongest isolation first.
    pub const ALL: [Backend; 3] = [Backend::Runsc, Backend::Crun, Backend::Runc];

    /// The backend's binary (and config) name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::Runsc => "runsc",
            Backend::Crun => "crun",
            Backend::Runc => "runc",
        }
    }

    /// Parses a config name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.name() == name)
    }

    /// Guesses the backend from a binary path; unknown binaries are treated
    /// as runc-compatible.
    pub fn from_binary(path: &str) -> Self {
        let file = path.rsplit('/').next().unwrap_or(path);
        if file.contains("runsc") {
            Backend::Runsc
        } else if file.contains("crun") {
            Backend::Crun
        } else {
            Backend::Runc
        }
    }

    /// Prefix for the id the runtime is given. runsc names its control
    /// socket after the container id, host-wide (an abstract socket), so the
    /// containerd namespace goes in front (`+` cannot occur in a namespace).
    pub fn id_prefix(self, namespace: &str) -> String {
        match self {
            Backend::Runsc => format!("{namespace}+"),
            _ => String::new(),
        }
    }

    /// A container that joins its pod's sandbox and has no host process of
    /// its own (runsc): its exit comes from `runsc wait`, not from a pid.
    pub fn shares_sandbox_pid(self, spec: &Value) -> bool {
        self == Backend::Runsc
            && spec
                .pointer("/annotations")
                .and_then(|a| a.get(CONTAINER_TYPE_ANNOTATION))
                .and_then(Value::as_str)
                == Some("container")
    }

    /// Adapts a spec to what this backend understands; returns what it
    /// changed (empty: nothing). For runsc app containers of a pod:
    /// - the CRI annotation `io.kubernetes.cri.sandbox-id` must carry the
    ///   prefixed id the sandbox was created with;
    /// - a pid namespace given by path means one the pod already has. runsc
    ///   keys namespaces by that path string, and every container of a pod
    ///   has the sandbox's host pid, so the path cannot say which: the first
    ///   app container would become the init of a fresh namespace and take
    ///   its siblings down when it exits. Without the entry the container
    ///   joins the sandbox's own namespace, whose init is the pod's sandbox
    ///   container, as under runc with `shareProcessNamespace`. (A
    ///   `kubectl debug --target` container also lands there: it sees the
    ///   whole pod rather than just its target.)
    ///
    /// For crun: crun before 1.15 (Debian's 1.8.1) refuses any `ociVersion`
    /// it does not know by prefix ("unknown version specified"), and
    /// containerd 2.x writes 1.2.x specs. crun does not gate fields on the
    /// version, so a newer 1.x version is given as 1.1.0.
    pub fn adapt_spec(self, spec: &mut Value, namespace: &str) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self == Backend::Crun {
            if let Some(Value::String(v)) = spec.get_mut("ociVersion") {
                let minor = v
                    .strip_prefix("1.")
                    .and_then(|rest| rest.split('.').next())
                    .and_then(|m| m.parse::<u32>().ok());
                if minor.is_some_and(|m| m > 1) {
                    *v = "1.1.0".to_string();
                    changed.push("ociVersion given as 1.1.0");
                }
            }
        }
        let prefix = self.id_prefix(namespace);
        if prefix.is_empty() {
            return changed;
        }
        let joins_sandbox = self.shares_sandbox_pid(spec);
        if let Some(annotations) = spec.get_mut("annotations").and_then(Value::as_object_mut) {
            if let Some(Value::String(id)) = annotations.get_mut(SANDBOX_ID_ANNOTATION) {
                if !id.starts_with(&prefix) {
                    *id = format!("{prefix}{id}");
                    changed.push("sandbox id prefixed with the namespace");
                }
            }
        }
        if joins_sandbox {
            if let Some(nss) = spec
                .pointer_mut("/linux/namespaces")
                .and_then(Value::as_array_mut)
            {
                let before = nss.len();
                nss.retain(|ns| {
                    ns.get("type").and_then(Value::as_str) != Some("pid")
                        || ns
                            .get("path")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .is_empty()
                });
                if nss.len() != before {
                    changed.push("joins the pod sandbox's pid namespace");
                }
            }
        }
        changed
    }

    /// Flags this backend needs for a given spec, before the user's own flags.
    ///
    /// runsc refuses a network namespace without a path ("cannot run with
    /// network enabled in root network namespace"): such a spec gets
    /// `--network=none` (loopback only, like runc's empty netns); a netns with
    /// a path (CRI pods) keeps sandbox networking, unless `misread(path)`
    /// says this runsc would take that namespace for the host's (see
    /// [`super::netns`]): then the sandbox joins it and uses the kernel's
    /// stack there (`--network=host`); no netns entry means host. App
    /// containers joining a pod's sandbox take its network as it is.
    pub fn spec_flags(self, spec: &Value, misread: impl FnOnce(&str) -> bool) -> Vec<String> {
        if self != Backend::Runsc {
            return Vec::new();
        }
        let netns = spec
            .pointer("/linux/namespaces")
            .and_then(Value::as_array)
            .and_then(|nss| {
                nss.iter()
                    .find(|ns| ns.get("type").and_then(Value::as_str) == Some("network"))
            });
        match netns {
            None => vec!["--network=host".into()],
            Some(ns) => match ns.get("path").and_then(Value::as_str) {
                Some(p) if !p.is_empty() => {
                    if !self.shares_sandbox_pid(spec) && misread(p) {
                        vec!["--network=host".into()]
                    } else {
                        Vec::new()
                    }
                }
                _ => vec!["--network=none".into()],
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runsc_sandbox_ids_get_the_namespace_prefix() {
        let mut spec = json!({"annotations": {SANDBOX_ID_ANNOTATION: "abc", "other": "x"}});
        assert_eq!(
            Backend::Runsc.adapt_spec(&mut spec, "k8s.io"),
            ["sandbox id prefixed with the namespace"]
        );
        assert_eq!(spec["annotations"][SANDBOX_ID_ANNOTATION], "k8s.io+abc");
        assert!(
            Backend::Runsc.adapt_spec(&mut spec, "k8s.io").is_empty(),
            "idempotent"
        );
        let mut spec = json!({"annotations": {SANDBOX_ID_ANNOTATION: "abc"}});
        assert!(Backend::Runc.adapt_spec(&mut spec, "k8s.io").is_empty());
        assert!(Backend::Runsc
            .adapt_spec(&mut json!({}), "k8s.io")
            .is_empty());
    }

    #[test]
    fn crun_gets_a_spec_version_it_knows() {
        for (given, crun) in [
            ("1.2.1", "1.1.0"),
            ("1.3.0", "1.1.0"),
            ("1.1.0", "1.1.0"),
            ("1.0.2-dev", "1.0.2-dev"),
        ] {
            let mut spec = json!({"ociVersion": given});
            let changed = Backend::Crun.adapt_spec(&mut spec, "ns");
            assert_eq!(spec["ociVersion"], crun, "{given}");
            assert_eq!(changed.is_empty(), given == crun, "{given}");
            let mut spec = json!({"ociVersion": given});
            assert!(Backend::Runc.adapt_spec(&mut spec, "ns").is_empty());
            assert_eq!(spec["ociVersion"], given);
        }
    }

    #[test]
    fn runsc_app_containers_join_the_pods_pid_namespace() {
        let shared = |kind: &str| {
            json!({
                "annotations": {CONTAINER_TYPE_ANNOTATION: kind, SANDBOX_ID_ANNOTATION: "k8s.io+p"},
                "linux": {"namespaces": [
                    {"type": "pid", "path": "/proc/42/ns/pid"},
                    {"type": "network", "path": "/proc/42/ns/net"},
                    {"type": "mount"}
                ]}
            })
        };
        let mut spec = shared("container");
        assert_eq!(
            Backend::Runsc.adapt_spec(&mut spec, "k8s.io"),
            ["joins the pod sandbox's pid namespace"]
        );
        assert_eq!(
            spec["linux"]["namespaces"],
            json!([{"type": "network", "path": "/proc/42/ns/net"}, {"type": "mount"}])
        );
        assert!(
            Backend::Runsc.adapt_spec(&mut spec, "k8s.io").is_empty(),
            "idempotent"
        );
        // A namespace of its own (the kubelet's default) stays.
        let mut own = shared("container");
        own["linux"]["namespaces"][0] = json!({"type": "pid"});
        assert!(Backend::Runsc.adapt_spec(&mut own, "k8s.io").is_empty());
        // The sandbox container itself, and other runtimes, are untouched.
        for (backend, kind) in [(Backend::Runsc, "sandbox"), (Backend::Runc, "container")] {
            let mut spec = shared(kind);
            let before = spec.clone();
            backend.adapt_spec(&mut spec, "k8s.io");
            assert_eq!(spec, before);
        }
    }

    #[test]
    fn names_round_trip() {
        for b in Backend::ALL {
            assert_eq!(Backend::from_name(b.name()), Some(b));
        }
        assert_eq!(Backend::from_name("kata"), None);
    }

    #[test]
    fn binary_names_map_to_backends() {
        assert_eq!(Backend::from_binary("/usr/bin/runsc"), Backend::Runsc);
        assert_eq!(Backend::from_binary("crun"), Backend::Crun);
        assert_eq!(Backend::from_binary("/opt/bin/my-runc"), Backend::Runc);
    }

    #[test]
    fn runsc_network_mapping() {
        let b = Backend::Runsc;
        let own = json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]}});
        let never = |_: &str| false;
        assert_eq!(b.spec_flags(&own, never), vec!["--network=none"]);
        let pod =
            json!({"linux": {"namespaces": [{"type": "network", "path": "/var/run/netns/x"}]}});
        assert!(b.spec_flags(&pod, never).is_empty());
        // A runsc that would misread the pod's namespace: kernel stack in it.
        assert_eq!(
            b.spec_flags(&pod, |p| p == "/var/run/netns/x"),
            vec!["--network=host"]
        );
        // App containers of a pod take the sandbox's network as it is.
        let mut app = pod.clone();
        app["annotations"] = json!({CONTAINER_TYPE_ANNOTATION: "container"});
        assert!(b.spec_flags(&app, |_| panic!("not probed")).is_empty());
        let host = json!({"linux": {"namespaces": [{"type": "pid"}]}});
        assert_eq!(b.spec_flags(&host, never), vec!["--network=host"]);
        assert!(Backend::Runc.spec_flags(&own, never).is_empty());
    }
}
