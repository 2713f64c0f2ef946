//! nucleus-shim: a containerd runtime v2 shim that hardens OCI bundles and
//! drives runsc (gVisor), crun or runc.
//!
//! Data flows one way: containerd -> [`bootstrap`] -> [`server`] -> [`task`] ->
//! ([`config`], [`harden`], [`runtime`], [`io`], [`mount`]) -> [`reaper`] -> [`events`] -> containerd.
//! Every process the shim starts is built by [`spawn::command`].

/// Defines an error type that is one message naming what failed.
macro_rules! message_error {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub struct $name(pub String);

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::error::Error for $name {}
    };
}

pub mod bootstrap;
pub mod cgroup;
pub mod cli;
pub mod config;
pub mod digest;
pub mod entrypoint;
pub mod events;
pub mod harden;
pub mod io;
pub mod logging;
pub mod mount;
pub mod options;
pub mod reaper;
pub mod runtime;
pub mod server;
pub mod spawn;
pub mod task;
pub mod wire;

/// The runtime name containerd knows this shim by.
pub const RUNTIME_NAME: &str = "io.nucleus.v1";
/// The shim's version, from Cargo.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
