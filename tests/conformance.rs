//! What containerd's Go client (and its integration/client suite) asks of a
//! shim beyond what ctr exercises, answered the way containerd-shim-runc-v2
//! answers it, on runsc, crun and runc: each test drives containerd's own
//! Tasks API (gRPC) against a real containerd and runtime.

#[macro_use]
mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::thread::JoinHandle;

use common::containerd_client::Containerd;
use common::{cgroup_file, code, image_dir, runtime_binary, text, Env, Kind, RUNTIME};
use containerd_shim_protos::protobuf::Message;
use containerd_shim_protos::shim::oci::Options as RuncOptions;

/// An exec's process spec as containerd's client sends it (`terminal`
/// false: the client's IO creator asks for a terminal in the request).
fn process(args: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "args": args,
        "cwd": "/",
        "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        "terminal": false,
        "user": {"uid": 0, "gid": 0},
    })
}

/// `ctr containers create` of container `id` running `cmd` on the built
/// rootfs; `config`: the backend's nucleus.toml, or None for none (the
/// runtime options then come from the test). No task yet.
fn create_container(env: &Env, config: Option<&str>, id: &str, cmd: &[&str]) {
    let rootfs = image_dir().join("rootfs").display().to_string();
    let mut args = vec!["containers", "create", "--runtime", RUNTIME];
    if let Some(c) = config {
        args.extend(["--runtime-config-path", c]);
    }
    args.extend(["--rootfs", &rootfs, id]);
    args.extend(cmd);
    let out = env.ctr(&args);
    assert_eq!(code(&out), 0, "containers create: {}", text(&out.stderr));
}

/// A FIFO at `path` and a thread reading it to its end.
fn fifo_reader(path: &Path) -> JoinHandle<String> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut out = String::new();
        let mut f = std::fs::File::open(&path).expect("opening the FIFO");
        let _ = f.read_to_string(&mut out);
        out
    })
}

/// An exec whose request asks for a terminal while its spec says
/// `terminal: false` (containerd's client with a TTY IO creator) gets a
/// terminal: the request decides, as with containerd-shim-runc-v2.
/// (containerd's TestContainerExecLargeOutputWithTTY.)
fn exec_terminal_from_request(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    env.sleeper(backend, "box");
    let tasks = Containerd::connect(&env.address, &env.namespace).expect("containerd's API");
    let fifo = env.dir.join("tty-exec.out");
    let reader = fifo_reader(&fifo);
    let spec = process(&["/bin/sh", "-c", "tty; echo exec-done"]);
    tasks
        .exec("box", "tty", &spec, true, &fifo.display().to_string())
        .expect("exec");
    tasks
        .start("box", "tty")
        .expect("start of the terminal exec");
    assert_eq!(tasks.wait("box", "tty").expect("wait"), 0);
    let out = reader.join().expect("the FIFO reader");
    assert!(out.contains("/dev/pts/"), "tty printed: {out:?}");
    assert!(out.contains("exec-done"), "{out:?}");
    let deleted = tasks.delete_process("box", "tty").expect("delete");
    assert_eq!(deleted.exit_status, 0);
    env.finish("box");
    env.assert_clean(backend, &["box"]);
}

/// A FIFO at `path` read slowly (4 KiB a millisecond) until `stop` is set,
/// then closed at once, as containerd's client closes its FIFOs (its IO's
/// Cancel) right after Delete returns: what was not read by then is lost.
/// Once `pause_at` shows up it stops reading for 1.5 s (a busy client):
/// the process then ends with its last output still in the pipes.
fn slow_cancelled_reader(
    path: &Path,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pause_at: &'static [u8],
) -> JoinHandle<Vec<u8>> {
    use std::os::unix::fs::OpenOptionsExt;
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .expect("opening the FIFO");
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 4096];
        let mut paused = false;
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            match f.read(&mut buf) {
                Ok(n) if n > 0 => out.extend_from_slice(&buf[..n]),
                _ => {}
            }
            let tail = &out[out.len().saturating_sub(2 * 4096)..];
            if !paused && tail.windows(pause_at.len()).any(|w| w == pause_at) {
                paused = true;
                std::thread::sleep(std::time::Duration::from_millis(1500));
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        out
    })
}

