//! A container: its bundle, the runtime that drives it, its rootfs mounts
//! and its processes. Creation and teardown of the runtime container.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use containerd_shim_protos::api::CreateTaskRequest;
use serde_json::Value;

use super::error::TaskError;
use super::process::Process;
use crate::cgroup::oom::OomWatch;
use crate::cgroup::{self, Cgroup};
use crate::config::{self, Config};
use crate::harden;
use crate::io::{self, StdioPaths};
use crate::mount;
use crate::options::{self, RuntimeOptions};
use crate::runtime::{Backend, CommandRunner, NewNetns, Runtime, LOG_FILE};

/// File in the bundle holding the options Any `start` received.
pub const START_OPTIONS_FILE: &str = "nucleus-options.pb";

/// A container the shim serves.
pub struct Container {
    pub id: String,
    pub bundle: PathBuf,
    pub runtime: Runtime,
    /// The shim mounted `rootfs` and must unmount it.
    pub mounted_rootfs: bool,
    pub init: Process,
    pub execs: HashMap<String, Process>,
    /// What its exec processes are held to.
    pub exec_rules: harden::ExecRules,
    /// What the policy changed in its spec, until Create publishes it.
    pub hardening: Option<harden::Report>,
    /// Frozen by Pause.
    pub paused: bool,
    /// Its cgroup on the host (stats, OOM, limits for runsc).
    pub cgroup: Option<Cgroup>,
    /// OOM kills in its memory cgroup.
    pub oom: Option<OomWatch>,
    /// The stdio its `start` must hand over (runsc containers joining a
    /// pod's sandbox get it at start, not at create).
    pub start_io: Option<crate::runtime::CreateIo>,
    /// The terminal relay is mounted (runsc): `exec -t` runs under it.
    pub terminal_relay: bool,
    /// runsc with the relay mounted and a seccomp profile: the profile as a
    /// BPF program (hex) the relay installs for exec'd processes.
    pub exec_seccomp: Option<String>,
    /// `stdio = "copy"`: its processes' output goes through the shim.
    pub copy_stdio: bool,
    /// Created from a checkpoint: its Start restores it (as
    /// containerd-shim-runc-v2 does, Create only prepares).
    pub restore: Option<Restore>,
}

/// Where a container created from a checkpoint is restored from.
#[derive(Debug, Clone)]
pub struct Restore {
    /// The CRIU image containerd unpacked.
    pub image: PathBuf,
    pub parent: Option<PathBuf>,
}

/// Resolves the config for a Create: options from the request, else the
/// ones `start` persisted in the bundle; `spec` is the bundle's (its
/// runtime annotation).
pub fn resolve_config(
    req: &CreateTaskRequest,
    namespace: &str,
    spec: &Value,
) -> Result<Config, TaskError> {
    let bundle = Path::new(&req.bundle);
    let opts = match req.options.as_ref() {
        Some(any) if !any.type_url.is_empty() => options::decode_any(any),
        _ => match std::fs::read(bundle.join(START_OPTIONS_FILE)) {
            Ok(data) => options::decode_any_bytes(&data),
            Err(_) => Ok(RuntimeOptions::None),
        },
    }
    .map_err(|e| TaskError::invalid(format!("container {}: {e}", req.id)))?;
    let path_env = std::env::var("PATH").ok();
    let chosen = config::chosen_runtime(spec);
    config::resolve(
        &opts,
        namespace,
        &config::default_config_path(),
        path_env.as_deref(),
        chosen.as_deref(),
    )
    .map_err(|e| TaskError::invalid(format!("container {}: {e}", req.id)))
}

/// Hardens the bundle's spec `source` under the config's policy and writes
/// it back; returns the hardened spec and report (the spec the runtime will
/// read).
pub fn harden_bundle(
    runner: &dyn CommandRunner,
    id: &str,
    bundle: &Path,
    source: harden::bundle::Source,
    cfg: &Config,
) -> Result<harden::Hardened, TaskError> {
    // runsc's version goes into the report: what it leaves undone of the
    // spec's paths was measured per version (harden::gvisor).
    let version = (cfg.backend == Backend::Runsc)
        .then(|| crate::runtime::version(runner, &cfg.binary))
        .flatten();
    let hardened = harden::harden_bundle(
        bundle,
        source,
        &cfg.policy,
        cfg.backend,
        version.as_deref(),
        false,
    )
    .map_err(|e| TaskError::invalid(format!("container {id}: {e}")))?;
    let summary = hardened.report.summary();
    if hardened.report.level == harden::Level::Off {
        log::warn!("container {id}: HARDENING IS OFF: {summary}");
    } else {
        log::info!("container {id}: {summary}");
    }
    Ok(hardened)
}

