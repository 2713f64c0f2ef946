//! Known runtime breakout patterns, refused at Create by the default policy
//! whatever the runtime's patch level, on runc and crun. Each test runs the
//! attempt twice: under `level = "off"` it reaches the runtime, which runs
//! it (the escape works, or lands harmlessly) or refuses it in its own
//! words, depending on its version; under the default level the shim
//! refuses it, naming the path and the advisory.

#[macro_use]
mod common;

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{code, text, Env};

/// The policy's refusals all say so.
const REFUSED: &str = "refused by the nucleus policy";

/// A nucleus.toml for `backend` at `level`.
fn config(env: &Env, backend: &str, level: &str) -> String {
    env.write_config(
        &format!("{level}.toml"),
        &format!(
            "{}[policy]\nlevel = \"{level}\"\n",
            common::runtime_table(backend)
        ),
    )
}

/// A private copy of the test image's root directory, to plant links in.
fn rootfs_copy(env: &Env, name: &str) -> PathBuf {
    let dst = env.dir.join(name);
    let out = std::process::Command::new("cp")
        .arg("-a")
        .arg(common::image_dir().join("rootfs"))
        .arg(&dst)
        .output()
        .expect("cp");
    assert!(out.status.success(), "cp: {}", text(&out.stderr));
    dst
}

/// `ctr run --rm` on `rootfs` through `config`.
fn run_on(
    env: &Env,
    config: &str,
    rootfs: &Path,
    extra: &[&str],
    id: &str,
    cmd: &[&str],
) -> Output {
    let mut with_rm = vec!["--rm"];
    with_rm.extend(extra);
    let args = env.run_args_on(config, rootfs, &with_rm, id, cmd);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = env.ctr(&args);
    if code(&out) != 0 {
        let _ = env.ctr(&["containers", "rm", id]);
    }
    out
}

/// The default level refused the attempt, naming `names`.
fn assert_refused(out: &Output, names: &[&str]) {
    assert_ne!(code(out), 0, "stdout: {}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(err.contains(REFUSED), "{err}");
    for n in names {
        assert!(err.contains(n), "{n} not named: {err}");
    }
}

/// Under `off` the attempt reached the runtime: it ran (`ran` checks what
/// it saw) or the runtime refused it in its own words.
fn assert_reached_the_runtime(out: &Output, ran: impl Fn(&str) -> bool) {
    let err = text(&out.stderr);
    eprintln!(
        "under off: exit {}, stdout {:?}, stderr {:?}",
        code(out),
        text(&out.stdout),
        err
    );
    assert!(!err.contains(REFUSED), "off refuses nothing: {err}");
    if code(out) == 0 {
        assert!(ran(&text(&out.stdout)), "stdout: {}", text(&out.stdout));
    }
}

/// A process or exec cwd through /proc (CVE-2024-21626) or climbing with
/// `..`: the runtime resolves `..` inside the root under `off` (the process
/// starts in /tmp), and the default level refuses both, for the container's
/// process and for an exec.
fn cwd_outside_the_root(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let image = common::image_dir().join("rootfs");
    let (off, default) = (config(&env, backend, "off"), env.config(backend));
    let out = run_on(
        &env,
        &off,
        &image,
        &["--cwd", "/../../tmp"],
        "climb-off",
        &["/bin/pwd"],
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "/tmp\n");
    for cwd in ["/../../tmp", "/proc/self/fd/7", "/proc/1/cwd"] {
        let out = run_on(
            &env,
            &default,
            &image,
            &["--cwd", cwd],
            "cwd",
            &["/bin/pwd"],
        );
        assert_refused(&out, &["process.cwd", cwd]);
    }
    let out = run_on(
        &env,
        &off,
        &image,
        &["--cwd", "/proc/self/fd/7"],
        "fd-off",
        &["/bin/pwd"],
    );
    assert_reached_the_runtime(&out, |o| !o.is_empty());

    let out = env.run_with(backend, &["-d"], "sleeper", &["/bin/sleep", "1000"]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let out = env.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "--cwd",
        "/proc/1/cwd",
        "sleeper",
        "/bin/pwd",
    ]);
    assert_refused(&out, &["process.cwd", "/proc/1/cwd", "CVE-2024-21626"]);
    let out = env.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e2",
        "--cwd",
        "/tmp",
        "sleeper",
        "/bin/pwd",
    ]);
    assert_eq!(text(&out.stdout), "/tmp\n", "stderr: {}", text(&out.stderr));
    env.finish("sleeper");
    env.assert_clean(backend, &["climb-off", "cwd", "fd-off", "sleeper"]);
}

