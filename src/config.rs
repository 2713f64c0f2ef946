//! Shim configuration: a `nucleus.toml` (from the runtime options containerd
//! passes, else a default path) plus runc-style options, resolved into one
//! [`Config`] per container.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::harden::Policy;
use crate::options::RuntimeOptions;
use crate::runtime::Backend;

/// Where the config is read from when containerd passes none.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/nucleus/nucleus.toml";
/// Environment variable that overrides [`DEFAULT_CONFIG_PATH`].
pub const CONFIG_ENV: &str = "NUCLEUS_CONFIG";
/// Annotation a container uses to choose its runtime (`runsc`, `crun` or
/// `runc`) among those `[runtime] selectable` allows: how nerdctl
/// (`--label`, 2.x `--annotation`), Docker (`--annotation`) and ctr
/// (`--label`) users pick a backend per container without runtime options.
pub const RUNTIME_ANNOTATION: &str = "io.nucleus.runtime";
/// The runtime `spec` (containerd's, as the bundle holds it) asks for by
/// [`RUNTIME_ANNOTATION`]; None when it asks for none. Not for CRI's
/// containers: a pod's containers share its sandbox, so its handler (a
/// RuntimeClass) alone decides.
pub fn chosen_runtime(spec: &serde_json::Value) -> Option<String> {
    let annotations = spec.pointer("/annotations")?;
    if annotations
        .get(crate::runtime::CONTAINER_TYPE_ANNOTATION)
        .is_some()
    {
        return None;
    }
    annotations
        .get(RUNTIME_ANNOTATION)
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
}

/// What `[runtime] selectable` allows when the config does not say:
/// runsc, the strongest isolation of the three.
const DEFAULT_SELECTABLE: [&str; 1] = ["runsc"];
/// Largest config file accepted.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

message_error!(
    /// A config that cannot be used; the message names the file and the problem.
    ConfigError
);

/// The `nucleus.toml` file as written.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub runtime: RuntimeSection,
    /// `[policy]`: how specs are hardened.
    #[serde(default)]
    pub policy: Policy,
}

/// `[runtime]`: which OCI runtime to drive and how.
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuntimeSection {
    /// `runsc`, `crun`, `runc` or `auto` (default).
    pub name: Option<String>,
    /// Binary path or name on PATH; default: the backend's name.
    pub path: Option<String>,
    /// The runtime's state directory (`--root`).
    pub root: Option<String>,
    /// Extra global flags, e.g. `["--platform=systrap"]` for runsc.
    #[serde(default)]
    pub flags: Vec<String>,
    /// Use the systemd cgroup driver (runc/crun `--systemd-cgroup`).
    #[serde(default)]
    pub systemd_cgroup: bool,
    /// runsc builds that take every network namespace for the host's (see
    /// `runtime::netns`): run such pods on the kernel's network stack inside
    /// the pod's namespace (`--network=host`, weaker isolation) instead of
    /// refusing them.
    #[serde(default)]
    pub runsc_pod_host_stack: bool,
    /// runsc terminals without the shim's relay: the program gets gVisor's
    /// host-terminal emulation directly and stays the container's pid 1, but
    /// has no terminal name (`tty`: "not a tty") nor a controlling terminal
    /// of the sandbox's own (see `Backend::relays_terminal`).
    #[serde(default)]
    pub runsc_host_terminal: bool,
    /// How a process's output reaches the client's FIFOs: `direct` (the
    /// default: the process writes into the FIFOs, the shim copies nothing)
    /// or `copy` (the process writes into pipes the shim copies from, as
    /// containerd-shim-runc-v2 does: what CRIU needs to checkpoint it, since
    /// the FIFOs live on a mount the container cannot see).
    pub stdio: Option<String>,
    /// Runtimes a container may choose with the `io.nucleus.runtime`
    /// annotation, each a backend name (found on PATH) or an absolute path
    /// to its binary; default `["runsc"]`, `[]` to refuse every choice. The
    /// configured runtime itself needs no entry.
    pub selectable: Option<Vec<String>>,
}

