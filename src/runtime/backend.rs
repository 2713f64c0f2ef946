//! The differences between runsc, crun and runc, kept in one place.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Longest readable runsc id (see [`Backend::runtime_id`]): CRI's
/// 64-digit ids in `k8s.io` fit; two of them in runsc's lock file name and
/// one in its abstract socket address stay within their limits.
const MAX_READABLE_RUNSC_ID: usize = 80;

/// The CRI annotation naming a container's pod sandbox.
pub const SANDBOX_ID_ANNOTATION: &str = "io.kubernetes.cri.sandbox-id";

/// The OCI hooks runsc runs on the host (none runs inside its sandbox).
const HOST_HOOKS: [&str; 5] = [
    "prestart",
    "createRuntime",
    "createContainer",
    "poststart",
    "poststop",
];

/// 32 hex digits of SHA-256(NS, ID): a long runsc id.
fn id_digest(namespace: &str, id: &str) -> String {
    let digest = crate::digest::sha256_hex(format!("{namespace}\0{id}").as_bytes());
    digest[..32].to_string()
}

/// The CRI annotation saying whether a container is a pod's sandbox or one
/// of its containers.
pub const CONTAINER_TYPE_ANNOTATION: &str = "io.kubernetes.cri.container-type";

/// Where the terminal relay (cmd/nucleus-tty) appears in a runsc container.
pub const TTY_RELAY_PATH: &str = "/dev/.nucleus-tty";

/// The size (columns, rows) a terminal has until the client sets one: the
/// VT100's. A pty starts at 0x0, which programs take for "no size"
/// (busybox `stty size` fails with whatever errno was left over), and ctr
/// sends its first ResizePty only once Start has returned.
pub const DEFAULT_CONSOLE_SIZE: (u16, u16) = (80, 24);

/// Which OCI runtime CLI the shim drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Runsc,
    Crun,
    Runc,
}

