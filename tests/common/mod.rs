//! End-to-end harness: a private containerd (Debian's package) with its own
//! root, state and socket in a temp dir, the freshly built shim on its PATH,
//! and a busybox rootfs and OCI image built by contrib/busybox-image.sh.
//!
//! Under `CI=true` a missing prerequisite fails the test; locally the test is
//! skipped with the reason printed.
#![allow(dead_code)]

pub mod containerd_client;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Defines `runsc::t`, `crun::t` and `runc::t` for each `t(backend, test)`.
#[allow(unused_macros)]
macro_rules! on_each_backend {
    ($($test:ident),* $(,)?) => {
        mod runsc { $( #[test] fn $test() { super::$test("runsc", concat!("runsc-", stringify!($test))) } )* }
        mod crun { $( #[test] fn $test() { super::$test("crun", concat!("crun-", stringify!($test))) } )* }
        mod runc { $( #[test] fn $test() { super::$test("runc", concat!("runc-", stringify!($test))) } )* }
    };
}

/// The same for the backends CRIU checkpoints (runc, crun).
#[allow(unused_macros)]
macro_rules! on_runc_and_crun {
    ($($test:ident),* $(,)?) => {
        mod crun { $( #[test] fn $test() { super::$test("crun", concat!("crun-", stringify!($test))) } )* }
        mod runc { $( #[test] fn $test() { super::$test("runc", concat!("runc-", stringify!($test))) } )* }
    };
}

/// The runtime name under test.
pub const RUNTIME: &str = "io.nucleus.v1";
/// The pause image the CRI tests build and import.
pub const PAUSE_IMAGE: &str = "docker.io/library/nucleus-pause:latest";
/// Name the image builder gives the busybox image.
pub const IMAGE: &str = "docker.io/library/nucleus-busybox:latest";
/// The backends every end-to-end test runs on.
pub const BACKENDS: [&str; 3] = ["runsc", "crun", "runc"];

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Fails under CI, prints and returns false locally.
pub fn prerequisite(ok: bool, what: &str) -> bool {
    if ok {
        return true;
    }
    if in_ci() {
        panic!("missing prerequisite under CI=true: {what}");
    }
    eprintln!("SKIP: {what}");
    false
}

fn on_path(name: &str) -> bool {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|d| Path::new(d).join(name).is_file())
}

/// Checks root and the host tools an end-to-end test needs.
pub fn have_prerequisites(backend: &str) -> bool {
    // SAFETY: geteuid has no side effects.
    let root = unsafe { libc::geteuid() } == 0;
    prerequisite(
        root,
        "end-to-end tests need root (containerd, mounts, runtimes)",
    ) && ["containerd", "ctr", "busybox"].iter().all(|t| {
        prerequisite(
            on_path(t),
            &format!("{t} is not on PATH (run contrib/setup-host.sh)"),
        )
    }) && match runtime_binary(backend) {
        Some(bin) => prerequisite(
            bin.is_file(),
            &format!(
                "{} (from ${}; run contrib/runtimes.sh)",
                bin.display(),
                runtime_var(backend)
            ),
        ),
        None => prerequisite(
            on_path(backend),
            &format!("{backend} is not on PATH (run contrib/setup-host.sh)"),
        ),
    }
}

/// The variable that names `backend`'s binary: NUCLEUS_RUNC, NUCLEUS_CRUN,
/// NUCLEUS_RUNSC.
fn runtime_var(backend: &str) -> String {
    format!("NUCLEUS_{}", backend.to_uppercase())
}

/// The runtime binary the suites run `backend` with: an absolute path from
/// `$NUCLEUS_RUNC`, `$NUCLEUS_CRUN` or `$NUCLEUS_RUNSC` (e.g. a newer
/// Debian's runtime unpacked by contrib/runtimes.sh), else None: the shim
/// finds `backend` on containerd's PATH. Every nucleus.toml the harness
/// writes ([`runtime_table`]) and its own runtime calls use it.
pub fn runtime_binary(backend: &str) -> Option<PathBuf> {
    let bin = PathBuf::from(std::env::var_os(runtime_var(backend)).filter(|v| !v.is_empty())?);
    assert!(
        bin.is_absolute(),
        "${} must be an absolute path, not {}",
        runtime_var(backend),
        bin.display()
    );
    Some(bin)
}

/// A cgroup file of container `id` (its spec's cgroupsPath), v1 or v2.
pub fn cgroup_file(env: &Env, id: &str, controller: &str, v1: &str, v2: &str) -> PathBuf {
    let spec: serde_json::Value =
        serde_json::from_slice(&std::fs::read(env.bundle(id).join("config.json")).unwrap())
            .unwrap();
    let path = spec["linux"]["cgroupsPath"]
        .as_str()
        .unwrap()
        .trim_start_matches('/');
    if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        PathBuf::from("/sys/fs/cgroup").join(path).join(v2)
    } else {
        PathBuf::from("/sys/fs/cgroup")
            .join(controller)
            .join(path)
            .join(v1)
    }
}

/// `$NUCLEUS_CRIU`: the CRIU the tests put on containerd's PATH.
pub fn criu_binary() -> Option<PathBuf> {
    let bin = PathBuf::from(std::env::var_os("NUCLEUS_CRIU").filter(|v| !v.is_empty())?);
    assert!(bin.is_absolute(), "$NUCLEUS_CRIU must be an absolute path");
    Some(bin)
}

/// The `[runtime]` table of a nucleus.toml that selects `backend`, with the
/// `path` of [`runtime_binary`] when one is set; more keys may follow.
pub fn runtime_table(backend: &str) -> String {
    match runtime_binary(backend) {
        Some(bin) => format!(
            "[runtime]\nname = \"{backend}\"\npath = {:?}\n",
            bin.display().to_string()
        ),
        None => format!("[runtime]\nname = \"{backend}\"\n"),
    }
}

/// The shim binary under test: $NUCLEUS_SHIM_BIN, else the one cargo built.
pub fn shim_binary() -> PathBuf {
    std::env::var_os("NUCLEUS_SHIM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_containerd-shim-nucleus-v1")))
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The busybox rootfs and image tarball, built once per test binary.
pub fn image_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("nucleus-img-{}", std::process::id()));
        let out = Command::new("bash")
            .arg(repo_root().join("contrib/busybox-image.sh"))
            .arg(&dir)
            .output()
            .expect("running contrib/busybox-image.sh");
        assert!(
            out.status.success(),
            "contrib/busybox-image.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        remove_at_exit(&dir);
        dir
    })
}

/// Removes `dir` when the test binary exits (after its last test), so the
/// images built per test binary do not pile up in /tmp.
fn remove_at_exit(dir: &Path) {
    static DIRS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    extern "C" fn remove_all() {
        if let Ok(dirs) = DIRS.lock() {
            for d in dirs.iter() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
    if let Ok(mut dirs) = DIRS.lock() {
        dirs.push(dir.to_path_buf());
    }
    // SAFETY: registers a function with no preconditions, once.
    REGISTERED.call_once(|| unsafe {
        libc::atexit(remove_all);
    });
}

/// A pod's pause image (busybox sleeping), built once per test binary.
pub fn pause_image_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("nucleus-pause-{}", std::process::id()));
        let out = Command::new("bash")
            .arg(repo_root().join("contrib/busybox-image.sh"))
            .arg(&dir)
            .env("IMAGE_NAME", PAUSE_IMAGE)
            .env("IMAGE_CMD", r#"["/bin/sleep","2147483647"]"#)
            .output()
            .expect("running contrib/busybox-image.sh");
        assert!(
            out.status.success(),
            "contrib/busybox-image.sh (pause) failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        remove_at_exit(&dir);
        dir
    })
}

/// The CRI plugin's section of a test containerd's config: the nucleus
/// handlers, the local pause image, no CNI (pods use the host network),
/// and what this host needs (restrict_oom_score_adj).
/// A contrib containerd config's CRI handlers as a test uses them: comments
/// and the `version` line dropped (the test config has its own), the
/// nucleus.toml paths pointing into the test dir.
fn contrib_handlers(file: &str, dir: &Path) -> String {
    let path = repo_root().join("contrib").join(file);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.starts_with("version"))
        .map(|l| l.replace("/etc/nucleus/", &format!("{}/", dir.display())))
        .collect::<Vec<_>>()
        .join("\n")
}

fn cri_config(dir: &Path) -> String {
    let cri = "[plugins.\"io.containerd.grpc.v1.cri\"]\n";
    let handlers = contrib_handlers("containerd-config.toml", dir);
    let settings = format!(
        "{cri}  sandbox_image = \"{PAUSE_IMAGE}\"\n  restrict_oom_score_adj = true\n\
         \x20 stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\"\n"
    );
    assert!(handlers.contains(cri), "contrib config lost its CRI table");
    format!(
        "{}\n[plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"{CNI_BIN_DIR}\"\n  conf_dir = \"{d}/cni/conf\"\n",
        handlers.replacen(cri, &settings, 1),
        d = dir.display()
    )
}

/// What CRI tests let runsc do with pod networks: Debian's runsc 20221219
/// takes every network namespace for the host's on Linux 6.x (see
/// src/runtime/netns.rs). Harmless where runsc is newer.
pub const RUNSC_POD_NETWORK: &str = "runsc_pod_host_stack = true\n";

/// The CRI plugins' part of a containerd 2.x test config (version 3): the
/// handlers of contrib/containerd-config-v3.toml and the same settings as
/// [`cri_config`], where 2.x keeps them.
fn cri_config_v3(dir: &Path) -> String {
    let handlers = contrib_handlers("containerd-config-v3.toml", dir);
    format!(
        "[plugins.\"io.containerd.cri.v1.images\".pinned_images]\n  sandbox = \"{PAUSE_IMAGE}\"\n\
         [plugins.\"io.containerd.cri.v1.runtime\"]\n  restrict_oom_score_adj = true\n\
         [plugins.\"io.containerd.cri.v1.runtime\".cni]\n  bin_dirs = [\"{CNI_BIN_DIR}\"]\n  conf_dir = \"{d}/cni/conf\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\"]\n  stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\"\n\
         {handlers}\n",
        d = dir.display()
    )
}

/// Where Debian's containernetworking-plugins puts the CNI plugins.
pub const CNI_BIN_DIR: &str = "/usr/lib/cni";

/// A pod network of the test's own: a bridge (named after the test dir,
/// removed when the test ends) with host-local addresses in a /24 no other
/// test of this run uses. Returns the bridge name and the subnet prefix
/// (e.g. "10.123.4.").
fn write_cni_config(dir: &Path) -> (String, String) {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);
    // The bridge plugin turns on IPv4 forwarding; Drop puts it back.
    let _ = ip_forward_before();
    let routes = Command::new("ip")
        .args(["-4", "route"])
        .output()
        .map(|o| text(&o.stdout))
        .unwrap_or_default();
    let (n, prefix) = loop {
        // Skip subnets another test run's bridge is using.
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let prefix = format!("10.{}.{}.", 100 + std::process::id() % 100, n % 250);
        if n > 250 || !routes.contains(&format!("{prefix}0/24")) {
            break (n, prefix);
        }
    };
    let bridge = format!("ntb{}x{n}", std::process::id() % 100_000);
    let conf = serde_json::json!({
        "cniVersion": "1.0.0",
        "name": bridge,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": false,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": format!("{prefix}0/24")}]],
                    "dataDir": dir.join("cni/ipam").display().to_string()
                }
            },
            {"type": "loopback"}
        ]
    });
    std::fs::create_dir_all(dir.join("cni/conf")).expect("CNI conf dir");
    std::fs::write(
        dir.join("cni/conf/10-nucleus-test.conflist"),
        conf.to_string(),
    )
    .expect("writing the CNI config");
    (bridge, prefix)
}

