//! End-to-end Pause/Resume, Update, metrics, OOM and checkpoint on runsc,
//! crun and runc. Update goes through containerd's own Tasks API (ctr has
//! no update command on several versions), the way containerd's Go client,
//! nerdctl, Docker and the CRI send it.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};

use common::{cgroup_file, code, containerd_client, text, Env};

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

/// Update through containerd's `Tasks/Update` (gRPC, the task's namespace in
/// the `containerd-namespace` header): new pids and memory limits reach the
/// cgroup; a request to lift the pids limit or open all devices is held to
/// the policy; malformed JSON fails with InvalidArgument naming it, the
/// shim's message passed on by containerd.
fn update_through_containerd(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    env.sleeper(backend, "box");
    let pids_max = cgroup_file(&env, "box", "pids", "pids.max", "pids.max");
    let mem_max = cgroup_file(&env, "box", "memory", "memory.limit_in_bytes", "memory.max");
    assert_eq!(read_trim(&pids_max), "4096", "the policy's pids limit");
    let update = |json: &str| {
        containerd_client::update_task(&env.address, &env.namespace, "box", json.as_bytes())
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
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
    assert!(
        e.message()
            .contains("container box: resources: malformed JSON"),
        "{e:?}"
    );
    assert_eq!(
        read_trim(&pids_max),
        "4096",
        "a failed update changes nothing"
    );
    env.finish("box");
    env.assert_clean(backend, &["box"]);
}

/// `ctr task metrics` prints the container's cgroup statistics (runsc: the
/// cgroup of the sandbox the container owns), in the host's cgroup version.
fn metrics(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    env.sleeper(backend, "box");
    if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        v2_metrics(&env, "box");
    } else {
        v1_metrics(backend, &env, "box");
    }
    env.finish("box");
    env.assert_clean(backend, &["box"]);
}

/// The value of row `name` in ctr's metrics table.
fn table_value(table: &str, name: &str) -> u64 {
    table
        .lines()
        .find_map(|l| {
            let mut w = l.split_whitespace();
            (w.next() == Some(name)).then(|| w.next().and_then(|v| v.parse().ok()))?
        })
        .unwrap_or_else(|| panic!("no {name} in:\n{table}"))
}

/// cgroup v1: ctr's v1 table, then the whole v1 Metrics.
fn v1_metrics(backend: &str, env: &Env, id: &str) {
    let out = env.ctr(&["task", "metrics", id]);
    assert!(out.status.success(), "metrics: {}", text(&out.stderr));
    let table = text(&out.stdout);
    let value = |name: &str| table_value(&table, name);
    assert!(value("pids.current") >= 1, "{table}");
    assert_eq!(value("pids.limit"), 4096, "{table}");
    assert!(value("memory.usage_in_bytes") > 0, "{table}");
    assert!(value("cpuacct.usage") > 0, "{table}");
    v1_sections(backend, env, id);
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

/// The pressure files PSI puts in a v2 cgroup, by Metrics section.
const PSI_SECTIONS: [&str; 3] = ["cpu", "memory", "io"];

/// A pressure file's halves (`some`, and `full` where the kernel has it)
/// with their `total=` (microseconds stalled, only ever growing).
fn pressure_totals(path: &PathBuf) -> Vec<(String, u64)> {
    read_trim(path)
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let half = w.next()?.to_string();
            let total = w.find_map(|kv| kv.strip_prefix("total="))?.parse().ok()?;
            Some((half, total))
        })
        .collect()
}

/// Whether the ctr this test runs decodes PSI in v2 Metrics: the psi
/// fields came with containerd/cgroups 3.0.3, and their protobuf struct tags
/// are in the binary. ctr built on an older one (upstream containerd 1.6,
/// 1.7 with its vendored cgroups 3.0.2) drops them as unknown fields;
/// Debian 13's 1.7.24, built on Debian's cgroups package, has them.
fn ctr_decodes_psi(env: &Env) -> bool {
    let program = PathBuf::from(env.ctr_cmd(&[]).get_program());
    let path = if program.components().count() > 1 {
        program
    } else {
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join(&program))
            .find(|p| p.is_file())
            .unwrap_or(program)
    };
    let bin = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let tag = b"name=psi,proto3";
    bin.windows(tag.len()).any(|w| w == tag)
}