/// Replaces each `linux.maskedPaths` entry under /proc or /sys that is a
/// directory (`is_dir`, asked of the host: the container's procfs and sysfs
/// are views of the same kernel) by a read-only empty tmpfs mounted there,
/// after the spec's own mounts; returns whether it changed anything.
///
/// For crun: crun from 1.2x on masks a directory by binding its shared
/// `<root>/.empty-directory` over it, and CRIU cannot restore that mount
/// from crun's checkpoint: with crun 1.28 and CRIU 4.2.1 every restore of a
/// spec masking /proc/acpi or /sys/firmware (containerd's default spec
/// does) fails with "No mapping for N:(null) mountpoint". A tmpfs CRIU
/// dumps and restores by itself. It is what crun 1.8.1 and 1.21 mount for
/// a masked directory (read-only, `size=0k`) and what runc mounts, so the
/// container sees the same empty, read-only directory.
///
/// Other masked paths (files, paths the kernel lacks, paths in the image)
/// stay with crun.
fn masked_dirs_as_tmpfs(spec: &mut Value, is_dir: impl Fn(&str) -> bool) -> bool {
    let kernel_dir = |p: &Value| {
        p.as_str().is_some_and(|path| {
            (path.starts_with("/proc/") || path.starts_with("/sys/"))
                && !path.split('/').any(|c| c == "..")
                && is_dir(path)
        })
    };
    let dirs: Vec<Value> = match spec.pointer("/linux/maskedPaths") {
        Some(Value::Array(masked)) => masked.iter().filter(|p| kernel_dir(p)).cloned().collect(),
        _ => return false,
    };
    if dirs.is_empty() {
        return false;
    }
    let Some(obj) = spec.as_object_mut() else {
        return false;
    };
    let mounts = obj.entry("mounts").or_insert_with(|| json!([]));
    let Some(mounts) = mounts.as_array_mut() else {
        return false;
    };
    mounts.extend(dirs.iter().map(|d| {
        json!({
            "destination": d,
            "type": "tmpfs",
            "source": "tmpfs",
            "options": ["ro", "nosuid", "nodev", "noexec", "size=0k"],
        })
    }));
    if let Some(masked) = spec
        .pointer_mut("/linux/maskedPaths")
        .and_then(Value::as_array_mut)
    {
        masked.retain(|p| !dirs.contains(p));
    }
    true
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

    /// The id the runtime knows container `id` of `namespace` by. runc and
    /// crun: the id itself (each namespace has its own root). runsc names
    /// host-wide things after it (its control socket), so two namespaces'
    /// `c1` must differ, and 20221219 finds a container by prefix, so no id
    /// may be a prefix of another. Hooks, CNI plugins and tools see it, so
    /// it keeps containerd's grammar (`[A-Za-z0-9][A-Za-z0-9_.-]*`):
    /// `LI.LN.ID.NS`, the lengths of the id and the namespace first (`2.7.
    /// c1.default`): once the lengths are read the end is known, so no such
    /// id is a prefix of another. Where that would be long (runsc's lock
    /// file `<sandbox>_sandbox:<id>.lock` must fit a file name, its socket
    /// an abstract address) it is `h` and 32 hex digits of SHA-256(NS, ID):
    /// fixed length, and never a readable id's prefix (those start with a
    /// digit). Hooks still get containerd's id
    /// ([`Backend::hooks_see_containerd_id`]).
    pub fn runtime_id(self, namespace: &str, id: &str) -> String {
        if self != Backend::Runsc {
            return id.to_string();
        }
        let readable = format!("{}.{}.{id}.{namespace}", id.len(), namespace.len());
        if readable.len() <= MAX_READABLE_RUNSC_ID {
            return readable;
        }
        format!("h{}", id_digest(namespace, id))
    }

    /// The runsc id earlier shims gave (`NS+ID+`, or `+` and 32 hex
    /// digits `+`): what a runtime record without `grammar_ids` means, so
    /// `delete` still finds containers an older shim created.
    pub fn legacy_runtime_id(self, namespace: &str, id: &str) -> String {
        if self != Backend::Runsc {
            return id.to_string();
        }
        let readable = format!("{namespace}+{id}+");
        if readable.len() <= MAX_READABLE_RUNSC_ID && !namespace.contains('+') && !id.contains('+')
        {
            return readable;
        }
        format!("+{}+", id_digest(namespace, id))
    }

    /// Flags `restore` takes beyond those every backend knows (`--detach`,
    /// `--bundle`, `--pid-file`, `--image-path`, `--work-path`): runc's
    /// `--no-subreaper` (the shim reaps the restored process); crun has no
    /// such flag and never becomes a subreaper.
    pub fn restore_flags(self) -> &'static [&'static str] {
        match self {
            Backend::Runc => &["--no-subreaper"],
            _ => &[],
        }
    }

    /// Whether `kill` reaches a container that is created and not started.
    /// runsc refuses ("cannot signal container ... in state created"): the
    /// shim deletes such a container instead and reports the signal's exit.
    pub fn signals_created_containers(self) -> bool {
        self != Backend::Runsc
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
    /// version, so a newer 1.x version is given as 1.1.0. Masked kernel
    /// directories become read-only tmpfs mounts: see
    /// [`masked_dirs_as_tmpfs`].
    pub fn adapt_spec(self, spec: &mut Value, namespace: &str) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if self == Backend::Crun {
            if masked_dirs_as_tmpfs(spec, |p| Path::new(p).is_dir()) {
                changed.push("masked directories as read-only tmpfs mounts");
            }
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
        if self != Backend::Runsc {
            return changed;
        }
        let joins_sandbox = self.shares_sandbox_pid(spec);
        if let Some(annotations) = spec.get_mut("annotations").and_then(Value::as_object_mut) {
            // The shim adapts containerd's spec (the kept original), so
            // the annotation holds containerd's id.
            if let Some(Value::String(id)) = annotations.get_mut(SANDBOX_ID_ANNOTATION) {
                *id = self.runtime_id(namespace, id);
                changed.push("sandbox id given as runsc knows it");
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

    /// Entries this backend keeps in its `--root` beside the containers'
    /// state dirs, for itself: they outlive every container, so a root that
    /// holds nothing else has no container left and may go.
    /// - crun 1.21 (Debian 13) and 1.28 (sid), not 1.8.1 (Debian 12):
    ///   `.cache/seccomp/<checksum>`, compiled seccomp filters (hard links
    ///   of a container's `seccomp.bpf`), made for any spec with
    ///   `linux.seccomp` (e.g. the strict policy's).
    /// - crun 1.28, not 1.21 or 1.8.1: `.empty-directory`, an empty
    ///   read-only dir made at the first create (its bind source for
    ///   masking directories).
    ///
    /// runc and runsc leave nothing of their own there.
    pub fn root_leftovers(self) -> &'static [&'static str] {
        match self {
            Backend::Crun => &[".cache", ".empty-directory"],
            Backend::Runc | Backend::Runsc => &[],
        }
    }

    /// Whether the runtime removes, with a container, every cgroup directory
    /// its create made, the container's parents included (runsc, from
    /// release-20211129.0 on, on cgroup v2): the shim then makes a missing
    /// parent itself before `create` ([`crate::cgroup::parents`]).
    ///
    /// runsc/cgroup/cgroup_v2.go `createCgroupPaths` (Install) appends each
    /// path component it mkdirs to `cgroupV2.Own`, and `Uninstall` rmdirs
    /// them all, retrying EBUSY for 5 s. containerd's cgroupsPath is
    /// `/<namespace>/<id>`: the first container of a namespace took
    /// /sys/fs/cgroup/<namespace> for its own and its delete failed while
    /// another container was still in it ("removing cgroup path ...:
    /// context deadline exceeded"). On cgroup v1 (`cgroupV1.Install`,
    /// cgroup.go) `Own` is per controller and only the container's own
    /// directory is removed. runc and crun remove only the container's.
    pub fn removes_created_cgroup_parents(self) -> bool {
        self == Backend::Runsc
    }

    /// Global flags for a container whose rootfs is a read-only filesystem
    /// (a snapshot view, as containerd's client makes for a user-namespaced
    /// read-only rootfs). runsc: `--overlay2=none`. From 2023 on runsc puts
    /// an overlay over the rootfs whose file store it makes in the rootfs
    /// directory (default `root:self`; 20240729: "failed to create filestore
    /// file inside ...: read-only file system"); without the overlay the
    /// container sees its rootfs read-only, as under runc. Every runsc this
    /// project runs (20221219 on) takes `none`.
    pub fn read_only_rootfs_flags(self, read_only: bool) -> Vec<String> {
        if self == Backend::Runsc && read_only {
            vec!["--overlay2=none".to_string()]
        } else {
            Vec::new()
        }
    }

    /// Whether terminal processes run under the shim's relay (runsc).
    ///
    /// gVisor gives the container the console pty as an imported host fd
    /// (runsc/boot/loader.go `createFDTable`, pkg/sentry/fsimpl/host/tty.go):
    /// inside the sandbox its /proc/self/fd link is `host:[N]` and its stat
    /// has no device number (host.go never copies rdev, by design), so
    /// `ttyname()` finds nothing and `tty` prints "not a tty"; /dev/tty is
    /// that terminal only from runsc 20241007 on. The relay runs the program
    /// on a pty of the sandbox's own devpts instead (/dev/pts/N, with a
    /// controlling terminal and job control) and copies it to the host pty.
    pub fn relays_terminal(self) -> bool {
        self == Backend::Runsc
    }

    /// runsc hands its hooks the state of the id it knows the container by;
    /// hooks look the container up by containerd's (nerdctl's CNI setup and
    /// name store; CNI refuses ids outside containerd's grammar). Each hook
    /// runsc runs on the host (prestart, createRuntime, createContainer,
    /// poststart, poststop) is put behind the shim's `oci-hook` action,
    /// which runs it with the state's `id` set to containerd's `id` (same
    /// args, env and timeout; a failure named by the hook's own path).
    /// `shim` is the shim's own binary. runc and crun use containerd's id
    /// already.
    pub fn hooks_see_containerd_id(
        self,
        spec: &mut Value,
        id: &str,
        shim: &Path,
    ) -> Vec<&'static str> {
        if self != Backend::Runsc {
            return Vec::new();
        }
        let shim = shim.display().to_string();
        let mut wrapped = false;
        let Some(hooks) = spec.get_mut("hooks").and_then(Value::as_object_mut) else {
            return Vec::new();
        };
        for kind in HOST_HOOKS {
            let Some(list) = hooks.get_mut(kind).and_then(Value::as_array_mut) else {
                continue;
            };
            for hook in list.iter_mut().filter_map(Value::as_object_mut) {
                let Some(path) = hook.get("path").and_then(Value::as_str).map(str::to_string)
                else {
                    continue;
                };
                if path == shim {
                    continue;
                }
                let mut args = vec![
                    json!("containerd-shim-nucleus-v1"),
                    json!("oci-hook"),
                    json!("--id"),
                    json!(id),
                    json!("--"),
                    json!(path),
                ];
                if let Some(given) = hook.get("args").and_then(Value::as_array) {
                    args.extend(given.iter().cloned());
                }
                hook.insert("path".into(), json!(shim));
                hook.insert("args".into(), Value::Array(args));
                wrapped = true;
            }
        }
        if wrapped {
            vec!["hooks get containerd's id"]
        } else {
            Vec::new()
        }
    }

    /// Mounts the terminal relay (host file `relay`) read-only at
    /// [`TTY_RELAY_PATH`], on every runsc container so that a later
    /// `exec -t` finds it too. A mount the spec had there is replaced.
    pub fn add_terminal_relay(self, spec: &mut Value, relay: &Path) -> Vec<&'static str> {
        if !self.relays_terminal() {
            return Vec::new();
        }
        let mount = json!({
            "destination": TTY_RELAY_PATH,
            "type": "bind",
            "source": relay.to_string_lossy(),
            "options": ["bind", "ro", "nosuid", "nodev"],
        });
        let Some(obj) = spec.as_object_mut() else {
            return Vec::new();
        };
        let mounts = obj.entry("mounts").or_insert_with(|| json!([]));
        let Some(mounts) = mounts.as_array_mut() else {
            return Vec::new();
        };
        if mounts.contains(&mount) {
            return Vec::new();
        }
        mounts.retain(|m| m.get("destination").and_then(Value::as_str) != Some(TTY_RELAY_PATH));
        mounts.push(mount);
        vec!["terminal relay mounted"]
    }

    /// The size (columns, rows) a terminal process starts with: its
    /// `consoleSize`, else [`DEFAULT_CONSOLE_SIZE`].
    pub fn console_size(process: &Value) -> (u16, u16) {
        spec_console_size(process).unwrap_or(DEFAULT_CONSOLE_SIZE)
    }

    /// Whether a process runs under the terminal relay (after
    /// [`Backend::terminal_process`]).
    pub fn relayed(self, process: &Value) -> bool {
        self.relays_terminal()
            && process.pointer("/args/0").and_then(Value::as_str) == Some(TTY_RELAY_PATH)
    }

    /// Prepares a process (a spec's `process` or an exec's process spec)
    /// that asks for a terminal; returns what it changed. It gets a
    /// `consoleSize` if it has none, [`DEFAULT_CONSOLE_SIZE`] (runc and crun
    /// size the pty from it before the program runs). On runsc, with the
    /// relay mounted, its args run under the relay:
    /// `TTY_RELAY_PATH --size CxR -- ARGS`.
    pub fn terminal_process(self, process: &mut Value, relay_mounted: bool) -> Vec<&'static str> {
        let mut changed = Vec::new();
        if process.get("terminal").and_then(Value::as_bool) != Some(true) {
            return changed;
        }
        let given = spec_console_size(process);
        let (cols, rows) = given.unwrap_or(DEFAULT_CONSOLE_SIZE);
        let Some(obj) = process.as_object_mut() else {
            return changed;
        };
        if given.is_none() {
            obj.insert("consoleSize".into(), json!({"height": rows, "width": cols}));
            changed.push("terminal size set until the client resizes it");
        }
        if !(relay_mounted && self.relays_terminal()) {
            return changed;
        }
        if under_relay(obj, &["--size".into(), format!("{cols}x{rows}")]) {
            changed.push("runs on a sandbox terminal (relay)");
        }
        changed
    }

    /// runsc leaves a process it starts by exec without the container's
    /// seccomp profile; the shim runs such a process under the relay with
    /// `program` (the profile compiled by [`super::bpf`], hex) in
    /// `NUCLEUS_SECCOMP_BPF`, which the relay installs before it executes
    /// the process. Returns what it changed.
    pub fn exec_seccomp(self, process: &mut Value, program: Option<&str>) -> Vec<&'static str> {
        let (Backend::Runsc, Some(program)) = (self, program) else {
            return Vec::new();
        };
        let Some(obj) = process.as_object_mut() else {
            return Vec::new();
        };
        under_relay(obj, &[]);
        let env = obj.entry("env").or_insert_with(|| json!([]));
        if let Some(env) = env.as_array_mut() {
            env.push(json!(format!("NUCLEUS_SECCOMP_BPF={program}")));
        }
        vec!["the container's seccomp profile installed by the relay"]
    }

    /// Flags this backend needs for a given spec, before the user's own flags.
    ///
    /// A network namespace without a path is one runsc makes: for a spec
    /// with prestart or createRuntime hooks (Docker's and nerdctl's network
    /// setup) `new_netns()` says how the sandbox uses the interfaces those
    /// hooks add there ([`NewNetns`]); other such specs get
    /// `--network=none` (loopback only, like runc's empty netns). A netns with
    /// a path (CRI pods) keeps sandbox networking, unless `misread(path)`
    /// says this runsc would take that namespace for the host's (see
    /// [`super::netns`]): then the sandbox joins it and uses the kernel's
    /// stack there (`--network=host`); no netns entry means host. App
    /// containers joining a pod's sandbox take its network as it is.
    ///
    /// runsc applies a spec's `linux.seccomp` only with `--oci-seccomp` (its
    /// sentry filters the sandbox's own syscalls, not the workload's). Every
    /// runsc call gets it: a spec's profile (the workload's own, or the
    /// nucleus floor where the config asks) is then enforced as under runc,
    /// and a pod's sandbox, made for a pause container with no profile,
    /// still enforces the profiles of the containers that join it. A spec
    /// without a profile is unaffected.
    pub fn spec_flags(
        self,
        spec: &Value,
        misread: impl FnOnce(&str) -> bool,
        new_netns: impl FnOnce() -> NewNetns,
    ) -> Vec<String> {
        if self != Backend::Runsc {
            return Vec::new();
        }
        let mut flags = vec!["--oci-seccomp".to_string()];
        flags.extend(self.network_flags(spec, misread, new_netns));
        flags
    }

    /// runsc's network flags for a spec (see [`Backend::spec_flags`]).
    fn network_flags(
        self,
        spec: &Value,
        misread: impl FnOnce(&str) -> bool,
        new_netns: impl FnOnce() -> NewNetns,
    ) -> Vec<String> {
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
                // A new namespace that a host-side hook is there to set up
                // (Docker's libnetwork-setkey, nerdctl's CNI hook). Without
                // such a hook it would hold only loopback: runsc makes none.
                _ if has_network_hooks(spec) => match new_netns() {
                    NewNetns::Sandbox => Vec::new(),
                    NewNetns::KernelStack => vec!["--network=host".into()],
                    NewNetns::LoopbackOnly => vec!["--network=none".into()],
                },
                _ => vec!["--network=none".into()],
            },
        }
    }
}

