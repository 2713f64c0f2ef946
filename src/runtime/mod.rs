//! OCI runtime CLI driver: one command builder for runsc, crun and runc.
//! Backend differences live in [`backend`].

mod backend;
pub mod bpf;
pub mod netns;
pub mod syscalls_x86_64;

use crate::spawn::{ChildIo, Command};
use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use backend::{Backend, NewNetns, CONTAINER_TYPE_ANNOTATION, SANDBOX_ID_ANNOTATION};

/// Name of the file in the bundle that records how the runtime was invoked,
/// so `delete` can clean up without the server.
pub const RUNTIME_FILE: &str = "nucleus-runtime.json";
/// The runtime's JSON log in the bundle.
pub const LOG_FILE: &str = "log.json";

/// A runtime command that failed; `message` is the runtime's own words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeError {
    pub runtime: String,
    pub op: &'static str,
    pub id: String,
    pub message: String,
    /// The runtime says the container does not exist.
    pub not_found: bool,
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}: {}",
            self.runtime, self.op, self.id, self.message
        )
    }
}

impl std::error::Error for RuntimeError {}

/// What running a command produced.
#[derive(Debug, Default)]
pub struct CommandOutput {
    /// Exit code, or 128 + signal.
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Runs runtime commands. The shim's server runs them through its reaper
/// (so their exit codes are never stolen); `delete` runs them directly.
pub trait CommandRunner: Send + Sync {
    /// Spawns `cmd` and waits for it. With `capture`, stdout and stderr are
    /// collected; without, the command keeps the stdio it was given (the
    /// container's, for `create`).
    fn run(&self, cmd: Command, capture: bool) -> std::io::Result<CommandOutput>;
}

/// Where [`version`] keeps what each runtime binary said.
const VERSION_CACHE_DIR: &str = "/run/nucleus/versions";

/// The first line `binary --version` prints, if it runs and prints one.
/// Kept per binary (device, inode, size, mtime) under
/// `/run/nucleus/versions`: only the first Create after the binary
/// changes pays for running it (runsc: 30 ms).
pub fn version(runner: &dyn CommandRunner, binary: &Path) -> Option<String> {
    version_kept_in(runner, binary, Path::new(VERSION_CACHE_DIR))
}

fn version_kept_in(runner: &dyn CommandRunner, binary: &Path, dir: &Path) -> Option<String> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt};
    let Ok(meta) = std::fs::metadata(binary) else {
        return run_version(runner, binary);
    };
    let key = format!(
        "{}-{}-{}-{}.{}",
        meta.dev(),
        meta.ino(),
        meta.size(),
        meta.mtime(),
        meta.mtime_nsec()
    );
    let kept = dir.join(&key);
    if let Ok(text) = std::fs::read_to_string(&kept) {
        if let Some(line) = text.lines().next().filter(|l| !l.is_empty()) {
            return Some(line.to_string());
        }
    }
    let line = run_version(runner, binary)?;
    // Best effort: a shim that cannot keep it runs the binary next time.
    let tmp = dir.join(format!(".{key}.{}", std::process::id()));
    let _ = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir);
    if std::fs::write(&tmp, format!("{line}\n")).is_ok() && std::fs::rename(&tmp, &kept).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Some(line)
}

fn run_version(runner: &dyn CommandRunner, binary: &Path) -> Option<String> {
    let mut cmd = crate::spawn::command(binary);
    cmd.arg("--version").stdin(ChildIo::Null);
    let out = runner.run(cmd, true).ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?.trim();
    (out.status == 0 && !line.is_empty()).then(|| line.to_string())
}

/// Runs commands with std's own wait: for processes that are not subreapers.
pub struct DirectRunner;

impl CommandRunner for DirectRunner {
    fn run(&self, mut cmd: Command, capture: bool) -> std::io::Result<CommandOutput> {
        if capture {
            cmd.stdout(ChildIo::Piped).stderr(ChildIo::Piped);
        }
        let mut child = cmd.spawn()?;
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let pid = child.id();
        let waiter = std::thread::Builder::new()
            .name("wait-child".into())
            .stack_size(64 * 1024)
            .spawn(move || {
                let _ = tx.send(crate::spawn::wait(pid).unwrap_or(-1));
            });
        if let Err(e) = waiter {
            let _ = crate::spawn::wait(pid);
            return Err(e);
        }
        let (stdout, stderr, status) =
            crate::spawn::collect(child.stdout.take(), child.stderr.take(), &rx)?;
        Ok(CommandOutput {
            status,
            stdout,
            stderr,
        })
    }
}

