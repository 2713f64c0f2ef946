//! End-to-end log URIs on runsc, crun and runc: `ctr run --log-uri
//! file:///…` appends stdout and stderr to the file, and `--log-uri
//! binary:///…` hands them to a logging program of the test's own.

#[macro_use]
mod common;

use common::{code, text, wait_for_file, Env};

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

on_each_backend!(file_and_binary_log_uris);
