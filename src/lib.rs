//! nucleus-shim: a containerd runtime v2 shim that hardens OCI bundles and
//! drives runsc (gVisor), crun or runc.
//!
//! Data flows one way: containerd -> [`bootstrap`] -> [`server`] -> [`task`] ->
//! ([`config`], [`runtime`], [`io`], [`mount`]) -> [`reaper`] -> [`events`] -> containerd.

pub mod bootstrap;
pub mod cli;
pub mod config;
pub mod events;
pub mod io;
pub mod logging;
pub mod mount;
pub mod options;
pub mod reaper;
pub mod runtime;
pub mod server;
pub mod task;
pub mod wire;

/// The runtime name containerd knows this shim by.
pub const RUNTIME_NAME: &str = "io.nucleus.v1";
/// The shim's version, from Cargo.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