/// Stdio handed to the container's first process by `create`.
#[derive(Debug)]
pub struct CreateIo {
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// For a terminal process: where the runtime sends the pty master.
    pub console_socket: Option<PathBuf>,
}

/// How to invoke the runtime for one container. Persisted in the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Runtime {
    pub backend: Backend,
    pub binary: PathBuf,
    pub root: PathBuf,
    /// Global flags: backend flags for this spec, then the user's.
    pub flags: Vec<String>,
    pub systemd_cgroup: bool,
    /// `--log` target (JSON lines), inside the bundle.
    pub log: PathBuf,
    /// The containerd namespace: part of the id runsc knows a container by
    /// ([`Backend::runtime_id`]).
    #[serde(default)]
    pub namespace: String,
    /// Whether runsc knows the container by an id in containerd's grammar
    /// ([`Backend::runtime_id`]); false in records earlier shims wrote
    /// ([`Backend::legacy_runtime_id`]).
    #[serde(default)]
    pub grammar_ids: bool,
}

impl Runtime {
    /// Reads the runtime record a previous Create left in `bundle`.
    pub fn load(bundle: &Path) -> std::io::Result<Option<Self>> {
        match std::fs::read(bundle.join(RUNTIME_FILE)) {
            Ok(data) => serde_json::from_slice(&data)
                .map(Some)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records this runtime in `bundle` for `delete`.
    pub fn save(&self, bundle: &Path) -> std::io::Result<()> {
        let data = serde_json::to_vec(self).map_err(std::io::Error::other)?;
        let tmp = bundle.join(format!(".{RUNTIME_FILE}.tmp"));
        std::fs::write(&tmp, data)?;
        std::fs::rename(tmp, bundle.join(RUNTIME_FILE))
    }

    /// The id the runtime knows container `id` by.
    pub fn runtime_id(&self, id: &str) -> String {
        if self.grammar_ids {
            self.backend.runtime_id(&self.namespace, id)
        } else {
            self.backend.legacy_runtime_id(&self.namespace, id)
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = crate::spawn::command(&self.binary);
        let mut global: Vec<OsString> = vec![
            "--root".into(),
            self.root.clone().into(),
            "--log".into(),
            self.log.clone().into(),
            "--log-format".into(),
            "json".into(),
        ];
        if self.systemd_cgroup {
            global.push("--systemd-cgroup".into());
        }
        global.extend(self.flags.iter().map(OsString::from));
        cmd.args(global).args(args);
        cmd.stdin(ChildIo::Null);
        cmd
    }

    fn log_len(&self) -> u64 {
        std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0)
    }

    /// Error-level messages the runtime logged after `offset`.
    fn log_errors(&self, offset: u64) -> Vec<String> {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            if f.seek(SeekFrom::Start(offset)).is_ok() {
                let _ = f.take(64 * 1024).read_to_string(&mut text);
            }
        }
        log_records(&text)
            .into_iter()
            .filter(|v| {
                matches!(
                    v.get("level").and_then(|l| l.as_str()),
                    Some("error") | Some("fatal") | Some("panic")
                )
            })
            .filter_map(|v| v.get("msg").and_then(|m| m.as_str()).map(str::to_string))
            .collect()
    }

    fn exec(
        &self,
        runner: &dyn CommandRunner,
        op: &'static str,
        id: &str,
        cmd: Command,
        capture: bool,
    ) -> Result<CommandOutput, RuntimeError> {
        let offset = self.log_len();
        let err = |message: String| RuntimeError {
            runtime: self.backend.name().to_string(),
            op,
            id: id.to_string(),
            not_found: is_not_found(&message),
            message,
        };
        let out = runner
            .run(cmd, capture)
            .map_err(|e| err(format!("cannot execute {}: {e}", self.binary.display())))?;
        if out.status == 0 {
            return Ok(out);
        }
        let mut msgs = self.log_errors(offset);
        if msgs.is_empty() {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            if !stderr.is_empty() {
                msgs.push(stderr);
            }
        }
        if msgs.is_empty() {
            msgs.push(format!("exit status {}", out.status));
        }
        Err(err(msgs.join("; ")))
    }

    /// `create --bundle B --pid-file P ID`, with the container's stdio.
    pub fn create(
        &self,
        runner: &dyn CommandRunner,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        io: CreateIo,
    ) -> Result<(), RuntimeError> {
        let bundle_s = bundle.to_string_lossy();
        let pid_s = pid_file.to_string_lossy();
        let args = ["create", "--bundle", &bundle_s, "--pid-file", &pid_s];
        // A shim of the same namespace removing the root must wait.
        let _root_in_use = self
            .owns_root()
            .then(|| lock_root(&self.root, false))
            .flatten();
        self.with_io(runner, "create", id, &args, io, bundle)
    }

    /// `restore --detach [backend flags] --bundle B --pid-file P --image-path
    /// I --work-path W [--parent-path X] ID`, with the container's stdio
    /// (runc and crun hand it over for the pipes the checkpoint recorded).
    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        &self,
        runner: &dyn CommandRunner,
        id: &str,
        bundle: &Path,
        pid_file: &Path,
        image_path: &Path,
        work_path: &Path,
        parent_path: Option<&Path>,
        io: CreateIo,
    ) -> Result<(), RuntimeError> {
        let bundle_s = bundle.to_string_lossy();
        let pid_s = pid_file.to_string_lossy();
        let (image, work) = (image_path.to_string_lossy(), work_path.to_string_lossy());
        let parent = parent_path.map(|p| p.to_string_lossy().into_owned());
        let mut args = vec!["restore", "--detach"];
        args.extend(self.backend.restore_flags());
        args.extend([
            "--bundle",
            &bundle_s,
            "--pid-file",
            &pid_s,
            "--image-path",
            &image,
            "--work-path",
            &work,
        ]);
        if let Some(p) = &parent {
            args.extend(["--parent-path", p.as_str()]);
        }
        let _root_in_use = self
            .owns_root()
            .then(|| lock_root(&self.root, false))
            .flatten();
        self.with_io(runner, "restore", id, &args, io, bundle)
    }