/// The runtime driver for a container, from its config and hardened spec.
/// Refuses a pod this runsc build cannot network (see
/// [`crate::runtime::netns`]) unless the config allows the kernel's stack.
pub fn runtime_for(
    id: &str,
    namespace: &str,
    bundle: &Path,
    cfg: &Config,
    spec: &Value,
) -> Result<Runtime, TaskError> {
    let mut refused = None;
    // A namespace runsc makes, which the spec's hooks set up (Docker,
    // nerdctl): gVisor's stack where this runsc can take it.
    let new_netns = || {
        if !crate::runtime::netns::runsc_misreads_new(&cfg.binary) {
            return NewNetns::Sandbox;
        }
        let binary = cfg.binary.display();
        if cfg.runsc_pod_host_stack {
            log::warn!(
                "container {id}: {binary} takes every network namespace for the host's on this \
                 kernel; as runtime.runsc_pod_host_stack allows, the sandbox uses the kernel's \
                 network stack inside the namespace its hooks set up (--network=host)"
            );
            return NewNetns::KernelStack;
        }
        log::warn!(
            "container {id}: {binary} takes every network namespace for the host's on this \
             kernel: the container gets loopback only (--network=none), not what its hooks \
             set up; upgrade runsc, or set runtime.runsc_pod_host_stack = true in {} for the \
             kernel's stack inside its namespace",
            cfg.source
        );
        NewNetns::LoopbackOnly
    };
    let mut flags = cfg.backend.spec_flags(
        spec,
        |netns| {
            if !crate::runtime::netns::runsc_misreads(&cfg.binary, Path::new(netns)) {
                return false;
            }
            if cfg.runsc_pod_host_stack {
                log::warn!(
                    "container {id}: {} takes every network namespace for the host's on this \
                 kernel; as runtime.runsc_pod_host_stack allows, the sandbox uses the \
                 kernel's network stack inside {netns} (--network=host)",
                    cfg.binary.display()
                );
                return true;
            }
            refused = Some(netns.to_string());
            false
        },
        new_netns,
    );
    if let Some(netns) = refused {
        return Err(TaskError::precondition(format!(
            "container {id}: {} would refuse the pod network namespace {netns}: this build \
             takes every namespace for the host's on this kernel (net.core.rmem_default is \
             visible in all of them; newer gVisor releases check otherwise). Upgrade runsc, \
             or set runtime.runsc_pod_host_stack = true in nucleus.toml (now: {}) to run \
             such pods on the kernel's network stack inside their namespace (weaker \
             isolation)",
            cfg.binary.display(),
            cfg.source
        )));
    }
    flags.extend(cfg.flags.iter().cloned());
    // Docker and nerdctl write a systemd cgroupsPath on systemd hosts and
    // tell only runc's own shim (its SystemdCgroup option): the runtime
    // takes it with its systemd driver, as under containerd-shim-runc-v2.
    let systemd_cgroup =
        cfg.systemd_cgroup || (cgroup::systemd_form(spec) && cgroup::systemd_booted());
    if systemd_cgroup && !cfg.systemd_cgroup {
        log::info!("container {id}: cgroupsPath is in systemd's form: the systemd cgroup driver");
    }
    log::info!(
        "container {id}: runtime {} ({}) from {}",
        cfg.backend.name(),
        cfg.binary.display(),
        cfg.source
    );
    Ok(Runtime {
        backend: cfg.backend,
        binary: cfg.binary.clone(),
        root: cfg.root.clone(),
        flags,
        systemd_cgroup,
        log: bundle.join(LOG_FILE),
        namespace: namespace.to_string(),
        grammar_ids: true,
    })
}

/// The shim's own binary, for hooks run through its `oci-hook` action. A
/// binary replaced since the shim started (an upgrade) is named by its path:
/// the new one there has the action too.
fn own_binary() -> std::io::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let text = exe.to_string_lossy();
    Ok(match text.strip_suffix(" (deleted)") {
        Some(path) => PathBuf::from(path),
        None => exe,
    })
}

/// Validates a container id the way runc does: no path tricks.
pub fn check_id(id: &str) -> Result<(), TaskError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '+'));
    if ok {
        Ok(())
    } else {
        Err(TaskError::invalid(format!(
            "invalid container id {id:?}: use letters, digits and _ - . +"
        )))
    }
}

