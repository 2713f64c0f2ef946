//! containerd killed and started again while containers run, on runsc,
//! crun and runc: the tasks stay manageable (ls, exec, kill, delete), an
//! exit that happened while containerd was away is reported when it
//! returns, and nothing is left behind.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{code, text, Env, Kind};

fn survives_a_containerd_restart(backend: &str, test: &str) {
    restart_scenario(backend, test, Kind::Plain);
}

/// containerd 1.7 and 2.x, when they reload their shims, delete as leaked
/// every shim whose Pids is empty (containerd#6860): a task that ended
/// while containerd was away vanished with its exit status (it does under
/// containerd-shim-runc-v2). nucleus answers the exited init's pid, so the
/// task stays, STOPPED with its status.
fn survives_a_containerd2_restart(backend: &str, test: &str) {
    restart_scenario(backend, test, Kind::Plain2);
}

fn restart_scenario(backend: &str, test: &str, kind: Kind) {
    let Some(mut env) = Env::start_with(test, backend, kind) else {
        return;
    };
    let out = env.run_with(backend, &["-d"], "box", &["/bin/sleep", "1000"]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let out = env.run_with(
        backend,
        &["-d"],
        "short",
        &["/bin/sh", "-c", "sleep 2; exit 5"],
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));

    env.kill_containerd();
    // "short" exits while containerd is away.
    std::thread::sleep(Duration::from_secs(4));
    env.start_containerd();

    env.wait_status("box", "RUNNING");
    env.wait_status("short", "STOPPED");
    // The exit reached containerd once it was back (the shim says so for
    // an event that needed retries or waited behind one).
    let deadline = Instant::now() + Duration::from_secs(15);
    while !env
        .containerd_log()
        .lines()
        .any(|l| l.contains("delivered /tasks/exit") && l.contains("id=short"))
    {
        assert!(
            Instant::now() < deadline,
            "the exit of short was not delivered after the restart:\n{}",
            common::tail(&env.containerd_log(), 30)
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    let out = env.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "after",
        "box",
        "/bin/sh",
        "-c",
        "echo alive",
    ]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "alive\n");

    let _ = env.ctr(&["task", "kill", "-s", "SIGKILL", "box"]);
    env.wait_status("box", "STOPPED");
    for id in ["box", "short"] {
        let out = env.ctr(&["task", "rm", id]);
        assert!(out.status.success(), "task rm {id}: {}", text(&out.stderr));
        let _ = env.ctr(&["containers", "rm", id]);
    }
    env.assert_clean(backend, &["box", "short"]);
}

on_each_backend!(
    survives_a_containerd_restart,
    survives_a_containerd2_restart
);