/// How a runsc sandbox networks a namespace it makes, which a hook sets up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NewNetns {
    /// gVisor's own network stack over the namespace's interfaces.
    Sandbox,
    /// The kernel's stack inside that namespace (`--network=host`; runsc
    /// still makes the namespace): for runsc builds that would take it for
    /// the host's and refuse it, where the config allows weaker isolation.
    KernelStack,
    /// Loopback only (`--network=none`): such a build, without that leave.
    LoopbackOnly,
}

/// Whether `spec` has hooks that run on the host once the container's
/// namespaces exist and before its process starts (prestart,
/// createRuntime): what Docker and nerdctl configure a container's network
/// with.
fn has_network_hooks(spec: &Value) -> bool {
    ["prestart", "createRuntime"].iter().any(|kind| {
        spec.pointer(&format!("/hooks/{kind}"))
            .and_then(Value::as_array)
            .is_some_and(|hooks| !hooks.is_empty())
    })
}

/// Runs a process's args under the relay (`TTY_RELAY_PATH OPTIONS -- ARGS`)
/// unless they already are; whether it changed them.
fn under_relay(process: &mut serde_json::Map<String, Value>, options: &[String]) -> bool {
    let Some(args) = process.get_mut("args").and_then(Value::as_array_mut) else {
        return false;
    };
    if args.is_empty() || args[0].as_str() == Some(TTY_RELAY_PATH) {
        return false;
    }
    let mut wrapped = vec![json!(TTY_RELAY_PATH)];
    wrapped.extend(options.iter().map(|o| json!(o)));
    wrapped.push(json!("--"));
    wrapped.append(args);
    *args = wrapped;
    true
}

