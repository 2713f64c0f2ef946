#!/usr/bin/env bash
# Stress side by side: the scenarios of tests/stress.rs at larger sizes, on
# containerd-shim-nucleus-v1 with runsc, crun and runc and on
# containerd-shim-runc-v2 (runc) in the same run, each on a private
# containerd of its own. For every scenario and shim it prints how many
# operations failed, the time taken, containerd's open fds before and after,
# and what was left (shim, runtime, container or logger processes, zombies,
# runtime state, bundles, mounts, sockets, task or container records, fds).
# Run as root after contrib/setup-host.sh.
# usage: benches/stress.sh [CONCURRENT] [CYCLES] [SHIM_KILLS]
#   (defaults 50 50 10; the test command runs 8 10 2)
set -uo pipefail
export NUCLEUS_STRESS_CONCURRENT=${1:-50}
export NUCLEUS_STRESS_CYCLES=${2:-50}
export NUCLEUS_STRESS_SHIM_KILLS=${3:-10}
cd "$(dirname "$0")/.."
out=$(mktemp /tmp/nucleus-stress.XXXXXX)
trap 'rm -f "$out"' EXIT
echo "sizes: concurrent=$NUCLEUS_STRESS_CONCURRENT cycles=$NUCLEUS_STRESS_CYCLES shim_kills=$NUCLEUS_STRESS_SHIM_KILLS"
# One scenario at a time: timings are not shared with another test's load.
# The runc_v2::* tests are the ignored ones; a scenario that fails on a
# shim fails its test, which is reported here, not fatal.
if [ -n "${STRESS_LOG:-}" ]; then
  # Tabulate the output of an earlier run instead.
  cp "$STRESS_LOG" "$out"
else
  start=$(date +%s)
  cargo test --release --locked --test stress -- --include-ignored --test-threads=1 --nocapture \
    >"$out" 2>&1
  echo "cargo test exit status $?, $(( $(date +%s) - start )) s"
fi
# With --nocapture a STRESS line may follow cargo's "test NAME ... " on its line.
sed -i 's/^test .* \.\.\. STRESS|/STRESS|/' "$out"
grep -q '^STRESS|' "$out" || { cat "$out"; exit 1; }

# STRESS|scenario|shim|ops=..|failed=..|secs=..|per_op_ms=..|fds=a->b|left=..|notes
awk -F'|' '
  /^STRESS\|/ {
    key = $2; shim = $3
    if (!(key in seen)) { seen[key] = 1; order[++n] = key }
    v = ""
    for (i = 4; i <= NF; i++) v = v (i > 4 ? " " : "") $i
    row[key, shim] = v
    shims[shim] = 1
    last = key SUBSEP shim
    next
  }
  /^  (left|failed): / && last != "" { detail[last] = detail[last] "\n      " substr($0, 3) }
  END {
    split("runc-v2 nucleus/runc nucleus/crun nucleus/runsc", col, " ")
    for (k = 1; k <= n; k++) {
      printf "\n%s\n", order[k]
      for (c = 1; c <= 4; c++) {
        s = col[c]
        if ((order[k], s) in row) {
          printf "  %-14s %s%s\n", s, row[order[k], s], detail[order[k], s]
        } else {
          printf "  %-14s n/a\n", s
        }
      }
    }
  }' "$out"
echo
echo "tests that failed:"
sed -n '/^failures:$/,/^test result/p' "$out" | grep -E '^    [a-z_0-9:]+$' | sort -u
exit 0
