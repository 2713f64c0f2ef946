#!/usr/bin/env bash
# One command from a fresh Debian machine (as root) to every test passing:
# prepares the host (and a containerd 2.x for the CRI tests), checks formatting and lints, builds the shim once in
# release mode and runs the unit and end-to-end suites against it, the demo,
# and the same suites in a Debian 13 VM (contrib/vm-lane.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
bash contrib/setup-host.sh
# containerd 2.x beside the system's 1.6, for the config-version-3 CRI tests.
bash contrib/containerd2.sh
# Debian 13's and sid's runc, crun and runsc beside the system's (each with
# its suite's own libc), for the terminal tests and the runtime runs below.
bash contrib/runtimes.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# One release build of the shim, shared by every end-to-end test.
cargo build --release --locked
export NUCLEUS_SHIM_BIN=$PWD/target/release/containerd-shim-nucleus-v1
cargo test --locked -- --test-threads="${TEST_THREADS:-2}"
# Every decoder of outside input under libFuzzer, FUZZ_SECONDS (20) each.
bash contrib/fuzz.sh
# Current runtimes: the lifecycle, exec, hardening, breakout, conformance and
# clients suites again on Debian 13's and on sid's runc, crun and runsc,
# unpacked by contrib/runtimes.sh and
# named to the harness by NUCLEUS_RUNC/NUCLEUS_CRUN/NUCLEUS_RUNSC (on 2 cores
# about 35 s for Debian 13's set, 25 s for sid's). Not sid's runsc: that build (gVisor 20240729 built with
# Go 1.26) panics in its sentry on a wrong goroutine id; Debian 13's build of
# the same gVisor does not. runc_v2_leaves_them_open runs
# containerd-shim-runc-v2 on the host's runc whatever the set.
for suite in trixie sid; do
  (
    set -a
    # shellcheck source=/dev/null
    . "${NUCLEUS_RUNTIMES_DIR:-/opt/nucleus-test/runtimes}/$suite/nucleus-runtimes.env"
    set +a
    skip=(--skip runc_v2_leaves_them_open)
    if [ "$suite" = sid ]; then unset NUCLEUS_RUNSC; skip+=(--skip runsc::); fi
    echo "test.sh: lifecycle, exec, hardening, breakout, conformance and clients on $suite's runtimes"
    cargo test --locked --test lifecycle --test exec --test hardening --test breakout --test conformance \
      --test clients -- \
      "${skip[@]}" --test-threads="${TEST_THREADS:-2}"
  )
done
# The README's demo: exits 0 and leaves nothing of its own behind.
bash contrib/demo.sh
if compgen -G '/tmp/nucleus-demo.*' >/dev/null; then
  echo "test.sh: contrib/demo.sh left $(echo /tmp/nucleus-demo.*)" >&2; exit 1
fi
# The VM lane: the suites against a Debian 13 guest (systemd's containerd,
# cgroup v2, current runc, crun and runsc); the image is built once and
# cached under /opt/nucleus-test/vm.
bash contrib/vm-lane.sh
