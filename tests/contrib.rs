//! The install files in contrib/ agree with each other and with the shim:
//! the CRI handlers for containerd 1.6/1.7 (config v2) and 2.x (v3) name the
//! same handlers, runtime type, ConfigPaths and pod annotations; the
//! RuntimeClasses use those handlers; every ConfigPath is a nucleus.toml the
//! shim's own parser accepts for the backend the handler is named for.
//! (tests/cri.rs runs pods through both files.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use nucleus_shim::config::FileConfig;

fn contrib(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Handler name -> its table, under the CRI runtimes table at `keys`.
fn handlers(file: &str, keys: &[&str]) -> BTreeMap<String, toml::Table> {
    let doc: toml::Table = toml::from_str(&contrib(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut t = &doc;
    for k in keys {
        t = t
            .get(*k)
            .and_then(toml::Value::as_table)
            .unwrap_or_else(|| panic!("{file}: no table {k} on the way to {keys:?}"));
    }
    t.iter()
        .map(|(name, v)| {
            let table = v
                .as_table()
                .unwrap_or_else(|| panic!("{file}: handler {name} is not a table"))
                .clone();
            (name.clone(), table)
        })
        .collect()
}

fn v2() -> BTreeMap<String, toml::Table> {
    handlers(
        "containerd-config.toml",
        &[
            "plugins",
            "io.containerd.grpc.v1.cri",
            "containerd",
            "runtimes",
        ],
    )
}

fn v3() -> BTreeMap<String, toml::Table> {
    handlers(
        "containerd-config-v3.toml",
        &[
            "plugins",
            "io.containerd.cri.v1.runtime",
            "containerd",
            "runtimes",
        ],
    )
}

/// The nucleus handlers: name -> (ConfigPath, pod_annotations).
fn nucleus(h: &BTreeMap<String, toml::Table>) -> BTreeMap<String, (String, Vec<String>)> {
    h.iter()
        .filter(|(_, t)| {
            t.get("runtime_type").and_then(toml::Value::as_str) == Some("io.nucleus.v1")
        })
        .map(|(name, t)| {
            let path = t
                .get("options")
                .and_then(|o| o.get("ConfigPath"))
                .and_then(toml::Value::as_str)
                .unwrap_or_else(|| panic!("handler {name}: no options.ConfigPath"))
                .to_string();
            let annotations = t
                .get("pod_annotations")
                .and_then(toml::Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            (name.clone(), (path, annotations))
        })
        .collect()
}

#[test]
fn v2_and_v3_register_the_same_nucleus_handlers() {
    let (v2, v3) = (nucleus(&v2()), nucleus(&v3()));
    assert_eq!(
        v2.keys().collect::<Vec<_>>(),
        ["nucleus", "nucleus-crun", "nucleus-runc"]
    );
    assert_eq!(v2, v3);
    for (name, (_, annotations)) in &v2 {
        assert_eq!(annotations, &["io.nucleus.policy"], "handler {name}");
    }
}

#[test]
fn containerds_default_runc_handler_is_kept() {
    // Naming any runtime replaces containerd's built-in list; without "runc"
    // (default_runtime_name) the CRI plugin does not load.
    for (file, h) in [("v2", v2()), ("v3", v3())] {
        let runc = h
            .get("runc")
            .unwrap_or_else(|| panic!("{file}: no runc handler"));
        assert_eq!(
            runc.get("runtime_type").and_then(toml::Value::as_str),
            Some("io.containerd.runc.v2"),
            "{file}"
        );
    }
}

#[test]
fn config_paths_are_the_contrib_configs_for_their_backend() {
    for (name, (path, _)) in nucleus(&v2()) {
        let backend = name.strip_prefix("nucleus-").unwrap_or("runsc");
        let file = PathBuf::from(&path);
        assert_eq!(
            file,
            Path::new("/etc/nucleus").join(format!("{backend}.toml")),
            "handler {name}"
        );
        let body = contrib(&format!("nucleus-{backend}.toml"));
        let cfg = FileConfig::parse(&body, &path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cfg.runtime.name.as_deref(), Some(backend), "{path}");
    }
}

#[test]
fn runtime_classes_use_the_registered_handlers() {
    let classes = contrib("runtimeclass.yaml");
    let used: Vec<&str> = classes
        .lines()
        .filter_map(|l| l.strip_prefix("handler: "))
        .map(str::trim)
        .collect();
    let registered = nucleus(&v2());
    assert_eq!(
        used,
        registered.keys().map(String::as_str).collect::<Vec<_>>()
    );
}

/// Programs the test command runs on the host (the suites, the harness and
/// the contrib scripts they call), outside the Rust toolchain.
const HOST_PROGRAMS: [&str; 20] = [
    "containerd",
    "ctr",
    "runc",
    "crun",
    "runsc",
    "busybox",
    "ip",
    "script",
    "bash",
    "cp",
    "tar",
    "file",
    "sha256sum",
    "protoc",
    "mount",
    "umount",
    "apt-get",
    "patchelf",
    "flock",
    "dpkg-deb",
];

/// The package that holds `program`, by the paths Debian packages use.
fn package_of(program: &str) -> Option<String> {
    ["/usr/bin/", "/bin/", "/usr/sbin/", "/sbin/"]
        .iter()
        .find_map(|dir| {
            let out = std::process::Command::new("dpkg")
                .args(["-S", &format!("{dir}{program}")])
                .output()
                .ok()?;
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let pkg = text.lines().next()?.split(':').next()?.trim().to_string();
            (out.status.success() && !pkg.is_empty()).then_some(pkg)
        })
}

/// A fresh Debian 12 machine gets what the tests run from
/// contrib/setup-host.sh: every host program is in a package that script
/// installs or in one every Debian system has (Essential, or Priority
/// required). (The VM lane's scripts install debootstrap and qemu
/// themselves; the guest's packages are vm-image.sh's list.)
#[test]
fn setup_host_installs_what_the_tests_run() {
    if !std::path::Path::new("/var/lib/dpkg/status").exists() {
        assert!(
            std::env::var("CI").is_err(),
            "not a Debian host: cannot check the package list under CI"
        );
        eprintln!("SKIP: not a Debian host (no dpkg database)");
        return;
    }
    let script = contrib("setup-host.sh");
    let start = script
        .find("pkgs=(")
        .expect("setup-host.sh has a pkgs=(...) list")
        + 6;
    let end = start + script[start..].find(')').expect("pkgs list closes");
    let installed: Vec<&str> = script[start..end].split_whitespace().collect();
    let mut missing = Vec::new();
    for program in HOST_PROGRAMS {
        let Some(pkg) = package_of(program) else {
            missing.push(format!("{program}: no installed package holds it"));
            continue;
        };
        if installed.contains(&pkg.as_str()) {
            continue;
        }
        let out = std::process::Command::new("dpkg-query")
            .args(["-W", "-f=${Essential} ${Priority}", &pkg])
            .output()
            .expect("dpkg-query");
        let fields = String::from_utf8_lossy(&out.stdout).to_string();
        if !(fields.starts_with("yes ") || fields.ends_with(" required")) {
            missing.push(format!(
                "{program} (package {pkg}, {fields}): not installed by setup-host.sh"
            ));
        }
    }
    assert!(missing.is_empty(), "{}", missing.join("\n"));
}
