//! End-to-end container lifecycle through `ctr` and a real containerd, on
//! each of runsc, crun and runc.

#[macro_use]
mod common;

use std::time::Duration;

use common::{code, text, Env, Kind};

/// Exit codes 0 and 42 propagate through `ctr run` (rootfs and image), and a
/// SIGKILLed container reports 137.
fn exit_codes(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let out = env.run(backend, "ok", &["/bin/true"]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let out = env.run(backend, "fortytwo", &["/bin/sh", "-c", "exit 42"]);
    assert_eq!(code(&out), 42, "stderr: {}", text(&out.stderr));

    env.import_image();
    let out = env.run_image(
        backend,
        &["--rm"],
        "img",
        &["sh", "-c", "echo from-image; exit 7"],
    );
    assert_eq!(code(&out), 7, "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "from-image");

    let args = env.run_args(backend, &["--rm"], "killed", &["/bin/sleep", "1000"]);
    let mut run = env
        .ctr_cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .spawn()
        .unwrap();
    env.wait_status("killed", "RUNNING");
    let kill = env.ctr(&["task", "kill", "-s", "SIGKILL", "killed"]);
    assert!(kill.status.success(), "kill: {}", text(&kill.stderr));
    let status = run.wait().unwrap();
    assert_eq!(status.code(), Some(137));
    env.assert_clean(backend, &["ok", "fortytwo", "img", "killed"]);
}

/// stdout and stderr arrive on their own streams, intact.
fn stdout_and_stderr(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let out = env.run(
        backend,
        "io",
        &["/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2"],
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "to-stdout\n");
    assert_eq!(text(&out.stderr), "to-stderr\n");

    let args = env.run_args(
        backend,
        &["--rm", "--null-io"],
        "null",
        &["/bin/sh", "-c", "echo dropped; exit 3"],
    );
    let out = env.ctr(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(code(&out), 3, "stderr: {}", text(&out.stderr));
    assert!(
        out.stdout.is_empty(),
        "null IO printed {:?}",
        text(&out.stdout)
    );

    // stdin reaches the container and its end (CloseIO) ends `cat`.
    let args = env.run_args(backend, &["--rm"], "stdin", &["/bin/cat"]);
    let mut child = env
        .ctr_cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"through stdin\n").unwrap();
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0);
    assert_eq!(text(&out.stdout), "through stdin\n");
    env.assert_clean(backend, &["io", "null", "stdin"]);
}

/// 8 MiB of output arrives byte for byte, also when the client reads more
/// slowly than the container writes: ctr closes its FIFO readers as soon as
/// it learns of the exit, so the exit must not be reported before the
/// output FIFO is drained.
fn large_output(backend: &str, test: &str) {
    use std::io::Read;
    use std::process::Stdio;
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let args = env.run_args(
        backend,
        &["--rm"],
        "big",
        &["/bin/sh", "-c", "yes 0123456789abcdef | head -c 8388608"],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut child = env
        .ctr_cmd(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ctr run");
    let mut stdout = child.stdout.take().unwrap();
    let mut got = Vec::with_capacity(8 << 20);
    let mut buf = vec![0u8; 8 * 1024];
    loop {
        let n = stdout.read(&mut buf).expect("reading ctr's stdout");
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
        // A slow reader: the container finishes with the FIFO full.
        std::thread::sleep(Duration::from_millis(1));
    }
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let expected: Vec<u8> = b"0123456789abcdef\n"
        .iter()
        .copied()
        .cycle()
        .take(8 << 20)
        .collect();
    assert_eq!(got.len(), expected.len(), "output length");
    assert!(
        got == expected,
        "8 MiB of output differs from what was written"
    );
    env.assert_clean(backend, &["big"]);
}

/// A detached container: `ctr task ps` lists it, `ctr task kill` ends it with
/// the exit status seen in `ctr events`, and delete removes it.
fn detached_kill_ps_delete(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let events = env.events();
    let args = env.run_args(backend, &["-d"], "bg", &["/bin/sleep", "1000"]);
    let out = env.ctr(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(out.status.success(), "run -d: {}", text(&out.stderr));
    env.wait_status("bg", "RUNNING");

    let ps = env.ctr(&["task", "ps", "bg"]);
    assert!(ps.status.success(), "task ps: {}", text(&ps.stderr));
    let pids: Vec<u32> = text(&ps.stdout)
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    assert!(
        !pids.is_empty(),
        "task ps listed no pid:\n{}",
        text(&ps.stdout)
    );

    let kill = env.ctr(&["task", "kill", "--all", "-s", "SIGKILL", "bg"]);
    assert!(kill.status.success(), "kill: {}", text(&kill.stderr));
    env.wait_status("bg", "STOPPED");
    let del = env.ctr(&["task", "delete", "bg"]);
    assert!(del.status.success(), "task delete: {}", text(&del.stderr));
    let rm = env.ctr(&["containers", "delete", "bg"]);
    assert!(
        rm.status.success(),
        "container delete: {}",
        text(&rm.stderr)
    );

    let evs = events.collect("bg");
    let exit = evs
        .iter()
        .find(|(t, _)| t == "/tasks/exit")
        .unwrap_or_else(|| panic!("no /tasks/exit in {evs:?}"));
    assert!(
        exit.1.contains("\"exit_status\":137"),
        "exit event: {}",
        exit.1
    );
    env.assert_clean(backend, &["bg"]);
}

/// create, start, exit, delete are published in that order, even for an
/// instant exit.
fn events_in_order(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let events = env.events();
    let out = env.run(backend, "quick", &["/bin/true"]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    std::thread::sleep(Duration::from_millis(300));
    let topics: Vec<String> = events
        .collect("quick")
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| t.starts_with("/tasks/"))
        .collect();
    assert_eq!(
        topics,
        [
            "/tasks/create",
            "/tasks/start",
            "/tasks/exit",
            "/tasks/delete"
        ]
    );
    env.assert_clean(backend, &["quick"]);
}

/// The container really runs on the chosen runtime: gVisor's kernel version
/// under runsc, the host's under crun and runc.
fn runs_on_backend(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let out = env.run(backend, "uname", &["/bin/uname", "-r"]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let inside = text(&out.stdout).trim().to_string();
    let host = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap()
        .trim()
        .to_string();
    if backend == "runsc" {
        assert_ne!(inside, host, "runsc container sees the host kernel");
        assert!(
            inside.starts_with("4.4.0"),
            "gVisor reports 4.4.0, got {inside}"
        );
    } else {
        assert_eq!(inside, host);
    }
    let log = env.containerd_log();
    assert!(
        log.contains(&format!("runtime {backend} (")),
        "shim log does not show backend {backend}"
    );
    env.assert_clean(backend, &["uname"]);
}

/// The basics through containerd 2.x, its ctr and its side of the shim
/// protocol: exit code and output of `ctr run`, a detached task with
/// `task ps`, an exec, kill and delete, the exit event, nothing left.
fn containerd2_lifecycle(backend: &str, test: &str) {
    let Some(env) = Env::start_with(test, backend, Kind::Plain2) else {
        return;
    };
    let events = env.events();
    let out = env.run(
        backend,
        "fortytwo",
        &["/bin/sh", "-c", "echo to-out; echo to-err >&2; exit 42"],
    );
    assert_eq!(code(&out), 42, "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "to-out\n");
    assert_eq!(text(&out.stderr), "to-err\n");

    env.sleeper(backend, "bg");
    env.wait_status("bg", "RUNNING");
    let ps = env.ctr(&["task", "ps", "bg"]);
    assert!(ps.status.success(), "task ps: {}", text(&ps.stderr));
    let exec = env.ctr(&["task", "exec", "--exec-id", "e1", "bg", "/bin/echo", "ok"]);
    assert_eq!(code(&exec), 0, "exec: {}", text(&exec.stderr));
    assert_eq!(text(&exec.stdout), "ok\n");
    env.finish("bg");
    let evs = events.collect("bg");
    assert!(
        evs.iter()
            .any(|(t, e)| t == "/tasks/exit" && e.contains("\"exit_status\":137")),
        "no exit 137 in {evs:?}"
    );
    env.assert_clean(backend, &["fortytwo", "bg"]);
}

on_each_backend!(
    containerd2_lifecycle,
    exit_codes,
    stdout_and_stderr,
    large_output,
    detached_kill_ps_delete,
    events_in_order,
    runs_on_backend,
);
