//! Checkpoint with CRIU on runc and crun: Debian sid's runc and crun and
//! CRIU 4.x (contrib/runtimes.sh unpacks them; bookworm's CRIU 3.17 cannot
//! dump on this kernel, nor can containerd-shim-runc-v2 with it), a
//! container whose output goes to the client's FIFOs, checkpointed while it
//! runs and with `exit`, and restored; a restore CRIU refuses leaves
//! nothing behind. runsc has no CRIU checkpoint:
//! tests/control.rs checks it says so.

#[macro_use]
mod common;

use std::io::Read;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::containerd_client::Containerd;
use common::{code, prerequisite, text, Env, IMAGE, RUNTIME};

/// The sid tree of contrib/runtimes.sh: `backend`'s binary and CRIU.
fn sid_tools(backend: &str) -> Option<(PathBuf, PathBuf)> {
    let root = std::env::var_os("NUCLEUS_RUNTIMES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/opt/nucleus-test/runtimes"))
        .join("sid");
    let bin = root.join(match backend {
        "runc" => "usr/sbin/runc",
        _ => "usr/bin/crun",
    });
    let criu = root.join("usr/sbin/criu");
    let ok = prerequisite(
        bin.is_file() && criu.is_file(),
        &format!(
            "sid's {backend} and criu under {} (run contrib/runtimes.sh)",
            root.display()
        ),
    );
    ok.then_some((bin, criu))
}

/// Reads `child`'s stdout on a thread into a shared string.
fn collect(mut child: std::process::Child) -> (std::process::Child, Arc<Mutex<String>>) {
    let stdout = child.stdout.take().expect("ctr's stdout");
    (child, read_into_string(stdout))
}

/// Reads `from` to its end on a thread into a shared string.
fn read_into_string(mut from: impl Read + Send + 'static) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let o = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = from.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut s) = o.lock() {
                s.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
    });
    out
}

