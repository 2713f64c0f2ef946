//! Every process the shim starts begins clean, on runsc, crun and runc: the
//! shim server, the runtime calls and `binary://` loggers get no systemd
//! variables of containerd's (`NOTIFY_SOCKET`, `LISTEN_*`), an empty signal
//! mask and default signal dispositions.
//!
//! containerd runs here with the environment a systemd `Type=notify` unit
//! gives it; NOTIFY_SOCKET names a socket that does not exist, so a runtime
//! that sees it fails `start` (`dial unixgram …`) where on a real host it
//! would wait for READY=1 forever.

#[macro_use]
mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{code, text, wait_for_file, Env, Kind};

const NOTIFY_SOCKET: &str = "/run/nucleus-test-no-such-notify-socket";

/// What systemd puts in the environment of a Type=notify, socket-activated unit.
const SYSTEMD_ENV: [(&str, &str); 4] = [
    ("NOTIFY_SOCKET", NOTIFY_SOCKET),
    ("LISTEN_FDS", "1"),
    ("LISTEN_PID", "1"),
    ("LISTEN_FDNAMES", "containerd.socket"),
];

/// Variables no process of the shim's may carry (the server itself keeps
/// containerd's TTRPC_ADDRESS: it publishes events there).
const FORBIDDEN: [&str; 4] = [
    "NOTIFY_SOCKET=",
    "LISTEN_FDS=",
    "LISTEN_PID=",
    "LISTEN_FDNAMES=",
];

/// `Sig*:` lines of /proc/PID/status as name -> hex mask.
fn signal_state(status: &str) -> BTreeMap<String, String> {
    status
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| matches!(*k, "SigBlk" | "SigIgn"))
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

fn assert_clean_signals(who: &str, state: &BTreeMap<String, String>) {
    assert_eq!(state.len(), 2, "{who}: no SigBlk/SigIgn lines: {state:?}");
    for (k, v) in state {
        assert!(
            v.chars().all(|c| c == '0'),
            "{who}: {k} is {v}, want no signal blocked or ignored"
        );
    }
}

/// A container process's signal state: nothing blocked or ignored. gVisor's
/// /proc/PID/status has no Sig* lines; under runsc only their absence is
/// accepted (the sentry starts every process with default dispositions).
fn container_signals(backend: &str, who: &str, status: &str) {
    let state = signal_state(status);
    if backend == "runsc" && state.is_empty() && status.contains("Pid:") {
        return;
    }
    assert_clean_signals(who, &state);
}

fn starts_clean(backend: &str, test: &str) {
    let Some(env) = Env::start_with_env(test, backend, Kind::Plain, &SYSTEMD_ENV) else {
        return;
    };

    // A detached run: `runc start`/`crun start` would use NOTIFY_SOCKET
    // (runc fails dialing it; crun 1.8 waits for READY=1 forever).
    let args = env.run_args(backend, &["-d"], "sleeper", &["/bin/sleep", "1000"]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = env.ctr_within(Duration::from_secs(60), &args);
    assert_eq!(code(&out), 0, "ctr run -d: {}", text(&out.stderr));
    env.wait_status("sleeper", "RUNNING");

    // The shim server's own environment.
    let shims = env.shim_pids();
    assert!(!shims.is_empty(), "no shim server found");
    for pid in shims {
        let environ = text(&std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default());
        for var in environ.split('\0') {
            assert!(
                !FORBIDDEN.iter().any(|f| var.starts_with(f)),
                "shim server {pid} carries {var}"
            );
        }
    }

    // The container's init and an exec'd process (no shell in between: a
    // shell sets dispositions of its own for its children).
    for (exec_id, file, who) in [
        ("init", "/proc/1/status", "container init"),
        ("self", "/proc/self/status", "exec process"),
    ] {
        let out = env.ctr(&[
            "task",
            "exec",
            "--exec-id",
            exec_id,
            "sleeper",
            "/bin/cat",
            file,
        ]);
        assert_eq!(code(&out), 0, "exec: {}", text(&out.stderr));
        container_signals(backend, who, &text(&out.stdout));
    }
    env.finish("sleeper");

    // An attached run. (containerd-shim-runc-v2 in this harness hands the
    // container signal 32 ignored, SigIgn 0000000080000000; nucleus none.)
    let out = env.run(backend, "attached", &["/bin/cat", "/proc/self/status"]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    container_signals(backend, "attached run", &text(&out.stdout));

    // A binary:// logger: its environment and signal state, and it ends
    // once the container's output has ended (a shell's `wait` sleeps forever
    // with SIGCHLD blocked).
    let logger = env.dir.join("logger.sh");
    let meta = env.dir.join("logger.meta");
    let done = env.dir.join("logger.done");
    std::fs::write(
        &logger,
        format!(
            "#!/bin/sh\n{{ env; cat /proc/self/status; }} > {meta}\nexec 5>&-\n\
             cat <&3 >/dev/null &\ncat <&4 >/dev/null &\nwait\necho exited > {done}\n",
            meta = meta.display(),
            done = done.display()
        ),
    )
    .expect("writing the logger");
    std::fs::set_permissions(&logger, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod logger");
    let uri = format!("binary://{}", logger.display());
    let out = env.run_with(
        backend,
        &["--rm", "--log-uri", &uri],
        "logged",
        &["/bin/sh", "-c", "echo out; echo err >&2"],
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let got = wait_for_file(&meta, "SigIgn");
    assert!(got.contains("CONTAINER_ID=logged"), "logger env: {got}");
    for line in got.lines() {
        assert!(
            !FORBIDDEN.iter().any(|f| line.starts_with(f)) && !line.starts_with("TTRPC_ADDRESS="),
            "logger carries {line}"
        );
    }
    assert_clean_signals("binary:// logger", &signal_state(&got));
    assert_eq!(
        wait_for_file(&done, "exited").trim(),
        "exited",
        "the logger's `wait` never returned once the container's output ended"
    );
    env.assert_clean(backend, &["sleeper", "attached", "logged"]);
}

on_each_backend!(starts_clean);
