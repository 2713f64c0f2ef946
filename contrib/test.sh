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
# Debian 13's runsc (20240729) beside the system's, for the terminal tests.
bash contrib/runsc-trixie.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
# One release build of the shim, shared by every end-to-end test.
cargo build --release --locked
export NUCLEUS_SHIM_BIN=$PWD/target/release/containerd-shim-nucleus-v1
cargo test --locked -- --test-threads="${TEST_THREADS:-2}"
# The README's demo: exits 0 and leaves nothing of its own behind.
bash contrib/demo.sh
if compgen -G '/tmp/nucleus-demo.*' >/dev/null; then
  echo "test.sh: contrib/demo.sh left $(echo /tmp/nucleus-demo.*)" >&2; exit 1
fi
# The VM lane: the suites against a Debian 13 guest (systemd's containerd,
# cgroup v2, current runc, crun and runsc); the image is built once and
# cached under /opt/nucleus-test/vm.
bash contrib/vm-lane.sh