    /// The root is the shim's default per-namespace dir (removed with its
    /// last container), not one the operator configured.
    fn owns_root(&self) -> bool {
        self.root.starts_with("/run/nucleus")
    }

    /// Runs `ARGS [--console-socket S] ID` with `io` as the runtime's stdio,
    /// in `dir`: what `create` and `exec` share.
    fn with_io(
        &self,
        runner: &dyn CommandRunner,
        op: &'static str,
        id: &str,
        args: &[&str],
        io: CreateIo,
        dir: &Path,
    ) -> Result<(), RuntimeError> {
        let rid = self.runtime_id(id);
        let console = io
            .console_socket
            .as_ref()
            .map(|p| p.to_string_lossy().into_owned());
        let mut args = args.to_vec();
        if let Some(c) = &console {
            args.extend(["--console-socket", c.as_str()]);
        }
        args.push(&rid);
        let mut cmd = self.command(&args);
        cmd.stdin(ChildIo::Fd(io.stdin))
            .stdout(ChildIo::Fd(io.stdout))
            .stderr(ChildIo::Fd(io.stderr))
            .current_dir(dir);
        self.exec(runner, op, id, cmd, false).map(drop)
    }

    /// `exec --detach --pid-file P --process F ID` with the process's stdio;
    /// runsc also writes the sandbox-internal pid to `internal_pid_file`.
    pub fn exec_process(
        &self,
        runner: &dyn CommandRunner,
        id: &str,
        process_file: &Path,
        pid_file: &Path,
        internal_pid_file: &Path,
        io: CreateIo,
    ) -> Result<(), RuntimeError> {
        let process_s = process_file.to_string_lossy();
        let pid_s = pid_file.to_string_lossy();
        let internal_s = internal_pid_file.to_string_lossy();
        let mut args = vec![
            "exec",
            "--detach",
            "--pid-file",
            &pid_s,
            "--process",
            &process_s,
        ];
        if self.backend == Backend::Runsc {
            args.extend(["--internal-pid-file", &internal_s]);
        }
        let dir = process_file.parent().unwrap_or(Path::new("/"));
        self.with_io(runner, "exec", id, &args, io, dir)
    }

    /// `kill --pid PID ID SIGNAL` (runsc: a process inside the sandbox).
    pub fn kill_internal(
        &self,
        runner: &dyn CommandRunner,
        id: &str,
        pid: u32,
        signal: u32,
    ) -> Result<(), RuntimeError> {
        let rid = self.runtime_id(id);
        let (pid, sig) = (pid.to_string(), signal.to_string());
        let cmd = self.command(&["kill", "--pid", &pid, &rid, &sig]);
        self.exec(runner, "kill", id, cmd, true).map(drop)
    }

