#!/usr/bin/env bash
# The VM lane: the end-to-end suites against a host as users run one. A
# Debian 13 guest (contrib/vm-image.sh: systemd, pure cgroup v2, containerd
# 1.7 as Debian ships it with its Type=notify unit, current runc, crun and
# runsc) boots under qemu (contrib/vm-run.sh); this repository is shared into
# it over 9p at the same path; contrib/vm/lane-tests.sh installs the shim the
# way the README tells users to and runs the suites against the system
# containerd. Exits with the suites' status.
#
# Usage: contrib/vm-lane.sh [--timeout SECONDS]      (as root)
# Environment: CI (passed into the guest: a missing prerequisite fails),
#   NUCLEUS_LANE_SUITES ("suite[:filter args]" words, see lane-tests.sh),
#   CARGO_TARGET_DIR (shared into the guest too when outside the repo).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
timeout=3000
while [ $# -gt 0 ]; do
  case $1 in
    --timeout) timeout=${2:?--timeout needs seconds}; shift 2 ;;
    *) echo "vm-lane.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "vm-lane.sh: run as root" >&2; exit 1; }
start=$(date +%s)

bash contrib/vm-image.sh >/dev/null

# What runs in the guest, built here (the guest has no toolchain): the
# release shim, the suites' test binaries and the static in-container probe.
target=${CARGO_TARGET_DIR:-$repo/target}
cargo build --release --locked
suites=(clean_start lifecycle exec control conformance hardening breakout restart log_uri cri docker)
test_args=()
for s in "${suites[@]}"; do test_args+=(--test "$s"); done
lane=$target/vm-lane
rm -rf "$lane"
mkdir -p "$lane"
# The guest mounts the result dir before the repository: it must not lie
# inside a share, or the share's mount would hide it.
result=$(mktemp -d /tmp/nucleus-lane.XXXXXX)
trap 'rm -rf "$result"' EXIT
cargo test --locked --no-run --message-format=json "${test_args[@]}" >"$lane/build.json"
rustc --edition 2021 -O -C target-feature=+crt-static -o "$lane/nucleus-probe" tests/probe/probe.rs
rustc --edition 2021 -O -C target-feature=+crt-static -o "$lane/emulator-check" contrib/vm/emulator-check.rs

{
  printf 'LANE_SHIM=%q\n' "$target/release/containerd-shim-nucleus-v1"
  printf 'LANE_PROBE=%q\n' "$lane/nucleus-probe"
  printf 'LANE_EMULATOR_CHECK=%q\n' "$lane/emulator-check"
  printf 'LANE_CI=%q\n' "${CI:-}"
  printf 'LANE_SUITES=%q\n' "${NUCLEUS_LANE_SUITES:-}"
  for s in "${suites[@]}"; do
    exe=$(grep -o "\"executable\":\"[^\"]*/deps/$s-[0-9a-f]*\"" "$lane/build.json" | tail -1 | cut -d'"' -f4 || true)
    [ -x "$exe" ] || { echo "vm-lane.sh: no test binary for $s" >&2; exit 1; }
    printf 'LANE_BIN_%s=%q\n' "$s" "$exe"
  done
} >"$result/lane.env"

shares=(--share "$repo")
case $target/ in "$repo"/*) ;; *) shares+=(--share "$target") ;; esac
rc=0
# print-fatal-signals: the kernel logs a process killed by a fatal signal
# (lane-tests.sh keeps the kernel log), so no shim dies without a trace.
bash contrib/vm-run.sh "${shares[@]}" --run "$repo/contrib/vm/lane-tests.sh" \
  --result "$result" --timeout "$timeout" --quiet --append "print-fatal-signals=1" || rc=$?
mkdir -p "$lane/result"
cp -a "$result"/. "$lane/result/"
# The guest's summary (one line a suite) and where the whole output is.
[ -f "$lane/result/summary" ] && cat "$lane/result/summary"
echo "vm-lane.sh: rc=$rc in $(($(date +%s) - start)) s; output in $lane/result/output.log"
if [ "$rc" != 0 ] && [ -f "$lane/result/output.log" ]; then
  grep -E '^(test .*FAILED|---- |thread .* panicked|failures:|SKIP)' "$lane/result/output.log" | head -40 || true
fi
exit "$rc"
