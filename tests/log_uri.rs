//! End-to-end log URIs on runsc, crun and runc: `ctr run --log-uri
//! file:///…` appends stdout and stderr to the file, and `--log-uri
//! binary:///…` hands them to a logging program of the test's own.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::{code, live_processes, text, wait_for_file, Env};

fn file_and_binary_log_uris(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let log = env.dir.join("logs/container.log");
    let uri = format!("file://{}", log.display());
    let out = env.run_with(
        backend,
        &["--rm", "--log-uri", &uri],
        "tofile",
        &["/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2"],
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let got = wait_for_file(&log, "to-stderr");
    assert!(
        got.contains("to-stdout\n") && got.contains("to-stderr\n"),
        "{got:?}"
    );

    let logger = env.dir.join("logger.sh");
    let prefix = env.dir.join("logged");
    std::fs::write(
        &logger,
        format!(
            "#!/bin/sh\necho \"$CONTAINER_NAMESPACE/$CONTAINER_ID $*\" > {p}.meta\nexec 5>&-\n\
             cat <&3 > {p}.out &\ncat <&4 > {p}.err\nwait\n",
            p = prefix.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&logger, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let uri = format!("binary://{}?tag=web", logger.display());
    let out = env.run_with(
        backend,
        &["--rm", "--log-uri", &uri],
        "tobin",
        &["/bin/sh", "-c", "echo bin-stdout; echo bin-stderr >&2"],
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    let ext = |e: &str| prefix.with_extension(e);
    assert_eq!(
        wait_for_file(&ext("meta"), "tobin"),
        format!("{}/tobin tag web\n", env.namespace)
    );
    assert_eq!(wait_for_file(&ext("out"), "bin-stdout"), "bin-stdout\n");
    assert_eq!(wait_for_file(&ext("err"), "bin-stderr"), "bin-stderr\n");
    env.assert_clean(backend, &["tofile", "tobin"]);
}

/// Polls until no live process's command line mentions `needle`.
fn gone(needle: &str, limit: Duration) -> Result<(), Vec<(u32, String)>> {
    let deadline = Instant::now() + limit;
    loop {
        let left: Vec<(u32, String)> = live_processes()
            .into_iter()
            .filter(|(_, cmd)| cmd.contains(needle))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(left);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A logging binary that stays after its input ends gets SIGTERM when the
/// container's IO is closed (Delete), and SIGKILL when it ignores that for
/// 12 s, as under containerd-shim-runc-v2; either way it is reaped and
/// nothing of it is left.
fn logger_is_stopped_with_the_io(backend: &str, test: &str) {
    let Some(env) = Env::start(test, backend) else {
        return;
    };
    let stays = |name: &str, on_term: &str| {
        let logger = env.dir.join(format!("{name}.sh"));
        let p = env.dir.join(name);
        std::fs::write(
            &logger,
            format!(
                "#!/bin/sh\ntrap '{on_term}' TERM\nexec 5>&-\ncat <&3 > {p}.out\n\
                 echo eof > {p}.eof\nwhile :; do sleep 1; done\n",
                p = p.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&logger, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        (logger, p)
    };
    let term_marker = env.dir.join("polite.term");
    let (polite, polite_out) = stays(
        "polite",
        &format!("echo term > {}; exit 0", term_marker.display()),
    );
    let uri = format!("binary://{}", polite.display());
    let out = env.run_with(
        backend,
        &["--rm", "--log-uri", &uri],
        "polite",
        &["/bin/echo", "hello"],
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert_eq!(
        wait_for_file(&polite_out.with_extension("out"), "hello"),
        "hello\n"
    );
    assert_eq!(
        wait_for_file(&term_marker, "term"),
        "term\n",
        "SIGTERM reached the logger"
    );
    let polite = polite.display().to_string();
    gone(&polite, Duration::from_secs(5)).unwrap_or_else(|left| panic!("logger left: {left:?}"));

    let (stubborn, stubborn_out) = stays("stubborn", "");
    let uri = format!("binary://{}", stubborn.display());
    let started = Instant::now();
    let out = env.run_with(
        backend,
        &["--rm", "--log-uri", &uri],
        "stubborn",
        &["/bin/echo", "hi"],
    );
    assert_eq!(code(&out), 0, "stderr: {}", text(&out.stderr));
    assert_eq!(
        wait_for_file(&stubborn_out.with_extension("eof"), "eof"),
        "eof\n"
    );
    let stubborn = stubborn.display().to_string();
    gone(&stubborn, Duration::from_secs(20))
        .unwrap_or_else(|left| panic!("a logger ignoring SIGTERM is left: {left:?}"));
    assert!(
        started.elapsed() >= Duration::from_secs(11),
        "killed before its 12 s: {:?}",
        started.elapsed()
    );
    assert!(env.shim_zombies().is_empty(), "{:?}", env.shim_zombies());
    env.assert_clean(backend, &["polite", "stubborn"]);
}

on_each_backend!(file_and_binary_log_uris, logger_is_stopped_with_the_io);