/// A terminal exec's large output reaches the client whole even when the
/// client reads slowly, pauses near the end, and stops reading the moment
/// Delete returns (as containerd's client does): Delete answers once the
/// output has moved.
/// (containerd's TestContainerExecLargeOutputWithTTY.)
fn tty_exec_output_whole_at_delete(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    env.sleeper(backend, "box");
    let tasks = Containerd::connect(&env.address, &env.namespace).expect("containerd's API");
    // Paused where the rest fits the pipes (the process ends during the
    // pause), and where it does not (on runsc the relay then holds it).
    for (round, pause_at) in [b" 295000 ", b" 285000 "].into_iter().enumerate() {
        let fifo = env.dir.join(format!("seq-{round}.out"));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = slow_cancelled_reader(&fifo, stop.clone(), pause_at);
        let spec = process(&["/bin/sh", "-c", "seq -s ' ' 300000"]);
        tasks
            .exec("box", "seq", &spec, true, &fifo.display().to_string())
            .expect("exec");
        tasks.start("box", "seq").expect("start");
        assert_eq!(tasks.wait("box", "seq").expect("wait"), 0);
        tasks.delete_process("box", "seq").expect("delete");
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let out = String::from_utf8_lossy(&reader.join().expect("reader")).into_owned();
        let tail = &out[out.len().saturating_sub(30)..];
        assert!(
            out.trim_end().ends_with("299999 300000"),
            "round {round}: {} bytes, ending {tail:?}",
            out.len()
        );
    }
    env.finish("box");
    env.assert_clean(backend, &["box"]);
}

/// Container `box` (`sleep 1000` on `backend`) with its task created and
/// not started, through containerd's API; the API and the task's pid.
fn created_sleeper(env: &Env, backend: &str) -> (Containerd, u32) {
    let config = env.config(backend);
    create_container(env, Some(&config), "box", &["/bin/sleep", "1000"]);
    let tasks = Containerd::connect(&env.address, &env.namespace).expect("containerd's API");
    let pid = tasks.create("box", "", "").expect("task create");
    (tasks, pid)
}

