#!/usr/bin/env bash
# Fuzzes every decoder of outside input (the targets in fuzz/fuzz_targets/)
# for a bounded time each, on the stable toolchain: cargo-fuzz builds the
# targets with libFuzzer's coverage instrumentation and no sanitizer
# (`-s none`; the sanitizers need a nightly rustc, which cannot be fetched
# here). Every allocation in a target is checked against the input's size
# (fuzz/src/lib.rs), libFuzzer stops on a panic, a per-input timeout or an
# RSS limit.
#
#   contrib/fuzz.sh [TARGET...]      all targets when none is named
#
# FUZZ_SECONDS   seconds per target (default 20)
# FUZZ_ARTIFACTS where a crashing input is kept (default fuzz/artifacts)
# CARGO_TARGET_DIR as for cargo (default fuzz/target)
#
# Exits non-zero when any target crashes, times out or runs out of memory,
# naming the target and printing the input. Installs what it needs
# (cargo-fuzz from crates.io, a C++ compiler for libFuzzer) when missing;
# when that fails it skips, except under CI=true, where it fails.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.1
FUZZ_SECONDS=${FUZZ_SECONDS:-20}
FUZZ_ARTIFACTS=${FUZZ_ARTIFACTS:-$PWD/fuzz/artifacts}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/fuzz/target}
TRIPLE=x86_64-unknown-linux-gnu

missing() {
  if [ "${CI:-}" = true ]; then
    echo "fuzz.sh: FAIL: $1 (CI=true: a missing prerequisite is a failure)" >&2
    exit 1
  fi
  echo "fuzz.sh: SKIP: $1" >&2
  exit 0
}

command -v cargo >/dev/null || missing "cargo is not installed"
# libfuzzer-sys compiles libFuzzer's C++ sources.
if ! command -v c++ >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq g++ >/dev/null ||
      missing "could not install g++ (libFuzzer is C++)"
  else
    missing "no C++ compiler (libFuzzer is C++): apt-get install g++"
  fi
fi
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "fuzz.sh: installing cargo-fuzz $CARGO_FUZZ_VERSION from crates.io"
  cargo install --locked --force cargo-fuzz --version "$CARGO_FUZZ_VERSION" ||
    missing "could not install cargo-fuzz $CARGO_FUZZ_VERSION"
fi

all_targets=(wire_frames start_stdin nucleus_toml harden_spec log_uri)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [ -f "fuzz/fuzz_targets/$t.rs" ] || { echo "fuzz.sh: no target $t (fuzz/fuzz_targets/)" >&2; exit 2; }
done
# Every target in fuzz/fuzz_targets/ is run by default: a new one must be listed.
for f in fuzz/fuzz_targets/*.rs; do
  t=$(basename "$f" .rs)
  [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "fuzz.sh: $f is not in all_targets" >&2; exit 2; }
done

build=(-s none -a --release)
echo "fuzz.sh: building ${targets[*]} (cargo fuzz build ${build[*]})"
start=$(date +%s)
cargo fuzz build "${build[@]}" --fuzz-dir fuzz >/dev/null 2>"${TMPDIR:-/tmp}/nucleus-fuzz-build.log" || {
  tail -40 "${TMPDIR:-/tmp}/nucleus-fuzz-build.log" >&2
  echo "fuzz.sh: FAIL: building the fuzz targets" >&2
  exit 1
}
echo "fuzz.sh: built in $(( $(date +%s) - start )) s"

work=$(mktemp -d "${TMPDIR:-/tmp}/nucleus-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
failed=()
for t in "${targets[@]}"; do
  # New inputs go to a scratch corpus; fuzz/corpus/$t (the committed seeds)
  # is only read.
  mkdir -p "$work/$t" "$FUZZ_ARTIFACTS/$t"
  args=(-max_total_time="$FUZZ_SECONDS" -timeout=10 -rss_limit_mb=1024 -max_len=65536
        -artifact_prefix="$FUZZ_ARTIFACTS/$t/" -print_final_stats=1)
  [ -f "fuzz/dict/$t.dict" ] && args+=(-dict="fuzz/dict/$t.dict")
  echo "fuzz.sh: $t for ${FUZZ_SECONDS} s"
  touch "$work/$t.start"
  if "$CARGO_TARGET_DIR/$TRIPLE/release/$t" "${args[@]}" "$work/$t" "fuzz/corpus/$t" \
      >"$work/$t.log" 2>&1; then
    grep -E '^stat::number_of_executed_units|^Done ' "$work/$t.log" | sed "s/^/fuzz.sh: $t: /"
  else
    rc=$?
    failed+=("$t")
    echo "fuzz.sh: FAIL: target $t exited $rc" >&2
    # libFuzzer's report without its progress lines and the backtrace's
    # frames: the panic message or the allocation, then the input.
    grep -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE|pulse)|NEW_FUNC|^INFO:|^WARNING: Failed to find function|^ +[0-9]+: |^ +at ' \
      "$work/$t.log" | tail -n 30 >&2 || true
    input=$(find "$FUZZ_ARTIFACTS/$t" -type f -newer "$work/$t.start" -printf '%T@ %p\n' | sort -n | tail -n 1 | cut -d' ' -f2-)
    if [ -n "$input" ]; then
      echo "fuzz.sh: the input that failed $t: $input ($(stat -c %s "$input") bytes; first 1 KiB):" >&2
      head -c 1024 "$input" | od -A d -t x1z -v >&2
      echo "fuzz.sh: replay with: $CARGO_TARGET_DIR/$TRIPLE/release/$t $input" >&2
    fi
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: FAIL: ${failed[*]}" >&2
  exit 1
fi
echo "fuzz.sh: ${#targets[@]} targets ran clean for ${FUZZ_SECONDS} s each"
