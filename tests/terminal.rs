//! End-to-end terminals on runsc (Debian 12's 20221219 and, when unpacked by
//! contrib/runtimes.sh, Debian 13's 20240729), crun and runc: `ctr run -t`
//! and `ctr task exec -t` under a pty made by `script`. The process gets a
//! real terminal on every runtime: `tty` names a /dev/pts device (on runsc a
//! pty of the sandbox's own, through the shim's relay), `stty size` answers
//! at once (the pty has a size before the client's first ResizePty) and then
//! shows the size ctr set; input, exit codes and a burst of output at exit
//! pass through.

#[macro_use]
mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use common::{code, image_dir, text, Env, RUNTIME};

/// Debian 13's runsc, unpacked by contrib/runtimes.sh.
const RUNSC_20240729: &str = "/opt/nucleus-test/runtimes/trixie/usr/bin/runsc";

/// Prints the terminal's name, its size at once, then its size once ctr's
/// resize to 22x77 has arrived.
const SCRIPT: &str = "tty; stty size; i=0; \
    while [ \"$(stty size)\" != '22 77' ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done; \
    echo resized $(stty size); echo done";

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

fn script_available() -> bool {
    common::prerequisite(
        Path::new("/usr/bin/script").exists(),
        "script (util-linux) is needed to give ctr a terminal",
    )
}

