//! What nerdctl and Docker do, through containerd's own client (ctr), so the
//! path stays covered without either in CI: the runtime is named
//! `io.containerd.nucleus.v1` (the only spelling nerdctl and Docker hand to
//! containerd as a shim), no runtime options are sent (the shim reads the
//! nucleus.toml `$NUCLEUS_CONFIG` names), the spec carries nerdctl's labels
//! as annotations and its createRuntime/poststop hooks from a trusted
//! directory, and the backend is chosen per container by the
//! `io.nucleus.runtime` annotation (`nerdctl run --label`, Docker's
//! `--annotation`). Hooks must see containerd's id, in containerd's
//! grammar (CNI refuses others), on every backend; `nerdctl stats` reads
//! blkio from the v1 metrics and `nerdctl top` the task's host pids.

#[macro_use]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::{code, text, Env, Kind};
use serde_json::{json, Value};

/// The runtime name nerdctl and Docker users give.
const NERDCTL_RUNTIME: &str = "io.containerd.nucleus.v1";

/// A hook that saves the state it reads on stdin as `$OUT/<its arg>.json`;
/// as createRuntime it also does what a network hook does (CNI, Docker's
/// libnetwork): gives the container's new network namespace, found by the
/// state's pid, an interface with [`HOOK_ADDRESS`] (one end of a veth pair;
/// both go with the namespace) and loopback up, as CNI's loopback plugin.
const RECORD_HOOK: &str = r#"#!/bin/sh
cat > "$OUT/$1.json"
if [ "$1" = createRuntime ]; then
  pid=$(sed -n 's/.*"pid": *\([0-9][0-9]*\).*/\1/p' "$OUT/$1.json")
  ip link add "nv$pid" type veth peer name nuc0 netns "/proc/$pid/ns/net" &&
  ip link set "nv$pid" up &&
  nsenter --net="/proc/$pid/ns/net" sh -c \
    'ip addr add 10.123.45.2/24 dev nuc0 && ip link set nuc0 up && ip link set lo up'
fi
"#;

/// The address the createRuntime hook gives the container.
const HOOK_ADDRESS: &str = "10.123.45.2";

/// What one test sets up beside containerd: the nucleus.toml the shim finds
/// through `$NUCLEUS_CONFIG`, a trusted hook directory with the recording
/// hook, and where the hooks write.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    /// The configured runtime is `configured`; `selectable` lists what the
    /// annotation may choose (None: the shim's default).
    fn new(configured: &str, selectable: Option<&[&str]>) -> Setup {
        let dir = tempfile::Builder::new()
            .prefix("nucleus-clients-")
            .tempdir()
            .expect("tempdir");
        std::fs::create_dir(dir.path().join("hooks")).expect("hook dir");
        std::fs::create_dir(dir.path().join("out")).expect("out dir");
        let hook = dir.path().join("hooks/record");
        std::fs::write(&hook, RECORD_HOOK).expect("hook");
        std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut toml = common::runtime_table(configured);
        // runsc builds that would refuse a namespace they make (every one
        // this project's tests run): the kernel's stack inside it.
        toml.push_str("runsc_pod_host_stack = true\n");
        if let Some(list) = selectable {
            toml.push_str(&format!("selectable = {list:?}\n"));
        }
        toml.push_str(&format!(
            "[policy]\ntrusted_hook_dirs = [\"{}/\"]\n",
            dir.path().join("hooks").display()
        ));
        std::fs::write(dir.path().join("nucleus.toml"), toml).expect("nucleus.toml");
        Setup { dir }
    }

    fn config(&self) -> String {
        self.dir.path().join("nucleus.toml").display().to_string()
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    /// The state hook `kind` saw, once it wrote it.
    fn state(&self, kind: &str) -> Value {
        let path = self.out().join(format!("{kind}.json"));
        let body = common::wait_for_file(&path, "}");
        serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{kind} hook state {}: {e}: {body:?}", path.display()))
    }

    /// A private containerd whose environment names this nucleus.toml
    /// (None, after saying why, without `backend`'s prerequisites).
    fn containerd(&self, test: &str, backend: &str) -> Option<Env> {
        let config = self.config();
        Env::start_with_env(test, backend, Kind::Plain, &[("NUCLEUS_CONFIG", &config)])
    }
}