/// The numbers of the `tick N` lines the output shows.
fn tick_numbers(out: &Mutex<String>) -> Vec<u64> {
    out.lock()
        .map(|s| {
            s.lines()
                .filter_map(|l| l.strip_prefix("tick ")?.trim().parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// How many ticks the output shows.
fn ticks(out: &Mutex<String>) -> usize {
    out.lock().map(|s| s.matches("tick").count()).unwrap_or(0)
}

/// Waits until the output shows `more` ticks than it had.
fn wait_ticks(out: &Mutex<String>, more: usize, what: &str) {
    let start = ticks(out);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ticks(out) < start + more {
        assert!(
            Instant::now() < deadline,
            "{what}: output stopped at {} ticks",
            ticks(out)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// ctr printed the name of the checkpoint image it made, and containerd
/// has it, with CRIU's files among its layers.
fn has_checkpoint_image(env: &Env, printed: &str) {
    let name = printed.trim();
    assert!(!name.is_empty(), "ctr printed no checkpoint image");
    let images = text(&env.ctr(&["images", "ls", "-q"]).stdout);
    assert!(images.lines().any(|l| l == name), "{name} not in {images}");
    // The checkpoint's index names its CRIU layer.
    let (_, digest, size) = criu_layer(env, name);
    assert!(digest.starts_with("sha256:") && size > 0, "{digest} {size}");
}

/// `ctr run [flags] --runtime nucleus --runtime-config-path CONFIG IMAGE box CMD…`.
fn box_run<'a>(config: &'a str, flags: &[&'a str], cmd: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["run"];
    args.extend(flags);
    args.extend([
        "--runtime",
        RUNTIME,
        "--runtime-config-path",
        config,
        IMAGE,
        "box",
    ]);
    args.extend(cmd);
    args
}

/// A container `box` on sid's `backend` with `stdio = "copy"`, running
/// `script` under `ctr run` with `flags` (its output read into the returned
/// string); None when the prerequisites are missing (after saying which).
fn start_ticking(
    backend: &str,
    test: &str,
    flags: &[&str],
    script: &str,
) -> Option<(Env, std::process::Child, Arc<Mutex<String>>)> {
    let (bin, criu) = sid_tools(backend)?;
    let env = Env::start(test, backend)?;
    env.import_image();
    let link = env.dir.join("bin/criu");
    if !link.exists() {
        std::os::unix::fs::symlink(&criu, &link).expect("criu on containerd's PATH");
    }
    let config = env.write_config(
        "checkpoint.toml",
        &format!(
            "[runtime]\nname = \"{backend}\"\npath = {:?}\nstdio = \"copy\"\n",
            bin.display().to_string()
        ),
    );
    let child = env
        .ctr_cmd(&box_run(&config, flags, &["/bin/sh", "-c", script]))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ctr run");
    let (child, out) = collect(child);
    Some((env, child, out))
}

/// A shell printing `tick N` ten times a second.
const TICKER: &str = "i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done";

/// `ctr task checkpoint` of a running container whose stdout is the
/// client's FIFO: the image is written, the container goes on and its
/// output still reaches the client; checkpointed with `exit` it stops.
/// Nothing is left. (nucleus.toml `stdio = "copy"`: the process's output is
/// a pipe CRIU can dump, not containerd's FIFO.)
fn checkpoint_with_fifo_output(backend: &str, test: &str) {
    let Some((env, mut child, out)) = start_ticking(backend, test, &[], TICKER) else {
        return;
    };
    wait_ticks(&out, 3, "before the checkpoint");

    let ck = env.ctr(&["task", "checkpoint", "box"]);
    assert_eq!(code(&ck), 0, "checkpoint: {}", text(&ck.stderr));
    has_checkpoint_image(&env, &text(&ck.stdout));
    // ctr would store the same spec blob again for the next one ("already
    // exists"): this image goes first.
    let rm = env.ctr(&["images", "rm", "--sync", text(&ck.stdout).trim()]);
    assert_eq!(code(&rm), 0, "images rm: {}", text(&rm.stderr));
    env.wait_status("box", "RUNNING");
    wait_ticks(&out, 3, "after a checkpoint that leaves it running");

    // ctr passes --exit only to runtimes named io.containerd.runc.*: the
    // options go as containerd's Go client sends them (WithExit).
    let tasks = Containerd::connect(&env.address, &env.namespace).expect("containerd's API");
    let stored = tasks.checkpoint("box", true).expect("checkpoint with exit");
    assert!(stored > 0, "containerd stored no checkpoint");
    let deadline = Instant::now() + Duration::from_secs(20);
    while child.try_wait().expect("ctr run").is_none() {
        assert!(
            Instant::now() < deadline,
            "ctr run did not end after the checkpoint with exit"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = env.ctr(&["task", "rm", "box"]);
    let _ = env.ctr(&["containers", "rm", "box"]);
    env.assert_clean(backend, &["box"]);
}

/// The counter the restore test's container keeps in /tmp/n (read again
/// when it is caught between the shell's truncate and write).
fn counter(env: &Env, exec_id: &str) -> u64 {
    for attempt in 0..20 {
        let id = format!("{exec_id}-{attempt}");
        let out = env.ctr(&[
            "task",
            "exec",
            "--exec-id",
            &id,
            "box",
            "/bin/cat",
            "/tmp/n",
        ]);
        assert_eq!(code(&out), 0, "cat /tmp/n: {}", text(&out.stderr));
        if let Ok(n) = text(&out.stdout).trim().parse() {
            return n;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("no number in /tmp/n");
}

/// `ctr containers checkpoint --task` then `ctr containers restore --live`:
/// the task comes back with its memory (a shell's counter goes on from
/// where it was, not from 0), runs, and ends cleanly. (crun masks
/// directories with a bind mount CRIU cannot restore; the shim gives crun
/// read-only tmpfs mounts there instead, runtime::backend's
/// `masked_dirs_as_tmpfs`: without it crun's restore fails with CRIU's "No
/// mapping for N:(null) mountpoint".)
fn checkpoint_and_restore(backend: &str, test: &str) {
    let Some((env, mut child, out)) = start_ticking(
        backend,
        test,
        &[],
        "i=0; while :; do echo tick $i; echo $i > /tmp/n; i=$((i+1)); sleep 0.1; done",
    ) else {
        return;
    };
    wait_ticks(&out, 20, "before the checkpoint");
    checkpoint_box(&env);
    let at_checkpoint = counter(&env, "before");
    // 20 ticks were seen: "tick 19" is out, and /tmp/n is written just
    // after each echo, so it held 18 at least.
    assert!(at_checkpoint >= 18, "{at_checkpoint}");
    remove_box(&env, &mut child);
    let rs = restore_box(&env);
    assert_eq!(code(&rs), 0, "containers restore: {}", text(&rs.stderr));
    env.wait_status("box", "RUNNING");
    let first = counter(&env, "after1");
    assert!(
        first + 5 >= at_checkpoint,
        "the counter started again ({first}) instead of going on from {at_checkpoint}"
    );
    std::thread::sleep(Duration::from_millis(500));
    let later = counter(&env, "after2");
    assert!(
        later > first,
        "the restored task does not run: {first} then {later}"
    );
    env.finish("box");
    let _ = env.ctr(&["images", "rm", "--sync", "checkpoint/box:1"]);
    env.assert_clean(backend, &["box"]);
}

/// `ctr containers checkpoint --task --rw box checkpoint/box:1`: the task
/// and its rootfs changes, the task left running.
fn checkpoint_box(env: &Env) {
    let ck = env.ctr(&[
        "containers",
        "checkpoint",
        "--task",
        "--rw",
        "box",
        "checkpoint/box:1",
    ]);
    assert_eq!(code(&ck), 0, "containers checkpoint: {}", text(&ck.stderr));
}

/// Ends `box` and removes it (ctr run deletes the task once it ends).
fn remove_box(env: &Env, child: &mut std::process::Child) {
    let _ = env.ctr(&["task", "kill", "-s", "SIGKILL", "box"]);
    let _ = child.wait();
    let _ = env.ctr(&["task", "rm", "box"]);
    let rm = env.ctr(&["containers", "rm", "box"]);
    assert_eq!(code(&rm), 0, "containers rm: {}", text(&rm.stderr));
}

/// `ctr containers restore --live --rw box checkpoint/box:1`.
fn restore_box(env: &Env) -> std::process::Output {
    env.ctr(&[
        "containers",
        "restore",
        "--live",
        "--rw",
        "box",
        "checkpoint/box:1",
    ])
}

/// A restore CRIU refuses (a file the task holds open, on a bind mount
/// from the host, changed size after the checkpoint): the error names CRIU,
/// and nothing is left, the container's cgroups included (the runtime made
/// them before CRIU failed), so that the id can be used again.
fn failed_restore_leaves_nothing(backend: &str, test: &str) {
    let data = std::env::temp_dir().join(format!("nucleus-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&data).expect("data dir");
    std::fs::write(data.join("f"), "held open\n").expect("data file");
    let mount = format!(
        "type=bind,src={},dst=/data,options=rbind:rw",
        data.display()
    );
    let started = start_ticking(
        backend,
        test,
        &["--mount", &mount],
        "exec 3</data/f; i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.1; done",
    );
    let Some((env, mut child, out)) = started else {
        let _ = std::fs::remove_dir_all(&data);
        return;
    };
    wait_ticks(&out, 3, "before the checkpoint");
    checkpoint_box(&env);
    remove_box(&env, &mut child);
    std::fs::write(data.join("f"), "held open, and changed since\n").expect("data file");

    let rs = restore_box(&env);
    let err = text(&rs.stderr);
    assert_ne!(code(&rs), 0, "the restore of a changed file succeeded");
    assert!(
        err.to_lowercase().contains("criu"),
        "a failed restore names CRIU: {err}"
    );
    assert_no_cgroup(&env, "box");
    let _ = env.ctr(&["task", "rm", "box"]);
    let rm = env.ctr(&["containers", "rm", "box"]);
    assert_eq!(code(&rm), 0, "containers rm: {}", text(&rm.stderr));
    // The id is free again: a container of that name runs.
    let config = env.dir.join("checkpoint.toml").display().to_string();
    let again = env.ctr(&box_run(&config, &["--rm"], &["/bin/echo", "again"]));
    assert_eq!(
        code(&again),
        0,
        "run after the failed restore: {}",
        text(&again.stderr)
    );
    assert_eq!(text(&again.stdout).trim(), "again");
    let _ = env.ctr(&["images", "rm", "--sync", "checkpoint/box:1"]);
    env.assert_clean(backend, &["box"]);
    let _ = std::fs::remove_dir_all(&data);
}

/// The CRIU layer (media type, digest, size) of checkpoint image `image`,
/// read from its index in containerd's content store.
fn criu_layer(env: &Env, image: &str) -> (String, String, i64) {
    let listed = text(&env.ctr(&["images", "ls"]).stdout);
    let digest = listed
        .lines()
        .find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(image)).then(|| f.nth(1)).flatten()
        })
        .unwrap_or_else(|| panic!("{image} not in {listed}"))
        .to_string();
    let index: serde_json::Value =
        serde_json::from_slice(&env.ctr(&["content", "get", &digest]).stdout)
            .expect("the checkpoint's index");
    let media_type = "application/vnd.containerd.container.criu.checkpoint.criu.tar";
    let layer = index["manifests"]
        .as_array()
        .and_then(|m| m.iter().find(|d| d["mediaType"] == media_type))
        .unwrap_or_else(|| panic!("no CRIU layer in {index}"));
    (
        media_type.to_string(),
        layer["digest"].as_str().expect("digest").to_string(),
        layer["size"].as_i64().expect("size"),
    )
}

/// A task restored the way containerd's Go client restores one
/// (`NewTask(.., WithTaskCheckpoint(image))` with the client's own FIFOs;
/// `ctr containers restore --live` detaches and drops its output): its
/// output reaches the client, going on from where the checkpoint was.
fn restored_output_reaches_the_client(backend: &str, test: &str) {
    let Some((env, mut child, out)) = start_ticking(backend, test, &[], TICKER) else {
        return;
    };
    wait_ticks(&out, 5, "before the checkpoint");
    let before = tick_numbers(&out).into_iter().max().unwrap_or(0);
    checkpoint_box(&env);
    remove_box(&env, &mut child);
    // The container again, from the checkpoint's spec and rw layer: ctr
    // starts a fresh task in it, which goes before the restored one comes.
    let rs = env.ctr(&["containers", "restore", "--rw", "box", "checkpoint/box:1"]);
    assert_eq!(code(&rs), 0, "containers restore: {}", text(&rs.stderr));
    let _ = env.ctr(&["task", "kill", "-s", "SIGKILL", "box"]);
    env.wait_status("box", "STOPPED");
    let rm = env.ctr(&["task", "rm", "box"]);
    assert_eq!(code(&rm), 0, "task rm: {}", text(&rm.stderr));

    let layer = criu_layer(&env, "checkpoint/box:1");
    let fifo = env.dir.join("restored.out");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::File::open(fifo).expect("the client's FIFO"))
    };
    let tasks = Containerd::connect(&env.address, &env.namespace).expect("containerd's API");
    tasks
        .create_from_checkpoint(
            "box",
            (&layer.0, &layer.1, layer.2),
            &fifo.display().to_string(),
            "",
        )
        .expect("task create from the checkpoint");
    let restored = read_into_string(reader.join().expect("FIFO opener"));
    tasks.start("box", "").expect("start (restore)");
    wait_ticks(&restored, 5, "after the restore");
    let after = tick_numbers(&restored);
    assert!(
        after.first().is_some_and(|&first| first > before),
        "the restored task's ticks {after:?} do not go on from {before}"
    );
    let _ = env.ctr(&["task", "kill", "-s", "SIGKILL", "box"]);
    assert_eq!(tasks.wait("box", "").expect("wait"), 137);
    tasks.delete("box").expect("delete");
    let rm = env.ctr(&["containers", "rm", "box"]);
    assert_eq!(code(&rm), 0, "containers rm: {}", text(&rm.stderr));
    let _ = env.ctr(&["images", "rm", "--sync", "checkpoint/box:1"]);
    env.assert_clean(backend, &["box"]);
}

/// The container's cgroup (`/<namespace>/<id>`, as containerd's client
/// sets it) is gone from every hierarchy, within 10 s.
fn assert_no_cgroup(env: &Env, id: &str) {
    let rel = format!("{}/{id}", env.namespace);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left: Vec<String> = std::fs::read_dir("/sys/fs/cgroup")
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .chain(std::iter::once(PathBuf::from("/sys/fs/cgroup")))
                    .map(|h| h.join(&rel))
                    .filter(|p| p.is_dir())
                    .map(|p| p.display().to_string())
                    .collect()
            })
            .unwrap_or_default();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "cgroups left: {left:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

on_runc_and_crun!(
    checkpoint_with_fifo_output,
    checkpoint_and_restore,
    failed_restore_leaves_nothing,
    restored_output_reaches_the_client,
);