/// Runs `ctr ARGS` inside a 22x77 pty made by `script`, `input` on its stdin.
fn in_pty(env: &Env, args: &[String], input: Option<&str>) -> Output {
    let mut line = format!(
        "stty cols 77 rows 22; exec ctr -a {} -n {}",
        quote(&env.address),
        quote(&env.namespace)
    );
    for a in args {
        line.push(' ');
        line.push_str(&quote(a));
    }
    let mut cmd = Command::new("script");
    cmd.args(["-qec", &line, "/dev/null"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let Some(input) = input else {
        return cmd.stdin(Stdio::null()).output().expect("running script");
    };
    let mut child = cmd.stdin(Stdio::piped()).spawn().expect("running script");
    let mut stdin = child.stdin.take().expect("script's stdin");
    // The pty keeps it until ctr reads its terminal.
    std::io::Write::write_all(&mut stdin, input.as_bytes()).expect("feeding script");
    drop(stdin);
    child.wait_with_output().expect("running script")
}

/// `ctr run` args with the nucleus.toml `config`.
fn run_args(config: &str, extra: &[&str], id: &str, cmd: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ["run", "--runtime", RUNTIME, "--runtime-config-path", config]
        .iter()
        .map(|s| s.to_string())
        .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v.push("--rootfs".into());
    v.push(image_dir().join("rootfs").display().to_string());
    v.push(id.into());
    v.extend(cmd.iter().map(|s| s.to_string()));
    v
}

/// The lines a terminal showed, without its carriage returns (nor the NUL
/// `script` sends at its stdin's EOF, which the terminal echoes as `^@`).
fn lines(out: &Output) -> Vec<String> {
    text(&out.stdout)
        .split('\n')
        .map(|l| l.replace("^@", "").trim_matches(['\r', '\0']).to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

/// What [`SCRIPT`] printed on a real terminal: a /dev/pts name, a size at
/// once (`ROWS COLS`, not an error), then ctr's size.
fn assert_real_terminal(out: &Output, what: &str) {
    assert_real_terminal_sized(out, what, true);
}

/// [`assert_real_terminal`]; without `at_once`, a first `stty size` may
/// still find the pty unsized.
fn assert_real_terminal_sized(out: &Output, what: &str, at_once: bool) {
    assert_eq!(code(out), 0, "{what}: stderr: {}", text(&out.stderr));
    let shown = lines(out);
    let at = shown
        .iter()
        .position(|l| l.starts_with("/dev/pts/"))
        .unwrap_or_else(|| panic!("{what}: `tty` named no /dev/pts device: {shown:?}"));
    let size: Vec<&str> = shown
        .get(at + 1)
        .map(|l| l.split(' ').collect())
        .unwrap_or_default();
    assert!(
        !at_once || size.len() == 2 && size.iter().all(|n| n.parse::<u16>().is_ok_and(|n| n > 0)),
        "{what}: `stty size` did not answer at once: {shown:?}"
    );
    assert!(
        shown.iter().any(|l| l == "resized 22 77") && shown.iter().any(|l| l == "done"),
        "{what}: the client's size did not arrive: {shown:?}"
    );
}

/// `ctr run -t` and `ctr task exec -t` with the nucleus.toml `config`.
fn terminal_scenario(env: &Env, backend: &str, config: &str) {
    let out = in_pty(
        env,
        &run_args(config, &["--rm", "-t"], "tty", &["/bin/sh", "-c", SCRIPT]),
        None,
    );
    assert_real_terminal(&out, "ctr run -t");

    // Input reaches the program; its exit code and a burst of output
    // written just before it exits come back; SIGPIPE has its default
    // action (`yes` ends quietly).
    let out = in_pty(
        env,
        &run_args(
            config,
            &["--rm", "-t"],
            "quick",
            &[
                "/bin/sh",
                "-c",
                "read x; echo got $x; yes | head -n 1; seq 1 20000; echo quick-exit-output; exit 3",
            ],
        ),
        Some("hello\n"),
    );
    let shown = lines(&out);
    assert_eq!(code(&out), 3, "{shown:?} stderr: {}", text(&out.stderr));
    assert!(
        !shown.iter().any(|l| l.contains("Broken pipe")),
        "{:?}",
        &shown[..shown.len().min(5)]
    );
    for want in ["got hello", "19999", "20000", "quick-exit-output"] {
        assert!(
            shown.iter().any(|l| l == want),
            "{want:?} missing: {:?}",
            &shown[shown.len().saturating_sub(5)..]
        );
    }

    let started = env.ctr(
        &run_args(config, &["-d"], "box", &["/bin/sleep", "1000"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
    );
    assert_eq!(code(&started), 0, "stderr: {}", text(&started.stderr));
    let exec = |id: &str, script: &str| {
        let args: Vec<String> = [
            "task",
            "exec",
            "-t",
            "--exec-id",
            id,
            "box",
            "/bin/sh",
            "-c",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([script.to_string()])
        .collect();
        in_pty(env, &args, None)
    };
    // crun 1.8 does not size an exec's pty from the process's consoleSize:
    // the shim sizes it once `crun exec` has handed the pty over, which
    // races the program (seen under load); runc, crun's init and the runsc
    // relay size it before the program runs.
    let at_once = backend != "crun";
    assert_real_terminal_sized(&exec("t1", SCRIPT), "ctr task exec -t", at_once);
    let out = exec("t2", "exit 5");
    assert_eq!(code(&out), 5, "stderr: {}", text(&out.stderr));
    let _ = env.ctr(&["task", "kill", "-s", "SIGKILL", "box"]);
    env.wait_status("box", "STOPPED");
    let _ = env.ctr(&["task", "rm", "box"]);
    let _ = env.ctr(&["containers", "rm", "box"]);
    env.assert_clean(backend, &["tty", "quick", "box"]);
}

fn run_and_exec_with_a_terminal(backend: &str, test: &str) {
    if !script_available() {
        return;
    }
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    terminal_scenario(&env, backend, &env.config(backend));
}

on_each_backend!(run_and_exec_with_a_terminal);

/// The same on Debian 13's runsc.
#[test]
fn runsc_20240729_run_and_exec_with_a_terminal() {
    if !script_available()
        || !common::prerequisite(
            Path::new(RUNSC_20240729).is_file(),
            &format!("{RUNSC_20240729} (run contrib/runtimes.sh)"),
        )
    {
        return;
    }
    let Some(env) = Env::start("runsc-20240729-terminal", "runsc") else {
        return;
    };
    let config = env.write_config(
        "runsc-20240729.toml",
        &format!("[runtime]\nname = \"runsc\"\npath = \"{RUNSC_20240729}\"\n"),
    );
    terminal_scenario(&env, "runsc", &config);
}

/// A container joining a pod's runsc sandbox (CRI annotations, here set
/// through ctr) with a terminal: runsc makes its terminal at `create`.
#[test]
fn runsc_pod_container_with_a_terminal() {
    if !script_available() {
        return;
    }
    let Some(env) = Env::start("runsc-pod-terminal", "runsc") else {
        return;
    };
    let mut runscs = vec![String::from("runsc")];
    if Path::new(RUNSC_20240729).is_file() {
        runscs.push(RUNSC_20240729.into());
    }
    for (i, runsc) in runscs.iter().enumerate() {
        let config = env.write_config(
            &format!("pod-{i}.toml"),
            &format!("[runtime]\nname = \"runsc\"\npath = \"{runsc}\"\n"),
        );
        // Each container its own rootfs, as CRI gives them (runsc 20240729
        // keeps a file per sandbox in a rootfs it overlays).
        let rootfs = |name: &str| {
            let dir = env.dir.join(format!("{name}-rootfs"));
            let out = Command::new("cp")
                .arg("-a")
                .arg(image_dir().join("rootfs"))
                .arg(&dir)
                .output()
                .expect("running cp");
            assert!(out.status.success(), "{}", text(&out.stderr));
            dir.display().to_string()
        };
        let (pod, app) = (format!("pod{i}"), format!("app{i}"));
        let annotations = |kind: &str| {
            vec![
                "--annotation".to_string(),
                format!("io.kubernetes.cri.container-type={kind}"),
                "--annotation".to_string(),
                format!("io.kubernetes.cri.sandbox-id={pod}"),
            ]
        };
        let mut args: Vec<String> = ["run", "-d", "--runtime", RUNTIME, "--runtime-config-path"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.push(config.clone());
        args.extend(annotations("sandbox"));
        args.extend(["--rootfs".into(), rootfs(&pod), pod.clone()]);
        args.extend(["/bin/sleep".into(), "1000".into()]);
        let out = env.ctr(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert_eq!(code(&out), 0, "{runsc}: stderr: {}", text(&out.stderr));

        let mut args: Vec<String> = ["run", "--rm", "-t", "--runtime", RUNTIME]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(["--runtime-config-path".into(), config.clone()]);
        args.extend(annotations("container"));
        args.extend(["--rootfs".into(), rootfs(&app), app.clone()]);
        args.extend(["/bin/sh".into(), "-c".into(), SCRIPT.into()]);
        assert_real_terminal(
            &in_pty(&env, &args, None),
            &format!("{runsc}: pod container"),
        );

        let _ = env.ctr(&["task", "kill", "-s", "SIGKILL", &pod]);
        env.wait_status(&pod, "STOPPED");
        let _ = env.ctr(&["task", "rm", &pod]);
        let _ = env.ctr(&["containers", "rm", &pod]);
        env.assert_clean("runsc", &[&pod, &app]);
    }
}

/// Without the relay (`runsc_host_terminal = true`) a runsc program has
/// gVisor's host-terminal emulation: the size answers, but the terminal has
/// no name in the sandbox. This is what runsc itself gives (also under
/// containerd-shim-runc-v2 or gVisor's own shim); should a runsc version
/// ever name it, the relay could go.
#[test]
fn runsc_host_terminal_has_no_name() {
    if !script_available() {
        return;
    }
    let Some(env) = Env::start("runsc-host-terminal", "runsc") else {
        return;
    };
    let mut runscs = vec![String::from("runsc")];
    if Path::new(RUNSC_20240729).is_file() {
        runscs.push(RUNSC_20240729.into());
    }
    for (i, runsc) in runscs.iter().enumerate() {
        let config = env.write_config(
            &format!("host-terminal-{i}.toml"),
            &format!(
                "[runtime]\nname = \"runsc\"\npath = \"{runsc}\"\nrunsc_host_terminal = true\n"
            ),
        );
        let id = format!("host{i}");
        let out = in_pty(
            &env,
            &run_args(&config, &["--rm", "-t"], &id, &["/bin/sh", "-c", SCRIPT]),
            None,
        );
        assert_eq!(code(&out), 0, "{runsc}: stderr: {}", text(&out.stderr));
        let shown = lines(&out);
        assert_eq!(
            shown.first().map(String::as_str),
            Some("not a tty"),
            "{runsc}: {shown:?}"
        );
        assert!(
            shown.iter().any(|l| l == "resized 22 77"),
            "{runsc}: {shown:?}"
        );
        env.assert_clean("runsc", &[&id]);
    }
}

/// Debian mounts /run `noexec` (initramfs-tools mounts its own
/// `nodev,noexec,nosuid` tmpfs there and moves it into the system), and the
/// relay is installed under /run/nucleus. gVisor maps a program's text from
/// the host file itself (`*gofer.dentryPlatformFile`), and the host refuses
/// PROT_EXEC on a noexec mount: the relay died at its first instruction
/// ("Unhandled user fault ... mmap ... operation not permitted"), every
/// terminal process exited 139 (SIGSEGV) with no output, on 20221219 and
/// 20240729 alike. Here /run/nucleus is a noexec tmpfs, in a mount
/// namespace of the test's own: terminals work on both runsc versions.
#[test]
fn runsc_relay_under_a_noexec_run() {
    if !script_available() {
        return;
    }
    in_own_mount_namespace(|| {
        std::fs::create_dir_all("/run/nucleus").expect("creating /run/nucleus");
        let flags = nix::mount::MsFlags::MS_NOEXEC
            | nix::mount::MsFlags::MS_NOSUID
            | nix::mount::MsFlags::MS_NODEV;
        nix::mount::mount(
            Some("tmpfs"),
            "/run/nucleus",
            Some("tmpfs"),
            flags,
            Some("mode=0755"),
        )
        .expect("a noexec tmpfs on /run/nucleus");
        let Some(env) = Env::start("runsc-noexec-run", "runsc") else {
            return;
        };
        let mut runscs = vec![String::from("runsc")];
        if Path::new(RUNSC_20240729).is_file() {
            runscs.push(RUNSC_20240729.into());
        }
        for (i, runsc) in runscs.iter().enumerate() {
            let config = env.write_config(
                &format!("noexec-{i}.toml"),
                &format!("[runtime]\nname = \"runsc\"\npath = \"{runsc}\"\n"),
            );
            terminal_scenario(&env, "runsc", &config);
        }
    });
}

/// Runs `f` on a thread of its own in a mount namespace of its own, with
/// every mount private (nothing `f` mounts reaches the host); containerd and
/// all it starts from `f` inherit the namespace.
fn in_own_mount_namespace(f: impl FnOnce() + Send + 'static) {
    let ran = std::thread::spawn(move || {
        // SAFETY: unshare takes a flag; CLONE_NEWNS also gives this thread
        // a filesystem context of its own (CLONE_FS), the process keeps its.
        let rc = unsafe { libc::unshare(libc::CLONE_NEWNS) };
        assert_eq!(rc, 0, "unshare: {}", std::io::Error::last_os_error());
        nix::mount::mount(
            None::<&str>,
            "/",
            None::<&str>,
            nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .expect("making every mount private");
        f()
    })
    .join();
    if let Err(panic) = ran {
        std::panic::resume_unwind(panic);
    }
}

/// The relay itself on a host pty: the program gets a new pty (not the
/// given one) of the given terminal's size, and its exit code.
#[test]
fn relay_gives_a_pty_of_its_own() {
    if !script_available() {
        return;
    }
    let relay = env!("CARGO_BIN_EXE_nucleus-tty");
    let line = format!(
        "stty cols 77 rows 22; tty; exec {} --size 10x5 -- /bin/sh -c 'tty; stty size; exit 3'",
        quote(relay)
    );
    let out = Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .stdin(Stdio::null())
        .output()
        .expect("running script");
    assert_eq!(code(&out), 3, "stderr: {}", text(&out.stderr));
    let shown = lines(&out);
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert!(
        shown[0].starts_with("/dev/pts/") && shown[1].starts_with("/dev/pts/"),
        "{shown:?}"
    );
    assert_ne!(shown[0], shown[1], "the program is on a pty of its own");
    assert_eq!(shown[2], "22 77", "{shown:?}");
}
