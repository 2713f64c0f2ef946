//! End-to-end Pause/Resume and Update on runsc, crun and runc. Update is not
//! reachable from ctr 1.6, so it is sent straight to the shim's ttrpc
//! socket, the way containerd sends it.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};

use common::{code, text, Env};
use containerd_shim_protos::api::{Empty, UpdateTaskRequest};
use containerd_shim_protos::protobuf::well_known_types::any::Any;

const TASK: &str = "containerd.task.v2.Task";

/// A cgroup file of container `id` (its spec's cgroupsPath), v1 or v2.
fn cgroup_file(env: &Env, id: &str, controller: &str, v1: &str, v2: &str) -> PathBuf {
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

fn read_trim(p: &PathBuf) -> String {
    std::fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_string()
}

/// `ctr task pause` and `resume`: ls shows PAUSED then RUNNING, the events
/// /tasks/paused and /tasks/resumed are published, a second pause is refused.
fn pause_and_resume(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let events = env.events();
    env.sleeper(backend, "box");
    let out = env.ctr(&["task", "pause", "box"]);
    assert!(out.status.success(), "pause: {}", text(&out.stderr));
    env.wait_status("box", "PAUSED");
    let out = env.ctr(&["task", "pause", "box"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already paused"),
        "{}",
        text(&out.stderr)
    );
    let out = env.ctr(&["task", "resume", "box"]);
    assert!(out.status.success(), "resume: {}", text(&out.stderr));
    env.wait_status("box", "RUNNING");
    env.finish("box");
    let topics: Vec<String> = events
        .collect("box")
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| t == "/tasks/paused" || t == "/tasks/resumed")
        .collect();
    assert_eq!(topics, ["/tasks/paused", "/tasks/resumed"]);
    env.assert_clean(backend, &["box"]);
}

/// Update over ttrpc: new pids and memory limits reach the cgroup; a
/// request to lift the pids limit or open all devices is held to the policy.
fn update_through_ttrpc(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    env.sleeper(backend, "box");
    let pids_max = cgroup_file(&env, "box", "pids", "pids.max", "pids.max");
    let mem_max = cgroup_file(&env, "box", "memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(read_trim(&pids_max), "4096", "the policy's pids limit");
    let update = |json: &str| {
        let mut req = UpdateTaskRequest::new();
        req.id = "box".into();
        let mut any = Any::new();
        any.type_url = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources".into();
        any.value = json.as_bytes().to_vec();
        req.resources = Some(any).into();
        common::ttrpc_call::<_, Empty>(&env.socket_path("box"), TASK, "Update", &req)
    };
    update(r#"{"pids":{"limit":123},"memory":{"limit":67108864}}"#).expect("update");
    assert_eq!(read_trim(&pids_max), "123");
    assert_eq!(read_trim(&mem_max), "67108864");
    update(r#"{"pids":{"limit":-1},"devices":[{"allow":true,"access":"rwm"}]}"#)
        .expect("update held to the policy");
    assert_eq!(
        read_trim(&pids_max),
        "4096",
        "unlimited became the policy's limit"
    );
    let e = update("{not json").unwrap_err();
    assert!(e.contains("malformed JSON"), "{e}");
    env.finish("box");
    env.assert_clean(backend, &["box"]);
}

/// `ctr task metrics` prints the container's cgroup statistics (runsc: the
/// cgroup of the sandbox the container owns).
fn metrics(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    env.sleeper(backend, "box");
    let out = env.ctr(&["task", "metrics", "box"]);
    assert!(out.status.success(), "metrics: {}", text(&out.stderr));
    let table = text(&out.stdout);
    let value = |name: &str| -> u64 {
        table
            .lines()
            .find_map(|l| {
                let mut w = l.split_whitespace();
                (w.next() == Some(name)).then(|| w.next().and_then(|v| v.parse().ok()))?
            })
            .unwrap_or_else(|| panic!("no {name} in:\n{table}"))
    };
    assert!(value("pids.current") >= 1, "{table}");
    assert_eq!(value("pids.limit"), 4096, "{table}");
    assert!(value("memory.usage_in_bytes") > 0, "{table}");
    assert!(value("cpuacct.usage") > 0, "{table}");
    if !Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        v1_sections(backend, &env, "box");
    }
    env.finish("box");
    env.assert_clean(backend, &["box"]);
}

/// Gives container `id` block I/O its v1 cgroup accounts: this kernel
/// counts blkio.throttle.* only on a device with a throttle rule, so a
/// generous one (1 TiB/s) is set on the rootfs's disk, then an exec reads
/// 64 KiB with O_DIRECT. Returns the major:minor, None where the rule is
/// refused (a partition).
fn block_io(env: &Env, id: &str) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let dev = std::fs::metadata(common::image_dir().join("rootfs"))
        .expect("rootfs")
        .dev();
    let device = format!("{}:{}", libc::major(dev), libc::minor(dev));
    let rule = cgroup_file(env, id, "blkio", "blkio.throttle.read_bps_device", "");
    if let Err(e) = std::fs::write(&rule, format!("{device} 1099511627776")) {
        eprintln!("{id}: no throttle rule on {device}: {e}");
        return None;
    }
    let out = env.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "dd",
        id,
        "/bin/sh",
        "-c",
        "dd if=/bin/sh of=/dev/null bs=4096 count=16 iflag=direct",
    ]);
    assert_eq!(code(&out), 0, "dd: {}", text(&out.stderr));
    Some(device)
}