/// cgroup v2: ctr's v2 table, then the whole v2 Metrics as ctr decodes it
/// (`--format json`: Go's encoding/json on structs tagged omitempty, so a
/// zero number or empty list is left out while a message that is there
/// shows, as `{}` when all zeros). Every section nucleus sends is there
/// (nerdctl stats dereferences io), the figures agree with the container's
/// cgroup files, and PSI (cpu, memory, io; `some` and `full`) is there
/// wherever the kernel has it (/proc/pressure) and ctr decodes it.
fn v2_metrics(env: &Env, id: &str) {
    let out = env.ctr(&["task", "metrics", id]);
    assert!(out.status.success(), "metrics: {}", text(&out.stderr));
    let table = text(&out.stdout);
    let value = |name: &str| table_value(&table, name);
    assert!(value("pids.current") >= 1, "{table}");
    assert_eq!(value("pids.limit"), 4096, "{table}");
    assert!(value("cpu.usage_usec") > 0, "{table}");
    assert!(value("memory.usage") > 0, "{table}");

    let file = |name: &str| cgroup_file(env, id, "", "", name);
    let psi = Path::new("/proc/pressure/cpu").exists();
    let pressure = || -> Vec<Vec<(String, u64)>> {
        PSI_SECTIONS
            .iter()
            .map(|s| match psi {
                true => pressure_totals(&file(&format!("{s}.pressure"))),
                false => Vec::new(),
            })
            .collect()
    };
    let before = pressure();
    let out = env.ctr(&["task", "metrics", "--format", "json", id]);
    assert!(out.status.success(), "metrics: {}", text(&out.stderr));
    let after = pressure();
    let m: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", text(&out.stdout)));
    for section in ["/pids", "/cpu", "/memory", "/memory_events", "/io", "/rdma"] {
        assert!(
            m.pointer(section).is_some_and(serde_json::Value::is_object),
            "no {section} in {m:#}"
        );
    }
    // A number left out is a zero.
    let n = |ptr: &str| m.pointer(ptr).map_or(Some(0), serde_json::Value::as_u64);
    assert!(n("/pids/current") >= Some(1), "{m:#}");
    assert_eq!(n("/pids/limit"), Some(4096), "{m:#}");
    assert!(n("/cpu/usage_usec") > Some(0), "{m:#}");
    assert!(n("/memory/usage") > Some(0), "{m:#}");
    let limit = match read_trim(&file("memory.max")).as_str() {
        "max" => u64::MAX,
        v => v.parse().expect("memory.max"),
    };
    assert_eq!(
        n("/memory/usage_limit"),
        Some(limit),
        "memory.max {limit}: {m:#}"
    );
    let events = read_trim(&file("memory.events"));
    for line in events.lines() {
        let (key, count) = line.split_once(' ').expect("memory.events: KEY N");
        if matches!(key, "low" | "high" | "max" | "oom" | "oom_kill") {
            let count: u64 = count.parse().expect("memory.events count");
            assert_eq!(
                n(&format!("/memory_events/{key}")),
                Some(count),
                "{events}\n{m:#}"
            );
        }
    }

    if !psi {
        eprintln!("{id}: the kernel has no PSI (/proc/pressure/cpu): not checked");
        return;
    }
    if !ctr_decodes_psi(env) {
        eprintln!("{id}: this ctr's v2 Metrics has no psi fields: PSI not checked");
        return;
    }
    for (k, section) in PSI_SECTIONS.iter().enumerate() {
        assert!(
            !before[k].is_empty(),
            "{section}.pressure has no some/full line"
        );
        assert!(m[section]["psi"].is_object(), "no {section}.psi in {m:#}");
        for (half, low) in &before[k] {
            let high = after[k]
                .iter()
                .find_map(|(h, t)| (h == half).then_some(*t))
                .unwrap_or_else(|| panic!("{section}.pressure lost its {half} line"));
            let got = &m[section]["psi"][half.as_str()];
            assert!(got.is_object(), "no {section}.psi.{half} in {m:#}");
            for avg in ["avg10", "avg60", "avg300"] {
                let v = got.get(avg).map_or(Some(0.0), serde_json::Value::as_f64);
                assert!(
                    v.is_some_and(|v| (0.0..=100.0).contains(&v)),
                    "{section}.psi.{half}.{avg}: {got}"
                );
            }
            let total = got.get("total").map_or(Some(0), serde_json::Value::as_u64);
            assert!(
                total.is_some_and(|t| (*low..=high).contains(&t)),
                "{section}.psi.{half}.total {total:?}, the cgroup's went {low} -> {high}: {got}"
            );
        }
    }
}

/// A memory hog under a 32 MiB limit ends with 137, and /tasks/oom comes
/// after its /tasks/start and before its /tasks/exit.
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
        .filter(|t| t == "/tasks/start" || t == "/tasks/oom" || t == "/tasks/exit")
        .collect();
    assert_eq!(topics, ["/tasks/start", "/tasks/oom", "/tasks/exit"]);
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
    update_through_containerd,
    metrics,
    oom_kill_is_reported,
    checkpoint_works_or_says_why
);
