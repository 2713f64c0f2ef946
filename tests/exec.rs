//! End-to-end exec through `ctr task exec` on runsc, crun and runc: output,
//! exit codes, stdin, signals by exec id, the exec events and their order,
//! and the refusals (duplicate id, exec after the init exited).

#[macro_use]
mod common;

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::{code, text, Env};

/// Output on stdout and stderr, exit code 3, and stdin through an exec;
/// events exec-added, exec-started and the exec's exit, in that order.
fn exec_runs_and_reports(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let events = env.events();
    env.sleeper(backend, "box");
    let out = env.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "three",
        "box",
        "/bin/sh",
        "-c",
        "echo out; echo err >&2; exit 3",
    ]);
    assert_eq!(code(&out), 3, "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "out\n");
    assert!(text(&out.stderr).contains("err"), "{}", text(&out.stderr));

    let mut child = env
        .ctr_cmd(&["task", "exec", "--exec-id", "cat", "box", "/bin/cat"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"through exec stdin\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "through exec stdin\n");
    std::thread::sleep(Duration::from_millis(200));
    assert!(env.shim_zombies().is_empty(), "{:?}", env.shim_zombies());

    env.finish("box");
    let topics: Vec<(String, String)> = events
        .collect("box")
        .into_iter()
        .filter(|(t, p)| {
            t.starts_with("/tasks/exec") || (t == "/tasks/exit" && p.contains("\"three\""))
        })
        .filter(|(_, p)| p.contains("\"three\""))
        .collect();
    let names: Vec<&str> = topics.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        names,
        ["/tasks/exec-added", "/tasks/exec-started", "/tasks/exit"],
        "{topics:?}"
    );
    assert!(topics[2].1.contains("\"exit_status\":3"), "{topics:?}");
    env.assert_clean(backend, &["box"]);
}

/// A duplicate exec id is refused; `ctr task kill --exec-id` ends one exec
/// (137); an exec still running when the init dies reports its exit first;
/// an exec after the init exited is refused with a reason.
fn exec_refusals_signals_and_order(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let events = env.events();
    env.sleeper(backend, "box");
    let out = env.ctr(&[
        "task",
        "exec",
        "-d",
        "--exec-id",
        "one",
        "box",
        "/bin/sleep",
        "1000",
    ]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let out = env.ctr(&["task", "exec", "--exec-id", "one", "box", "/bin/true"]);
    assert_ne!(code(&out), 0);
    assert!(
        text(&out.stderr).contains("already exists"),
        "{}",
        text(&out.stderr)
    );

    let out = env.ctr(&[
        "task",
        "exec",
        "-d",
        "--exec-id",
        "two",
        "box",
        "/bin/sleep",
        "1000",
    ]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let before = text(&env.ctr(&["task", "ps", "box"]).stdout);
    // `ctr task ps` names the exec behind each exec pid.
    assert!(before.contains("one") && before.contains("two"), "{before}");
    let out = env.ctr(&["task", "kill", "--exec-id", "one", "-s", "SIGKILL", "box"]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    // The init and "two" keep running.
    std::thread::sleep(Duration::from_millis(300));
    let out = env.ctr(&["task", "ls"]);
    assert!(text(&out.stdout)
        .lines()
        .any(|l| l.starts_with("box") && l.contains("RUNNING")));
    assert!(
        before.lines().count() >= 4,
        "init and two execs listed: {before}"
    );

    let _ = env.ctr(&["task", "kill", "-s", "SIGKILL", "box"]);
    env.wait_status("box", "STOPPED");
    let out = env.ctr(&["task", "exec", "--exec-id", "late", "box", "/bin/true"]);
    assert_ne!(code(&out), 0);
    assert!(
        text(&out.stderr).contains("not running"),
        "{}",
        text(&out.stderr)
    );
    let out = env.ctr(&["task", "rm", "box"]);
    assert!(out.status.success(), "task rm: {}", text(&out.stderr));
    let _ = env.ctr(&["containers", "rm", "box"]);

    let exits: Vec<String> = events
        .collect("box")
        .into_iter()
        .filter(|(t, _)| t == "/tasks/exit")
        .map(|(_, p)| p)
        .collect();
    let pos = |id: &str| {
        exits
            .iter()
            .position(|p| p.contains(&format!("\"id\":\"{id}\"")))
            .unwrap_or_else(|| panic!("no exit for {id}: {exits:?}"))
    };
    assert!(
        exits[pos("one")].contains("\"exit_status\":137"),
        "{exits:?}"
    );
    assert!(
        pos("one") < pos("box") && pos("two") < pos("box"),
        "{exits:?}"
    );
    env.assert_clean(backend, &["box"]);
}

on_each_backend!(exec_runs_and_reports, exec_refusals_signals_and_order);