/// A rootfs whose /dev/null is a symlink to /proc/kallsyms, in a spec that
/// mounts nothing at /dev (CVE-2025-31133: runc binds "/dev/null" over each
/// masked path, following the link). Under `off` what happens is the
/// runtime's: crun 1.8.1 masks with a device of its own (kallsyms reads 0
/// bytes), runc 1.1.5 keeps the link and the container's output is lost;
/// patched runc refuses. The default level refuses on every version.
fn dev_null_link(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let root = rootfs_copy(&env, "devlink");
    symlink("/proc/kallsyms", root.join("dev/null")).expect("symlink");
    let spec = spec_without_dev(&env, &root, &["/bin/sh", "-c", "wc -c < /proc/kallsyms"]);
    let run =
        |level: &str, id: &str| env.run_spec_with_config(&config(&env, backend, level), &spec, id);
    let out = run("off", "devnull-off");
    let _ = env.ctr(&["containers", "rm", "devnull-off"]);
    assert_reached_the_runtime(&out, |_| true);
    let out = run("default", "devnull");
    let _ = env.ctr(&["containers", "rm", "devnull"]);
    assert_refused(&out, &["/dev/null", "CVE-2025-31133"]);
    env.assert_clean(backend, &["devnull-off", "devnull"]);
}

/// `ctr oci spec` on `root` with nothing mounted at or under /dev, masking
/// /proc/kallsyms; written to the test dir, its path returned.
fn spec_without_dev(env: &Env, root: &Path, args: &[&str]) -> String {
    let out = env.ctr(&["oci", "spec"]);
    assert!(out.status.success(), "ctr oci spec: {}", text(&out.stderr));
    let mut s: serde_json::Value = serde_json::from_slice(&out.stdout).expect("spec JSON");
    s["root"] = serde_json::json!({"path": root});
    s["process"]["args"] = serde_json::json!(args);
    s["mounts"].as_array_mut().expect("mounts").retain(|m| {
        !m["destination"]
            .as_str()
            .unwrap_or("/dev")
            .starts_with("/dev")
    });
    s["linux"]["maskedPaths"] = serde_json::json!(["/proc/kallsyms"]);
    s["linux"]["cgroupsPath"] = serde_json::json!(format!("/{}/devnull", env.namespace));
    let path = env.dir.join("spec-no-dev.json");
    std::fs::write(&path, serde_json::to_vec(&s).expect("spec JSON")).expect("spec");
    path.display().to_string()
}

/// A rootfs whose /proc is a symlink (to a directory of its own): the
/// runtime would mount procfs where it points. A volume whose destination
/// reaches /proc/sys/kernel through a link in the image (CVE-2019-19921):
/// under `off` a tmpfs lands over the kernel's sysctls or the runtime
/// refuses; the default level refuses both.
fn links_to_kernel_directories(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let (off, default) = (config(&env, backend, "off"), env.config(backend));
    let root = rootfs_copy(&env, "proclink");
    std::fs::remove_dir(root.join("proc")).expect("rmdir proc");
    std::fs::create_dir(root.join("elsewhere")).expect("mkdir");
    symlink("/elsewhere", root.join("proc")).expect("symlink");
    let out = run_on(&env, &default, &root, &[], "proc", &["/bin/true"]);
    assert_refused(&out, &["/proc", "symlink"]);

    let root = rootfs_copy(&env, "sysctllink");
    symlink("/proc/sys/kernel", root.join("etc/evil")).expect("symlink");
    let tmpfs = [
        "--mount",
        "type=tmpfs,src=tmpfs,dst=/etc/evil,options=size=1m",
    ];
    let script = ["/bin/sh", "-c", "ls /proc/sys/kernel | wc -l"];
    let out = run_on(&env, &off, &root, &tmpfs, "sysctl-off", &script);
    assert_reached_the_runtime(&out, |o| o.trim() == "0");
    let out = run_on(&env, &default, &root, &tmpfs, "sysctl", &script);
    assert_refused(&out, &["/etc/evil", "/proc", "CVE-2019-19921"]);
    env.assert_clean(backend, &["proc", "sysctl-off", "sysctl"]);
}

/// A bind mount whose source is a symlink to /proc/self/root (the root
/// directory of whoever resolves it: the runtime, on the host): under `off`
/// the container sees the host's files at /mnt, where the lexical check of
/// a bind of `/` cannot see it; the default level refuses it by name.
fn bind_source_through_proc(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let (off, default) = (config(&env, backend, "off"), env.config(backend));
    let link = env.dir.join("host-root");
    symlink("/proc/self/root", &link).expect("symlink");
    let mount = format!("type=bind,src={},dst=/mnt,options=rbind:ro", link.display());
    let marker = env.dir.join("marker");
    std::fs::write(&marker, "host file\n").expect("marker");
    let inside = format!("/mnt{}", marker.display());
    let image = common::image_dir().join("rootfs");
    let cat = ["/bin/cat", inside.as_str()];
    let out = run_on(&env, &off, &image, &["--mount", &mount], "bind-off", &cat);
    assert_reached_the_runtime(&out, |o| o == "host file\n");
    let out = run_on(&env, &default, &image, &["--mount", &mount], "bind", &cat);
    assert_refused(&out, &["/proc", "CVE-2025-52881"]);
    env.assert_clean(backend, &["bind-off", "bind"]);
}

on_runc_and_crun!(
    cwd_outside_the_root,
    dev_null_link,
    links_to_kernel_directories,
    bind_source_through_proc,
);
