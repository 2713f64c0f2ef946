//! A CRI v1 client of the suite's own (no crictl in Debian): the runtime
//! service generated for tonic, over containerd's unix socket. Shared by
//! tests/cri.rs and benches/pod-footprint.rs (each uses part of it).
#![allow(dead_code)]

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

/// Connects to the CRI runtime service at `socket`.
pub async fn client(socket: &str) -> RuntimeServiceClient<Channel> {
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
    wait_for_image(channel.clone(), super::common::PAUSE_IMAGE).await;
    RuntimeServiceClient::new(channel)
}

/// Waits (10 s at most) until CRI's image store has `image`: one imported
/// with `ctr images import` reaches it through containerd's events, a moment
/// later (a pod made before then was refused: "failed to pull image").
async fn wait_for_image(channel: Channel, image: &str) {
    use k8s_cri::v1::image_service_client::ImageServiceClient;
    use k8s_cri::v1::{ImageSpec, ImageStatusRequest};
    let mut images = ImageServiceClient::new(channel);
    for _ in 0..100 {
        let status = images
            .image_status(ImageStatusRequest {
                image: Some(ImageSpec {
                    image: image.to_string(),
                    ..Default::default()
                }),
                verbose: false,
            })
            .await;
        if status.is_ok_and(|s| s.into_inner().image.is_some()) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// StopPodSandbox then RemovePodSandbox, as the kubelet ends a pod.
pub async fn remove_pod(rt: &mut RuntimeServiceClient<Channel>, pod: &str) {
    use k8s_cri::v1::{RemovePodSandboxRequest, StopPodSandboxRequest};
    rt.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: pod.to_string(),
    })
    .await
    .expect("StopPodSandbox");
    rt.remove_pod_sandbox(RemovePodSandboxRequest {
        pod_sandbox_id: pod.to_string(),
    })
    .await
    .expect("RemovePodSandbox");
}

/// StopContainer (2 s grace) then RemoveContainer.
pub async fn remove_container(rt: &mut RuntimeServiceClient<Channel>, id: &str) {
    use k8s_cri::v1::{RemoveContainerRequest, StopContainerRequest};
    rt.stop_container(StopContainerRequest {
        container_id: id.to_string(),
        timeout: 2,
    })
    .await
    .expect("StopContainer");
    rt.remove_container(RemoveContainerRequest {
        container_id: id.to_string(),
    })
    .await
    .expect("RemoveContainer");
}

/// The image config every test container uses: busybox, `command`, logs
/// to `<name>.log` in the pod's log directory.
pub fn busybox_container(name: &str, command: Vec<String>) -> k8s_cri::v1::ContainerConfig {
    use k8s_cri::v1::{ContainerConfig, ContainerMetadata, ImageSpec};
    ContainerConfig {
        metadata: Some(ContainerMetadata {
            name: name.into(),
            attempt: 0,
        }),
        image: Some(ImageSpec {
            image: super::common::IMAGE.into(),
            ..Default::default()
        }),
        command,
        log_path: format!("{name}.log"),
        ..Default::default()
    }
}
