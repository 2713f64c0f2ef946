//! Kubernetes pods side by side, in the same run on one private containerd
//! with its CRI plugin: the `nucleus-runc` handler (this shim driving runc)
//! and containerd's own `runc` handler (containerd-shim-runc-v2), both from
//! contrib/containerd-config.toml. For each, P host-network pods of C
//! sleeping containers each (plus the pause container): the time to bring a
//! pod up (RunPodSandbox, then CreateContainer and StartContainer for each
//! container) and to take it down (StopPodSandbox, RemovePodSandbox), and the
//! memory of the shim serving each pod (PSS, RSS, threads). Prints
//! nucleus/runc-v2 ratios.
//!
//! Run as root after contrib/setup-host.sh:
//! `cargo bench --bench pod-footprint -- [P] [C]` (default 10 pods of 2).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/cri_client.rs"]
mod cri_client;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Env, Kind};
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tonic::transport::Channel;

/// One handler's measurements.
#[derive(Default)]
struct Figures {
    up: Duration,
    down: Duration,
    pss_kb: f64,
    rss_kb: f64,
    threads: f64,
    shims: usize,
}

fn pod_config(env: &Env, name: &str) -> PodSandboxConfig {
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "bench".into(),
            attempt: 0,
        }),
        log_directory: env.dir.join("pod-logs").display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    pid: NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Per-process figures from /proc: PSS and RSS in kB, threads.
fn memory(pid: u32) -> (f64, f64, f64) {
    let field = |file: &str, key: &str| -> f64 {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0)
    };
    (
        field("smaps_rollup", "Pss:"),
        field("status", "VmRSS:"),
        field("status", "Threads:"),
    )
}

async fn measure(
    rt: &mut RuntimeServiceClient<Channel>,
    env: &Env,
    handler: &str,
    shim: &str,
    pods: usize,
    containers: usize,
) -> Figures {
    let mut f = Figures::default();
    let mut ids = Vec::new();
    for p in 0..pods {
        let config = pod_config(env, &format!("{handler}-{p}"));
        let t0 = Instant::now();
        let pod = rt
            .run_pod_sandbox(RunPodSandboxRequest {
                config: Some(config.clone()),
                runtime_handler: handler.into(),
            })
            .await
            .expect("RunPodSandbox")
            .into_inner()
            .pod_sandbox_id;
        for c in 0..containers {
            let id = rt
                .create_container(CreateContainerRequest {
                    pod_sandbox_id: pod.clone(),
                    config: Some(cri_client::busybox_container(
                        &format!("c{c}"),
                        vec!["/bin/sleep".into(), "100000".into()],
                    )),
                    sandbox_config: Some(config.clone()),
                })
                .await
                .expect("CreateContainer")
                .into_inner()
                .container_id;
            rt.start_container(StartContainerRequest { container_id: id })
                .await
                .expect("StartContainer");
        }
        f.up += t0.elapsed();
        ids.push(pod);
    }
    std::thread::sleep(Duration::from_secs(2));
    let procs: Vec<u32> = common::live_processes()
        .into_iter()
        .filter(|(_, cmd)| cmd.contains(shim) && cmd.contains(&env.address))
        .map(|(pid, _)| pid)
        .collect();
    f.shims = procs.len();
    for pid in &procs {
        let (pss, rss, threads) = memory(*pid);
        f.pss_kb += pss;
        f.rss_kb += rss;
        f.threads += threads;
    }
    let n = procs.len().max(1) as f64;
    (f.pss_kb, f.rss_kb, f.threads) = (f.pss_kb / n, f.rss_kb / n, f.threads / n);
    for pod in ids {
        let t0 = Instant::now();
        cri_client::remove_pod(rt, &pod).await;
        f.down += t0.elapsed();
    }
    f.up /= pods as u32;
    f.down /= pods as u32;
    f
}

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let pods = args.first().copied().unwrap_or(10).max(1);
    let containers = args.get(1).copied().unwrap_or(2);
    let Some(env) = Env::start_cri("bench-pods", "runc", Kind::Cri) else {
        eprintln!("pod-footprint: prerequisites missing (see above)");
        return;
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut results = HashMap::new();
    runtime.block_on(async {
        let mut rt = cri_client::client(&env.address).await;
        // Warm the image and page caches once per handler.
        for (handler, shim) in [
            ("runc", "containerd-shim-runc-v2"),
            ("nucleus-runc", "containerd-shim-nucleus-v1"),
        ] {
            measure(&mut rt, &env, handler, shim, 1, containers).await;
            results.insert(
                handler,
                measure(&mut rt, &env, handler, shim, pods, containers).await,
            );
        }
    });
    let (v2, nu) = (&results["runc"], &results["nucleus-runc"]);
    println!(
        "{pods} pods of {containers} containers (+ pause) on runc, host network, one containerd {}",
        String::from_utf8_lossy(
            &std::process::Command::new("containerd")
                .arg("--version")
                .output()
                .map(|o| o.stdout)
                .unwrap_or_default()
        )
        .split_whitespace()
        .nth(2)
        .unwrap_or("?")
    );
    println!("shims: runc-v2 {}, nucleus {}", v2.shims, nu.shims);
    println!("| per pod | runc-v2 | nucleus | ratio |");
    println!("|---|---|---|---|");
    let row = |name: &str, a: f64, b: f64, unit: &str| {
        println!(
            "| {name} | {a:.0} {unit} | {b:.0} {unit} | {:.2} |",
            b / a.max(1e-9)
        );
    };
    row("shim PSS", v2.pss_kb, nu.pss_kb, "kB");
    row("shim RSS", v2.rss_kb, nu.rss_kb, "kB");
    println!(
        "| shim threads | {:.1} | {:.1} | {:.2} |",
        v2.threads,
        nu.threads,
        nu.threads / v2.threads.max(1e-9)
    );
    row(
        "pod up",
        v2.up.as_secs_f64() * 1e3,
        nu.up.as_secs_f64() * 1e3,
        "ms",
    );
    row(
        "pod down",
        v2.down.as_secs_f64() * 1e3,
        nu.down.as_secs_f64() * 1e3,
        "ms",
    );
    env.assert_clean("runc", &[]);
}