/// The process's own `consoleSize` (columns, rows), if it gives one.
fn spec_console_size(process: &Value) -> Option<(u16, u16)> {
    let dim = |k: &str| {
        process
            .get("consoleSize")
            .and_then(|c| c.get(k))
            .and_then(Value::as_u64)
            .filter(|v| *v > 0)
            .map(|v| v.min(u16::MAX as u64) as u16)
    };
    Some((dim("width")?, dim("height")?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runsc_ids_are_never_a_prefix_of_another_and_stay_short() {
        let rid = |ns: &str, id: &str| Backend::Runsc.runtime_id(ns, id);
        // containerd's grammar for ids, which hooks and CNI plugins check.
        let grammar = |s: &str| {
            s.starts_with(|c: char| c.is_ascii_alphanumeric())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        };
        assert_eq!(rid("default", "c1"), "2.7.c1.default");
        assert_eq!(Backend::Runc.runtime_id("default", "c1"), "c1");
        assert_eq!(Backend::Crun.runtime_id("default", "c1"), "c1");
        let cri = "a".repeat(64);
        assert_eq!(rid("k8s.io", &cri), format!("64.6.{cri}.k8s.io"));
        // containerd's longest ids (76) in a long namespace: hashed.
        let long = rid("testing", &"TestShimSockLength".repeat(4));
        assert_eq!(long.len(), 33);
        assert!(long.starts_with('h'), "{long}");
        assert_ne!(long, rid("testing", &"TestShimSockLength".repeat(5)));
        assert_ne!(long, rid("testin", &"TestShimSockLength".repeat(4)));
        // No id is a prefix of another, however the names are cut.
        let names = [
            "c", "c1", "c1.", "c1.d", "1", "1.c", "d", "de", "x.1.c1", "7", &cri,
        ];
        let mut ids = vec![long.clone()];
        for ns in ["default", "d", "de", "k8s.io", "1"] {
            for id in names {
                ids.push(rid(ns, id));
            }
        }
        for a in &ids {
            assert!(grammar(a), "{a}");
            for b in &ids {
                assert!(
                    a == b || !b.starts_with(a.as_str()),
                    "{a} is a prefix of {b}"
                );
            }
        }
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "two names gave one id");
        // The lock file runsc names after a sandbox and a container fits.
        assert!(2 * MAX_READABLE_RUNSC_ID + "_sandbox:.lock".len() < 255);
        // Earlier shims' ids, for their runtime records.
        assert_eq!(
            Backend::Runsc.legacy_runtime_id("default", "c1"),
            "default+c1+"
        );
        assert_eq!(Backend::Runc.legacy_runtime_id("default", "c1"), "c1");
    }

    #[test]
    fn runsc_sandbox_ids_are_given_as_runsc_knows_them() {
        let mut spec = json!({"annotations": {SANDBOX_ID_ANNOTATION: "abc", "other": "x"}});
        assert_eq!(
            Backend::Runsc.adapt_spec(&mut spec, "k8s.io"),
            ["sandbox id given as runsc knows it"]
        );
        assert_eq!(spec["annotations"][SANDBOX_ID_ANNOTATION], "3.6.abc.k8s.io");
        let mut spec = json!({"annotations": {SANDBOX_ID_ANNOTATION: "abc"}});
        assert!(Backend::Runc.adapt_spec(&mut spec, "k8s.io").is_empty());
        assert!(Backend::Runsc
            .adapt_spec(&mut json!({}), "k8s.io")
            .is_empty());
    }

    #[test]
    fn masked_kernel_directories_become_read_only_tmpfs_mounts() {
        let given = json!({
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"}],
            "linux": {"maskedPaths": [
                "/proc/acpi", "/proc/kcore", "/sys/firmware", "/proc/missing",
                "/etc/secrets", "/proc/../etc", "/sys/fs/../../etc"
            ]}
        });
        let dirs = [
            "/proc/acpi",
            "/sys/firmware",
            "/etc/secrets",
            "/proc/../etc",
            "/sys/fs/../../etc",
        ];
        let mut spec = given.clone();
        assert!(masked_dirs_as_tmpfs(&mut spec, |p| dirs.contains(&p)));
        assert_eq!(
            spec["linux"]["maskedPaths"],
            json!([
                "/proc/kcore",
                "/proc/missing",
                "/etc/secrets",
                "/proc/../etc",
                "/sys/fs/../../etc"
            ])
        );
        let mounts = spec["mounts"].as_array().expect("mounts");
        assert_eq!(
            mounts[0], given["mounts"][0],
            "the spec's own mounts come first"
        );
        let added: Vec<&str> = mounts[1..]
            .iter()
            .map(|m| {
                assert_eq!(m["type"], "tmpfs");
                assert_eq!(m["options"][0], "ro");
                m["destination"].as_str().expect("destination")
            })
            .collect();
        assert_eq!(added, ["/proc/acpi", "/sys/firmware"]);
        // No directory to mask: nothing changes; no mounts list: one is made.
        let mut spec = given.clone();
        assert!(!masked_dirs_as_tmpfs(&mut spec, |_| false));
        assert_eq!(spec, given);
        let mut spec = json!({"linux": {"maskedPaths": ["/proc/acpi"]}});
        assert!(masked_dirs_as_tmpfs(&mut spec, |_| true));
        assert_eq!(spec["mounts"][0]["destination"], "/proc/acpi");
        // Mounts that are not a list: left to the runtime as they are.
        let mut spec = json!({"mounts": 7, "linux": {"maskedPaths": ["/proc/acpi"]}});
        assert!(!masked_dirs_as_tmpfs(&mut spec, |_| true));
        assert_eq!(spec["linux"]["maskedPaths"][0], "/proc/acpi");
        // Only crun's specs are changed so.
        let mut spec = json!({"linux": {"maskedPaths": ["/proc/sys"]}});
        assert!(Backend::Runc.adapt_spec(&mut spec, "ns").is_empty());
        assert!(Backend::Crun
            .adapt_spec(&mut spec, "ns")
            .contains(&"masked directories as read-only tmpfs mounts"));
    }

    #[test]
    fn only_runsc_needs_flags_for_a_read_only_rootfs() {
        assert_eq!(
            Backend::Runsc.read_only_rootfs_flags(true),
            ["--overlay2=none"]
        );
        assert!(Backend::Runsc.read_only_rootfs_flags(false).is_empty());
        assert!(Backend::Runc.read_only_rootfs_flags(true).is_empty());
        assert!(Backend::Crun.read_only_rootfs_flags(true).is_empty());
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
    fn runsc_hooks_run_behind_the_shim_with_containerds_id() {
        let shim = Path::new("/usr/local/bin/containerd-shim-nucleus-v1");
        let given = json!({"hooks": {
            "createRuntime": [{"path": "/usr/local/bin/nerdctl", "args": ["nerdctl", "internal", "oci-hook", "createRuntime"], "env": ["A=1"], "timeout": 5}],
            "poststop": [{"path": "/usr/bin/cleanup"}],
            "startContainer": [{"path": "/bin/in-container"}]
        }});
        let mut spec = given.clone();
        assert_eq!(
            Backend::Runsc.hooks_see_containerd_id(&mut spec, "c1", shim),
            ["hooks get containerd's id"]
        );
        // The shim's action, then the hook's own path and args.
        let via_shim = |hook: &[&str]| {
            let mut args = vec!["containerd-shim-nucleus-v1", "oci-hook", "--id", "c1", "--"];
            args.extend(hook);
            json!(args)
        };
        let hook = &spec["hooks"]["createRuntime"][0];
        assert_eq!(hook["path"], shim.display().to_string());
        let nerdctl = ["/usr/local/bin/nerdctl", "nerdctl", "internal", "oci-hook"];
        assert_eq!(
            hook["args"],
            via_shim(&[&nerdctl[..], &["createRuntime"]].concat())
        );
        assert_eq!(
            (&hook["env"], &hook["timeout"]),
            (&json!(["A=1"]), &json!(5))
        );
        assert_eq!(
            spec["hooks"]["poststop"][0]["args"],
            via_shim(&["/usr/bin/cleanup"])
        );
        // Inside the container the shim's binary is not there.
        assert_eq!(
            spec["hooks"]["startContainer"],
            given["hooks"]["startContainer"]
        );
        // Once is enough; runc and crun give containerd's id themselves.
        let wrapped = spec.clone();
        assert!(Backend::Runsc
            .hooks_see_containerd_id(&mut spec, "c1", shim)
            .is_empty());
        assert_eq!(spec, wrapped);
        for b in [Backend::Runc, Backend::Crun] {
            let mut spec = given.clone();
            assert!(b.hooks_see_containerd_id(&mut spec, "c1", shim).is_empty());
            assert_eq!(spec, given);
        }
    }

    #[test]
    fn runsc_app_containers_join_the_pods_pid_namespace() {
        let shared = |kind: &str| {
            json!({
                "annotations": {CONTAINER_TYPE_ANNOTATION: kind},
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
    fn runsc_containers_get_the_terminal_relay_mounted_once() {
        let relay = Path::new("/run/nucleus/tty/nucleus-tty-x");
        let mut spec = json!({"mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": TTY_RELAY_PATH, "type": "bind", "source": "/tmp/theirs"}
        ]});
        assert_eq!(
            Backend::Runsc.add_terminal_relay(&mut spec, relay),
            ["terminal relay mounted"]
        );
        let mounts = spec["mounts"].as_array().unwrap();
        assert_eq!(mounts.len(), 2, "the spec's own mount there is replaced");
        assert_eq!(
            mounts[1],
            json!({"destination": TTY_RELAY_PATH, "type": "bind",
                   "source": "/run/nucleus/tty/nucleus-tty-x",
                   "options": ["bind", "ro", "nosuid", "nodev"]})
        );
        assert!(Backend::Runsc
            .add_terminal_relay(&mut spec, relay)
            .is_empty());
        let mut none = json!({});
        Backend::Runsc.add_terminal_relay(&mut none, relay);
        assert_eq!(none["mounts"].as_array().map(Vec::len), Some(1));
        for b in [Backend::Runc, Backend::Crun] {
            let mut spec = json!({"mounts": []});
            assert!(b.add_terminal_relay(&mut spec, relay).is_empty());
            assert_eq!(spec, json!({"mounts": []}));
        }
    }

    #[test]
    fn terminal_processes_get_a_size_and_on_runsc_the_relay() {
        let mut p = json!({"terminal": true, "args": ["sh", "-c", "tty"]});
        assert_eq!(
            Backend::Runsc.terminal_process(&mut p, true),
            [
                "terminal size set until the client resizes it",
                "runs on a sandbox terminal (relay)"
            ]
        );
        assert_eq!(p["consoleSize"], json!({"height": 24, "width": 80}));
        assert_eq!(
            p["args"],
            json!([TTY_RELAY_PATH, "--size", "80x24", "--", "sh", "-c", "tty"])
        );
        assert!(Backend::Runsc.relayed(&p));
        assert!(!Backend::Runc.relayed(&p));
        assert!(
            Backend::Runsc.terminal_process(&mut p, true).is_empty(),
            "idempotent"
        );
        // The client's own size is kept and given to the relay.
        let mut p = json!({"terminal": true, "args": ["sh"],
                           "consoleSize": {"height": 30, "width": 100}});
        Backend::Runsc.terminal_process(&mut p, true);
        assert_eq!(
            p["args"],
            json!([TTY_RELAY_PATH, "--size", "100x30", "--", "sh"])
        );
        assert_eq!(Backend::console_size(&p), (100, 30));
        // runc and crun size the pty themselves; runsc without the relay
        // mounted keeps the host terminal.
        for (b, relay) in [
            (Backend::Runc, true),
            (Backend::Crun, true),
            (Backend::Runsc, false),
        ] {
            let mut p = json!({"terminal": true, "args": ["sh"]});
            assert_eq!(
                b.terminal_process(&mut p, relay),
                ["terminal size set until the client resizes it"]
            );
            assert_eq!(p["args"], json!(["sh"]));
            assert!(!b.relayed(&p));
        }
        // No terminal, nothing to do.
        let mut p = json!({"args": ["sh"]});
        assert!(Backend::Runsc.terminal_process(&mut p, true).is_empty());
        assert_eq!(p, json!({"args": ["sh"]}));
        assert_eq!(Backend::console_size(&p), DEFAULT_CONSOLE_SIZE);
        let mut p = json!({"terminal": true, "consoleSize": {"height": 0, "width": 0}});
        assert_eq!(Backend::console_size(&p), DEFAULT_CONSOLE_SIZE);
        Backend::Runc.terminal_process(&mut p, false);
        assert_eq!(p["consoleSize"], json!({"height": 24, "width": 80}));
    }

    #[test]
    fn only_runsc_gets_its_cgroup_parents_made() {
        for b in Backend::ALL {
            assert_eq!(b.removes_created_cgroup_parents(), b == Backend::Runsc);
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
    fn runsc_execs_run_under_the_relay_with_the_program() {
        let mut p = json!({"args": ["/bin/sh", "-c", "id"], "env": ["A=1"]});
        assert!(Backend::Runc.exec_seccomp(&mut p, Some("00")).is_empty());
        assert!(Backend::Runsc.exec_seccomp(&mut p, None).is_empty());
        assert_eq!(Backend::Runsc.exec_seccomp(&mut p, Some("0a0b")).len(), 1);
        assert_eq!(
            p["args"],
            json!([TTY_RELAY_PATH, "--", "/bin/sh", "-c", "id"])
        );
        assert_eq!(p["env"], json!(["A=1", "NUCLEUS_SECCOMP_BPF=0a0b"]));
        // Already under the relay (a terminal): not wrapped twice.
        let mut t = json!({"args": [TTY_RELAY_PATH, "--size", "80x24", "--", "sh"]});
        Backend::Runsc.exec_seccomp(&mut t, Some("0a0b"));
        assert_eq!(t["args"][0], TTY_RELAY_PATH);
        assert_eq!(t["args"][1], "--size");
    }

    #[test]
    fn runsc_network_mapping() {
        let b = Backend::Runsc;
        let own = json!({"linux": {"namespaces": [{"type": "pid"}, {"type": "network"}]}});
        let never = |_: &str| false;
        let fine = || NewNetns::Sandbox;
        assert_eq!(b.network_flags(&own, never, fine), vec!["--network=none"]);
        // A hook to set the new namespace up (Docker, nerdctl): the
        // sandbox's network, where this runsc can take it.
        let mut hooked = own.clone();
        hooked["hooks"] = json!({"prestart": [{"path": "/usr/sbin/dockerd"}]});
        assert!(b.network_flags(&hooked, never, fine).is_empty());
        assert_eq!(
            b.network_flags(&hooked, never, || NewNetns::KernelStack),
            vec!["--network=host"]
        );
        assert_eq!(
            b.network_flags(&hooked, never, || NewNetns::LoopbackOnly),
            vec!["--network=none"]
        );
        hooked["hooks"] = json!({"createRuntime": [{"path": "/usr/local/bin/nerdctl"}]});
        assert!(b.network_flags(&hooked, never, fine).is_empty());
        hooked["hooks"] = json!({"poststop": [{"path": "/usr/bin/x"}], "prestart": []});
        assert_eq!(
            b.network_flags(&hooked, never, fine),
            vec!["--network=none"]
        );
        let pod =
            json!({"linux": {"namespaces": [{"type": "network", "path": "/var/run/netns/x"}]}});
        assert!(b.network_flags(&pod, never, fine).is_empty());
        // A runsc that would misread the pod's namespace: kernel stack in it.
        assert_eq!(
            b.network_flags(&pod, |p| p == "/var/run/netns/x", fine),
            vec!["--network=host"]
        );
        // App containers of a pod take the sandbox's network as it is.
        let mut app = pod.clone();
        app["annotations"] = json!({CONTAINER_TYPE_ANNOTATION: "container"});
        assert!(b
            .network_flags(&app, |_| panic!("not probed"), fine)
            .is_empty());
        let host = json!({"linux": {"namespaces": [{"type": "pid"}]}});
        assert_eq!(b.network_flags(&host, never, fine), vec!["--network=host"]);
        assert!(Backend::Runc.spec_flags(&own, never, fine).is_empty());
        assert_eq!(
            b.spec_flags(&own, never, fine),
            ["--oci-seccomp", "--network=none"]
        );
    }
}