/// net.ipv4.ip_forward as it was before this process's first pod network.
fn ip_forward_before() -> &'static str {
    static BEFORE: OnceLock<String> = OnceLock::new();
    BEFORE.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward")
            .unwrap_or_default()
            .trim()
            .to_string()
    })
}

/// The CRI runtime handler contrib/containerd-config.toml registers for a
/// backend (runsc is the default, `nucleus`).
pub fn cri_handler(backend: &str) -> String {
    match backend {
        "runsc" => "nucleus".to_string(),
        b => format!("nucleus-{b}"),
    }
}

/// The in-container probe (tests/probe/probe.rs), built static once per
/// test binary with the machine's rustc, or `NUCLEUS_PROBE_BIN` (the VM lane
/// builds it on the host: the guest has no rustc).
pub fn probe_binary() -> Option<&'static Path> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("NUCLEUS_PROBE_BIN") {
            let bin = PathBuf::from(bin);
            let ok = bin.is_file();
            prerequisite(ok, &format!("NUCLEUS_PROBE_BIN {}", bin.display()));
            return ok.then_some(bin);
        }
        let out_dir = std::env::temp_dir().join(format!("nucleus-probe-{}", std::process::id()));
        std::fs::create_dir_all(&out_dir).expect("probe dir");
        let bin = out_dir.join("nucleus-probe");
        let built = Command::new("rustc")
            .args([
                "--edition",
                "2021",
                "-O",
                "-C",
                "target-feature=+crt-static",
                "-o",
            ])
            .arg(&bin)
            .arg(repo_root().join("tests/probe/probe.rs"))
            .output();
        let ok = matches!(&built, Ok(o) if o.status.success());
        if !ok {
            let why = match built {
                Ok(o) => text(&o.stderr),
                Err(e) => e.to_string(),
            };
            prerequisite(
                false,
                &format!("building the static probe with rustc: {why}"),
            );
            return None;
        }
        Some(bin)
    })
    .as_deref()
}