/// Update applies to a task that is created and not started (its limits
/// hold from its first instruction), as containerd-shim-runc-v2 allows;
/// Pids and metrics answer for it. (containerd's TestTaskUpdate,
/// TestContainerMetrics.)
fn update_created_task(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let (tasks, pid) = created_sleeper(&env, backend);
    env.wait_status("box", "CREATED");
    tasks
        .update("box", br#"{"pids":{"limit":77}}"#)
        .expect("update of a created task");
    let pids_max = cgroup_file(&env, "box", "pids", "pids.max", "pids.max");
    assert_eq!(std::fs::read_to_string(&pids_max).unwrap().trim(), "77");
    let pids = tasks.pids("box").expect("pids of a created task");
    assert!(pids.contains(&pid), "pids {pids:?} lack the init {pid}");
    let metrics = env.ctr(&["task", "metrics", "box"]);
    assert_eq!(
        code(&metrics),
        0,
        "metrics of a created task: {}",
        text(&metrics.stderr)
    );
    assert!(
        text(&metrics.stdout).contains("pids"),
        "{}",
        text(&metrics.stdout)
    );
    tasks.start("box", "").expect("start");
    env.wait_status("box", "RUNNING");
    assert_eq!(std::fs::read_to_string(&pids_max).unwrap().trim(), "77");
    env.finish("box");
    env.assert_clean(backend, &["box"]);
}

/// Kill of a task that is created and not started ends it: Wait gives
/// 137, Delete and containerd's cleanup leave nothing (runsc refuses to
/// signal a created container: the shim deletes it). What containerd does
/// after any failed start. (Many of containerd's client tests.)
fn kill_created_task(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let (tasks, _) = created_sleeper(&env, backend);
    let events = env.events();
    let out = env.ctr(&["task", "kill", "-s", "SIGKILL", "box"]);
    assert_eq!(
        code(&out),
        0,
        "kill of a created task: {}",
        text(&out.stderr)
    );
    assert_eq!(tasks.wait("box", "").expect("wait"), 137);
    let deleted = tasks.delete("box").expect("delete");
    assert_eq!(deleted.exit_status, 137);
    let _ = env.ctr(&["containers", "rm", "box"]);
    let topics: Vec<String> = events.collect("box").into_iter().map(|(t, _)| t).collect();
    assert!(topics.contains(&"/tasks/exit".to_string()), "{topics:?}");
    env.assert_clean(backend, &["box"]);
}

/// A process whose executable is not in the image fails at Create, with
/// an error naming it, on every backend (crun and runsc would fail only at
/// Start), and leaves nothing. (containerd's TestContainerNoBinaryExists,
/// TestRegressionIssue6429.)
fn missing_entrypoint_fails_create(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    for (id, arg0, says) in [
        (
            "abs",
            "/bin/nonexistent",
            "\"/bin/nonexistent\" does not exist",
        ),
        ("rel", "nonexistent", "\"nonexistent\" is not found"),
        ("dir", "/bin", "\"/bin\" is a directory"),
    ] {
        let out = env.run(backend, id, &[arg0]);
        assert_ne!(code(&out), 0, "{arg0} ran");
        let err = text(&out.stderr);
        assert!(err.contains(says), "{arg0}: {err}");
        let _ = env.ctr(&["containers", "rm", id]);
    }
    let tasks = text(&env.ctr(&["task", "ls", "-q"]).stdout);
    assert!(tasks.trim().is_empty(), "tasks left: {tasks}");
    env.assert_clean(backend, &["abs", "rel", "dir"]);
}

/// stdin written well after the task started reaches it (no early EOF),
/// and the client's close is the process's EOF. (containerd's
/// TestContainerAttach.)
fn stdin_written_late(backend: &str, test: &str) {
    use std::io::Write;
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let args = env.run_args(backend, &["--rm"], "cat", &["/bin/cat"]);
    let mut child = env
        .ctr_cmd(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ctr run");
    env.wait_status("cat", "RUNNING");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let mut stdin = child.stdin.take().expect("ctr's stdin");
    stdin.write_all(b"late line\n").expect("writing stdin");
    std::thread::sleep(std::time::Duration::from_millis(500));
    stdin.write_all(b"second line\n").expect("writing stdin");
    drop(stdin);
    let out = child.wait_with_output().expect("ctr run");
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "late line\nsecond line\n");
    env.assert_clean(backend, &["cat"]);
}

/// The task options containerd's Go client sends a runtime whose name is
/// not io.containerd.runc.* (`runctypes.CreateOptions`, e.g. with the IO
/// owner of a user-namespaced container) are understood: the task runs and
/// its exit status comes back. (containerd's TestUserNamespaces.)
fn runc_create_task_options(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let config = env.config(backend);
    create_container(&env, Some(&config), "box", &["/bin/false"]);
    let mut value = Vec::new();
    {
        let mut os = containerd_shim_protos::protobuf::CodedOutputStream::vec(&mut value);
        os.write_uint32(10, 1000).expect("io_uid");
        os.write_uint32(11, 2000).expect("io_gid");
        os.flush().expect("encoding");
    }
    let tasks = Containerd::connect(&env.address, &env.namespace).expect("containerd's API");
    tasks
        .create_with_options(
            "box",
            "",
            "",
            Some(("containerd.linux.runc.CreateOptions", value)),
        )
        .expect("task create with runctypes.CreateOptions");
    tasks.start("box", "").expect("start");
    assert_eq!(tasks.wait("box", "").expect("wait"), 1);
    assert_eq!(tasks.delete("box").expect("delete").exit_status, 1);
    let _ = env.ctr(&["containers", "rm", "box"]);
    env.assert_clean(backend, &["box"]);
}

/// An exec's stdin written after it started reaches it, also when the
/// client closes it (CloseIO) right after writing, and that close is its
/// EOF. (containerd's TestContainerAttachProcess.)
fn exec_stdin_written_late(backend: &str, test: &str) {
    use std::io::Write;
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    env.sleeper(backend, "box");
    let tasks = Containerd::connect(&env.address, &env.namespace).expect("containerd's API");
    let stdin = env.dir.join("cat.in");
    nix::unistd::mkfifo(&stdin, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let stdout = env.dir.join("cat.out");
    let reader = fifo_reader(&stdout);
    tasks
        .exec_with_stdin(
            "box",
            "cat",
            &process(&["/bin/cat"]),
            false,
            &stdin.display().to_string(),
            &stdout.display().to_string(),
        )
        .expect("exec");
    tasks.start("box", "cat").expect("start");
    std::thread::sleep(std::time::Duration::from_millis(500));
    // Written, closed, and CloseIO at once, as containerd's client does.
    let mut w = std::fs::OpenOptions::new()
        .write(true)
        .open(&stdin)
        .expect("stdin FIFO");
    w.write_all(b"hello\nhello\n").expect("writing stdin");
    drop(w);
    tasks.close_stdin("box", "cat").expect("CloseIO");
    assert_eq!(tasks.wait("box", "cat").expect("wait"), 0);
    assert_eq!(reader.join().expect("the FIFO reader"), "hello\nhello\n");
    tasks.delete_process("box", "cat").expect("delete");
    env.finish("box");
    env.assert_clean(backend, &["box"]);
}

/// Delete of an exec that was added and never started answers exit status
/// 0 (nothing ran, nothing exited), as containerd-shim-runc-v2 does; the
/// container goes on. (containerd's TestDeleteContainerExecCreated.)
fn delete_created_exec(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    env.sleeper(backend, "box");
    let tasks = Containerd::connect(&env.address, &env.namespace).expect("containerd's API");
    tasks
        .exec("box", "never", &process(&["/bin/true"]), false, "")
        .expect("exec");
    let deleted = tasks.delete_process("box", "never").expect("delete");
    assert_eq!(deleted.exit_status, 0, "{deleted:?}");
    assert_eq!(deleted.pid, 0, "{deleted:?}");
    env.wait_status("box", "RUNNING");
    env.finish("box");
    env.assert_clean(backend, &["box"]);
}

/// Ids that are prefixes of each other are different containers (runsc
/// 20221219 finds containers by prefix), and containerd's longest ids work
/// (runsc names files after them). (containerd's TestContainerStart,
/// TestContainerExec, TestShimSockLength.)
fn ids_prefixes_and_long(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    env.sleeper(backend, "c11");
    let out = env.run(backend, "c1", &["/bin/echo", "c1 ran"]);
    assert_eq!(code(&out), 0, "c1 beside c11: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("c1 ran"));
    env.sleeper(backend, "c1");
    for id in ["c1", "c11"] {
        let out = env.ctr(&["task", "exec", "--exec-id", "e", id, "/bin/echo", id]);
        assert_eq!(code(&out), 0, "exec in {id}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout).trim(), id);
    }
    // containerd's longest id: 76 characters.
    let long = format!("{}-end", "x".repeat(72));
    assert_eq!(long.len(), 76);
    let out = env.run(backend, &long, &["/bin/echo", "long ran"]);
    assert_eq!(code(&out), 0, "a 76-character id: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("long ran"));
    env.finish("c1");
    env.finish("c11");
    env.assert_clean(backend, &["c1", "c11", &long]);
}

/// Pids gives host pids, the task's own among them, and an exec's pid with
/// its exec id (runsc: its processes' sandbox pids are mapped where they
/// have a host process). (containerd's TestContainerPids.)
fn pids_are_host_pids(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let out = env.run_with(
        backend,
        &["-d"],
        "box",
        &["/bin/sh", "-c", "/bin/sleep 1000; :"],
    );
    assert_eq!(code(&out), 0, "run: {}", text(&out.stderr));
    let ls = text(&env.ctr(&["task", "ls"]).stdout);
    let task_pid: u32 = ls
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.first() == Some(&"box")).then(|| f.get(1)?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no pid for box in {ls}"));
    let tasks = Containerd::connect(&env.address, &env.namespace).expect("containerd's API");
    // The shell may not have started its child yet.
    let mut pids = Vec::new();
    for _ in 0..50 {
        pids = tasks.pids("box").expect("pids");
        if pids.len() == 2 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert_eq!(pids.len(), 2, "sh and sleep: {pids:?}");
    assert!(
        pids.contains(&task_pid),
        "task pid {task_pid} not in {pids:?}"
    );
    let out = env.ctr(&[
        "task",
        "exec",
        "-d",
        "--exec-id",
        "e1",
        "box",
        "/bin/sleep",
        "1000",
    ]);
    assert_eq!(code(&out), 0, "exec: {}", text(&out.stderr));
    let ps = text(&env.ctr(&["task", "ps", "box"]).stdout);
    let exec_pid: u32 = ps
        .lines()
        .find_map(|l| {
            l.contains("e1")
                .then(|| l.split_whitespace().next()?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no process with exec id e1 in ctr task ps:\n{ps}"));
    assert!(
        Path::new(&format!("/proc/{exec_pid}")).exists(),
        "exec pid {exec_pid} is no host process"
    );
    env.finish("box");
    env.assert_clean(backend, &["box"]);
}

/// A container whose rootfs is a read-only filesystem (a snapshot view,
/// as containerd's client makes for a user-namespaced read-only rootfs;
/// the spec's root itself is not read-only) runs, and cannot write to /.
/// On runsc the shim then mounts no terminal relay: gVisor would have to
/// make its mount point in that rootfs. (containerd's
/// TestUserNamespaces/ReadonlyRootFS.)
fn read_only_rootfs_snapshot(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let out = env.ctr(&["oci", "spec"]);
    assert_eq!(code(&out), 0, "ctr oci spec: {}", text(&out.stderr));
    let mut spec: serde_json::Value = serde_json::from_slice(&out.stdout).expect("spec JSON");
    spec["root"] = serde_json::json!({"path": "rootfs", "readonly": false});
    spec["process"]["args"] = serde_json::json!([
        "/bin/sh",
        "-c",
        "echo on-a-view; touch /written 2>/dev/null && echo writable || echo read-only"
    ]);
    spec["linux"]["cgroupsPath"] = serde_json::json!(format!("/{}/box", env.namespace));
    // Nothing can be made in that rootfs: only mounts on directories the
    // test image has (it has no /run).
    let rootfs = image_dir().join("rootfs");
    if let Some(mounts) = spec["mounts"].as_array_mut() {
        mounts.retain(|m| {
            let dest = m["destination"].as_str().unwrap_or("");
            let top = dest.trim_start_matches('/').split('/').next().unwrap_or("");
            rootfs.join(top).is_dir()
        });
    }
    let spec_path = env.dir.join("view-spec.json");
    std::fs::write(&spec_path, serde_json::to_vec(&spec).expect("spec")).expect("spec");
    let config = env.config(backend);
    let out = env.ctr(&[
        "containers",
        "create",
        "--runtime",
        RUNTIME,
        "--runtime-config-path",
        &config,
        "--config",
        &spec_path.display().to_string(),
        "box",
    ]);
    assert_eq!(code(&out), 0, "containers create: {}", text(&out.stderr));
    let tasks = Containerd::connect(&env.address, &env.namespace).expect("containerd's API");
    let fifo = env.dir.join("view.out");
    let reader = fifo_reader(&fifo);
    let top = env.dir.join("empty-layer");
    std::fs::create_dir_all(&top).expect("empty layer");
    let layers = [
        top.to_str().expect("utf-8 path"),
        rootfs.to_str().expect("utf-8 path"),
    ];
    tasks
        .create_on_read_only_rootfs("box", &layers, &fifo.display().to_string(), "")
        .expect("task create on a read-only rootfs");
    tasks.start("box", "").expect("start");
    assert_eq!(tasks.wait("box", "").expect("wait"), 0);
    assert_eq!(tasks.delete("box").expect("delete").exit_status, 0);
    assert_eq!(reader.join().expect("reader"), "on-a-view\nread-only\n");
    let _ = env.ctr(&["containers", "rm", "box"]);
    env.assert_clean(backend, &["box"]);
}

/// A create the runtime refuses (a bind mount whose source does not exist)
/// fails with the runtime's own reason, naming the path, not only its exit
/// status: runsc writes its log records back to back with no newline, and
/// its sandbox's errors reach the client through them too.
fn runtime_error_names_the_cause(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    env.import_image();
    let missing = env.dir.join("missing-mount-source");
    let mount = format!(
        "type=bind,src={},dst=/x,options=rbind:ro",
        missing.display()
    );
    let out = env.run_image(backend, &["--rm", "--mount", &mount], "box", &["/bin/true"]);
    let err = text(&out.stderr);
    assert_ne!(code(&out), 0, "ran with a missing mount source: {err}");
    assert!(err.contains("missing-mount-source"), "{err}");
    let _ = env.ctr(&["containers", "rm", "box"]);
    env.assert_clean(backend, &["box"]);
}

on_each_backend!(
    tty_exec_output_whole_at_delete,
    exec_stdin_written_late,
    runc_create_task_options,
    shim_cgroup_and_oom_score,
    stdin_written_late,
    missing_entrypoint_fails_create,
    kill_created_task,
    pids_are_host_pids,
    exec_terminal_from_request,
    update_created_task,
    delete_created_exec,
    ids_prefixes_and_long,
    read_only_rootfs_snapshot,
    runtime_error_names_the_cause
);

/// A runc `Options.Root` (`ctr run --runc-root`, containerd's client
/// `WithRuntime(.., &options.Options{Root})`) is the parent of one state
/// root per namespace, as containerd-shim-runc-v2 reads it: the runtime
/// finds the container under `<Root>/<namespace>`, and a container deleted
/// there behind the shim's back is reported exited. (containerd's
/// TestKillContainerDeletedByRunc.) runc and crun: runsc names its
/// containers itself.
fn runc_root_option(backend: &str, test: &str) {
    let Some(env) = env_without_nucleus_toml(test, backend) else {
        return;
    };
    let binary =
        runtime_binary(backend).map_or_else(|| backend.to_string(), |b| b.display().to_string());
    let root = env.dir.join("runc-root");
    create_container(&env, None, "box", &["/bin/sleep", "1000"]);
    let mut options = RuncOptions::new();
    options.binary_name = binary.clone();
    options.root = root.display().to_string();
    Containerd::connect(&env.address, &env.namespace)
        .expect("containerd's API")
        .set_runtime_options(
            "box",
            "containerd.runc.v1.Options",
            options.write_to_bytes().expect("runc options"),
        )
        .expect("runc options on the container");
    let out = env.ctr(&["task", "start", "-d", "--null-io", "box"]);
    assert_eq!(code(&out), 0, "task start: {}", text(&out.stderr));
    let ns_root = root.join(&env.namespace).display().to_string();
    let state = std::process::Command::new(&binary)
        .args(["--root", &ns_root, "state", "box"])
        .output()
        .expect("runtime state");
    assert!(
        state.status.success() && text(&state.stdout).contains("\"running\""),
        "{backend} --root {ns_root} state box: {} {}",
        text(&state.stdout),
        text(&state.stderr)
    );
    let deleted = std::process::Command::new(&binary)
        .args(["--root", &ns_root, "delete", "--force", "box"])
        .output()
        .expect("runtime delete");
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    env.wait_status("box", "STOPPED");
    let kill = env.ctr(&["task", "kill", "-s", "SIGKILL", "box"]);
    assert!(!kill.status.success(), "kill of a deleted container");
    assert!(
        text(&kill.stderr).contains("not found"),
        "{}",
        text(&kill.stderr)
    );
    let out = env.ctr(&["task", "rm", "box"]);
    assert!(out.status.success(), "task rm: {}", text(&out.stderr));
    let _ = env.ctr(&["containers", "rm", "box"]);
    env.assert_clean(backend, &["box"]);
}

/// A containerd whose shims read no nucleus.toml (the runc options the
/// test sends decide); None when that cannot be had (a system containerd on
/// a host with /etc/nucleus/nucleus.toml) or prerequisites are missing.
fn env_without_nucleus_toml(test: &str, backend: &str) -> Option<Env> {
    let env = Env::start_with_env(
        test,
        backend,
        Kind::Plain,
        &[("NUCLEUS_CONFIG", "/nonexistent/nucleus.toml")],
    )?;
    if env.is_system() && Path::new(nucleus_shim::config::DEFAULT_CONFIG_PATH).exists() {
        common::prerequisite(
            false,
            "no /etc/nucleus/nucleus.toml on the system containerd's host (it would name the runtime)",
        );
        return None;
    }
    Some(env)
}

/// The shim goes in the cgroup the client names for it (runc
/// `Options.ShimCgroup`, containerd's `WithShimCgroup`), and its OOM score
/// is containerd's plus one, as containerd-shim-runc-v2 places its own.
/// (containerd's TestShimInCgroup, TestShimOOMScore.)
fn shim_cgroup_and_oom_score(backend: &str, test: &str) {
    let Some(env) = env_without_nucleus_toml(test, backend) else {
        return;
    };
    let rel = format!("nucleus-test/{}", env.namespace);
    let root = Path::new("/sys/fs/cgroup");
    let dirs: Vec<PathBuf> = if root.join("cgroup.controllers").exists() {
        vec![root.join(&rel)]
    } else {
        ["memory", "pids"]
            .iter()
            .map(|h| root.join(h).join(&rel))
            .collect()
    };
    for d in &dirs {
        std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
    }
    create_container(&env, None, "box", &["/bin/sleep", "1000"]);
    let mut options = RuncOptions::new();
    options.binary_name =
        runtime_binary(backend).map_or_else(|| backend.to_string(), |b| b.display().to_string());
    options.shim_cgroup = format!("/{rel}");
    let tasks = Containerd::connect(&env.address, &env.namespace).expect("containerd's API");
    tasks
        .create_with_options(
            "box",
            "",
            "",
            Some((
                "containerd.runc.v1.Options",
                options.write_to_bytes().expect("runc options"),
            )),
        )
        .expect("task create");
    let shims = env.shim_pids();
    assert_eq!(shims.len(), 1, "{shims:?}");
    for d in &dirs {
        let procs = std::fs::read_to_string(d.join("cgroup.procs")).unwrap();
        assert!(
            procs.lines().any(|l| l == shims[0].to_string()),
            "shim {} not in {}: {procs:?}",
            shims[0],
            d.display()
        );
    }
    let score = |pid: u32| -> i32 {
        std::fs::read_to_string(format!("/proc/{pid}/oom_score_adj"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let containerd = env.containerd_pid().expect("containerd's pid");
    assert_eq!(score(shims[0]), (score(containerd) + 1).min(1000));
    tasks.start("box", "").expect("start");
    env.finish("box");
    env.assert_clean(backend, &["box"]);
    for d in &dirs {
        let _ = std::fs::remove_dir(d);
        let _ = d.parent().map(std::fs::remove_dir);
    }
}

mod runc_options {
    #[test]
    fn runc_root_option_on_runc() {
        super::runc_root_option("runc", "runc-runc_root_option")
    }
    #[test]
    fn runc_root_option_on_crun() {
        super::runc_root_option("crun", "crun-runc_root_option")
    }
}