    /// `wait ID` (runsc): blocks until the container's init exits and
    /// returns its exit status. For containers whose host pid is shared (a
    /// pod's containers in one gVisor sandbox).
    pub fn wait(&self, runner: &dyn CommandRunner, id: &str) -> Result<u32, RuntimeError> {
        let rid = self.runtime_id(id);
        let out = self.exec(runner, "wait", id, self.command(&["wait", &rid]), true)?;
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| RuntimeError {
                runtime: self.backend.name().to_string(),
                op: "wait",
                id: id.to_string(),
                message: format!("unreadable wait output: {e}"),
                not_found: false,
            })?;
        Ok(v.get("exitStatus")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(255) as u32)
    }

    /// `events --stats ID`: one JSON stats object.
    pub fn stats(&self, runner: &dyn CommandRunner, id: &str) -> Result<Vec<u8>, RuntimeError> {
        let rid = self.runtime_id(id);
        let cmd = self.command(&["events", "--stats", &rid]);
        self.exec(runner, "events", id, cmd, true).map(|o| o.stdout)
    }

    /// `checkpoint --image-path P --work-path W [--leave-running] [flags] ID`.
    pub fn checkpoint(
        &self,
        runner: &dyn CommandRunner,
        id: &str,
        image_path: &Path,
        work_path: &Path,
        leave_running: bool,
        extra: &[&str],
    ) -> Result<(), RuntimeError> {
        let rid = self.runtime_id(id);
        let (image, work) = (image_path.to_string_lossy(), work_path.to_string_lossy());
        let mut args = vec!["checkpoint", "--image-path", &image, "--work-path", &work];
        if leave_running {
            args.push("--leave-running");
        }
        args.extend(extra);
        args.push(&rid);
        self.exec(runner, "checkpoint", id, self.command(&args), true)
            .map(drop)
    }

    /// `pause ID`.
    pub fn pause(&self, runner: &dyn CommandRunner, id: &str) -> Result<(), RuntimeError> {
        self.simple(runner, "pause", id)
    }

    /// `OP ID` with nothing else.
    fn simple(
        &self,
        runner: &dyn CommandRunner,
        op: &'static str,
        id: &str,
    ) -> Result<(), RuntimeError> {
        let rid = self.runtime_id(id);
        self.exec(runner, op, id, self.command(&[op, &rid]), true)
            .map(drop)
    }

    /// `resume ID`.
    pub fn resume(&self, runner: &dyn CommandRunner, id: &str) -> Result<(), RuntimeError> {
        self.simple(runner, "resume", id)
    }

    /// `update --resources F ID` (F: JSON LinuxResources).
    pub fn update(
        &self,
        runner: &dyn CommandRunner,
        id: &str,
        resources_file: &Path,
    ) -> Result<(), RuntimeError> {
        let rid = self.runtime_id(id);
        let file = resources_file.to_string_lossy();
        let cmd = self.command(&["update", "--resources", &file, &rid]);
        self.exec(runner, "update", id, cmd, true).map(drop)
    }

    /// `start ID`. With `io`, the runtime's stdio is the container's: runsc
    /// hands its own stdio to a container joining a pod's sandbox.
    pub fn start(
        &self,
        runner: &dyn CommandRunner,
        id: &str,
        io: Option<CreateIo>,
    ) -> Result<(), RuntimeError> {
        match io {
            Some(io) => self.with_io(runner, "start", id, &["start"], io, Path::new("/")),
            None => self.simple(runner, "start", id),
        }
    }

    /// `kill [--all] ID SIGNAL`.
    pub fn kill(
        &self,
        runner: &dyn CommandRunner,
        id: &str,
        signal: u32,
        all: bool,
    ) -> Result<(), RuntimeError> {
        let rid = self.runtime_id(id);
        let sig = signal.to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([rid.as_str(), sig.as_str()]);
        self.exec(runner, "kill", id, self.command(&args), true)
            .map(drop)
    }

    /// `delete [--force] ID`.
    pub fn delete(
        &self,
        runner: &dyn CommandRunner,
        id: &str,
        force: bool,
    ) -> Result<(), RuntimeError> {
        let rid = self.runtime_id(id);
        let args: &[&str] = if force {
            &["delete", "--force", &rid]
        } else {
            &["delete", &rid]
        };
        self.exec(runner, "delete", id, self.command(args), true)
            .map(drop)
    }

    /// `delete --force ID`, then the per-namespace state dir goes once its
    /// last container is gone (`remove_unused_root`). Nothing is run
    /// when that dir does not exist: there is nothing to delete, and the
    /// runtime would create it again.
    pub fn remove(&self, runner: &dyn CommandRunner, id: &str) -> Result<(), RuntimeError> {
        if !self.root.exists() {
            return Ok(());
        }
        let result = match self.delete(runner, id, true) {
            Err(e) if e.not_found => Ok(()),
            other => other,
        };
        if self.owns_root() {
            // Not while another shim's runtime creates a container there:
            // the runtime makes the root before the container's own dir.
            let _roots = lock_root(&self.root, true);
            remove_unused_root(self.backend, &self.root);
        }
        result
    }

    /// The pids of container `id`'s processes as containerd's clients read
    /// them: host pids, among them the task's (`init_pid`) and its execs'.
    /// runc and crun: their `ps`. runsc: the processes live in the
    /// sandbox and `ps` gives their sandbox pids, so the init (the first
    /// process without a parent that is no exec) and each exec the shim
    /// started (`execs`: host pid, sandbox pid) are given by their host
    /// pids; the rest keep their sandbox pids (they have no host process).
    /// A runsc container that is created and not started has no process
    /// yet: its task pid.
    pub fn host_pids(
        &self,
        runner: &dyn CommandRunner,
        id: &str,
        init_pid: u32,
        created: bool,
        execs: &[(u32, u32)],
    ) -> Result<Vec<u32>, RuntimeError> {
        if self.backend == Backend::Runsc && created {
            return Ok(vec![init_pid]);
        }
        let rid = self.runtime_id(id);
        let error = |message| RuntimeError {
            runtime: self.backend.name().to_string(),
            op: "ps",
            id: id.to_string(),
            message,
            not_found: false,
        };
        if self.backend != Backend::Runsc {
            let out = self.exec(
                runner,
                "ps",
                id,
                self.command(&["ps", "--format", "json", &rid]),
                true,
            )?;
            return parse_ps(&out.stdout).map_err(error);
        }
        // runsc's JSON has no parent pids before 2023: its table has them.
        let out = self.exec(runner, "ps", id, self.command(&["ps", &rid]), true)?;
        let entries = parse_ps_table(&out.stdout).map_err(error)?;
        Ok(sandbox_to_host_pids(entries, init_pid, execs))
    }
}