/// One ttrpc call on a shim socket, the way containerd makes it.
pub fn ttrpc_call<Req, Resp>(
    sock: &Path,
    service: &str,
    method: &str,
    req: &Req,
) -> Result<Resp, String>
where
    Req: containerd_shim_protos::protobuf::Message,
    Resp: containerd_shim_protos::protobuf::Message,
{
    use containerd_shim_protos::protobuf::Message;
    use std::io::Write;
    let mut s = std::os::unix::net::UnixStream::connect(sock).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(|e| e.to_string())?;
    let body = req.write_to_bytes().map_err(|e| e.to_string())?;
    s.write_all(&nucleus_shim::wire::request_frame(
        1, service, method, body, 0,
    ))
    .map_err(|e| e.to_string())?;
    let (h, body) = nucleus_shim::wire::read_frame(&mut s).map_err(|e| e.to_string())?;
    assert_eq!(h.stream_id, 1);
    let resp = containerd_shim_protos::ttrpc::Response::parse_from_bytes(&body)
        .map_err(|e| e.to_string())?;
    if let Some(st) = resp.status.as_ref().filter(|st| st.code.value() != 0) {
        return Err(format!("{:?}: {}", st.code, st.message));
    }
    Resp::parse_from_bytes(&resp.payload).map_err(|e| e.to_string())
}

/// Text of a command's output.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A command's exit code, or 128 + signal.
pub fn code(out: &Output) -> i32 {
    out.status
        .code()
        .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0))
}

/// Which containerd a test runs, and how.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// Debian's containerd (1.6), CRI off.
    Plain,
    /// containerd 2.x, CRI off.
    Plain2,
    /// Debian's containerd with its CRI plugin (config version 2).
    Cri,
    /// containerd 2.x with its CRI plugins (config version 3).
    Cri2,
}

/// Where contrib/setup-host.sh unpacks containerd 2.x (Debian's package from
/// sid, not installed system-wide); `NUCLEUS_CONTAINERD2_DIR` overrides.
pub fn containerd2_dir() -> PathBuf {
    std::env::var_os("NUCLEUS_CONTAINERD2_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/nucleus-test/containerd2/usr/bin"))
}

