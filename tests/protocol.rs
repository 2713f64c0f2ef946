//! The shim binary's protocol with containerd, exercised directly: flags,
//! `-v`/`-info`, `start` with each stdin shape, the Task API under both
//! service names, Shutdown, and `delete`.

mod common;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::ttrpc_call as call;
use containerd_shim_protos::api::{
    ConnectRequest, ConnectResponse, DeleteResponse, ShutdownRequest, StateRequest,
};
use containerd_shim_protos::bootstrap_api::{BootstrapParams, BootstrapResult};
use containerd_shim_protos::protobuf::well_known_types::any::Any;
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::oci::Options as RuncOptions;
use containerd_shim_protos::types::introspection::RuntimeInfo;

fn shim() -> Command {
    let bin = std::env::var_os("NUCLEUS_SHIM_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_containerd-shim-nucleus-v1").into());
    Command::new(bin)
}

fn start(bundle: &Path, id: &str, stdin: &[u8]) -> std::process::Output {
    let mut child = shim()
        .args([
            "-namespace",
            "proto",
            "-address",
            "/nonexistent/containerd.sock",
            "-publish-binary",
            "/bin/false",
            "-id",
            id,
            "start",
        ])
        .current_dir(bundle)
        .env("TTRPC_ADDRESS", "")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin).unwrap();
    child.wait_with_output().unwrap()
}

/// Shutdown over `service`; the shim ends and its socket goes.
fn shutdown(sock: &Path, service: &str) {
    let _: containerd_shim_protos::api::Empty =
        call(sock, service, "Shutdown", &ShutdownRequest::new()).unwrap();
    assert!(
        wait_gone(sock),
        "socket {} still there after Shutdown",
        sock.display()
    );
}