/// runsc's sandbox pids as host pids where there is one: the init (the
/// first parentless process that is no exec) is `init_pid`, each exec
/// (host, sandbox) its host pid.
fn sandbox_to_host_pids(
    mut entries: Vec<PsEntry>,
    init_pid: u32,
    execs: &[(u32, u32)],
) -> Vec<u32> {
    entries.sort_by_key(|e| e.pid);
    let mut init_seen = false;
    entries
        .into_iter()
        .map(|e| {
            if let Some((host, _)) = execs.iter().find(|(_, sandbox)| *sandbox == e.pid) {
                *host
            } else if e.ppid == Some(0) && !init_seen {
                init_seen = true;
                init_pid
            } else {
                e.pid
            }
        })
        .collect()
}

/// Locks the directory that holds the per-namespace roots
/// (`/run/nucleus/<runtime>`): shared while a runtime creates a container in
/// one of them, exclusive to remove one, so no root goes between the
/// runtime's mkdir of it and of the container's own dir. A create holds it
/// for one runtime call, so a removal waits at most that long. None: the
/// directory could not be locked (the caller goes on unlocked).
fn lock_root(root: &Path, exclusive: bool) -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let parent = root.parent()?;
    let dir = std::fs::create_dir_all(parent).and_then(|()| {
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(parent)
    });
    let dir = match dir {
        Ok(d) => d,
        Err(e) => {
            log::debug!("runtime roots {}: {e}", parent.display());
            return None;
        }
    };
    let op = if exclusive {
        libc::LOCK_EX
    } else {
        libc::LOCK_SH
    };
    loop {
        // SAFETY: flock on a file descriptor this function owns.
        if unsafe { libc::flock(dir.as_raw_fd(), op) } == 0 {
            return Some(dir);
        }
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINTR) {
            log::debug!("runtime roots {}: flock: {e}", parent.display());
            return None;
        }
    }
}

