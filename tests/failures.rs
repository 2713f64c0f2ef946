//! Bad input gets a clear error in ctr's output and leaves nothing behind.

mod common;

use common::{code, text, Env};

fn run_with_config(env: &Env, config_body: &str, id: &str, cmd: &[&str]) -> (i32, String) {
    let cfg = env.dir.join(format!("{id}.toml"));
    std::fs::write(&cfg, config_body).unwrap();
    let rootfs = common::image_dir().join("rootfs").display().to_string();
    let cfg = cfg.display().to_string();
    let mut args = vec![
        "run",
        "--rm",
        "--runtime",
        common::RUNTIME,
        "--runtime-config-path",
        &cfg,
        "--rootfs",
        &rootfs,
        id,
    ];
    args.extend_from_slice(cmd);
    let out = env.ctr(&args);
    (
        code(&out),
        format!("{}{}", text(&out.stdout), text(&out.stderr)),
    )
}

#[test]
fn missing_runtime_binary_is_named() {
    let Some(env) = Env::start("missing-binary", "runc") else {
        return;
    };
    let (rc, out) = run_with_config(
        &env,
        "[runtime]\nname = \"runc\"\npath = \"/nonexistent/bin/runc\"\n",
        "nobin",
        &["/bin/true"],
    );
    assert_ne!(rc, 0);
    assert!(
        out.contains("/nonexistent/bin/runc") && out.contains("not found"),
        "ctr said: {out}"
    );
    env.assert_clean("runc", &["nobin"]);
}

#[test]
fn unknown_config_key_is_named() {
    let Some(env) = Env::start("unknown-key", "runc") else {
        return;
    };
    let (rc, out) = run_with_config(
        &env,
        "[runtime]\nname = \"runc\"\nturbo = true\n",
        "badkey",
        &["/bin/true"],
    );
    assert_ne!(rc, 0);
    assert!(
        out.contains("turbo") && out.contains("badkey.toml"),
        "ctr said: {out}"
    );
    env.assert_clean("runc", &["badkey"]);
}

#[test]
fn malformed_config_is_named() {
    let Some(env) = Env::start("malformed-config", "runc") else {
        return;
    };
    let (rc, out) = run_with_config(&env, "[runtime\nname = ", "badtoml", &["/bin/true"]);
    assert_ne!(rc, 0);
    assert!(out.contains("badtoml.toml"), "ctr said: {out}");
    env.assert_clean("runc", &["badtoml"]);
}

/// The runtime's own words reach the user when it refuses to run a process
/// (a working directory that is a file).
fn runtime_failure(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let id = "nosuchcmd";
    let out = env.run_with(
        backend,
        &["--rm", "--cwd", "/bin/busybox"],
        id,
        &["/bin/true"],
    );
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert_ne!(code(&out), 0, "ctr said: {all}");
    // runsc says it from inside the sandbox, without the path.
    assert!(
        all.contains("/bin/busybox")
            || (backend == "runsc" && all.contains("cannot create sandbox")),
        "the runtime's error is not shown: {all}"
    );
    assert!(
        all.contains(backend),
        "the error does not name the runtime: {all}"
    );
    // Create failed: no task is left to delete.
    let tasks = text(&env.ctr(&["task", "ls", "-q"]).stdout);
    assert!(tasks.trim().is_empty(), "tasks left: {tasks}");
    let _ = env.ctr(&["containers", "delete", id]);
    env.assert_clean(backend, &[id]);
}

#[test]
fn runsc_runtime_failure() {
    runtime_failure("runsc", "runsc-failure");
}

#[test]
fn crun_runtime_failure() {
    runtime_failure("crun", "crun-failure");
}

#[test]
fn runc_runtime_failure() {
    runtime_failure("runc", "runc-failure");
}

#[test]
fn malformed_spec_is_named() {
    let Some(env) = Env::start("malformed-spec", "runc") else {
        return;
    };
    // A spec config file that is not a valid OCI spec: containerd passes it through.
    let spec = env.dir.join("bad-spec.json");
    std::fs::write(&spec, "{\"ociVersion\": \"1.0.2\", \"process\": 5}").unwrap();
    let spec = spec.display().to_string();
    let args = env.run_args("runc", &["--rm", "--config", &spec], "badspec", &[]);
    let out = env.ctr(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_ne!(code(&out), 0);
    let _ = env.ctr(&["containers", "delete", "badspec"]);
    env.assert_clean("runc", &["badspec"]);
}