/// The containerd the VM lane tests against: with
/// `NUCLEUS_TEST_CONTAINERD=system` the suites use the host's own containerd
/// (started by systemd as the distribution ships it, the shim installed on
/// its PATH and its CRI handlers configured by contrib/vm/lane-tests.sh)
/// instead of starting a private one. Its address, default
/// /run/containerd/containerd.sock, from `NUCLEUS_TEST_CONTAINERD_ADDRESS`.
pub fn system_containerd() -> Option<String> {
    (std::env::var("NUCLEUS_TEST_CONTAINERD").as_deref() == Ok("system")).then(|| {
        std::env::var("NUCLEUS_TEST_CONTAINERD_ADDRESS")
            .unwrap_or_else(|_| "/run/containerd/containerd.sock".to_string())
    })
}

/// `systemctl ARGS`, which must succeed (the system-containerd lane).
fn systemctl(args: &[&str]) {
    let out = Command::new("systemctl")
        .args(args)
        .output()
        .expect("running systemctl");
    assert!(
        out.status.success(),
        "systemctl {}: {}",
        args.join(" "),
        text(&out.stderr)
    );
}

/// The pod network the system containerd's CNI config gives pods in the VM
/// lane: `NUCLEUS_TEST_POD_NETWORK=BRIDGE:PREFIX` (e.g. `nlane0:10.88.77.`).
fn system_pod_network() -> Option<(String, String)> {
    let v = std::env::var("NUCLEUS_TEST_POD_NETWORK").ok()?;
    let (bridge, prefix) = v.split_once(':')?;
    Some((bridge.to_string(), prefix.to_string()))
}

/// A containerd for one test, in its own namespace: a private one, or the
/// system's (see [`system_containerd`]).
pub struct Env {
    pub dir: PathBuf,
    pub address: String,
    pub namespace: String,
    /// Runtime roots are under `dir` (CRI tests) rather than the shim's
    /// default /run/nucleus/<backend>/<namespace>.
    own_runtime_roots: bool,
    /// CRI tests: the pod network's bridge and subnet prefix ("10.x.y.").
    pub pod_network: Option<(String, String)>,
    /// The containerd and ctr binaries this test uses.
    containerd_bin: PathBuf,
    ctr_bin: PathBuf,
    containerd: Option<Child>,
    /// Extra variables in containerd's environment (what systemd gives it).
    containerd_env: Vec<(String, String)>,
    /// The system containerd (systemd's unit) rather than a private one.
    system: bool,
    /// containerd's state directory (bundles live below it).
    state_dir: PathBuf,
    /// When the test started (for the system containerd's journal).
    started: std::time::SystemTime,
}

impl Env {
    /// Starts containerd; None (after printing why) when prerequisites are
    /// missing outside CI.
    pub fn start(test: &str, backend: &str) -> Option<Env> {
        Self::start_with(test, backend, Kind::Plain)
    }

    /// Like [`Env::start`], with containerd's CRI plugin on: the handlers of
    /// contrib/containerd-config.toml (see [`cri_handler`]; ConfigPath to
    /// the backend's nucleus.toml in the test dir), a bridge pod network of
    /// the test's own, the
    /// namespace `k8s.io`, and the busybox and pause images imported.
    /// With [`Kind::Cri2`], containerd 2.x and the handlers of
    /// contrib/containerd-config-v3.toml.
    pub fn start_cri(test: &str, backend: &str, kind: Kind) -> Option<Env> {
        let bridge = Path::new(CNI_BIN_DIR).join("bridge");
        if !prerequisite(
            bridge.is_file() && on_path("ip"),
            "CNI plugins and ip (containernetworking-plugins, iproute2; run contrib/setup-host.sh)",
        ) {
            return None;
        }
        let env = Self::start_with(test, backend, kind)?;
        for tar in [
            image_dir().join("image.tar"),
            pause_image_dir().join("image.tar"),
        ] {
            let tar = tar.display().to_string();
            let out = env.ctr(&["images", "import", &tar]);
            assert!(out.status.success(), "image import: {}", text(&out.stderr));
        }
        Some(env)
    }

    /// Like [`Env::start`] on the containerd `kind` names.
    pub fn start_with(test: &str, backend: &str, kind: Kind) -> Option<Env> {
        Self::start_with_env(test, backend, kind, &[])
    }