/// Removes a runtime root that holds no container any more: one with
/// nothing but the backend's own leftovers ([`Backend::root_leftovers`],
/// which go first). A root with anything else in it stays as it is. Another
/// shim of the namespace may be creating a container there at the same time:
/// the runtime makes that container's state dir first, and a root that
/// shows one stays.
fn remove_unused_root(backend: Backend, root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    let mut leftovers = Vec::new();
    for e in entries {
        let Ok(e) = e else {
            return;
        };
        let name = e.file_name();
        if !backend.root_leftovers().iter().any(|l| name == *l) {
            return;
        }
        leftovers.push(e.path());
    }
    for path in leftovers {
        let removed = match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path),
            Ok(_) => std::fs::remove_file(&path),
            Err(e) => Err(e),
        };
        if let Err(e) = removed {
            log::debug!("runtime root {}: {}: {e}", root.display(), path.display());
        }
    }
    let _ = std::fs::remove_dir(root);
}

/// One process of runsc's `ps` table: its pid and its parent's
/// (0: none in the sandbox).
#[derive(Debug, PartialEq, Eq)]
struct PsEntry {
    pid: u32,
    ppid: Option<u32>,
}

/// runc and crun print `[pid, ...]` (runsc: `[{"PID": n, ...}, ...]`).
fn parse_ps(stdout: &[u8]) -> Result<Vec<u32>, String> {
    let text = String::from_utf8_lossy(stdout);
    let text = text.trim();
    if text.is_empty() || text == "null" {
        return Ok(Vec::new());
    }
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("unreadable ps output: {e}"))?;
    let items = v.as_array().ok_or("ps output is not a JSON array")?;
    Ok(items
        .iter()
        .filter_map(|i| {
            i.as_u64()
                .or_else(|| i.get("PID").and_then(|p| p.as_u64()))
                .and_then(|p| u32::try_from(p).ok())
        })
        .collect())
}

/// runsc's `ps` table: a header naming the columns (`UID PID PPID ...`),
/// then one row per process.
fn parse_ps_table(stdout: &[u8]) -> Result<Vec<PsEntry>, String> {
    let text = String::from_utf8_lossy(stdout);
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Ok(Vec::new());
    };
    let columns: Vec<&str> = header.split_whitespace().collect();
    let column = |name: &str| {
        columns
            .iter()
            .position(|c| *c == name)
            .ok_or_else(|| format!("ps output has no {name} column: {header:?}"))
    };
    let (pid_at, ppid_at) = (column("PID")?, column("PPID")?);
    lines
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let num = |at: usize| f.get(at).and_then(|v| v.parse::<u32>().ok());
            let pid = num(pid_at).ok_or_else(|| format!("unreadable ps row {l:?}"))?;
            Ok(PsEntry {
                pid,
                ppid: num(ppid_at),
            })
        })
        .collect()
}

/// The JSON records of a runtime's `--log-format json` log: one per line
/// (runc, crun), or written back to back with no newline between them
/// (runsc: `{..}{..}`). A line that is not JSON, or a record cut short, ends
/// what is read of that line.
fn log_records(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .flat_map(|line| {
            serde_json::Deserializer::from_str(line)
                .into_iter::<serde_json::Value>()
                .map_while(Result::ok)
        })
        .collect()
}

