//! Docker on nucleus, as a Docker user sets it up: dockerd (26.1, Debian
//! 13's docker.io, on the system containerd) with contrib/docker-daemon.json
//! (runtimes `nucleus`, `nucleus-runsc`, `nucleus-crun`, `nucleus-runc`,
//! each `runtimeType: io.containerd.nucleus.v1` with its nucleus.toml as
//! ConfigPath). Docker before 23 has no `runtimeType` (bookworm's is 20.10),
//! so these tests run in the VM lane only (contrib/vm/lane-tests.sh starts
//! dockerd and runs them with `--ignored`); elsewhere cargo lists them as
//! ignored, with that reason.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{code, text};

/// The image the tests import from the busybox rootfs.
const IMAGE: &str = "nucleus-busybox:docker";

/// Defines `runsc::t`, `crun::t` and `runc::t`, ignored outside the lane.
macro_rules! in_the_vm_lane {
    ($($test:ident),* $(,)?) => {
        mod runsc { $( #[test] #[ignore = "needs Docker 23+ (runtimeType): runs in the VM lane"] fn $test() { super::$test("runsc") } )* }
        mod crun { $( #[test] #[ignore = "needs Docker 23+ (runtimeType): runs in the VM lane"] fn $test() { super::$test("crun") } )* }
        mod runc { $( #[test] #[ignore = "needs Docker 23+ (runtimeType): runs in the VM lane"] fn $test() { super::$test("runc") } )* }
    };
}

fn docker(args: &[&str]) -> Output {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("running docker")
}

/// Whether dockerd answers with the nucleus runtimes, and the image is
/// imported (once per test binary). False (after saying why) without them.
fn ready() -> bool {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    let r = READY.get_or_init(|| {
        let info = docker(&["info", "--format", "{{json .Runtimes}}"]);
        if !info.status.success() {
            return Err(format!("docker info: {}", text(&info.stderr)));
        }
        for name in ["nucleus", "nucleus-runsc", "nucleus-crun", "nucleus-runc"] {
            if !text(&info.stdout).contains(&format!("\"{name}\"")) {
                return Err(format!(
                    "dockerd has no runtime {name} (contrib/docker-daemon.json): {}",
                    text(&info.stdout)
                ));
            }
        }
        let rootfs = common::image_dir().join("rootfs");
        let mut tar = Command::new("tar")
            .args(["-C", &rootfs.display().to_string(), "-cf", "-", "."])
            .stdout(Stdio::piped())
            .spawn()
            .expect("tar");
        let out = Command::new("docker")
            .args(["import", "-", IMAGE])
            .stdin(tar.stdout.take().expect("tar's stdout"))
            .output()
            .expect("docker import");
        let tar_status = tar.wait().expect("tar");
        if !tar_status.success() {
            return Err(format!("tar of {}: {tar_status}", rootfs.display()));
        }
        if !out.status.success() {
            return Err(format!("docker import: {}", text(&out.stderr)));
        }
        Ok(())
    });
    match r {
        Ok(()) => true,
        Err(why) => common::prerequisite(false, why),
    }
}

/// The `docker run` arguments for `backend`'s runtime entry.
fn run_args(backend: &str, extra: &[&str]) -> Vec<String> {
    let mut v = vec![
        "run".to_string(),
        "--runtime".to_string(),
        format!("nucleus-{backend}"),
    ];
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

fn run(args: Vec<String>) -> Output {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    docker(&args)
}

/// Removes containers named `names`, then asserts no shim, runtime or
/// sandbox process of theirs is left.
fn remove(names: &[&str], ids: &[String]) {
    for n in names {
        let _ = docker(&["rm", "-f", n]);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = common::live_processes()
            .into_iter()
            .filter(|(_, cmd)| ids.iter().any(|id| cmd.contains(id.as_str())))
            .map(|(pid, cmd)| format!("{pid}: {cmd}"))
            .collect();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "left running: {left:#?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn container_id(name: &str) -> String {
    text(&docker(&["inspect", "-f", "{{.Id}}", name]).stdout)
        .trim()
        .to_string()
}

/// `docker run --rm` prints the process's stdout and stderr and exits with
/// its code; `docker run -t` gives it a terminal.
fn output_and_exit_code(backend: &str) {
    if !ready() {
        return;
    }
    let out = run(run_args(
        backend,
        &[
            "--rm",
            IMAGE,
            "/bin/sh",
            "-c",
            "echo to-stdout; echo to-stderr >&2; exit 3",
        ],
    ));
    assert_eq!(code(&out), 3, "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "to-stdout\n");
    assert!(
        text(&out.stderr).contains("to-stderr"),
        "{}",
        text(&out.stderr)
    );
    let out = run(run_args(
        backend,
        &["--rm", "-t", IMAGE, "/bin/sh", "-c", "tty; stty size"],
    ));
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("/dev/pts/"),
        "tty: {}",
        text(&out.stdout)
    );
}

/// `docker run -it` from a terminal: what is typed reaches the process and
/// its answer comes back (through `script`, which gives docker a pty).
fn interactive(backend: &str) {
    if !ready() {
        return;
    }
    let cmd = format!(
        "docker run --rm -it --runtime nucleus-{backend} {IMAGE} /bin/sh -c 'read line; echo got-$line'"
    );
    let mut child = Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script (util-linux)");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("stdin");
        std::thread::sleep(Duration::from_secs(3));
        stdin.write_all(b"hello\n").expect("typing");
        std::thread::sleep(Duration::from_secs(3));
    }
    let out = child.wait_with_output().expect("script");
    assert!(
        text(&out.stdout).contains("got-hello"),
        "stdout: {:?} stderr: {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// A detached web server with `-p`: reachable on the host port, `docker
/// exec` runs in it, `docker stats` prints its figures, `docker stop` ends
/// it, and nothing of it is left after `docker rm`.
fn detached_web_server(backend: &str) {
    if !ready() {
        return;
    }
    let port = match backend {
        "runsc" => "18081",
        "crun" => "18082",
        _ => "18083",
    };
    let name = format!("web-{backend}");
    let publish = format!("{port}:80");
    let page = format!("hello from {backend}");
    let script =
        format!("mkdir -p /www && echo '{page}' > /www/index.html && exec httpd -f -p 80 -h /www");
    let out = run(run_args(
        backend,
        &[
            "-d", "--name", &name, "-p", &publish, IMAGE, "/bin/sh", "-c", &script,
        ],
    ));
    assert_eq!(code(&out), 0, "docker run -d: {}", text(&out.stderr));
    let id = container_id(&name);

    let url = format!("http://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let got = Command::new("busybox")
            .args(["wget", "-q", "-T", "3", "-O", "-", &url])
            .output()
            .expect("busybox wget");
        if got.status.success() || Instant::now() > deadline {
            break text(&got.stdout);
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(body.trim(), page, "{url}: {body:?}");

    let out = docker(&["exec", &name, "cat", "/www/index.html"]);
    assert_eq!(code(&out), 0, "docker exec: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), page);

    let out = docker(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.MemUsage}}|{{.PIDs}}|{{.CPUPerc}}",
        &name,
    ]);
    assert_eq!(code(&out), 0, "docker stats: {}", text(&out.stderr));
    let stats = text(&out.stdout);
    let fields: Vec<&str> = stats.trim().split('|').collect();
    assert_eq!(fields.len(), 3, "{stats}");
    assert!(
        !fields[0].starts_with("0B") && fields[0].contains('/'),
        "memory: {stats}"
    );
    assert!(
        fields[1].parse::<u32>().is_ok_and(|n| n >= 1),
        "pids: {stats}"
    );

    let out = docker(&["stop", "-t", "2", &name]);
    assert_eq!(code(&out), 0, "docker stop: {}", text(&out.stderr));
    let running = docker(&["inspect", "-f", "{{.State.Running}}", &name]);
    assert_eq!(text(&running.stdout).trim(), "false");
    remove(&[&name], &[id]);
}

/// `docker stop` on an init without a SIGTERM handler (`sleep`): Linux does
/// not deliver the signal to a container's pid 1, so runc and crun end it
/// with SIGKILL after the timeout (137); gVisor delivers it (143). README
/// "nerdctl and Docker" says so.
fn stop_of_an_init_without_handler(backend: &str) {
    if !ready() {
        return;
    }
    let name = format!("sleeper-{backend}");
    let out = run(run_args(
        backend,
        &["-d", "--name", &name, IMAGE, "/bin/sleep", "1000"],
    ));
    assert_eq!(code(&out), 0, "docker run -d: {}", text(&out.stderr));
    let id = container_id(&name);
    let out = docker(&["stop", "-t", "2", &name]);
    assert_eq!(code(&out), 0, "docker stop: {}", text(&out.stderr));
    let exit = docker(&["inspect", "-f", "{{.State.ExitCode}}", &name]);
    let want = if backend == "runsc" { "143" } else { "137" };
    assert_eq!(text(&exit.stdout).trim(), want);
    remove(&[&name], &[id]);
}

/// The `nucleus` entry (nucleus.toml: runc, `selectable` runsc and crun):
/// `--annotation io.nucleus.runtime=BACKEND` runs the container there,
/// under that backend's own root (Docker's containerd namespace is `moby`;
/// runc and crun keep a directory named by the id, runsc files of its own),
/// and for runsc in gVisor.
fn annotation_picks_the_backend(backend: &str) {
    if !ready() {
        return;
    }
    assert!(Path::new("/etc/nucleus/nucleus.toml").exists());
    let name = format!("picked-{backend}");
    let annotation = format!("io.nucleus.runtime={backend}");
    let out = docker(&[
        "run",
        "-d",
        "--name",
        &name,
        "--runtime",
        "nucleus",
        "--annotation",
        &annotation,
        IMAGE,
        "/bin/sleep",
        "1000",
    ]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let id = container_id(&name);
    for other in ["runsc", "crun", "runc"] {
        let held = Path::new("/run/nucleus")
            .join(other)
            .join("moby")
            .join(&id)
            .exists();
        assert_eq!(held, other == backend && other != "runsc", "{other}'s root");
    }
    let host = std::fs::read_to_string("/proc/version").expect("/proc/version");
    let out = docker(&["exec", &name, "/bin/cat", "/proc/version"]);
    assert_eq!(code(&out), 0, "exec: {}", text(&out.stderr));
    let in_gvisor = text(&out.stdout).trim() != host.trim();
    assert_eq!(in_gvisor, backend == "runsc", "{}", text(&out.stdout));
    remove(&[&name], &[id]);
}

in_the_vm_lane!(
    output_and_exit_code,
    interactive,
    detached_web_server,
    stop_of_an_init_without_handler,
    annotation_picks_the_backend,
);
