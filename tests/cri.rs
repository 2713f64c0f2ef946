//! Kubernetes through containerd's CRI plugin, with a CRI client of the
//! suite's own (the CRI v1 API over containerd's socket): a pod with two
//! containers on the `nucleus-<backend>` handler, ExecSync, container logs,
//! one nucleus shim for the whole pod, and a clean teardown.

mod common;

use std::collections::HashMap;

use common::Env;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::*;
use tonic::transport::Channel;

async fn client(socket: &str) -> RuntimeServiceClient<Channel> {
    let path = socket.to_string();
    let channel = tonic::transport::Endpoint::try_from("http://[::]:50051")
        .expect("endpoint")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(
                    tokio::net::UnixStream::connect(path).await?,
                ))
            }
        }))
        .await
        .expect("connecting to containerd's CRI");
    RuntimeServiceClient::new(channel)
}

fn pod_config(env: &Env, name: &str) -> PodSandboxConfig {
    let logs = env.dir.join("pod-logs");
    std::fs::create_dir_all(&logs).expect("log dir");
    PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: name.into(),
            uid: format!("uid-{name}"),
            namespace: "default".into(),
            attempt: 0,
        }),
        log_directory: logs.display().to_string(),
        linux: Some(LinuxPodSandboxConfig {
            security_context: Some(LinuxSandboxSecurityContext {
                // The host network: no CNI needed.
                namespace_options: Some(NamespaceOption {
                    network: NamespaceMode::Node as i32,
                    // What the kubelet asks unless shareProcessNamespace.
                    pid: NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        annotations: HashMap::new(),
        ..Default::default()
    }
}

fn container_config(name: &str, script: &str) -> ContainerConfig {
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: common::IMAGE.into(),
            ..Default::default()
        }),
        command: vec!["/bin/sh".into(), "-c".into(), script.into()],
        log_path: format!("{name}.log"),
        ..Default::default()
    }
}

/// Nucleus shim processes of this test's containerd.
fn shims(env: &Env) -> Vec<String> {
    env.processes_with(&format!("-address {}", env.address))
        .into_iter()
        .filter(|p| p.contains("containerd-shim-nucleus-v1"))
        .collect()
}

async fn pod_lifecycle(backend: &str, test: &str) {
    let Some(env) = Env::start_cri(test, backend) else {
        return;
    };
    let mut rt = client(&env.address).await;
    let handler = format!("nucleus-{backend}");
    let config = pod_config(&env, "p1");
    let pod = rt
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.clone(),
        })
        .await
        .expect("RunPodSandbox")
        .into_inner()
        .pod_sandbox_id;
    let mut ids = Vec::new();
    for name in ["first", "second"] {
        let id = rt
            .create_container(CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(container_config(
                    name,
                    &format!("echo hello-from-{name}; echo err-from-{name} >&2; exec sleep 1000"),
                )),
                sandbox_config: Some(config.clone()),
            })
            .await
            .unwrap_or_else(|e| panic!("CreateContainer {name}: {e}"))
            .into_inner()
            .container_id;
        rt.start_container(StartContainerRequest {
            container_id: id.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("StartContainer {name}: {e}"));
        ids.push(id);
    }

    let r = rt
        .exec_sync(ExecSyncRequest {
            container_id: ids[0].clone(),
            cmd: vec![
                "/bin/sh".into(),
                "-c".into(),
                "echo exec-out; echo exec-err >&2; exit 3".into(),
            ],
            timeout: 20,
        })
        .await
        .expect("ExecSync")
        .into_inner();
    assert_eq!(String::from_utf8_lossy(&r.stdout), "exec-out\n");
    assert_eq!(String::from_utf8_lossy(&r.stderr), "exec-err\n");
    assert_eq!(r.exit_code, 3);

    // CRI's log files get each container's stdout and stderr.
    let log = env.dir.join("pod-logs/first.log");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        if t.contains("err-from-first") || std::time::Instant::now() > deadline {
            break t;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert!(text.contains(" stdout F hello-from-first"), "{text:?}");
    assert!(text.contains(" stderr F err-from-first"), "{text:?}");

    // One shim serves the pod: sandbox and both containers; under runsc,
    // one gVisor sandbox holds them all.
    let running = shims(&env);
    assert_eq!(running.len(), 1, "{running:#?}");
    if backend == "runsc" {
        let sandboxes: Vec<String> = env
            .processes_with("runsc-sandbox")
            .into_iter()
            .filter(|p| p.contains(&env.dir.display().to_string()))
            .collect();
        assert_eq!(sandboxes.len(), 1, "{sandboxes:#?}");
    }

    // Stopping one container leaves the other running. Not asserted on
    // runsc yet: with runsc 20221219 the other containers of the sandbox
    // are reported killed (137) a few ms after one container's init exits,
    // before the shim sends anything (issue 6 stays open on this).
    if backend != "runsc" {
        rt.stop_container(StopContainerRequest {
            container_id: ids[0].clone(),
            timeout: 2,
        })
        .await
        .expect("StopContainer");
        let status = rt
            .container_status(ContainerStatusRequest {
                container_id: ids[1].clone(),
                verbose: false,
            })
            .await
            .expect("ContainerStatus")
            .into_inner();
        assert_eq!(
            status.status.map(|s| s.state),
            Some(ContainerState::ContainerRunning as i32)
        );
        let r = rt
            .exec_sync(ExecSyncRequest {
                container_id: ids[1].clone(),
                cmd: vec!["/bin/echo".into(), "still-here".into()],
                timeout: 20,
            })
            .await
            .expect("ExecSync on the remaining container")
            .into_inner();
        assert_eq!(String::from_utf8_lossy(&r.stdout), "still-here\n");
    }
    for id in &ids {
        rt.stop_container(StopContainerRequest {
            container_id: id.clone(),
            timeout: 2,
        })
        .await
        .expect("StopContainer");
        rt.remove_container(RemoveContainerRequest {
            container_id: id.clone(),
        })
        .await
        .expect("RemoveContainer");
    }
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("StopPodSandbox");
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.clone(),
    })
    .await
    .expect("RemovePodSandbox");
    let mut all = ids.clone();
    all.push(pod.clone());
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    env.assert_clean(backend, &all);
}

macro_rules! cri_on {
    ($($backend:ident),*) => {
        $(
            #[test]
            fn $backend() {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime")
                    .block_on(pod_lifecycle(stringify!($backend), concat!("cri-", stringify!($backend))));
            }
        )*
    };
}

cri_on!(runsc, crun, runc);