fn is_not_found(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("does not exist")
        || m.contains("not found")
        || m.contains("no such container")
        || m.contains("no such process")
        // crun, for a container whose state someone else removed:
        // "error opening file `<root>/<id>/status`: No such file or directory".
        || (m.contains("/status") && m.contains("no such file or directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_version_is_kept_until_the_binary_changes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let bin = dir.path().join("fake-runsc");
        let count = dir.path().join("count");
        let script = |v: &str| {
            format!(
                "#!/bin/sh\necho x >> {}\necho 'runsc version {v}'\necho spec: 1\n",
                count.display()
            )
        };
        std::fs::write(&bin, script("1")).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let kept = dir.path().join("versions");
        let runs = || {
            std::fs::read_to_string(&count)
                .unwrap_or_default()
                .lines()
                .count()
        };
        let v = version_kept_in(&DirectRunner, &bin, &kept);
        assert_eq!(v.as_deref(), Some("runsc version 1"));
        assert_eq!(version_kept_in(&DirectRunner, &bin, &kept), v);
        assert_eq!(runs(), 1, "the second answer came from the kept file");
        // A new binary (other size and mtime) is asked again.
        std::thread::sleep(std::time::Duration::from_millis(20));
        std::fs::write(&bin, script("22")).unwrap();
        assert_eq!(
            version_kept_in(&DirectRunner, &bin, &kept).as_deref(),
            Some("runsc version 22")
        );
        assert_eq!(runs(), 2);
        assert_eq!(
            version_kept_in(&DirectRunner, &dir.path().join("none"), &kept),
            None
        );
    }

    #[test]
    fn log_records_one_per_line_or_back_to_back() {
        let runc = "{\"level\":\"error\",\"msg\":\"a\"}\n{\"level\":\"info\",\"msg\":\"b\"}\n";
        assert_eq!(log_records(runc).len(), 2);
        // runsc 20221219: no newline between records.
        let runsc = r#"{"msg":"error setting up FS: x","level":"error"}{"msg":"creating container: y","level":"error"}"#;
        let records = log_records(runsc);
        let msgs: Vec<&str> = records
            .iter()
            .filter_map(|v| v["msg"].as_str())
            .map(|m| m.split(':').next().unwrap_or(""))
            .collect();
        assert_eq!(msgs, ["error setting up FS", "creating container"]);
        // Text, and a record cut short: what came before is kept.
        assert!(log_records("panic: boom\n").is_empty());
        assert_eq!(log_records("{\"msg\":\"a\"}{\"msg\":\"b").len(), 1);
    }

    #[test]
    fn a_container_gone_from_the_runtime_is_not_found() {
        for m in [
            "container \"x\" does not exist",
            "error opening file `/run/nucleus/crun/ns/x/status`: No such file or directory",
            "no such container",
        ] {
            assert!(is_not_found(m), "{m}");
        }
        assert!(!is_not_found("open /dev/foo: No such file or directory"));
        assert!(!is_not_found("permission denied"));
    }

    #[test]
    fn ps_output_of_each_runtime() {
        assert_eq!(parse_ps(b"[12,34]\n").unwrap(), vec![12, 34]);
        assert_eq!(
            parse_ps(br#"[{"UID":0,"PID":1,"PPID":0,"Cmd":"sh"}]"#).unwrap(),
            vec![1]
        );
        assert_eq!(parse_ps(b"null").unwrap(), Vec::<u32>::new());
        assert!(parse_ps(b"garbage").is_err());
        assert!(parse_ps_table(b"UID CMD\n0 sh\n").is_err());
        assert!(parse_ps_table(b"").unwrap().is_empty());
    }

    #[test]
    fn runsc_pids_are_given_as_host_pids_where_there_is_one() {
        // runsc 20221219's table; later ones add a PGID column.
        let entries = parse_ps_table(
            b"UID       PID       PPID      C         TTY       STIME     TIME      CMD\n\
              0         7         0         0         ?         00:59     0s        sh\n\
              0         1         0         0         ?         00:59     0s        sh\n\
              0         2         1         1         ?         00:59     20ms      sleep\n",
        )
        .unwrap();
        // The init is pid 1 in the sandbox, exec 7 runs as host pid 5000.
        assert_eq!(
            sandbox_to_host_pids(entries, 4242, &[(5000, 7)]),
            vec![4242, 2, 5000]
        );
        // A container joining a pod's sandbox: its init is not pid 1.
        let entries =
            parse_ps_table(b"UID PID PPID PGID CMD\n0 9 0 9 sh\n0 12 9 9 sleep\n").unwrap();
        assert_eq!(sandbox_to_host_pids(entries, 4242, &[]), vec![4242, 12]);
    }

    #[test]
    fn error_message_comes_from_log_then_stderr() {
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime {
            backend: Backend::Runc,
            binary: "/bin/sh".into(),
            root: dir.path().join("root"),
            flags: vec![],
            systemd_cgroup: false,
            log: dir.path().join("log.json"),
            namespace: "default".into(),
            grammar_ids: true,
        };
        std::fs::write(&rt.log, "{\"level\":\"error\",\"msg\":\"old failure\"}\n").unwrap();
        // /bin/sh with runc-style args fails; the log has no new line, so stderr is used.
        let e = rt.start(&DirectRunner, "c1", None).unwrap_err();
        assert!(!e.message.contains("old failure"), "{e}");
        assert!(e.to_string().starts_with("runc start c1: "), "{e}");
    }

    #[test]
    fn a_root_being_created_in_is_not_removed() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("crun").join("ns");
        let creating = lock_root(&root, false).expect("shared lock");
        // A second creator shares it; a remover waits for both.
        let second = lock_root(&root, false).expect("second shared lock");
        let removed = AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                let _l = lock_root(&root, true).expect("exclusive lock");
                removed.store(true, Ordering::SeqCst);
            });
            std::thread::sleep(std::time::Duration::from_millis(100));
            assert!(!removed.load(Ordering::SeqCst), "removal did not wait");
            drop((creating, second));
        });
        assert!(removed.load(Ordering::SeqCst));
        // Nothing but the roots' own directory was made.
        assert_eq!(std::fs::read_dir(d.path().join("crun")).unwrap().count(), 0);
    }

    #[test]
    fn a_root_with_only_runtime_leftovers_goes() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        // What crun 1.28 leaves once its last container is deleted.
        let crun_root = |name: &str| {
            let root = dir.path().join(name);
            std::fs::create_dir_all(root.join(".cache/seccomp")).unwrap();
            std::fs::write(root.join(".cache/seccomp/0a1b"), b"bpf").unwrap();
            let empty = root.join(".empty-directory");
            std::fs::create_dir(&empty).unwrap();
            std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o555)).unwrap();
            root
        };
        let root = crun_root("idle");
        remove_unused_root(Backend::Crun, &root);
        assert!(!root.exists(), "crun's own leftovers keep its root");
        // A container still there: everything stays.
        let root = crun_root("busy");
        std::fs::create_dir(root.join("c1")).unwrap();
        remove_unused_root(Backend::Crun, &root);
        assert!(root.join("c1").is_dir() && root.join(".cache/seccomp/0a1b").is_file());
        // Not runc's: a `.cache` in a runc root is someone else's.
        let root = crun_root("runc");
        remove_unused_root(Backend::Runc, &root);
        assert!(root.join(".cache").is_dir());
        // An empty root goes on every backend; a missing one is no error.
        for b in Backend::ALL {
            let root = dir.path().join(format!("empty-{}", b.name()));
            std::fs::create_dir(&root).unwrap();
            remove_unused_root(b, &root);
            assert!(!root.exists());
            remove_unused_root(b, &root);
        }
    }

    #[test]
    fn missing_binary_is_named() {
        let rt = Runtime {
            backend: Backend::Crun,
            binary: "/nonexistent/crun".into(),
            root: "/tmp/x".into(),
            flags: vec![],
            systemd_cgroup: false,
            log: "/tmp/x/log.json".into(),
            namespace: "default".into(),
            grammar_ids: true,
        };
        let e = rt.kill(&DirectRunner, "c", 9, false).unwrap_err();
        assert!(e.message.contains("/nonexistent/crun"), "{e}");
    }

    #[test]
    fn runtime_record_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let rt = Runtime {
            backend: Backend::Runsc,
            binary: "/usr/bin/runsc".into(),
            root: "/run/nucleus/runsc/default".into(),
            flags: vec!["--network=none".into()],
            systemd_cgroup: false,
            log: dir.path().join(LOG_FILE),
            namespace: "default".into(),
            grammar_ids: true,
        };
        assert_eq!(rt.runtime_id("c1"), "2.7.c1.default");
        rt.save(dir.path()).unwrap();
        assert_eq!(Runtime::load(dir.path()).unwrap(), Some(rt.clone()));
        // A record an earlier shim wrote: runsc knows its container by the
        // id that shim gave, so `delete` still reaches it.
        std::fs::write(
            dir.path().join(RUNTIME_FILE),
            r#"{"backend":"runsc","binary":"/usr/bin/runsc","root":"/r","flags":[],"systemd_cgroup":false,"log":"/l","namespace":"default"}"#,
        )
        .unwrap();
        let old = Runtime::load(dir.path()).unwrap().unwrap();
        assert!(!old.grammar_ids);
        assert_eq!(old.runtime_id("c1"), "default+c1+");
        // Records written before the namespace was kept still load.
        std::fs::write(
            dir.path().join(RUNTIME_FILE),
            r#"{"backend":"runc","binary":"/usr/sbin/runc","root":"/r","flags":[],"systemd_cgroup":false,"log":"/l"}"#,
        )
        .unwrap();
        assert_eq!(Runtime::load(dir.path()).unwrap().unwrap().namespace, "");
        assert_eq!(Runtime::load(&dir.path().join("nope")).unwrap(), None);
    }
}