/// The whole cgroup v1 Metrics as ctr decodes it (`--format json`, where
/// an empty message shows as `{}` and a missing one not at all): every
/// section containerd-shim-runc-v2 sends is there (nerdctl stats
/// dereferences blkio), hugetlb has one entry per host page size, and blkio
/// lists the devices of the cgroup's throttle file (this host has neither
/// CFQ nor BFQ): on runc and crun the disk the container read from.
fn v1_sections(backend: &str, env: &Env, id: &str) {
    let device = block_io(env, id);
    let out = env.ctr(&["task", "metrics", "--format", "json", id]);
    assert!(out.status.success(), "metrics: {}", text(&out.stderr));
    let m: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    for section in [
        "/pids",
        "/cpu",
        "/cpu/usage",
        "/cpu/throttling",
        "/memory",
        "/memory/usage",
        "/memory/swap",
        "/memory/kernel",
        "/memory/kernel_tcp",
        "/memory_oom_control",
        "/blkio",
        "/rdma",
    ] {
        assert!(
            m.pointer(section).is_some_and(serde_json::Value::is_object),
            "no {section} in {m:#}"
        );
    }
    assert!(m["memory"]["usage"]["limit"].as_u64() > Some(0), "{m:#}");
    let mut sizes: Vec<String> = m["hugetlb"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|h| h["pagesize"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let mut host_sizes: Vec<String> = std::fs::read_dir("/sys/kernel/mm/hugepages")
        .map(|d| {
            d.filter_map(|e| {
                let name = e.ok()?.file_name().into_string().ok()?;
                let kb: u64 = name
                    .strip_prefix("hugepages-")?
                    .strip_suffix("kB")?
                    .parse()
                    .ok()?;
                Some(match kb {
                    kb if kb >= 1 << 20 => format!("{}GB", kb >> 20),
                    kb if kb >= 1 << 10 => format!("{}MB", kb >> 10),
                    kb => format!("{kb}KB"),
                })
            })
            .collect()
        })
        .unwrap_or_default();
    sizes.sort();
    host_sizes.sort();
    assert_eq!(sizes, host_sizes, "{m:#}");

    let throttle = cgroup_file(
        env,
        id,
        "blkio",
        "blkio.throttle.io_service_bytes_recursive",
        "",
    );
    let mut on_host: Vec<String> = std::fs::read_to_string(&throttle)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.split_whitespace().count() == 3)
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect();
    on_host.dedup();
    let mut reported: Vec<String> = m["blkio"]["io_service_bytes_recursive"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    // ctr's JSON leaves zeros out.
                    let n = |k: &str| e[k].as_u64().unwrap_or(0);
                    format!("{}:{}", n("major"), n("minor"))
                })
                .collect()
        })
        .unwrap_or_default();
    reported.dedup();
    assert_eq!(reported, on_host, "{m:#}");
    if backend != "runsc" {
        if let Some(device) = device {
            assert_eq!(reported, [device], "{m:#}");
            let read = m["blkio"]["io_service_bytes_recursive"]
                .as_array()
                .and_then(|a| a.iter().find(|e| e["op"] == "Read"))
                .and_then(|e| e["value"].as_u64());
            assert!(read >= Some(65536), "{m:#}");
            assert!(
                m["blkio"]["io_serviced_recursive"]
                    .as_array()
                    .is_some_and(|a| !a.is_empty()),
                "{m:#}"
            );
        }
    }
}

/// A memory hog under a 32 MiB limit ends with 137, and /tasks/oom comes
/// before its /tasks/exit.
fn oom_kill_is_reported(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let events = env.events();
    let out = env.run_with(
        backend,
        &["--rm", "--memory-limit", "33554432"],
        "hog",
        &[
            "/bin/sh",
            "-c",
            "x=0123456789abcdef; while true; do x=$x$x; done",
        ],
    );
    assert_eq!(code(&out), 137, "stderr: {}", text(&out.stderr));
    let topics: Vec<String> = events
        .collect("hog")
        .into_iter()
        .map(|(t, _)| t)
        .filter(|t| t == "/tasks/oom" || t == "/tasks/exit")
        .collect();
    assert_eq!(topics, ["/tasks/oom", "/tasks/exit"]);
    env.assert_clean(backend, &["hog"]);
}

/// `ctr task checkpoint`: through CRIU on runc/crun where the host can
/// (then /tasks/checkpointed), otherwise an error that says why; runsc
/// answers Unimplemented. Either way the container keeps running.
fn checkpoint_works_or_says_why(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let events = env.events();
    env.sleeper(backend, "box");
    let out = env.ctr(&["task", "checkpoint", "box"]);
    let err = text(&out.stderr);
    if out.status.success() {
        assert_ne!(backend, "runsc");
    } else {
        let why = match backend {
            "runsc" => "not supported on runsc",
            _ => "criu",
        };
        assert!(
            err.to_lowercase().contains(why) || err.contains("checkpoint command"),
            "{err}"
        );
    }
    env.wait_status("box", "RUNNING");
    env.finish("box");
    let checkpointed = events
        .collect("box")
        .iter()
        .any(|(t, _)| t == "/tasks/checkpointed");
    assert_eq!(checkpointed, out.status.success(), "{err}");
    env.assert_clean(backend, &["box"]);
}

on_each_backend!(
    pause_and_resume,
    update_through_ttrpc,
    metrics,
    oom_kill_is_reported,
    checkpoint_works_or_says_why
);