/// The spec nerdctl would write for `nerdctl run --name NAME --label
/// io.nucleus.runtime=BACKEND`: its labels as annotations, its hooks (here
/// the recording one), the test rootfs.
fn nerdctl_spec(env: &Env, setup: &Setup, id: &str, backend: &str, args: &[&str]) -> String {
    let out = env.ctr(&["oci", "spec"]);
    assert!(out.status.success(), "ctr oci spec: {}", text(&out.stderr));
    let mut s: Value = serde_json::from_slice(&out.stdout).expect("ctr oci spec JSON");
    s["root"] = json!({"path": common::image_dir().join("rootfs")});
    s["process"]["args"] = json!(args);
    s["linux"]["cgroupsPath"] = json!(format!("/{}/{id}", env.namespace));
    let state_dir = format!(
        "/var/lib/nerdctl/1935db59/containers/{}/{id}",
        env.namespace
    );
    s["annotations"] = json!({
        "io.nucleus.runtime": backend,
        "nerdctl/namespace": env.namespace,
        "nerdctl/name": format!("web-{backend}"),
        "nerdctl/hostname": &id[..8.min(id.len())],
        "nerdctl/state-dir": state_dir,
        "nerdctl/networks": "[\"bridge\"]",
        "nerdctl/ports": "[{\"HostPort\":8080,\"ContainerPort\":80,\"Protocol\":\"tcp\",\"HostIP\":\"0.0.0.0\"}]",
        "nerdctl/log-uri": format!("binary:///usr/local/bin/nerdctl?_NERDCTL_INTERNAL_LOGGING={state_dir}"),
        "nerdctl/platform": "linux/amd64",
        "nerdctl/extraHosts": "[]",
    });
    let hook = setup.dir.path().join("hooks/record").display().to_string();
    let hook_env = [
        format!("OUT={}", setup.out().display()),
        "PATH=/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
    ];
    s["hooks"] = json!({
        "createRuntime": [{"path": hook, "args": ["record", "createRuntime"], "env": hook_env}],
        "poststop": [{"path": hook, "args": ["record", "poststop"], "env": hook_env}],
    });
    let path = env.dir.join(format!("spec-{id}.json"));
    std::fs::write(&path, serde_json::to_vec(&s).expect("spec JSON")).expect("spec");
    path.display().to_string()
}

/// containerd's id grammar, which CNI and nerdctl check.
fn containerd_grammar(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The host pid `ctr task ls` gives `id`.
fn task_pid(env: &Env, id: &str) -> u32 {
    let ls = text(&env.ctr(&["task", "ls"]).stdout);
    ls.lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(id)).then(|| w.next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no pid for {id} in ctr task ls:\n{ls}"))
}

/// Asserts that `backend` runs container `id`, under its own root: runc and
/// crun keep a directory named by the id, runsc files named by its own id,
/// and gVisor's kernel answers inside.
fn runs_on(env: &Env, id: &str, backend: &str) {
    for other in common::BACKENDS {
        let held = env.runtime_root(other).join(id).exists();
        assert_eq!(held, other == backend && other != "runsc", "{other}'s root");
    }
    let out = env.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "v",
        id,
        "/bin/cat",
        "/proc/version",
    ]);
    assert_eq!(code(&out), 0, "exec: {}", text(&out.stderr));
    let host = std::fs::read_to_string("/proc/version").expect("/proc/version");
    let in_gvisor = text(&out.stdout).trim() != host.trim();
    assert_eq!(in_gvisor, backend == "runsc", "{}", text(&out.stdout));
    if backend == "runsc" {
        let entries = std::fs::read_dir(env.runtime_root(backend)).map_or(0, |d| d.count());
        assert!(entries > 0, "runsc's root holds nothing");
    }
}

/// A nerdctl-style container with id `id` on `backend` (its annotation
/// naming it), detached and running.
fn run_detached(env: &Env, setup: &Setup, id: &str, backend: &str) {
    let spec = nerdctl_spec(env, setup, id, backend, &["/bin/sleep", "1000"]);
    let out = env.ctr(&[
        "run",
        "-d",
        "--runtime",
        NERDCTL_RUNTIME,
        "--config",
        &spec,
        id,
    ]);
    assert_eq!(code(&out), 0, "ctr run: {}", text(&out.stderr));
    env.wait_status(id, "RUNNING");
}

