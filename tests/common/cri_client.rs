//! A CRI v1 client of the suite's own (no crictl in Debian): the runtime
//! service generated for tonic, over containerd's unix socket. Shared by
//! tests/cri.rs and benches/pod-footprint.rs.

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
    RuntimeServiceClient::new(channel)
}