    /// Like [`Env::start_with`], with `vars` added to containerd's
    /// environment (e.g. the NOTIFY_SOCKET systemd gives a Type=notify unit).
    pub fn start_with_env(
        test: &str,
        backend: &str,
        kind: Kind,
        vars: &[(&str, &str)],
    ) -> Option<Env> {
        let cri = matches!(kind, Kind::Cri | Kind::Cri2);
        let v2 = matches!(kind, Kind::Plain2 | Kind::Cri2);
        if !have_prerequisites(backend) {
            return None;
        }
        let system = system_containerd();
        if system.is_some() && v2 {
            prerequisite(
                false,
                "containerd 2.x tests start a private containerd 2.x; the system-containerd lane runs the distribution's",
            );
            return None;
        }
        if system.is_some()
            && cri
            && !prerequisite(
                system_pod_network().is_some(),
                "NUCLEUS_TEST_POD_NETWORK=BRIDGE:PREFIX (the system containerd's CNI network)",
            )
        {
            return None;
        }
        if v2
            && !prerequisite(
                containerd2_dir().join("containerd").is_file(),
                &format!(
                    "containerd 2.x in {} (run contrib/containerd2.sh)",
                    containerd2_dir().display()
                ),
            )
        {
            return None;
        }
        let dir = std::env::temp_dir().join(format!(
            "nt-{}-{}",
            std::process::id(),
            test.replace("::", "-")
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).expect("creating the test dir");
        std::os::unix::fs::symlink(shim_binary(), dir.join("bin/containerd-shim-nucleus-v1"))
            .expect("linking the shim into the test PATH");
        // CRIU for checkpoint/restore: $NUCLEUS_CRIU (e.g. sid's, unpacked
        // by contrib/runtimes.sh) goes first on containerd's PATH, where the
        // shim and the runtimes look for it.
        if let Some(criu) = criu_binary() {
            std::os::unix::fs::symlink(criu, dir.join("bin/criu"))
                .expect("linking criu into the test PATH");
        }
        let address = system
            .clone()
            .unwrap_or_else(|| dir.join("c.sock").display().to_string());
        // Top-level keys before any table.
        let mut config = format!(
            "version = {version}\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n{disabled}\
             [grpc]\n  address = \"{address}\"\n[debug]\n  level = \"debug\"\n",
            version = if v2 { 3 } else { 2 },
            d = dir.display(),
            disabled = match kind {
                Kind::Plain => "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n",
                Kind::Plain2 => {
                    "disabled_plugins = [\"io.containerd.grpc.v1.cri\", \
                     \"io.containerd.cri.v1.runtime\", \"io.containerd.cri.v1.images\"]\n"
                }
                Kind::Cri | Kind::Cri2 => "",
            }
        );
        match kind {
            Kind::Plain | Kind::Plain2 => {}
            Kind::Cri => config.push_str(&cri_config(&dir)),
            Kind::Cri2 => config.push_str(&cri_config_v3(&dir)),
        }
        std::fs::write(dir.join("config.toml"), config).expect("writing containerd config");
        for b in BACKENDS {
            std::fs::write(
                dir.join(format!("{b}.toml")),
                if cri {
                    // Pods of concurrent CRI tests share the namespace
                    // k8s.io: each test keeps its runtime state apart.
                    format!(
                        "{}root = \"{}/rt/{b}\"\n{}",
                        runtime_table(b),
                        dir.display(),
                        if b == "runsc" { RUNSC_POD_NETWORK } else { "" }
                    )
                } else {
                    runtime_table(b)
                },
            )
            .expect("writing nucleus.toml");
        }
        let pod_network = match (cri, system.is_some()) {
            (false, _) => None,
            (true, false) => Some(write_cni_config(&dir)),
            (true, true) => system_pod_network(),
        };
        let mut env = Env {
            address,
            namespace: if cri {
                "k8s.io".to_string()
            } else {
                format!("t-{}", test.replace("::", "-").replace('_', "-"))
            },
            own_runtime_roots: cri && system.is_none(),
            pod_network,
            containerd_bin: if v2 {
                containerd2_dir().join("containerd")
            } else {
                PathBuf::from("containerd")
            },
            ctr_bin: if v2 {
                containerd2_dir().join("ctr")
            } else {
                PathBuf::from("ctr")
            },
            containerd: None,
            containerd_env: vars
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            system: system.is_some(),
            state_dir: if system.is_some() {
                PathBuf::from("/run/containerd")
            } else {
                dir.join("state")
            },
            started: std::time::SystemTime::now(),
            dir,
        };
        if !env.system {
            env.spawn_containerd();
        }
        env.clear_stale_runtime_state();
        env.wait_containerd();
        Some(env)
    }

    /// Starts this test's containerd (the shim on its PATH).
    fn spawn_containerd(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("containerd.log"))
            .expect("containerd log");
        let path = format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let child = Command::new(&self.containerd_bin)
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .env("PATH", path)
            .env_remove("NUCLEUS_CONFIG")
            .envs(self.containerd_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("starting containerd");
        self.containerd = Some(child);
    }

    fn wait_containerd(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !self.ctr(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "containerd did not come up:\n{}",
                self.containerd_log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills containerd (SIGKILL: no cleanup on its side) and returns once
    /// it is gone; the shims keep running.
    pub fn kill_containerd(&mut self) {
        if self.system {
            // The unit's KillMode=process: shims stay, as on a real host.
            systemctl(&["stop", "containerd"]);
            return;
        }
        if let Some(mut c) = self.containerd.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts containerd again on the same root, state and socket.
    pub fn start_containerd(&mut self) {
        if self.system {
            systemctl(&["start", "containerd"]);
            self.wait_containerd();
            return;
        }
        self.spawn_containerd();
        self.wait_containerd();
    }

    /// Removes runtime containers an interrupted earlier run of this test (or
    /// a failed one) left under its runtime roots.
    fn clear_stale_runtime_state(&self) {
        for b in BACKENDS {
            let root = self.runtime_root(b);
            let Ok(entries) = std::fs::read_dir(&root) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().to_string();
                let id = name.split(['_', ':']).next().unwrap_or(&name).to_string();
                let _ = Command::new(runtime_binary(b).unwrap_or_else(|| b.into()))
                    .arg("--root")
                    .arg(&root)
                    .args(["delete", "--force", &id])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = std::fs::remove_dir_all(&root);
        }
    }

    pub fn containerd_log(&self) -> String {
        if self.system {
            // containerd copies its shims' logs to its stderr: the journal.
            let since = self
                .started
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs().saturating_sub(1))
                .unwrap_or(0);
            return Command::new("journalctl")
                .args(["-u", "containerd", "--no-pager", "-o", "cat"])
                .arg(format!("--since=@{since}"))
                .output()
                .map(|o| text(&o.stdout))
                .unwrap_or_default();
        }
        std::fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default()
    }

    /// The nucleus.toml a CRI handler of this containerd names (its
    /// options' ConfigPath).
    pub fn handler_config(&self, backend: &str) -> String {
        if self.system {
            format!("/etc/nucleus/{backend}.toml")
        } else {
            self.config(backend)
        }
    }

    /// Where containerd keeps this namespace's bundles.
    pub fn bundles(&self) -> PathBuf {
        self.state_dir
            .join("io.containerd.runtime.v2.task")
            .join(&self.namespace)
    }

    /// `ctr -a ADDR -n NS ARGS`.
    pub fn ctr_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.ctr_bin);
        c.args(["-a", &self.address, "-n", &self.namespace])
            .args(args);
        c.stdin(Stdio::null());
        c
    }

    pub fn ctr(&self, args: &[&str]) -> Output {
        self.ctr_cmd(args).output().expect("running ctr")
    }

    /// `ctr ARGS` that must end within `limit`: a hang fails the test (and
    /// the ctr process is killed) instead of stalling the suite.
    pub fn ctr_within(&self, limit: Duration, args: &[&str]) -> Output {
        let mut child = self
            .ctr_cmd(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running ctr");
        let deadline = Instant::now() + limit;
        while child.try_wait().expect("waiting for ctr").is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let out = child.wait_with_output().expect("reaping ctr");
                panic!(
                    "ctr {} did not return within {limit:?}; stderr: {}",
                    args.join(" "),
                    text(&out.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.wait_with_output().expect("reaping ctr")
    }

    /// The pid of this test's containerd.
    pub fn containerd_pid(&self) -> Option<u32> {
        if self.system {
            let out = Command::new("systemctl")
                .args(["show", "-p", "MainPID", "--value", "containerd"])
                .output()
                .ok()?;
            return text(&out.stdout).trim().parse().ok().filter(|p| *p > 0);
        }
        self.containerd.as_ref().map(|c| c.id())
    }

    /// Whether this test runs against the system's containerd.
    pub fn is_system(&self) -> bool {
        self.system
    }

    /// The nucleus.toml selecting `backend`.
    pub fn config(&self, backend: &str) -> String {
        self.dir
            .join(format!("{backend}.toml"))
            .display()
            .to_string()
    }

    /// Args for `ctr run` on `backend` with the built rootfs (no snapshotter).
    pub fn run_args(&self, backend: &str, extra: &[&str], id: &str, cmd: &[&str]) -> Vec<String> {
        self.run_args_with_config(&self.config(backend), extra, id, cmd)
    }

    /// Like [`Env::run_args`], through the nucleus.toml at `config`.
    pub fn run_args_with_config(
        &self,
        config: &str,
        extra: &[&str],
        id: &str,
        cmd: &[&str],
    ) -> Vec<String> {
        self.run_args_on(config, &image_dir().join("rootfs"), extra, id, cmd)
    }

    /// Like [`Env::run_args_with_config`], on the root directory `rootfs`.
    pub fn run_args_on(
        &self,
        config: &str,
        rootfs: &Path,
        extra: &[&str],
        id: &str,
        cmd: &[&str],
    ) -> Vec<String> {
        let rootfs = rootfs.display().to_string();
        let mut v: Vec<String> = vec!["run".into(), "--runtime".into(), RUNTIME.into()];
        v.extend(["--runtime-config-path".into(), config.to_string()]);
        v.extend(extra.iter().map(|s| s.to_string()));
        v.extend(["--rootfs".into(), rootfs, id.into()]);
        v.extend(cmd.iter().map(|s| s.to_string()));
        v
    }

    /// `--mount` argument that binds the probe at /probe (read-only).
    pub fn probe_mount(&self) -> Option<String> {
        probe_binary().map(|p| format!("type=bind,src={},dst=/probe,options=rbind:ro", p.display()))
    }

    /// The bundle containerd made for container `id`.
    pub fn bundle(&self, id: &str) -> PathBuf {
        self.bundles().join(id)
    }

    /// Writes a nucleus.toml named `name` into the test dir; returns its path.
    pub fn write_config(&self, name: &str, body: &str) -> String {
        let path = self.dir.join(name);
        std::fs::write(&path, body).expect("writing a nucleus.toml");
        path.display().to_string()
    }

    /// `ctr run --rm` of `cmd` on `backend`.
    pub fn run(&self, backend: &str, id: &str, cmd: &[&str]) -> Output {
        self.run_with(backend, &["--rm"], id, cmd)
    }

    /// `ctr run EXTRA` of `cmd` on `backend`.
    pub fn run_with(&self, backend: &str, extra: &[&str], id: &str, cmd: &[&str]) -> Output {
        self.run_with_config(&self.config(backend), extra, id, cmd)
    }

    /// `ctr run --rm --config SPEC ID` through nucleus with the nucleus.toml
    /// at `config`.
    pub fn run_spec_with_config(&self, config: &str, spec: &str, id: &str) -> Output {
        self.ctr(&[
            "run",
            "--rm",
            "--runtime",
            RUNTIME,
            "--runtime-config-path",
            config,
            "--config",
            spec,
            id,
        ])
    }

    /// Like [`Env::run_with`], through the nucleus.toml at `config`.
    pub fn run_with_config(&self, config: &str, extra: &[&str], id: &str, cmd: &[&str]) -> Output {
        let args = self.run_args_with_config(config, extra, id, cmd);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.ctr(&args)
    }

    /// `ctr run EXTRA` of `cmd` on `backend` from the imported busybox image.
    pub fn run_image(&self, backend: &str, extra: &[&str], id: &str, cmd: &[&str]) -> Output {
        let config = self.config(backend);
        let mut args = vec![
            "run",
            "--runtime",
            RUNTIME,
            "--runtime-config-path",
            &config,
        ];
        args.extend(extra);
        args.extend([IMAGE, id]);
        args.extend(cmd);
        self.ctr(&args)
    }

    /// Starts `sleep 1000` detached as container `id` on `backend`.
    pub fn sleeper(&self, backend: &str, id: &str) {
        let out = self.run_with(backend, &["-d"], id, &["/bin/sleep", "1000"]);
        assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    }

    /// Kills a task, waits for STOPPED, removes task and container.
    pub fn finish(&self, id: &str) {
        let _ = self.ctr(&["task", "kill", "-s", "SIGKILL", id]);
        self.wait_status(id, "STOPPED");
        let out = self.ctr(&["task", "rm", id]);
        assert!(out.status.success(), "task rm {id}: {}", text(&out.stderr));
        let _ = self.ctr(&["containers", "rm", id]);
    }

    /// Imports the busybox image into this containerd.
    pub fn import_image(&self) {
        let tar = image_dir().join("image.tar").display().to_string();
        let out = self.ctr(&["images", "import", &tar]);
        assert!(out.status.success(), "image import: {}", text(&out.stderr));
    }

    /// Starts `ctr events` in the background.
    pub fn events(&self) -> Events {
        let child = self
            .ctr_cmd(&["events"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ctr events");
        std::thread::sleep(Duration::from_millis(300));
        Events {
            child,
            namespace: self.namespace.clone(),
        }
    }

    /// Waits until `ctr task ls` shows `id` in `status`.
    pub fn wait_status(&self, id: &str, status: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = text(&self.ctr(&["task", "ls"]).stdout);
            if out.lines().any(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                f.first() == Some(&id) && f.last() == Some(&status)
            }) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "task {id} never reached {status}; ctr task ls:\n{out}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The socket path the shim for `id` uses.
    pub fn socket_path(&self, id: &str) -> PathBuf {
        use sha2::Digest;
        let key = format!("{}/{}/{}", self.address, self.namespace, id);
        let hex: String = sha2::Sha256::digest(key.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Path::new("/run/containerd/s").join(hex)
    }

    /// Pids of this test's shim processes (its containerd, its namespace).
    pub fn shim_pids(&self) -> Vec<u32> {
        live_processes()
            .into_iter()
            .filter(|(_, cmd)| {
                cmd.contains(&format!("-address {} ", self.address))
                    && cmd.contains(&format!("-namespace {} ", self.namespace))
            })
            .map(|(pid, _)| pid)
            .collect()
    }

    /// Zombie children of this test's shims (exits the shim failed to reap).
    pub fn shim_zombies(&self) -> Vec<String> {
        let shims = self.shim_pids();
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid ...
            let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
                continue;
            };
            let mut f = rest.split_whitespace();
            let (state, ppid) = (f.next(), f.next().and_then(|p| p.parse::<u32>().ok()));
            if state == Some("Z") && ppid.is_some_and(|p| shims.contains(&p)) {
                out.push(stat.trim().to_string());
            }
        }
        out
    }

    /// Live processes whose command line mentions `needle`.
    pub fn processes_with(&self, needle: &str) -> Vec<String> {
        live_processes()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains(needle))
            .map(|(pid, cmd)| format!("{pid}: {cmd}"))
            .collect()
    }

    /// Network namespaces (paths under /run/netns) in this test's bundles.
    fn pod_netns_paths(&self) -> Vec<String> {
        let bundles = self.bundles();
        let mut found = Vec::new();
        for e in std::fs::read_dir(bundles).into_iter().flatten().flatten() {
            let Ok(data) = std::fs::read(e.path().join("config.json")) else {
                continue;
            };
            let Ok(spec) = serde_json::from_slice::<serde_json::Value>(&data) else {
                continue;
            };
            for ns in spec["linux"]["namespaces"].as_array().into_iter().flatten() {
                if let Some(p) = ns["path"].as_str() {
                    if ns["type"] == "network"
                        && (p.starts_with("/var/run/netns/") || p.starts_with("/run/netns/"))
                        && !found.iter().any(|f| f == p)
                    {
                        found.push(p.to_string());
                    }
                }
            }
        }
        found
    }

    /// The `--root` the shim gives `backend` in this test.
    pub fn runtime_root(&self, backend: &str) -> PathBuf {
        if self.own_runtime_roots {
            self.dir.join("rt").join(backend)
        } else {
            Path::new("/run/nucleus")
                .join(backend)
                .join(&self.namespace)
        }
    }

    /// Asserts nothing of `ids` is left: shim processes, sockets, mounts,
    /// runtime state or processes. Waits briefly for shims still exiting.
    pub fn assert_clean(&self, backend: &str, ids: &[&str]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let runtime_root = self.runtime_root(backend).display().to_string();
        let bundles = self.bundles();
        loop {
            let mut left = Vec::new();
            for p in self.processes_with(&format!("-address {}", self.address)) {
                if p.contains(&format!("-namespace {}", self.namespace)) {
                    left.push(format!("shim process {p}"));
                }
            }
            for p in self.processes_with(&runtime_root) {
                left.push(format!("runtime process {p}"));
            }
            for id in ids {
                let sock = self.socket_path(id);
                if sock.exists() {
                    left.push(format!("socket {} of {id}", sock.display()));
                }
                let state = Path::new(&runtime_root).join(id);
                if state.exists() {
                    left.push(format!("runtime state {}", state.display()));
                }
                if bundles.join(id).exists() {
                    left.push(format!("bundle {}", bundles.join(id).display()));
                }
            }
            for m in mounts_under(&bundles) {
                left.push(format!("mount {m}"));
            }
            if self.own_runtime_roots {
                // A configured root is the user's: it stays, with no
                // container's state in it. What the runtime keeps there for
                // itself stays too: crun 1.21 and 1.28 (not 1.8.1) its
                // compiled seccomp filters in `.cache`, crun 1.28 (not 1.21)
                // `.empty-directory` (the shim clears them only from its
                // default roots, with the root).
                let runtimes_own: &[&str] = if backend == "crun" {
                    &[".cache", ".empty-directory"]
                } else {
                    &[]
                };
                if let Ok(entries) = std::fs::read_dir(&runtime_root) {
                    for e in entries.flatten() {
                        if !runtimes_own.iter().any(|o| e.file_name() == *o) {
                            left.push(format!("runtime state {}", e.path().display()));
                        }
                    }
                }
            } else if Path::new(&runtime_root).exists() {
                left.push(format!("runtime state dir {runtime_root}"));
            }
            if left.is_empty() {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "left behind after the test:\n  {}\ncontainerd log tail:\n{}",
                    left.join("\n  "),
                    tail(&self.containerd_log(), 40)
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The contents of `path` once they contain `want`, or whatever is there
/// after 15 s.
pub fn wait_for_file(path: &Path, want: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let got = std::fs::read_to_string(path).unwrap_or_default();
        if got.contains(want) || Instant::now() > deadline {
            return got;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The last `n` lines of a text.
pub fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// (pid, command line) of every process that is not a zombie.
pub fn live_processes() -> Vec<(u32, String)> {
    let mut v = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return v;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let stat = std::fs::read_to_string(e.path().join("stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or("");
        if state == "Z" || state.is_empty() {
            continue;
        }
        let cmd = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let cmd = text(&cmd).replace('\0', " ").trim().to_string();
        if !cmd.is_empty() {
            v.push((pid, cmd));
        }
    }
    v
}

/// Mount points at or below `dir`.
pub fn mounts_under(dir: &Path) -> Vec<String> {
    let prefix = dir.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
        .filter(|m| m == &prefix || m.starts_with(&format!("{prefix}/")))
        .collect()
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Some(mut c) = self.containerd.take().filter(|_| !self.system) {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(5);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        // Anything a failed test left: pod network namespaces CRI made (named
        // in the bundles, which go with the shims), shims of this
        // containerd, their runtime containers, then mounts.
        if self.pod_network.is_some() {
            for netns in self.pod_netns_paths() {
                let _ = nix::mount::umount2(Path::new(&netns), nix::mount::MntFlags::MNT_DETACH);
                let _ = std::fs::remove_file(&netns);
            }
        }
        for (pid, _) in live_processes().into_iter().filter(|(_, cmd)| {
            cmd.contains(&format!("-address {} ", self.address))
                && (!self.system || cmd.contains(&format!("-namespace {} ", self.namespace)))
        }) {
            // SAFETY: killing a leftover shim of this test's own containerd.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        // Their runtime containers (runsc sandboxes outlive the shim).
        self.clear_stale_runtime_state();
        if self.own_runtime_roots {
            // What `delete --force` could not end (runsc sandboxes, gofers).
            let roots = self.dir.join("rt").display().to_string();
            for (pid, _) in live_processes()
                .into_iter()
                .filter(|(_, cmd)| cmd.contains(&roots))
            {
                // SAFETY: killing a leftover runtime process of this test.
                unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            }
        }
        if let Some((bridge, _)) = self.pod_network.as_ref().filter(|_| !self.system) {
            let _ = Command::new("ip")
                .args(["link", "del", bridge])
                .stderr(Stdio::null())
                .status();
            let before = ip_forward_before();
            if !before.is_empty() {
                let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", before);
            }
        }
        let mut mounts = mounts_under(&self.dir);
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        for m in mounts {
            let _ = nix::mount::umount2(Path::new(&m), nix::mount::MntFlags::MNT_DETACH);
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("test dir kept for inspection: {}", self.dir.display());
        }
    }
}

/// A running `ctr events`.
pub struct Events {
    child: Child,
    /// `ctr events` shows every namespace's events (a shared system
    /// containerd runs other tests' containers of the same name).
    namespace: String,
}

impl Events {
    /// Stops the stream and returns (topic, payload) lines for `id`.
    pub fn collect(mut self, id: &str) -> Vec<(String, String)> {
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.child.kill();
        let mut out = String::new();
        if let Some(mut s) = self.child.stdout.take() {
            let _ = s.read_to_string(&mut out);
        }
        let _ = self.child.wait();
        let needle = format!("\"{id}\"");
        let ns = format!(" {} /", self.namespace);
        out.lines()
            .filter(|l| l.contains(&needle) && l.contains(&ns))
            .filter_map(|l| {
                let topic_at = l.find(" /")?;
                let rest = &l[topic_at + 1..];
                let (topic, payload) = rest.split_once(' ')?;
                Some((topic.to_string(), payload.to_string()))
            })
            .collect()
    }
}