/// Everything the shim needs to drive a runtime for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub backend: Backend,
    pub binary: PathBuf,
    pub root: PathBuf,
    pub flags: Vec<String>,
    pub systemd_cgroup: bool,
    /// See [`RuntimeSection::runsc_pod_host_stack`].
    pub runsc_pod_host_stack: bool,
    /// See [`RuntimeSection::runsc_host_terminal`].
    pub runsc_host_terminal: bool,
    /// `stdio = "copy"`: see [`RuntimeSection::stdio`].
    pub copy_stdio: bool,
    /// The hardening policy.
    pub policy: Policy,
    /// Where the settings came from, for logs and errors.
    pub source: String,
}

impl FileConfig {
    /// Parses and validates a config body; `origin` names it in errors.
    pub fn parse(body: &str, origin: &str) -> Result<Self, ConfigError> {
        let cfg: FileConfig = toml::from_str(body)
            .map_err(|e| ConfigError(format!("config {origin}: {}", e.to_string().trim())))?;
        cfg.validate(origin)?;
        Ok(cfg)
    }

    /// Reads, parses and validates a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let origin = path.display().to_string();
        let meta = std::fs::metadata(path)
            .map_err(|e| ConfigError(format!("config {origin}: cannot read: {e}")))?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(ConfigError(format!(
                "config {origin}: {} bytes is larger than the {MAX_CONFIG_BYTES} byte limit",
                meta.len()
            )));
        }
        let body = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("config {origin}: cannot read: {e}")))?;
        Self::parse(&body, &origin)
    }

    fn validate(&self, origin: &str) -> Result<(), ConfigError> {
        self.policy.validate(origin).map_err(ConfigError)?;
        let r = &self.runtime;
        if let Some(name) = &r.name {
            if name != "auto" && Backend::from_name(name).is_none() {
                return Err(ConfigError(format!(
                    "config {origin}: runtime.name = {name:?} is not one of \"runsc\", \"crun\", \"runc\", \"auto\""
                )));
            }
        }
        if let Some(path) = &r.path {
            if path.is_empty() || (path.contains('/') && !path.starts_with('/')) {
                return Err(ConfigError(format!(
                    "config {origin}: runtime.path = {path:?} must be an absolute path or a bare name on PATH"
                )));
            }
        }
        if let Some(root) = &r.root {
            if !root.starts_with('/') {
                return Err(ConfigError(format!(
                    "config {origin}: runtime.root = {root:?} must be an absolute path"
                )));
            }
        }
        if let Some(stdio) = &r.stdio {
            if stdio != "direct" && stdio != "copy" {
                return Err(ConfigError(format!(
                    "config {origin}: runtime.stdio = {stdio:?} is not one of \"direct\", \"copy\""
                )));
            }
        }
        for entry in r.selectable.iter().flatten() {
            let named = if entry.starts_with('/') {
                // The file name says which backend (what from_binary reads).
                let file = entry.rsplit('/').next().unwrap_or("");
                Backend::ALL
                    .iter()
                    .any(|b| file.contains(b.name()))
                    .then(|| Backend::from_binary(entry))
            } else {
                Backend::from_name(entry)
            };
            if named.is_none() || entry.len() < 2 {
                return Err(ConfigError(format!(
                    "config {origin}: runtime.selectable entry {entry:?} must be \"runsc\", \"crun\", \"runc\" or an absolute path to one of them"
                )));
            }
        }
        for flag in &r.flags {
            if !flag.starts_with("--") || flag.len() < 3 {
                return Err(ConfigError(format!(
                    "config {origin}: runtime.flags entry {flag:?} must be a long flag like \"--name=value\""
                )));
            }
        }
        Ok(())
    }
}

/// The default config path: `$NUCLEUS_CONFIG`, else [`DEFAULT_CONFIG_PATH`].
pub fn default_config_path() -> PathBuf {
    std::env::var_os(CONFIG_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_PATH))
}

