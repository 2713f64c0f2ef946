#!/usr/bin/env bash
# One command from a fresh Debian machine (as root) to every test passing:
# prepares the host (and a containerd 2.x for the CRI tests), checks formatting and lints, builds the shim once in
# release mode and runs the unit and end-to-end suites against it.
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