/// Creates the runtime container: mounts, stdio, `runtime create`, pid file.
/// On failure everything it did is undone.
pub fn create(
    req: &CreateTaskRequest,
    namespace: &str,
    runner: &dyn CommandRunner,
) -> Result<Container, TaskError> {
    check_id(&req.id)?;
    let bundle = PathBuf::from(&req.bundle);
    if !bundle.is_absolute() {
        return Err(TaskError::invalid(format!(
            "container {}: bundle path {:?} is not absolute",
            req.id, req.bundle
        )));
    }
    // The spec is read once: its annotation picks the config's runtime,
    // then it is hardened.
    let source = harden::bundle::read(&bundle)
        .map_err(|e| TaskError::invalid(format!("container {}: {e}", req.id)))?;
    let cfg = resolve_config(req, namespace, &source.spec)?;
    let restore = (!req.checkpoint.is_empty()).then(|| Restore {
        image: PathBuf::from(&req.checkpoint),
        parent: (!req.parent_checkpoint.is_empty()).then(|| PathBuf::from(&req.parent_checkpoint)),
    });
    if restore.is_some() && (cfg.backend == Backend::Runsc || req.terminal) {
        return Err(TaskError::unimplemented(format!(
            "container {}: restore from a checkpoint is supported on runc and crun without a terminal",
            req.id
        )));
    }
    let harden::Hardened {
        mut spec,
        report: hardening,
    } = harden_bundle(runner, &req.id, &bundle, source, &cfg)?;
    let exec_rules = harden::ExecRules::new(&cfg.policy, &hardening);
    // The process as given, before a backend wraps it (runsc's relay).
    let given_process = spec.get("process").cloned().unwrap_or(Value::Null);
    let mut adapted = cfg.backend.adapt_spec(&mut spec, namespace);
    match own_binary() {
        Ok(shim) => adapted.extend(
            cfg.backend
                .hooks_see_containerd_id(&mut spec, &req.id, &shim),
        ),
        Err(e) => log::warn!(
            "container {}: own executable: {e}; hooks see the runtime's id",
            req.id
        ),
    }
    let mut runtime = runtime_for(&req.id, namespace, &bundle, &cfg, &spec)?;
    std::fs::create_dir_all(&runtime.root).map_err(|e| {
        TaskError::internal(format!("runtime root {}: {e}", runtime.root.display()))
    })?;

    let rootfs = bundle.join("rootfs");
    let mounted_rootfs = !req.rootfs.is_empty();
    if mounted_rootfs {
        std::fs::create_dir_all(&rootfs)
            .map_err(|e| TaskError::internal(format!("{}: {e}", rootfs.display())))?;
        mount::mount_all(&req.rootfs, &rootfs)
            .map_err(|e| TaskError::internal(format!("container {}: {e}", req.id)))?;
    }
    let undo_mounts = || {
        if mounted_rootfs {
            if let Err(e) = mount::unmount_all(&rootfs) {
                log::warn!("container {}: {e}", req.id);
            }
        }
    };

    let root = spec
        .pointer("/root/path")
        .and_then(Value::as_str)
        .map_or_else(|| rootfs.clone(), |p| bundle.join(p));
    // After the rootfs is mounted: whether it is a read-only filesystem (a
    // snapshot view) decides backend flags and the runsc terminal relay.
    let read_only_root = mount::read_only(&root);
    let flags = runtime.backend.read_only_rootfs_flags(read_only_root);
    if !flags.is_empty() {
        log::info!(
            "container {}: its rootfs {} is a read-only filesystem: {}",
            req.id,
            root.display(),
            flags.join(" ")
        );
    }
    // Before the user's flags, which may say otherwise.
    runtime.flags.splice(0..0, flags);
    if let Err(e) = runtime.save(&bundle) {
        undo_mounts();
        return Err(TaskError::internal(format!(
            "bundle {}: saving runtime record: {e}",
            bundle.display()
        )));
    }
    let terminal_relay = !cfg.runsc_host_terminal
        && !read_only_root
        && mount_terminal_relay(&req.id, cfg.backend, &mut spec, &mut adapted);
    if let Some(process) = spec.get_mut("process") {
        adapted.extend(cfg.backend.terminal_process(process, terminal_relay));
    }
    let exec_seccomp = exec_seccomp_program(&req.id, cfg.backend, &spec, terminal_relay);
    if !adapted.is_empty() {
        log::info!(
            "container {}: spec adapted for {}: {}",
            req.id,
            cfg.backend.name(),
            adapted.join(", ")
        );
        let written = serde_json::to_vec(&spec)
            .map_err(|e| e.to_string())
            .and_then(|data| {
                harden::bundle::write_atomic(&bundle, harden::bundle::SPEC_FILE, &data)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            undo_mounts();
            return Err(TaskError::internal(format!("container {}: {e}", req.id)));
        }
    }
    let mounts = spec.get("mounts").unwrap_or(&Value::Null);
    if let Err(e) = crate::entrypoint::check(&root, &given_process, mounts) {
        undo_mounts();
        return Err(TaskError::invalid(format!("container {}: {e}", req.id)));
    }
    if exec_rules.level != harden::Level::Off {
        if let Err(e) = harden::rootfs::check(&root, &spec) {
            undo_mounts();
            return Err(TaskError::invalid(format!("container {}: {e}", req.id)));
        }
    }

    let stdio = StdioPaths {
        stdin: req.stdin.clone(),
        stdout: req.stdout.clone(),
        stderr: req.stderr.clone(),
        terminal: req.terminal,
        copy_output: cfg.copy_stdio,
    };
    let (create_io, mut held_io) = match io::open_stdio(&stdio, &req.id, namespace) {
        Ok(v) => v,
        Err(e) => {
            undo_mounts();
            return Err(TaskError::invalid(format!("container {}: {e}", req.id)));
        }
    };

    let joins_sandbox = runtime.backend.shares_sandbox_pid(&spec);
    // runsc hands a container joining a pod's sandbox the stdio of `start`,
    // but its terminal is made at `create` (runsc/container/container.go).
    let (create_io, start_io) = if joins_sandbox && !req.terminal {
        match io::null_stdio() {
            Ok(null) => (null, Some(create_io)),
            Err(e) => {
                undo_mounts();
                return Err(TaskError::internal(format!("container {}: {e}", req.id)));
            }
        }
    } else {
        (create_io, None)
    };
    if runtime.backend.removes_created_cgroup_parents() && !runtime.systemd_cgroup {
        // A parent the runtime made would go with this container, even
        // while other containers are in it.
        match cgroup::parents::create_parents(&spec) {
            Ok(made) if !made.is_empty() => {
                log::info!("container {}: cgroup parents made: {made:?}", req.id)
            }
            Ok(_) => {}
            Err(e) => log::warn!("container {}: {e}", req.id),
        }
    }
    let pid_file = bundle.join("init.pid");
    let _ = std::fs::remove_file(&pid_file);
    let (pid, start_io) = match &restore {
        // Nothing runs until Start restores it, with this stdio.
        Some(r) => {
            log::info!(
                "container {}: created from checkpoint {}",
                req.id,
                r.image.display()
            );
            (0, Some(create_io))
        }
        None => {
            let created = create_in_runtime(
                req,
                runner,
                &runtime,
                &spec,
                &bundle,
                &pid_file,
                create_io,
                &stdio,
                &mut held_io,
            );
            match created {
                Ok(pid) => (pid, start_io),
                Err(e) => {
                    undo_mounts();
                    return Err(e);
                }
            }
        }
    };
    let cgroup = Cgroup::of_spec(&spec, runtime.systemd_cgroup);
    // A restored container's cgroup is made at Start.
    let oom = cgroup
        .as_ref()
        .filter(|_| restore.is_none())
        .and_then(|cg| match OomWatch::new(cg) {
            Ok(w) => Some(w),
            Err(e) => {
                log::warn!("container {}: no OOM events: {e}", req.id);
                None
            }
        });
    let mut init = Process::new("", pid, stdio, held_io);
    init.exits_with_pid = !joins_sandbox;
    Ok(Container {
        id: req.id.clone(),
        bundle,
        runtime,
        mounted_rootfs,
        init,
        execs: HashMap::new(),
        exec_rules,
        hardening: Some(hardening),
        paused: false,
        cgroup,
        oom,
        start_io,
        terminal_relay,
        exec_seccomp,
        copy_stdio: cfg.copy_stdio,
        restore,
    })
}

/// `runtime create`, the terminal it sends, and the pid it leaves; on
/// failure what the runtime made is removed (the caller unmounts).
#[allow(clippy::too_many_arguments)]
fn create_in_runtime(
    req: &CreateTaskRequest,
    runner: &dyn CommandRunner,
    runtime: &Runtime,
    spec: &Value,
    bundle: &Path,
    pid_file: &Path,
    create_io: crate::runtime::CreateIo,
    stdio: &StdioPaths,
    held_io: &mut io::HeldIo,
) -> Result<u32, TaskError> {
    if let Err(e) = runtime.create(runner, &req.id, bundle, pid_file, create_io) {
        let _ = runtime.remove(runner, &req.id);
        let mut err: TaskError = e.into();
        if let Some(named) = harden::hooks::name_failed_hook(&err.message, spec) {
            err.message = named;
        }
        return Err(err);
    }
    let process = spec.get("process").unwrap_or(&Value::Null);
    let size = Backend::console_size(process);
    let relayed = runtime.backend.relayed(process);
    if let Err(e) = io::attach_console(stdio, held_io, size, relayed) {
        let _ = runtime.remove(runner, &req.id);
        return Err(TaskError::internal(format!("container {}: {e}", req.id)));
    }
    match std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    {
        Some(pid) if pid > 0 => Ok(pid),
        _ => {
            let _ = runtime.remove(runner, &req.id);
            Err(TaskError::internal(format!(
                "container {}: {} create left no valid pid in {}",
                req.id,
                runtime.backend.name(),
                pid_file.display()
            )))
        }
    }
}

/// The program the relay installs in runsc exec processes: the spec's
/// profile compiled (runsc, relay mounted, a profile). A profile this shim
/// cannot compile leaves execs as runsc runs them, and says so.
fn exec_seccomp_program(
    id: &str,
    backend: Backend,
    spec: &Value,
    relay_mounted: bool,
) -> Option<String> {
    let profile = spec.pointer("/linux/seccomp").filter(|p| !p.is_null())?;
    if backend != Backend::Runsc {
        return None;
    }
    if !relay_mounted {
        log::warn!(
            "container {id}: no relay in this runsc container (read-only rootfs or \
             runsc_host_terminal): its exec'd processes run without its seccomp profile"
        );
        return None;
    }
    match crate::runtime::bpf::compile(profile) {
        Ok(program) => Some(crate::runtime::bpf::to_hex(&program)),
        Err(e) => {
            log::warn!("container {id}: its exec'd processes run without its seccomp profile: {e}");
            None
        }
    }
}

/// runsc: installs the terminal relay on the host and mounts it into the
/// container. False if it cannot be had: terminals are then gVisor's
/// host-terminal emulation, which has no name in the sandbox.
/// Mounts the runsc terminal relay, where the backend has one. Create does
/// not call it for a rootfs that is a read-only filesystem: gVisor's gofer
/// makes a bind mount's mount point in the rootfs itself, /dev included,
/// and `runsc create` fails with "read-only file system"; terminals there
/// stay gVisor's host-terminal emulation.
fn mount_terminal_relay(
    id: &str,
    backend: Backend,
    spec: &mut Value,
    adapted: &mut Vec<&'static str>,
) -> bool {
    if !backend.relays_terminal() {
        return false;
    }
    match io::console::relay_binary() {
        Ok(path) => {
            adapted.extend(backend.add_terminal_relay(spec, &path));
            true
        }
        Err(e) => {
            log::warn!(
                "container {id}: {e}: its terminals stay gVisor's host-terminal emulation \
                 (`tty` says \"not a tty\")"
            );
            false
        }
    }
}

impl Container {
    /// The init (empty `exec_id`) or an exec process.
    pub fn process(&self, exec_id: &str) -> Option<&Process> {
        if exec_id.is_empty() {
            Some(&self.init)
        } else {
            self.execs.get(exec_id)
        }
    }

    /// The init (empty `exec_id`) or an exec process, mutable.
    pub fn process_mut(&mut self, exec_id: &str) -> Option<&mut Process> {
        if exec_id.is_empty() {
            Some(&mut self.init)
        } else {
            self.execs.get_mut(exec_id)
        }
    }

    /// Removes the runtime container and undoes the shim's mounts.
    pub fn destroy(&self, runner: &dyn CommandRunner) -> Result<(), TaskError> {
        let deleted = self
            .runtime
            .remove(runner, &self.id)
            .map_err(TaskError::from);
        if self.mounted_rootfs {
            mount::unmount_all(&self.bundle.join("rootfs"))
                .map_err(|e| TaskError::internal(format!("container {}: {e}", self.id)))?;
        }
        deleted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_with_path_tricks_are_refused() {
        for bad in ["", ".", "..", "a/b", "../x", "a b", "x\n"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        for good in ["c1", "my-container_2.0", "abc+def"] {
            check_id(good).unwrap();
        }
    }
}