fn wait_gone(path: &Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while path.exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

#[test]
fn version_info_and_bad_flags() {
    let out = shim().arg("-v").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
    let out = shim().arg("-info").output().unwrap();
    assert!(out.status.success());
    let info = RuntimeInfo::parse_from_bytes(&out.stdout).unwrap();
    assert_eq!(info.name, "io.nucleus.v1");
    let out = shim()
        .args(["-namespace", "n", "-id", "x", "-frobnicate", "start"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("-frobnicate"));
}

/// containerd 2.3+: BootstrapParams in, BootstrapResult out; the Task API
/// answers under v2 and v3; Shutdown with no task ends the shim and its socket.
#[test]
fn bootstrap_start_serves_v2_and_v3_then_shuts_down() {
    let bundle = tempfile::tempdir().unwrap();
    let sockdir = tempfile::tempdir().unwrap();
    let mut p = BootstrapParams::new();
    p.instance_id = "b1".into();
    p.namespace = "proto".into();
    p.socket_dir = Some(sockdir.path().join("s").display().to_string());
    let out = start(bundle.path(), "b1", &p.write_to_bytes().unwrap());
    assert!(
        out.status.success(),
        "start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result =
        BootstrapResult::parse_from_bytes(&out.stdout).expect("stdout is a BootstrapResult");
    assert_eq!(result.version, 3);
    assert_eq!(result.protocol, "ttrpc");
    let sock = Path::new(result.address.strip_prefix("unix://").unwrap()).to_path_buf();
    assert!(sock.starts_with(sockdir.path().join("s")));
    assert_eq!(
        std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(
        std::fs::read_to_string(bundle.path().join("address")).unwrap(),
        result.address
    );

    for service in ["containerd.task.v2.Task", "containerd.task.v3.Task"] {
        let mut req = ConnectRequest::new();
        req.id = "b1".into();
        let resp: ConnectResponse = call(&sock, service, "Connect", &req).unwrap();
        assert!(resp.shim_pid > 0);
        let mut st = StateRequest::new();
        st.id = "nope".into();
        let err = call::<_, ConnectResponse>(&sock, service, "State", &st).unwrap_err();
        assert!(err.contains("NOT_FOUND") && err.contains("nope"), "{err}");
    }
    let err = call::<_, ConnectResponse>(
        &sock,
        "containerd.task.v9.Task",
        "Connect",
        &ConnectRequest::new(),
    )
    .unwrap_err();
    assert!(err.contains("not served"), "{err}");

    shutdown(&sock, "containerd.task.v3.Task");
}

/// containerd 1.6-2.2: a runc Options Any (nerdctl) on stdin, plain address out,
/// options persisted in the bundle for Create; a second start for the same id
/// joins the running shim.
#[test]
fn runc_options_start_replies_plain_address() {
    // SAFETY: geteuid has no side effects.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var("CI").is_err(),
            "CI=true: this test needs root for /run/containerd/s"
        );
        eprintln!("SKIP: needs root to create sockets under /run/containerd/s");
        return;
    }
    let bundle = tempfile::tempdir().unwrap();
    let opts = RuncOptions {
        binary_name: "crun".into(),
        ..Default::default()
    };
    let any = Any {
        type_url: "containerd.runc.v1.Options".into(),
        value: opts.write_to_bytes().unwrap(),
        ..Default::default()
    };
    let id = format!("plain-{}", std::process::id());
    let out = start(bundle.path(), &id, &any.write_to_bytes().unwrap());
    assert!(
        out.status.success(),
        "start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let address = String::from_utf8(out.stdout).unwrap();
    assert!(
        address.starts_with("unix:///run/containerd/s/"),
        "{address}"
    );
    assert_eq!(
        std::fs::read(bundle.path().join("nucleus-options.pb")).unwrap(),
        any.write_to_bytes().unwrap()
    );
    let again = start(bundle.path(), &id, b"");
    assert_eq!(
        String::from_utf8(again.stdout).unwrap(),
        address,
        "second start must join the running shim"
    );
    let sock = Path::new(address.strip_prefix("unix://").unwrap()).to_path_buf();
    shutdown(&sock, "containerd.task.v2.Task");
}

/// Kubernetes grouping: `start` for containers of one pod (annotation
/// `io.kubernetes.cri.sandbox-id`) returns the running shim's address; once
/// that shim is gone (its socket file left behind), the next start replaces
/// the dead socket with a new shim rather than handing out a dead address.
#[test]
fn pod_containers_join_one_shim_and_a_dead_one_is_replaced() {
    let sockdir = tempfile::tempdir().unwrap();
    let pod = format!("pod-{}", std::process::id());
    let bundle = || {
        let dir = tempfile::tempdir().unwrap();
        let spec = serde_json::json!({
            "annotations": {"io.kubernetes.cri.sandbox-id": pod, "io.kubernetes.cri.container-type": "container"}
        });
        std::fs::write(dir.path().join("config.json"), spec.to_string()).unwrap();
        dir
    };
    let start_in = |dir: &Path, id: &str| -> String {
        let mut p = BootstrapParams::new();
        p.instance_id = id.into();
        p.namespace = "proto".into();
        p.socket_dir = Some(sockdir.path().display().to_string());
        let out = start(dir, id, &p.write_to_bytes().unwrap());
        assert!(
            out.status.success(),
            "start {id}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        BootstrapResult::parse_from_bytes(&out.stdout)
            .expect("a BootstrapResult")
            .address
    };
    let shim_pid = |dir: &Path| -> i32 {
        std::fs::read_to_string(dir.join("shim.pid"))
            .expect("shim.pid")
            .trim()
            .parse()
            .expect("a pid")
    };
    let alive = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    };

    let (a, b, c) = (bundle(), bundle(), bundle());
    let first = start_in(a.path(), "a");
    let first_pid = shim_pid(a.path());
    assert_eq!(start_in(b.path(), "b"), first, "b joins the pod's shim");
    assert!(
        !b.path().join("shim.pid").exists(),
        "no second shim for the pod"
    );
    assert!(alive(first_pid));

    // SAFETY: killing the shim this test started.
    unsafe { libc::kill(first_pid, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(first_pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!alive(first_pid), "shim {first_pid} survived SIGKILL");
    let sock = Path::new(first.strip_prefix("unix://").unwrap()).to_path_buf();
    assert!(sock.exists(), "the dead shim's socket file stays behind");

    let again = start_in(c.path(), "c");
    assert_eq!(again, first, "the pod's socket path is stable");
    let second_pid = shim_pid(c.path());
    assert_ne!(second_pid, first_pid);
    assert!(alive(second_pid));
    let mut req = ConnectRequest::new();
    req.id = "c".into();
    let resp: ConnectResponse = call(&sock, "containerd.task.v3.Task", "Connect", &req).unwrap();
    assert_eq!(resp.shim_pid, second_pid as u32);
    shutdown(&sock, "containerd.task.v3.Task");
}

#[test]
fn garbage_stdin_fails_start_cleanly() {
    let bundle = tempfile::tempdir().unwrap();
    let out = start(bundle.path(), "g1", &[0xff, 0xfe, 0x01]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("stdin"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "nothing may be printed where containerd reads the address"
    );
    assert!(!bundle.path().join("address").exists());
}

#[test]
fn delete_is_idempotent_without_a_server() {
    let bundle = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let out = shim()
            .args(["-namespace", "proto", "-id", "d1", "-bundle"])
            .arg(bundle.path())
            .arg("delete")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let resp = DeleteResponse::parse_from_bytes(&out.stdout).unwrap();
        assert_eq!(resp.exit_status, 137);
        assert!(resp.exited_at.is_some());
    }
}

/// `harden --bundle DIR --config FILE [--dry-run]`: a diff by rule, the
/// bundle untouched on a dry run and rewritten (original and report kept)
/// otherwise; a refused spec exits non-zero with the reason.
#[test]
fn harden_action_prints_the_diff_and_rewrites_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let bundle = dir.path().join("bundle");
    std::fs::create_dir(&bundle).unwrap();
    let spec = r#"{"ociVersion":"1.0.2","process":{"args":["/bin/sh"],
        "capabilities":{"bounding":["CAP_CHOWN","CAP_NET_RAW"]}},
        "root":{"path":"rootfs"},"linux":{}}"#;
    std::fs::write(bundle.join("config.json"), spec).unwrap();
    let config = dir.path().join("nucleus.toml");
    // The backend only has to be known, not run: any executable will do.
    std::fs::write(
        &config,
        "[runtime]\nname = \"crun\"\npath = \"/bin/true\"\n",
    )
    .unwrap();
    let run = |extra: &[&str]| {
        shim()
            .args(["harden", "--bundle"])
            .arg(&bundle)
            .arg("--config")
            .arg(&config)
            .args(extra)
            .env_remove("NUCLEUS_CONFIG")
            .output()
            .unwrap()
    };
    let out = run(&["--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("nucleus policy default for crun"),
        "{stdout}"
    );
    assert!(
        stdout.contains("[capabilities]\n  - process.capabilities.bounding: CAP_NET_RAW"),
        "{stdout}"
    );
    assert!(
        stdout.contains("+ linux.maskedPaths: /proc/kallsyms"),
        "{stdout}"
    );
    assert!(stdout.contains("dry run"), "{stdout}");
    assert_eq!(
        std::fs::read_to_string(bundle.join("config.json")).unwrap(),
        spec
    );

    let out = run(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read_to_string(bundle.join("config.json")).unwrap();
    assert!(!written.contains("CAP_NET_RAW") && written.contains("/proc/kallsyms"));
    assert_eq!(
        std::fs::read_to_string(bundle.join("nucleus-config.original.json")).unwrap(),
        spec
    );
    assert!(bundle.join("nucleus-hardening.json").exists());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no breakout pattern"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Create's rootfs checks, on the bundle's rootfs as it is.
    std::fs::create_dir_all(bundle.join("rootfs/etc")).unwrap();
    std::os::unix::fs::symlink("/etc", bundle.join("rootfs/proc")).unwrap();
    let out = run(&["--dry-run"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("Create would refuse it") && stdout.contains("/proc as a symlink to /etc"),
        "{stdout}"
    );

    std::fs::remove_file(bundle.join("nucleus-config.original.json")).unwrap();
    std::fs::write(
        bundle.join("config.json"),
        r#"{"process":{"args":["/bin/sh"]},"hooks":{"prestart":[{"path":"/tmp/evil"}]}}"#,
    )
    .unwrap();
    let out = run(&["--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/tmp/evil") && err.contains("trusted"),
        "{err}"
    );

    // A case variant of a field runc and runsc would read (ctr itself
    // normalises keys, so a bundle written by another client is the way in).
    std::fs::write(
        bundle.join("config.json"),
        r#"{"process":{"args":["/bin/sh"]},"Hooks":{"prestart":[{"path":"/tmp/evil"}]}}"#,
    )
    .unwrap();
    let out = run(&["--dry-run"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("\"Hooks\"") && err.contains("case variant"),
        "{err}"
    );

    let out = shim().args(["harden"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bundle"));
}

/// The shim's memory from /proc: (VmPeak, VmHWM) in KiB.
fn shim_memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
    };
    (field("VmPeak:"), field("VmHWM:"))
}

/// Garbage on the shim's socket (issue 11): cut frames, a service and a
/// method nobody serves, a frame that is no request, headers claiming 4 GiB,
/// random bytes and a peer that sends requests but never reads the answers.
/// Each gets an error or a closed connection; the server goes on answering
/// other connections (while the garbage ones are still open), and neither
/// its peak address space nor its resident peak shows the claimed sizes.
#[test]
fn garbage_on_the_socket_leaves_the_server_serving() {
    use containerd_shim_protos::ttrpc::Response;
    use nucleus_shim::wire::{self, Header, MAX_MESSAGE, TYPE_REQUEST, TYPE_RESPONSE};
    use std::io::Read;
    use std::os::unix::net::UnixStream;

    let bundle = tempfile::tempdir().unwrap();
    let sockdir = tempfile::tempdir().unwrap();
    let mut p = BootstrapParams::new();
    p.instance_id = "garbage".into();
    p.namespace = "proto".into();
    p.socket_dir = Some(sockdir.path().join("s").display().to_string());
    let out = start(bundle.path(), "garbage", &p.write_to_bytes().unwrap());
    assert!(
        out.status.success(),
        "start: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let address = BootstrapResult::parse_from_bytes(&out.stdout)
        .unwrap()
        .address;
    let sock = Path::new(address.strip_prefix("unix://").unwrap()).to_path_buf();
    let pid: u32 = std::fs::read_to_string(bundle.path().join("shim.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // A failed assertion must not leave the shim behind.
    struct KillOnDrop(u32);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            // SAFETY: signalling the shim this test started.
            unsafe { libc::kill(self.0 as i32, libc::SIGKILL) };
        }
    }
    let kill = KillOnDrop(pid);
    const TASK: &str = "containerd.task.v3.Task";
    let served = |when: &str| {
        let mut req = ConnectRequest::new();
        req.id = "garbage".into();
        let resp: ConnectResponse = call(&sock, TASK, "Connect", &req)
            .unwrap_or_else(|e| panic!("{when}: a valid request on a new connection: {e}"));
        assert_eq!(resp.shim_pid, pid, "{when}");
    };
    let connect = || {
        let s = UnixStream::connect(&sock).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.set_write_timeout(Some(Duration::from_secs(20))).unwrap();
        s
    };
    let header = |length: u32| Header::request(length, 1).encode();
    // The status code of the answer to `frame`, on a connection of its own.
    let answer_code = |frame: &[u8]| -> String {
        let mut s = connect();
        s.write_all(frame).unwrap();
        let (h, body) = wire::read_frame(&mut s).expect("an answer");
        assert_eq!(h.kind, TYPE_RESPONSE);
        let resp = Response::parse_from_bytes(&body).unwrap();
        format!("{:?}", resp.status.code)
    };
    // Read to the end: the server closed the connection.
    let closed = |mut s: UnixStream, what: &str| {
        let mut sink = Vec::new();
        match s.read_to_end(&mut sink) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
            Err(e) => panic!("{what}: the server did not close the connection: {e}"),
        }
    };
    served("before any garbage");
    let (peak_before, _) = shim_memory(pid);

    // Cut frames: parts of a header, a body shorter than its header says
    // (also one claiming the largest allowed length), left open throughout.
    let mut held = Vec::new();
    for bytes in [
        header(40)[..1].to_vec(),
        header(40)[..9].to_vec(),
        [&header(1000)[..], &[7u8; 10][..]].concat(),
        [&header(MAX_MESSAGE as u32)[..], &[7u8; 100][..]].concat(),
    ] {
        let mut s = connect();
        s.write_all(&bytes).unwrap();
        held.push(s);
    }
    // And a peer that leaves in the middle of a header.
    connect().write_all(&header(40)[..3]).unwrap();

    // Requests nobody serves, or that are no request: an error answer each.
    let code = answer_code(&wire::request_frame(
        1,
        "grpc.health.v1.Health",
        "Check",
        vec![],
        0,
    ));
    assert!(code.contains("UNIMPLEMENTED"), "unknown service: {code}");
    let code = answer_code(&wire::request_frame(
        1,
        TASK,
        "Frobnicate",
        vec![1, 2, 3],
        0,
    ));
    assert!(code.contains("UNIMPLEMENTED"), "unknown method: {code}");
    let code = answer_code(&wire::frame(1, TYPE_REQUEST, &[0xff; 16]));
    assert!(code.contains("INVALID_ARGUMENT"), "no request: {code}");
    // A State whose id field claims 9 MB with 3 bytes present.
    let lying = vec![0x0a, 0xc0, 0xa9, 0xa5, 0x04, b'a', b'b', b'c'];
    let code = answer_code(&wire::request_frame(1, TASK, "State", lying, 0));
    assert!(code.contains("INVALID_ARGUMENT"), "lying State: {code}");
    // A frame of another kind is ignored; the connection still serves.
    let mut s = connect();
    s.write_all(&wire::frame(9, TYPE_RESPONSE, b"not for you"))
        .unwrap();
    s.write_all(&wire::request_frame(3, TASK, "Connect", vec![], 0))
        .unwrap();
    let (h, _) = wire::read_frame(&mut s).expect("an answer after an ignored frame");
    assert_eq!(h.stream_id, 3);
    drop(s);

    // Headers claiming 4 GiB - 1 and one byte over the limit: the server
    // closes the connection as soon as the header is in, whatever follows.
    for length in [u32::MAX, MAX_MESSAGE as u32 + 1] {
        let mut s = connect();
        s.write_all(&header(length)).unwrap();
        let _ = s.write_all(&[0x55; 64 * 1024]);
        closed(s, &format!("a header claiming {length} bytes"));
    }

    // Random bytes on a few connections.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..8 {
        let bytes: Vec<u8> = (0..64 * 1024)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let mut s = connect();
        let _ = s.write_all(&bytes);
        drop(s);
    }
    served("with cut frames held open, after 4 GiB headers and random bytes");

    // A peer that pipelines requests and never reads the answers: once its
    // socket is full the server gives up on it (it used to wait forever,
    // serving nobody) and shuts the connection down.
    let mut greedy = connect();
    let one = wire::request_frame(1, "grpc.health.v1.Health", "Check", vec![], 0);
    let burst: Vec<u8> = one.repeat(40_000);
    let writer = {
        let mut w = greedy.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = w.write_all(&burst);
        })
    };
    // Answers queue up unread until the server gives up; then reading
    // drains them to the end.
    std::thread::sleep(Duration::from_secs(1));
    served("while a peer reads none of its answers");
    writer.join().unwrap();
    let mut sink = Vec::new();
    match greedy.read_to_end(&mut sink) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the server never gave up on a peer that reads nothing: {e}"),
    }
    assert!(sink.len() < one.len() * 40_000, "every answer was written");
    served("after the peer that read nothing");

    // Memory: nothing of the claimed 4 GiB (or 9 MB) was reserved, let
    // alone touched.
    let (peak_after, hwm) = shim_memory(pid);
    eprintln!("shim {pid}: VmPeak {peak_before} -> {peak_after} KiB, VmHWM {hwm} KiB");
    assert!(
        peak_after < peak_before + 128 * 1024,
        "the shim's address space peaked at {peak_after} KiB (from {peak_before} KiB)"
    );
    assert!(hwm < 48 * 1024, "the shim's resident peak is {hwm} KiB");
    drop(held);
    shutdown(&sock, TASK);
    // Gone by itself: its pid may be someone else's now.
    std::mem::forget(kill);
}
