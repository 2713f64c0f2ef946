//! End-to-end terminals on runsc, crun and runc: `ctr run -t` and
//! `ctr task exec -t` under a pty made by `script`, the terminal size set
//! through ResizePty, and the output of a process that exits at once.

#[macro_use]
mod common;

use std::process::{Command, Output, Stdio};

use common::{code, text, Env};

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// Runs `ctr ARGS` inside a 22x77 pty made by `script`.
fn in_pty(env: &Env, args: &[&str]) -> Option<Output> {
    if !common::prerequisite(
        std::path::Path::new("/usr/bin/script").exists(),
        "script (util-linux) is needed to give ctr a terminal",
    ) {
        return None;
    }
    let mut line = format!(
        "stty cols 77 rows 22; exec ctr -a {} -n {}",
        quote(&env.address),
        quote(&env.namespace)
    );
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    Some(
        Command::new("script")
            .args(["-qec", &line, "/dev/null"])
            .stdin(Stdio::null())
            .output()
            .expect("running script"),
    )
}

/// `ctr run -t`: the process has a terminal of the client's size; a
/// process that exits at once still delivers its output; `ctr task exec -t`
/// gets its own terminal.
fn run_and_exec_with_a_terminal(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let script = "sleep 0.3; tty; stty size; echo done";
    let args = env.run_args(backend, &["--rm", "-t"], "tty", &["/bin/sh", "-c", script]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let Some(out) = in_pty(&env, &args) else {
        return;
    };
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("22 77") && shown.contains("done"),
        "{shown:?}"
    );
    if backend != "runsc" {
        // gVisor hands the app the host pty as an fd, not a /dev/pts node.
        assert!(shown.contains("/dev/pts/"), "{shown:?}");
    }

    let args = env.run_args(
        backend,
        &["--rm", "-t"],
        "quick",
        &["/bin/echo", "quick-exit-output"],
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = in_pty(&env, &args).expect("script is there");
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("quick-exit-output"),
        "{:?}",
        text(&out.stdout)
    );

    let started = env.run_with(backend, &["-d"], "box", &["/bin/sleep", "1000"]);
    assert_eq!(code(&started), 0, "stderr: {}", text(&started.stderr));
    let out = in_pty(
        &env,
        &[
            "task",
            "exec",
            "-t",
            "--exec-id",
            "t1",
            "box",
            "/bin/sh",
            "-c",
            script,
        ],
    )
    .expect("script is there");
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let shown = text(&out.stdout);
    assert!(
        shown.contains("22 77") && shown.contains("done"),
        "{shown:?}"
    );
    let _ = env.ctr(&["task", "kill", "-s", "SIGKILL", "box"]);
    env.wait_status("box", "STOPPED");
    let _ = env.ctr(&["task", "rm", "box"]);
    let _ = env.ctr(&["containers", "rm", "box"]);
    env.assert_clean(backend, &["tty", "quick", "box"]);
}

on_each_backend!(run_and_exec_with_a_terminal);