/// nerdctl's path on `backend` (the configured runtime; the annotation
/// names it too): its createRuntime hook sees containerd's id with
/// nerdctl's annotations and a host pid, `nerdctl stats` finds every
/// section it reads, `nerdctl top` host pids, and the poststop hook runs
/// with containerd's id at delete.
fn as_nerdctl_does(backend: &str, test: &str) {
    let setup = Setup::new(backend, None);
    let Some(env) = setup.containerd(test, backend) else {
        return;
    };
    // nerdctl's ids are 64 hex digits.
    let id = format!("{:064x}", std::process::id());
    run_detached(&env, &setup, &id, backend);
    runs_on(&env, &id, backend);

    // The createRuntime hook: containerd's id, nerdctl's annotations.
    let state = setup.state("createRuntime");
    assert_eq!(state["id"], id.as_str(), "{state:#}");
    assert!(containerd_grammar(state["id"].as_str().unwrap_or("")));
    assert_eq!(
        state["annotations"]["nerdctl/name"],
        format!("web-{backend}"),
        "{state:#}"
    );
    assert_eq!(state["annotations"]["nerdctl/networks"], "[\"bridge\"]");
    assert!(state["pid"].as_u64() > Some(0), "{state:#}");
    assert!(
        Path::new(&format!("/proc/{}", state["pid"])).exists(),
        "the hook's pid is not a host pid: {state:#}"
    );
    let bundle = state["bundle"].as_str().unwrap_or("");
    assert_eq!(Path::new(bundle), env.bundle(&id), "{state:#}");

    // What the hook set up is the container's network: the container can
    // bind the hook's address (on runsc: the kernel's stack in the
    // namespace runsc made, which the config allows; gVisor's own would
    // hold loopback only on these runsc builds).
    let script = format!("httpd -p {HOOK_ADDRESS}:8080 -h /tmp && echo bound");
    let out = env.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "net",
        &id,
        "/bin/sh",
        "-c",
        &script,
    ]);
    assert_eq!(
        (code(&out), text(&out.stdout).trim()),
        (0, "bound"),
        "stderr: {}",
        text(&out.stderr)
    );

    // nerdctl stats: every section it dereferences.
    let m = env.ctr(&["task", "metrics", "--format", "json", &id]);
    assert!(m.status.success(), "metrics: {}", text(&m.stderr));
    let m: Value = serde_json::from_slice(&m.stdout).expect("metrics JSON");
    let sections: &[&str] = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        &["/pids", "/cpu", "/memory", "/memory_events", "/io", "/rdma"]
    } else {
        &[
            "/pids",
            "/cpu/usage",
            "/memory/usage",
            "/memory_oom_control",
            "/blkio",
            "/rdma",
        ]
    };
    for section in sections {
        assert!(
            m.pointer(section).is_some_and(Value::is_object),
            "no {section} in {m:#}"
        );
    }

    // nerdctl top: host pids, the init's first.
    let pid = task_pid(&env, &id);
    let ps = text(&env.ctr(&["task", "ps", &id]).stdout);
    let pids: Vec<u32> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(pids.contains(&pid), "init {pid} not in ctr task ps:\n{ps}");
    for p in &pids {
        assert!(
            Path::new(&format!("/proc/{p}")).exists(),
            "{p} is no host pid:\n{ps}"
        );
    }

    env.finish(&id);
    let state = setup.state("poststop");
    assert_eq!(state["id"], id.as_str(), "poststop: {state:#}");
    env.assert_clean(backend, &[&id]);
}

/// The `io.nucleus.runtime` annotation picks `backend` over the configured
/// runtime (runc; crun when `backend` is runc) where `selectable` lists it
/// (by the binary the suites run, when one is given): the container runs
/// there, and nothing is left in either runtime's root.
fn the_annotation_chooses_the_runtime(backend: &str, test: &str) {
    let configured = if backend == "runc" { "crun" } else { "runc" };
    let entry = common::runtime_binary(backend)
        .map_or_else(|| backend.to_string(), |p| p.display().to_string());
    let setup = Setup::new(configured, Some(&[entry.as_str()]));
    let Some(env) = setup.containerd(test, backend) else {
        return;
    };
    run_detached(&env, &setup, "chosen", backend);
    runs_on(&env, "chosen", backend);
    assert_eq!(setup.state("createRuntime")["id"], "chosen");
    env.finish("chosen");
    env.assert_clean(backend, &["chosen"]);
    env.assert_clean(configured, &["chosen"]);
}

/// An annotation asking for a runtime the config does not allow: Create
/// fails naming the annotation and `runtime.selectable`, nothing is left.
fn a_runtime_the_config_does_not_allow_is_refused(backend: &str, test: &str) {
    // `selectable = []`: no runtime but the configured runc.
    let setup = Setup::new("runc", Some(&[]));
    let Some(env) = setup.containerd(test, backend) else {
        return;
    };
    let want = if backend == "runc" { "crun" } else { backend };
    let spec = nerdctl_spec(&env, &setup, "refused", want, &["/bin/true"]);
    let out = env.ctr(&[
        "run",
        "--rm",
        "--runtime",
        NERDCTL_RUNTIME,
        "--config",
        &spec,
        "refused",
    ]);
    assert_ne!(code(&out), 0, "ran: {}", text(&out.stdout));
    let err = text(&out.stderr);
    for word in ["io.nucleus.runtime", "runtime.selectable", want] {
        assert!(err.contains(word), "{word} not named: {err}");
    }
    let _ = env.ctr(&["container", "rm", "refused"]);
    env.assert_clean("runc", &["refused"]);
    env.assert_clean(want, &["refused"]);
}

on_each_backend!(
    as_nerdctl_does,
    the_annotation_chooses_the_runtime,
    a_runtime_the_config_does_not_allow_is_refused
);
