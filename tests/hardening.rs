//! End-to-end hardening on runsc, crun and runc: what a container can reach
//! under the default and strict policies, what the policy refuses, and that
//! common workloads still run. A static probe (tests/probe/probe.rs) asks
//! the kernel or gVisor directly from inside the container.

#[macro_use]
mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{code, text, Env};
use serde_json::{json, Value};

/// Bits of the Kubernetes baseline capabilities.
const BASELINE_MASK: u64 = (1 << 0) // CHOWN
    | (1 << 1) // DAC_OVERRIDE
    | (1 << 3) // FOWNER
    | (1 << 4) // FSETID
    | (1 << 5) // KILL
    | (1 << 6) // SETGID
    | (1 << 7) // SETUID
    | (1 << 8) // SETPCAP
    | (1 << 10) // NET_BIND_SERVICE
    | (1 << 18) // SYS_CHROOT
    | (1 << 27) // MKNOD
    | (1 << 29) // AUDIT_WRITE
    | (1 << 31); // SETFCAP
const CAP_CHOWN: u64 = 1 << 0;
const CAP_NET_RAW: u64 = 1 << 13;
const CAP_SYS_ADMIN: u64 = 1 << 21;

/// `key value...` lines of the probe.
fn facts(out: &str) -> HashMap<String, String> {
    out.lines()
        .filter_map(|l| l.split_once(' '))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn capbnd(f: &HashMap<String, String>) -> u64 {
    u64::from_str_radix(&f["capbnd"], 16).expect("capbnd is hex")
}

/// A spec like `ctr oci spec` gives, loosened the way a careless or hostile
/// client could write it: no_new_privs off, no seccomp, nothing masked or
/// read-only. It runs the probe on the test rootfs.
fn loose_spec(env: &Env, id: &str, args: &[&str]) -> String {
    let out = env.ctr(&["oci", "spec"]);
    assert!(out.status.success(), "ctr oci spec: {}", text(&out.stderr));
    let mut s: Value = serde_json::from_slice(&out.stdout).expect("ctr oci spec JSON");
    s["root"] = json!({"path": common::image_dir().join("rootfs")});
    s["process"]["args"] = json!(args);
    s["process"]["noNewPrivileges"] = json!(false);
    if let Some(linux) = s["linux"].as_object_mut() {
        linux.remove("seccomp");
    }
    s["linux"]["maskedPaths"] = json!([]);
    s["linux"]["readonlyPaths"] = json!([]);
    s["linux"]["cgroupsPath"] = json!(format!("/{}/{id}", env.namespace));
    let probe = common::probe_binary().expect("probe");
    s["mounts"].as_array_mut().expect("mounts").push(json!({
        "destination": "/probe", "type": "bind", "source": probe, "options": ["rbind", "ro"]
    }));
    let path = env.dir.join(format!("spec-{id}.json"));
    std::fs::write(&path, serde_json::to_vec(&s).unwrap()).unwrap();
    path.display().to_string()
}

/// The same spec with `caps` added to the bounding, effective and
/// permitted sets: capabilities the workload asks for.
fn asking_for(path: &str, caps: &[&str]) -> String {
    let mut s: Value =
        serde_json::from_slice(&std::fs::read(path).expect("spec")).expect("spec JSON");
    for set in ["bounding", "effective", "permitted"] {
        let list = s["process"]["capabilities"][set]
            .as_array_mut()
            .expect("capability list");
        list.extend(caps.iter().map(|c| json!(c)));
    }
    std::fs::write(path, serde_json::to_vec(&s).expect("spec JSON")).expect("spec");
    path.to_string()
}

/// `ctr run --rm --config SPEC ID` through `runtime` (nucleus unless given).
fn run_spec(env: &Env, backend: &str, runtime: &str, spec: &str, id: &str) -> std::process::Output {
    if runtime == common::RUNTIME {
        return env.run_spec_with_config(&env.config(backend), spec, id);
    }
    env.ctr(&["run", "--rm", "--runtime", runtime, "--config", spec, id])
}

/// Default level, from a loosened spec: no_new_privs on, bounding set =
/// baseline (no NET_RAW), /proc/kallsyms reads 0 bytes, /sys/firmware is
/// empty and read-only, /proc/sysrq-trigger and /proc/sys cannot be opened
/// for writing, and on runc and crun the seccomp floor is on: key rings,
/// io_uring and vsock sockets get EPERM, clone3 ENOSYS.
fn default_closes_kernel_interfaces(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    if common::probe_binary().is_none() {
        return;
    }
    let spec = loose_spec(&env, "probe", &["/probe"]);
    let out = run_spec(&env, backend, common::RUNTIME, &spec, "probe");
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let f = facts(&text(&out.stdout));
    assert_eq!(f["no_new_privs"], "1", "{f:?}");
    let bnd = capbnd(&f);
    assert_eq!(bnd & (CAP_NET_RAW | CAP_SYS_ADMIN), 0, "CapBnd {bnd:x}");
    assert_eq!(bnd, BASELINE_MASK, "CapBnd {bnd:x}");
    let kallsyms = &f["kallsyms"];
    if backend == "runsc" {
        // gVisor has no kallsyms of its own; whatever it shows must be empty.
        assert!(
            kallsyms == "0" || kallsyms.starts_with("absent"),
            "{kallsyms}"
        );
    } else if std::path::Path::new("/proc/kallsyms").exists() {
        assert_eq!(kallsyms, "0", "masked /proc/kallsyms");
    }
    // A masked directory (crun gets a read-only tmpfs there from the shim,
    // see runtime::backend): empty and read-only. gVisor's /sys has no
    // firmware of the host's.
    if backend != "runsc" && host_has_firmware() {
        assert_eq!(f["firmware"], "0", "masked /sys/firmware: {f:?}");
        assert!(f["firmware_write"].starts_with("refused"), "{f:?}");
    }
    // The host kernel may lack sysrq; /proc/sys is always there. Under
    // runsc /proc is gVisor's own: its writes never reach the host kernel,
    // and runsc does not apply readonlyPaths (20221219 refuses the write,
    // 20240729 emulates a writable sysrq-trigger).
    if backend != "runsc" {
        assert!(f["sysrq"].starts_with("refused"), "sysrq {}", f["sysrq"]);
    }
    if backend != "runsc" {
        assert!(
            f["procsys"].contains("Read-only"),
            "/proc/sys {}",
            f["procsys"]
        );
        assert_floor(&f);
    }
    env.assert_clean(backend, &["probe"]);
}

/// The probe's facts under the nucleus seccomp floor.
fn assert_floor(f: &HashMap<String, String>) {
    assert_eq!(f["seccomp"], "2", "{f:?}");
    assert_eq!(f["sys_keyctl"], "errno 1", "{f:?}");
    assert_eq!(f["sys_io_uring_setup"], "errno 1", "{f:?}");
    assert_eq!(f["sys_socket_vsock"], "errno 1", "{f:?}");
    assert_eq!(f["sys_clone3"], "errno 38", "{f:?}");
}

/// A capability the workload asks for beyond containerd's defaults is a
/// Create error naming it and the knob, not an EPERM at run time; an
/// operator's `allowed_capabilities` lets it through, and the floor then
/// allows that capability's syscalls (SYS_ADMIN: unshare).
fn asked_capability_is_refused_by_name(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    if common::probe_binary().is_none() {
        return;
    }
    let spec = asking_for(&loose_spec(&env, "askcap", &["/probe"]), &["CAP_SYS_ADMIN"]);
    let out = run_spec(&env, backend, common::RUNTIME, &spec, "askcap");
    assert_ne!(code(&out), 0, "stdout: {}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("CAP_SYS_ADMIN") && err.contains("allowed_capabilities"),
        "{err}"
    );
    let _ = env.ctr(&["containers", "rm", "askcap"]);
    let config = env.write_config(
        "sysadmin.toml",
        &format!(
            "{}[policy]\nallowed_capabilities = [\"CAP_CHOWN\", \"CAP_SYS_ADMIN\"]\n",
            common::runtime_table(backend)
        ),
    );
    let script = "/probe; if unshare -u true; then echo unshare ok; else echo unshare refused; fi";
    let spec = asking_for(
        &loose_spec(&env, "allowcap", &["/bin/sh", "-c", script]),
        &["CAP_SYS_ADMIN"],
    );
    let out = env.run_spec_with_config(&config, &spec, "allowcap");
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let f = facts(&text(&out.stdout));
    assert_eq!(capbnd(&f), CAP_CHOWN | CAP_SYS_ADMIN, "{f:?}");
    if backend != "runsc" {
        assert_eq!(f["seccomp"], "2", "{f:?}");
        assert_eq!(f["unshare"], "ok", "{f:?}");
    }
    env.assert_clean(backend, &["askcap", "allowcap"]);
}

/// `no_new_privileges = false` in the config keeps a spec's
/// noNewPrivileges false (a workload that allows privilege escalation, as
/// Kubernetes does by default); the default sets it.
fn no_new_privileges_knob(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    if common::probe_binary().is_none() {
        return;
    }
    let spec = loose_spec(&env, "nnp", &["/probe"]);
    let config = env.write_config(
        "nnp.toml",
        &format!(
            "{}[policy]\nno_new_privileges = false\n",
            common::runtime_table(backend)
        ),
    );
    let out = env.run_spec_with_config(&config, &spec, "nnp");
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    if backend != "runsc" {
        // gVisor reports no_new_privs 1 for every process it runs.
        assert_eq!(facts(&text(&out.stdout))["no_new_privs"], "0");
    }
    let out = run_spec(&env, backend, common::RUNTIME, &spec, "nnp");
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert_eq!(facts(&text(&out.stdout))["no_new_privs"], "1");
    env.assert_clean(backend, &["nnp"]);
}

/// glibc-dynamic programs of the host (its /usr, ro), under the seccomp
/// floor: bash, GNU sort with threads (pthread_create tries clone3 first on
/// glibc 2.34+ and falls back to clone on ENOSYS), perl forking, exec'ing
/// and listening on a socket, and coreutils reading files and the clock
/// (not stat or ls: coreutils 9.1's statx gets EINVAL from runsc 20221219).
/// On the Debian 13 guest of the VM lane these are trixie's glibc 2.41.
fn glibc_programs_run_under_the_floor(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    env.import_image();
    let script = "export PATH=/usr/bin:/bin; set -e -o pipefail; \
        seq 1 300000 | sort -n --parallel=4 -S 20M | tail -n 1; \
        perl -e 'use Socket; socket(S, PF_INET, SOCK_STREAM, 0) or die \"socket: $!\"; \
          bind(S, sockaddr_in(0, INADDR_LOOPBACK)) or die \"bind: $!\"; listen(S, 1) or die; \
          my $p = fork(); defined $p or die \"fork: $!\"; \
          if ($p == 0) { exec(\"/usr/bin/true\") or die \"exec: $!\" } \
          waitpid($p, 0); print \"perl $?\\n\"'; \
        date -u +%Y > /dev/null; cat /etc/passwd | wc -l; id -u; \
        grep Seccomp: /proc/self/status";
    let mut extra = vec!["--rm".to_string()];
    for (src, dst) in [
        ("/usr", "/usr"),
        ("/usr/lib", "/lib"),
        ("/usr/lib64", "/lib64"),
    ] {
        if std::path::Path::new(src).is_dir() {
            extra.push("--mount".into());
            extra.push(format!("type=bind,src={src},dst={dst},options=rbind:ro"));
        }
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    // bash, not busybox sh (which would run its own applets).
    let out = env.run_image(backend, &extra, "glibc", &["/usr/bin/bash", "-c", script]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let mut lines = stdout.lines();
    assert_eq!(
        lines.next(),
        Some("300000"),
        "{stdout} {}",
        text(&out.stderr)
    );
    assert_eq!(lines.next(), Some("perl 0"), "{stdout}");
    assert_eq!(lines.next(), Some("1"), "{stdout}");
    assert_eq!(lines.next(), Some("0"), "{stdout}");
    let seccomp = lines.next().unwrap_or_default().to_string();
    if backend != "runsc" {
        assert!(seccomp.ends_with("\t2"), "the floor is on: {stdout}");
    }
    env.assert_clean(backend, &["glibc"]);
}

/// `io.nucleus.seccomp=unconfined` is refused by name unless the config
/// allows loosening; then the container runs with no filter.
fn unconfined_needs_loosening(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let ask = ["--rm", "--annotation", "io.nucleus.seccomp=unconfined"];
    let script = ["/bin/sh", "-c", "grep Seccomp: /proc/self/status"];
    let out = env.run_with(backend, &ask, "unconf", &script);
    assert_ne!(code(&out), 0, "stdout: {}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("io.nucleus.seccomp=unconfined") && err.contains("allow_loosening"),
        "{err}"
    );
    let _ = env.ctr(&["containers", "rm", "unconf"]);
    let config = env.write_config(
        "loose.toml",
        &format!(
            "{}[policy]\nallow_loosening = true\n",
            common::runtime_table(backend)
        ),
    );
    let out = env.run_with_config(&config, &ask, "unconf2", &script);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stdout).ends_with("\t0\n"),
        "{}",
        text(&out.stdout)
    );
    env.assert_clean(backend, &["unconf", "unconf2"]);
}

/// runsc applies a spec's seccomp profile (`ctr run --seccomp`, containerd's
/// default profile, which refuses keyctl) through `--oci-seccomp`, to an
/// exec'd process through the shim's relay; and the
/// nucleus floor where the config asks (`seccomp_floor_on_runsc`): vsock
/// sockets get EPERM where gVisor itself answers EAFNOSUPPORT.
#[test]
fn runsc_applies_the_workloads_seccomp() {
    let Some(env) = Env::start("runsc-seccomp", "runsc") else {
        return;
    };
    let Some(probe) = env.probe_mount() else {
        return;
    };
    let out = env.run_with(
        "runsc",
        &["--rm", "--seccomp", "--mount", &probe],
        "own",
        &["/probe"],
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let f = facts(&text(&out.stdout));
    assert_eq!(f["sys_keyctl"], "errno 1", "{f:?}");
    // A process started by exec gets the profile too: gVisor leaves it
    // unfiltered, the shim's relay installs it.
    let detached = ["-d", "--seccomp", "--mount", probe.as_str()];
    let out = env.run_with("runsc", &detached, "own-exec", &["/bin/sleep", "1000"]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let out = env.ctr(&["task", "exec", "--exec-id", "p", "own-exec", "/probe"]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let f = facts(&text(&out.stdout));
    assert_eq!(
        (f["seccomp"].as_str(), f["sys_keyctl"].as_str()),
        ("2", "errno 1"),
        "{f:?}"
    );
    env.finish("own-exec");
    // Without a profile gVisor answers for itself.
    let out = env.run_with("runsc", &["--rm", "--mount", &probe], "none", &["/probe"]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let f = facts(&text(&out.stdout));
    assert_ne!(f["sys_socket_vsock"], "errno 1", "{f:?}");
    let config = env.write_config(
        "floor.toml",
        &format!(
            "{}[policy]\nseccomp_floor_on_runsc = true\n",
            common::runtime_table("runsc")
        ),
    );
    let out = env.run_with_config(&config, &["--rm", "--mount", &probe], "floor", &["/probe"]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let f = facts(&text(&out.stdout));
    assert_eq!(f["sys_socket_vsock"], "errno 1", "{f:?}");
    assert_eq!(f["sys_keyctl"], "errno 1", "{f:?}");
    env.assert_clean("runsc", &["own", "own-exec", "none", "floor"]);
}

/// The same loosened spec through containerd-shim-runc-v2 in the same
/// containerd: the probe sees everything open, so the checks above can fail.
#[test]
fn runc_v2_leaves_them_open() {
    let Some(env) = Env::start("runc-v2-open", "runc") else {
        return;
    };
    if common::probe_binary().is_none() {
        return;
    }
    let spec = loose_spec(&env, "probe", &["/probe"]);
    let out = run_spec(&env, "runc", "io.containerd.runc.v2", &spec, "probe");
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let f = facts(&text(&out.stdout));
    assert_eq!(f["no_new_privs"], "0", "{f:?}");
    assert_ne!(capbnd(&f) & CAP_NET_RAW, 0, "{f:?}");
    // No seccomp: the calls the floor refuses reach the kernel.
    assert_eq!(f["seccomp"], "0", "{f:?}");
    assert_ne!(f["sys_clone3"], "errno 38", "{f:?}");
    assert_ne!(f["sys_io_uring_setup"], "errno 1", "{f:?}");
    if std::path::Path::new("/proc/kallsyms").exists() {
        let n: u64 = f["kallsyms"].parse().expect("kallsyms readable");
        assert!(n > 0, "{f:?}");
    }
    if std::path::Path::new("/proc/sysrq-trigger").exists() {
        assert_eq!(f["sysrq"], "writable", "{f:?}");
    }
    assert_eq!(f["procsys"], "writable", "{f:?}");
    if host_has_firmware() {
        assert_ne!(f["firmware"], "0", "{f:?}");
    }
}

/// Whether the host's /sys/firmware has entries to mask.
fn host_has_firmware() -> bool {
    std::fs::read_dir("/sys/firmware").is_ok_and(|mut d| d.next().is_some())
}

/// `ctr run --privileged` fails and says why; nothing is left behind.
fn privileged_is_refused(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let out = env.run_with(backend, &["--rm", "--privileged"], "priv", &["/bin/true"]);
    assert_ne!(code(&out), 0);
    let err = text(&out.stderr);
    assert!(
        err.contains("privileged") && err.contains("allow_privileged"),
        "{err}"
    );
    let _ = env.ctr(&["containers", "rm", "priv"]);
    env.assert_clean(backend, &["priv"]);
}

/// Strict level, by annotation (tightening) and by config: `ulimit -n` is
/// 1024, memlock 64 KiB, the rootfs is read-only, /tmp is writable but not
/// executable, and the bounding set is empty.
fn strict_level(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let script = "ulimit -n; ulimit -l; \
        if touch /written 2>/dev/null; then echo root-writable; else echo root-read-only; fi; \
        echo tmp > /tmp/t && cat /tmp/t; \
        cp /bin/busybox /tmp/bb; if /tmp/bb true 2>/dev/null; then echo tmp-exec; else echo tmp-noexec; fi";
    let out = env.run_with(
        backend,
        &["--rm", "--annotation", "io.nucleus.policy=strict"],
        "strict",
        &["/bin/sh", "-c", script],
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "1024\n64\nroot-read-only\ntmp\ntmp-noexec\n",
        "stderr: {}",
        text(&out.stderr)
    );

    // Through a strict config, from a spec that asks for a million files.
    if common::probe_binary().is_some() {
        let config = env.write_config(
            "strict.toml",
            &format!(
                "{}[policy]\nlevel = \"strict\"\n",
                common::runtime_table(backend)
            ),
        );
        let spec_path = loose_spec(&env, "sprobe", &["/probe"]);
        let mut spec: Value = serde_json::from_slice(&std::fs::read(&spec_path).unwrap()).unwrap();
        spec["process"]["rlimits"] =
            json!([{"type": "RLIMIT_NOFILE", "soft": 1048576, "hard": 1048576}]);
        std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
        let out = env.run_spec_with_config(&config, &spec_path, "sprobe");
        assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
        let f = facts(&text(&out.stdout));
        assert_eq!(capbnd(&f), 0, "{f:?}");
        assert_eq!(f["no_new_privs"], "1", "{f:?}");
        assert_eq!(f["nofile"], "1024 1024", "{f:?}");
    }
    env.assert_clean(backend, &["strict", "sprobe"]);
}

/// A hook outside the trusted directories fails `ctr run` with the hook
/// named; a trusted one (a real binary under /usr/bin) runs; a trusted one
/// that fails is a Create error naming it.
fn hooks_only_from_trusted_dirs(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    if common::probe_binary().is_none() {
        return;
    }
    let evil = env.dir.join("evil-hook");
    std::fs::write(&evil, "#!/bin/sh\ntouch \"$0.ran\"\n").unwrap();
    std::fs::set_permissions(&evil, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let spec_path = loose_spec(&env, "hooked", &["/bin/true"]);
    let mut spec: Value = serde_json::from_slice(&std::fs::read(&spec_path).unwrap()).unwrap();
    spec["hooks"] = json!({"prestart": [{"path": evil, "args": ["evil-hook"]}]});
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let out = run_spec(&env, backend, common::RUNTIME, &spec_path, "hooked");
    assert_ne!(code(&out), 0);
    let err = text(&out.stderr);
    assert!(
        err.contains(&evil.display().to_string()) && err.contains("trusted"),
        "{err}"
    );
    assert!(
        !env.dir.join("evil-hook.ran").exists(),
        "the hook must not run"
    );
    let _ = env.ctr(&["containers", "rm", "hooked"]);

    let marker = env.dir.join("trusted-hook.ran");
    spec["hooks"] =
        json!({"createRuntime": [{"path": "/usr/bin/touch", "args": ["touch", marker]}]});
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let out = run_spec(&env, backend, common::RUNTIME, &spec_path, "hooked");
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert!(marker.exists(), "the trusted hook ran");

    // A trusted hook that fails: the Create error names it on every runtime.
    spec["hooks"] = json!({"createRuntime": [{"path": "/usr/bin/false", "args": ["false"]}]});
    std::fs::write(&spec_path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let out = run_spec(&env, backend, common::RUNTIME, &spec_path, "hooked");
    assert_ne!(code(&out), 0);
    assert!(
        text(&out.stderr).contains("/usr/bin/false"),
        "{}",
        text(&out.stderr)
    );
    let _ = env.ctr(&["containers", "rm", "hooked"]);
    env.assert_clean(backend, &["hooked"]);
}

/// Port 80 on the host is shared by the backends' tests.
static PORT_80: Mutex<()> = Mutex::new(());

fn http_get(port: u16) -> Option<String> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// Common workloads still work under default: busybox httpd serving a page
/// on port 80 as root (host network), and a process writing to /tmp and to
/// its rootfs (an image on the overlay snapshotter).
fn workloads_still_work(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    env.import_image();
    let out = env.run_image(
        backend,
        &["--rm"],
        "writer",
        &[
            "sh",
            "-c",
            "echo a > /tmp/a && echo b > /written && cat /tmp/a /written",
        ],
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "a\nb\n");

    let _port = PORT_80.lock().unwrap_or_else(|p| p.into_inner());
    if std::net::TcpListener::bind(("127.0.0.1", 80)).is_err() {
        common::prerequisite(false, "port 80 on the host is taken by something else");
        return;
    }
    let page = format!("hello from {backend}");
    let script = format!(
        "mkdir -p /tmp/www && echo '{page}' > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"
    );
    let out = env.run_image(
        backend,
        &["-d", "--net-host"],
        "web",
        &["sh", "-c", &script],
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(20);
    let reply = loop {
        match http_get(80) {
            Some(r) if r.contains(&page) => break r,
            other => {
                assert!(Instant::now() < deadline, "no page from httpd: {other:?}");
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    };
    assert!(reply.starts_with("HTTP/1."), "{reply}");
    let _ = env.ctr(&["task", "kill", "-s", "SIGKILL", "web"]);
    env.wait_status("web", "STOPPED");
    let out = env.ctr(&["task", "rm", "web"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let _ = env.ctr(&["containers", "rm", "web"]);
    env.assert_clean(backend, &["writer", "web"]);
}

/// A non-root process given NET_BIND_SERVICE as an ambient capability (as
/// containerd's TestBindLowPortNonOpt and Kubernetes' restricted level
/// allow) binds port 80 in its own network namespace under default: the
/// policy keeps an ambient capability it allows. Without it the bind fails.
fn non_root_binds_a_low_port_with_an_ambient_capability(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    if common::probe_binary().is_none() {
        return;
    }
    let script = "nc -l -p 80 & sleep 1; if kill -0 $! 2>/dev/null; then echo bound; \
                  kill $!; else wait $!; echo not bound; fi; id -u";
    let run = |id: &str, ambient: &[&str]| {
        let path = loose_spec(&env, id, &["/bin/sh", "-c", script]);
        let mut s: Value =
            serde_json::from_slice(&std::fs::read(&path).expect("spec")).expect("spec JSON");
        s["process"]["user"] = json!({"uid": 1000, "gid": 1000});
        s["process"]["capabilities"]["ambient"] = json!(ambient);
        s["process"]["capabilities"]["inheritable"] = json!(ambient);
        std::fs::write(&path, serde_json::to_vec(&s).expect("spec JSON")).expect("spec");
        let out = run_spec(&env, backend, common::RUNTIME, &path, id);
        assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
        text(&out.stdout)
    };
    assert_eq!(run("ambient", &["CAP_NET_BIND_SERVICE"]), "bound\n1000\n");
    // The same without the ambient capability: the check can fail.
    if backend != "runsc" {
        // gVisor keeps the capabilities a spec gives a non-root user
        // (README "Against containerd's own suites").
        assert_eq!(run("no-ambient", &[]), "not bound\n1000\n");
    }
    env.assert_clean(backend, &["ambient", "no-ambient"]);
}

/// The bundle holds the hardened config.json (0600), the original spec and
/// a JSON report; the shim log has the summary line, and containerd's event
/// stream a `/nucleus/hardening` event with it.
fn report_in_bundle(backend: &str, test: &str) {
    use std::os::unix::fs::PermissionsExt;
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let events = env.events();
    let out = env.run_with(backend, &["-d"], "rep", &["/bin/sleep", "1000"]);
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let bundle = env.bundle("rep");
    let read = |name: &str| -> Value {
        serde_json::from_slice(&std::fs::read(bundle.join(name)).unwrap()).unwrap()
    };
    let spec = read("config.json");
    let original = read("nucleus-config.original.json");
    let report = read("nucleus-hardening.json");
    let mode = std::fs::metadata(bundle.join("config.json"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let has_net_raw = |s: &Value| {
        s["process"]["capabilities"]["bounding"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c == "CAP_NET_RAW")
    };
    assert!(has_net_raw(&original) && !has_net_raw(&spec));
    assert_eq!(report["level"], "default");
    assert_eq!(report["backend"], backend);
    assert!(report["changes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["rule"] == "capabilities" && c["removed"] == "CAP_NET_RAW"));
    if backend == "runsc" {
        // What runsc leaves undone, with the version in use.
        let notes = report["notes"].to_string();
        assert!(
            notes.contains("runsc version") && notes.contains("applies neither maskedPaths"),
            "{notes}"
        );
    }
    let line = format!("container rep: policy default on {backend}:");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !env.containerd_log().contains(&line) {
        assert!(Instant::now() < deadline, "no summary line in the shim log");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The same report reaches containerd's event stream (`ctr events`).
    let published = events.collect("rep");
    let (_, payload) = published
        .iter()
        .find(|(t, _)| t == "/nucleus/hardening")
        .unwrap_or_else(|| panic!("no /nucleus/hardening event: {published:?}"));
    for want in [
        "\"io.nucleus.hardening.level\":\"default\"".to_string(),
        format!("\"io.nucleus.hardening.backend\":\"{backend}\""),
        format!("policy default on {backend}:"),
        "nucleus-hardening.json".to_string(),
    ] {
        assert!(payload.contains(&want), "{want} not in {payload}");
    }
    env.finish("rep");
    env.assert_clean(backend, &["rep"]);
}

/// A config at strict refuses an annotation that would loosen it.
#[test]
fn annotation_cannot_loosen() {
    let Some(env) = Env::start("no-loosen", "runc") else {
        return;
    };
    let config = env.write_config(
        "strict.toml",
        &format!(
            "{}[policy]\nlevel = \"strict\"\n",
            common::runtime_table("runc")
        ),
    );
    let rootfs = common::image_dir().join("rootfs").display().to_string();
    let out = env.ctr(&[
        "run",
        "--rm",
        "--runtime",
        common::RUNTIME,
        "--runtime-config-path",
        &config,
        "--annotation",
        "io.nucleus.policy=off",
        "--rootfs",
        &rootfs,
        "loose",
        "/bin/true",
    ]);
    assert_ne!(code(&out), 0);
    let err = text(&out.stderr);
    assert!(
        err.contains("loosen") && err.contains("allow_loosening"),
        "{err}"
    );
    let _ = env.ctr(&["containers", "rm", "loose"]);
    env.assert_clean("runc", &["loose"]);
}

on_each_backend!(
    default_closes_kernel_interfaces,
    privileged_is_refused,
    strict_level,
    hooks_only_from_trusted_dirs,
    workloads_still_work,
    non_root_binds_a_low_port_with_an_ambient_capability,
    report_in_bundle,
    asked_capability_is_refused_by_name,
    glibc_programs_run_under_the_floor,
    unconfined_needs_loosening,
    no_new_privileges_knob,
);