/// Finds `name` in the directories of `path_env` (or returns it if it is a path).
pub fn find_binary(name: &str, path_env: Option<&str>) -> Option<PathBuf> {
    if name.contains('/') {
        let p = PathBuf::from(name);
        return is_executable(&p).then_some(p);
    }
    let dirs = path_env.unwrap_or("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    dirs.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(name))
        .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

/// Resolves the config for one container from the options containerd sent.
///
/// Strongest first: the config file (runtimeoptions ConfigPath/ConfigBody,
/// else `$NUCLEUS_CONFIG`, else [`DEFAULT_CONFIG_PATH`] if it exists), then a
/// runc `Options` BinaryName/Root, then auto-detection (runsc, crun, runc).
/// `chosen` is the container's [`RUNTIME_ANNOTATION`]: another backend
/// where `[runtime] selectable` allows it, else an error naming the knob.
pub fn resolve(
    opts: &RuntimeOptions,
    namespace: &str,
    default_config: &Path,
    path_env: Option<&str>,
    chosen: Option<&str>,
) -> Result<Config, ConfigError> {
    let (file, source) = match opts {
        RuntimeOptions::Config { body, .. } if !body.is_empty() => (
            FileConfig::parse(body, "ConfigBody")?,
            "ConfigBody".to_string(),
        ),
        RuntimeOptions::Config { path, .. } if !path.is_empty() => {
            (FileConfig::load(Path::new(path))?, path.clone())
        }
        _ => {
            if default_config.exists() {
                (
                    FileConfig::load(default_config)?,
                    default_config.display().to_string(),
                )
            } else {
                (FileConfig::default(), "defaults".to_string())
            }
        }
    };
    let r = &file.runtime;
    let (runc_binary, runc_root, runc_systemd) = match opts {
        RuntimeOptions::Runc {
            binary_name,
            root,
            systemd_cgroup,
            ..
        } => (binary_name.as_str(), root.as_str(), *systemd_cgroup),
        _ => ("", "", false),
    };
    let named = r
        .name
        .as_deref()
        .filter(|n| *n != "auto")
        .and_then(Backend::from_name);
    let (backend, binary) = if let Some(path) = r.path.as_deref() {
        let backend = named.unwrap_or_else(|| Backend::from_binary(path));
        (backend, locate(path, path_env, &source)?)
    } else if let Some(backend) = named {
        (backend, locate(backend.name(), path_env, &source)?)
    } else if !runc_binary.is_empty() {
        (
            Backend::from_binary(runc_binary),
            locate(runc_binary, path_env, "runc options BinaryName")?,
        )
    } else {
        Backend::ALL
            .iter()
            .find_map(|b| find_binary(b.name(), path_env).map(|p| (*b, p)))
            .ok_or_else(|| {
                ConfigError(
                    "no OCI runtime found: none of runsc, crun, runc is on PATH (install one or set runtime.path in nucleus.toml)"
                        .to_string(),
                )
            })?
    };
    let default_root = |backend: Backend| {
        Path::new("/run/nucleus")
            .join(backend.name())
            .join(namespace)
    };
    let (backend, binary, root, flags, source) = match selected(r, backend, chosen, &source)? {
        // The configured root and flags are the configured runtime's.
        Some((want, entry)) => {
            let origin =
                format!("{source}, runtime.selectable, for annotation {RUNTIME_ANNOTATION}");
            let binary = locate(entry, path_env, &origin)?;
            (want, binary, default_root(want), Vec::new(), origin)
        }
        None => {
            let root = match (&r.root, runc_root) {
                (Some(root), _) => PathBuf::from(root),
                // runc's Options.Root, as containerd-shim-runc-v2 reads it:
                // the parent of one root per namespace (tools that reach the
                // container with `runc --root <Root>/<namespace>` find it).
                (None, root) if !root.is_empty() => Path::new(root).join(namespace),
                _ => default_root(backend),
            };
            (backend, binary, root, r.flags.clone(), source)
        }
    };
    Ok(Config {
        backend,
        binary,
        root,
        flags,
        systemd_cgroup: r.systemd_cgroup || runc_systemd,
        runsc_pod_host_stack: r.runsc_pod_host_stack,
        runsc_host_terminal: r.runsc_host_terminal,
        copy_stdio: r.stdio.as_deref() == Some("copy"),
        policy: file.policy.clone(),
        source,
    })
}

/// The backend and `selectable` entry a container's [`RUNTIME_ANNOTATION`]
/// `chosen` switches to from `configured`; None when it names none or the
/// configured one.
fn selected<'a>(
    r: &'a RuntimeSection,
    configured: Backend,
    chosen: Option<&str>,
    source: &str,
) -> Result<Option<(Backend, &'a str)>, ConfigError> {
    let Some(name) = chosen else {
        return Ok(None);
    };
    let want = Backend::from_name(name).ok_or_else(|| {
        ConfigError(format!(
            "annotation {RUNTIME_ANNOTATION} = {name:?} is not one of \"runsc\", \"crun\", \"runc\""
        ))
    })?;
    if want == configured {
        return Ok(None);
    }
    let allowed: Vec<&str> = match &r.selectable {
        Some(list) => list.iter().map(String::as_str).collect(),
        None => DEFAULT_SELECTABLE.to_vec(),
    };
    allowed
        .iter()
        .find(|e| match e.starts_with('/') {
            true => Backend::from_binary(e) == want,
            false => Backend::from_name(e) == Some(want),
        })
        .map(|e| Some((want, *e)))
        .ok_or_else(|| {
            ConfigError(format!(
                "the container asks for runtime {name:?} (annotation {RUNTIME_ANNOTATION}), which \
                 runtime.selectable in {source} does not allow (it allows {allowed:?}; the \
                 configured runtime is {:?})",
                configured.name()
            ))
        })
}

fn locate(name: &str, path_env: Option<&str>, source: &str) -> Result<PathBuf, ConfigError> {
    find_binary(name, path_env).ok_or_else(|| {
        ConfigError(format!(
            "runtime binary {name:?} (from {source}) not found{}",
            if name.contains('/') {
                " or not executable"
            } else {
                " on PATH"
            }
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_bin_dir(names: &[&str]) -> tempfile::TempDir {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        for n in names {
            let p = dir.path().join(n);
            std::fs::write(&p, "#!/bin/sh\n").unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        dir
    }

    #[test]
    fn parses_full_runtime_section() {
        let c = FileConfig::parse(
            "[runtime]\nname = \"runsc\"\nroot = \"/run/x\"\nflags = [\"--platform=systrap\"]\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.runtime.name.as_deref(), Some("runsc"));
        assert_eq!(c.runtime.flags, vec!["--platform=systrap"]);
        assert!(!c.runtime.runsc_host_terminal, "the relay by default");
        let c = FileConfig::parse("[runtime]\nrunsc_host_terminal = true\n", "t").unwrap();
        assert!(c.runtime.runsc_host_terminal);
    }

    #[test]
    fn parses_policy_section() {
        let c = FileConfig::parse(
            "[policy]\nlevel = \"strict\"\nallow_privileged = true\npids_limit = 100\n\
             trusted_hook_dirs = [\"/opt/hooks/\"]\nnofile = [1024, 4096]\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.policy.level, crate::harden::Level::Strict);
        assert!(c.policy.allow_privileged);
        assert_eq!(c.policy.pids_limit, 100);
        assert_eq!(c.policy.trusted_hook_dirs, vec!["/opt/hooks/"]);
        assert_eq!(
            c.policy.allowed_capabilities.len(),
            13,
            "unset knobs keep their defaults"
        );
        let d = FileConfig::parse("", "t").unwrap();
        assert_eq!(d.policy, Policy::default());
        for (body, named) in [
            ("[policy]\nlevel = \"lax\"\n", "lax"),
            ("[policy]\nallow_everything = true\n", "allow_everything"),
            ("[policy]\ntrusted_hook_dirs = [\"tmp/\"]\n", "tmp/"),
        ] {
            let e = FileConfig::parse(body, "nucleus.toml").unwrap_err();
            assert!(e.0.contains("nucleus.toml") && e.0.contains(named), "{e}");
        }
    }

    #[test]
    fn shipped_configs_and_the_readme_example_parse() {
        for (name, body) in [
            ("runsc", include_str!("../contrib/nucleus-runsc.toml")),
            ("crun", include_str!("../contrib/nucleus-crun.toml")),
            ("runc", include_str!("../contrib/nucleus-runc.toml")),
        ] {
            let c = FileConfig::parse(body, name).unwrap();
            assert_eq!(c.runtime.name.as_deref(), Some(name));
        }
        let c =
            FileConfig::parse(include_str!("../contrib/nucleus-clients.toml"), "clients").unwrap();
        assert_eq!(
            c.runtime.selectable,
            Some(vec!["runsc".into(), "crun".into()])
        );
        let readme = include_str!("../README.md");
        let start = readme
            .find("```toml\n[policy]")
            .expect("README has a [policy] example")
            + 8;
        let end = start + readme[start..].find("```").unwrap();
        let c = FileConfig::parse(&readme[start..end], "README").unwrap();
        assert_eq!(c.policy.extra_masked_paths, vec!["/proc/modules"]);
    }

    #[test]
    fn unknown_key_is_named() {
        let e = FileConfig::parse("[runtime]\nbinary = \"x\"\n", "nucleus.toml").unwrap_err();
        assert!(
            e.0.contains("nucleus.toml") && e.0.contains("binary"),
            "{e}"
        );
        let e = FileConfig::parse("[runtim]\n", "f").unwrap_err();
        assert!(e.0.contains("runtim"), "{e}");
    }

    #[test]
    fn bad_values_are_named() {
        let e = FileConfig::parse("[runtime]\nname = \"kata\"\n", "f").unwrap_err();
        assert!(e.0.contains("kata"), "{e}");
        let e = FileConfig::parse("[runtime]\nroot = \"rel\"\n", "f").unwrap_err();
        assert!(e.0.contains("absolute"), "{e}");
        let e = FileConfig::parse("[runtime]\nflags = [\"-x\"]\n", "f").unwrap_err();
        assert!(e.0.contains("-x"), "{e}");
        let e = FileConfig::parse("[runtime]\nname = 3\n", "f").unwrap_err();
        assert!(e.0.contains("name"), "{e}");
        let e = FileConfig::parse("not toml at all [", "f").unwrap_err();
        assert!(e.0.starts_with("config f:"), "{e}");
    }

    #[test]
    fn missing_config_file_is_named() {
        let opts = RuntimeOptions::Config {
            path: "/nonexistent/nucleus.toml".into(),
            body: String::new(),
        };
        let e = resolve(
            &opts,
            "default",
            Path::new("/none"),
            Some("/nonexistent"),
            None,
        )
        .unwrap_err();
        assert!(e.0.contains("/nonexistent/nucleus.toml"), "{e}");
    }

    #[test]
    fn auto_detect_prefers_runsc_then_crun_then_runc() {
        let d = fake_bin_dir(&["runc", "crun"]);
        let path = d.path().to_str().unwrap();
        let opts = RuntimeOptions::Config {
            path: String::new(),
            body: "[runtime]\nname = \"auto\"\n".into(),
        };
        let c = resolve(&opts, "ns", Path::new("/none"), Some(path), None).unwrap();
        assert_eq!(c.backend, Backend::Crun);
        assert_eq!(c.root, PathBuf::from("/run/nucleus/crun/ns"));
        let d2 = fake_bin_dir(&["runc", "crun", "runsc"]);
        let c = resolve(
            &opts,
            "ns",
            Path::new("/none"),
            Some(d2.path().to_str().unwrap()),
            None,
        )
        .unwrap();
        assert_eq!(c.backend, Backend::Runsc);
    }

    #[test]
    fn config_name_beats_runc_binary_name() {
        let d = fake_bin_dir(&["runc", "crun"]);
        let path = d.path().to_str().unwrap();
        let opts = RuntimeOptions::Config {
            path: String::new(),
            body: "[runtime]\nname = \"runc\"\n".into(),
        };
        assert_eq!(
            resolve(&opts, "n", Path::new("/none"), Some(path), None)
                .unwrap()
                .backend,
            Backend::Runc
        );
        let runc_opts = RuntimeOptions::Runc {
            binary_name: "crun".into(),
            root: "/custom".into(),
            systemd_cgroup: false,
            shim_cgroup: String::new(),
        };
        let c = resolve(&runc_opts, "n", Path::new("/none"), Some(path), None).unwrap();
        assert_eq!(c.backend, Backend::Crun);
        assert_eq!(c.root, PathBuf::from("/custom/n"));
    }

    #[test]
    fn an_annotation_chooses_a_runtime_the_config_allows() {
        let d = fake_bin_dir(&["runc", "crun", "runsc"]);
        let path = d.path().to_str().unwrap();
        let body = |b: &str| RuntimeOptions::Config {
            path: String::new(),
            body: b.into(),
        };
        let runc = "[runtime]\nname = \"runc\"\nroot = \"/r\"\nflags = [\"--debug\"]\n";
        let pick = |b: &str, chosen: &str| {
            resolve(&body(b), "ns", Path::new("/none"), Some(path), Some(chosen))
        };
        // runsc by default: the configured root and flags stay runc's.
        let c = pick(runc, "runsc").unwrap();
        assert_eq!(c.backend, Backend::Runsc);
        assert_eq!(c.binary, d.path().join("runsc"));
        assert_eq!(c.root, PathBuf::from("/run/nucleus/runsc/ns"));
        assert!(c.flags.is_empty());
        assert!(c.source.contains("runtime.selectable"), "{}", c.source);
        // The configured runtime itself: nothing changes.
        let c = pick(runc, "runc").unwrap();
        assert_eq!(
            (c.backend, c.root.clone()),
            (Backend::Runc, PathBuf::from("/r"))
        );
        assert_eq!(c.flags, vec!["--debug"]);
        // Not allowed: the error names the annotation, the knob and the file.
        let e = pick(runc, "crun").unwrap_err();
        for word in [
            "\"crun\"",
            RUNTIME_ANNOTATION,
            "runtime.selectable",
            "ConfigBody",
        ] {
            assert!(e.0.contains(word), "{word}: {e}");
        }
        let e = pick(&format!("{runc}selectable = []\n"), "runsc").unwrap_err();
        assert!(e.0.contains("runtime.selectable"), "{e}");
        let e = pick(runc, "kata").unwrap_err();
        assert!(e.0.contains("\"kata\" is not one of"), "{e}");
        // An entry by path: that binary.
        let bin = d.path().join("crun").display().to_string();
        let c = pick(&format!("{runc}selectable = [\"{bin}\"]\n"), "crun").unwrap();
        assert_eq!(
            (c.backend, c.binary),
            (Backend::Crun, d.path().join("crun"))
        );
        // Entries are checked when the config is read.
        for bad in [
            "[\"kata\"]",
            "[\"bin/runsc\"]",
            "[\"\"]",
            "[\"/usr/bin/kata-runtime\"]",
            "[\"/opt/runsc/\"]",
        ] {
            let e =
                FileConfig::parse(&format!("[runtime]\nselectable = {bad}\n"), "t").unwrap_err();
            assert!(e.0.contains("runtime.selectable entry"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_annotation_is_read_from_the_spec_except_under_cri() {
        let spec = |annotations: serde_json::Value| serde_json::json!({"annotations": annotations});
        let runsc = spec(serde_json::json!({"io.nucleus.runtime": "runsc"}));
        assert_eq!(chosen_runtime(&runsc).as_deref(), Some("runsc"));
        let cri = spec(serde_json::json!({
            "io.nucleus.runtime": "runsc",
            "io.kubernetes.cri.container-type": "sandbox"
        }));
        assert_eq!(chosen_runtime(&cri), None);
        assert_eq!(chosen_runtime(&spec(serde_json::json!({}))), None);
        assert_eq!(chosen_runtime(&serde_json::json!({})), None);
    }

    #[test]
    fn stdio_mode_is_direct_or_copy() {
        let d = fake_bin_dir(&["runc"]);
        let path = d.path().to_str().unwrap();
        let resolve_body = |body: &str| {
            let opts = RuntimeOptions::Config {
                path: String::new(),
                body: body.into(),
            };
            resolve(&opts, "n", Path::new("/none"), Some(path), None)
        };
        assert!(
            !resolve_body("[runtime]\nname = \"runc\"\n")
                .unwrap()
                .copy_stdio
        );
        assert!(
            resolve_body("[runtime]\nstdio = \"copy\"\n")
                .unwrap()
                .copy_stdio
        );
        assert!(
            !resolve_body("[runtime]\nstdio = \"direct\"\n")
                .unwrap()
                .copy_stdio
        );
        let e = resolve_body("[runtime]\nstdio = \"pipes\"\n").unwrap_err();
        assert!(
            e.0.contains("runtime.stdio") && e.0.contains("ConfigBody"),
            "{e}"
        );
    }

    #[test]
    fn missing_runtime_binary_is_named() {
        let d = fake_bin_dir(&[]);
        let opts = RuntimeOptions::Config {
            path: String::new(),
            body: "[runtime]\nname = \"crun\"\n".into(),
        };
        let e = resolve(
            &opts,
            "n",
            Path::new("/none"),
            Some(d.path().to_str().unwrap()),
            None,
        )
        .unwrap_err();
        assert!(e.0.contains("\"crun\"") && e.0.contains("not found"), "{e}");
        let e = resolve(
            &RuntimeOptions::None,
            "n",
            Path::new("/none"),
            Some(d.path().to_str().unwrap()),
            None,
        )
        .unwrap_err();
        assert!(e.0.contains("no OCI runtime found"), "{e}");
    }
}
