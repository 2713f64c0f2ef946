#!/usr/bin/env bash
# Side-by-side benchmark of containerd-shim-nucleus-v1 and containerd-shim-runc-v2
# in the same run, on the same private containerd, both driving runc:
#   - memory per shim with N containers running (PSS, RSS, threads)
#   - `ctr run --rm ... /bin/true` latency (mean of M runs)
# Reports nucleus/runc-v2 ratios. Run as root after contrib/setup-host.sh.
# usage: benches/shim-footprint.sh [N containers] [M runs]
set -euo pipefail
N=${1:-20}
M=${2:-20}
cd "$(dirname "$0")/.."
cargo build --release --locked >/dev/null 2>&1 || cargo build --release --locked
shim=$PWD/target/release/containerd-shim-nucleus-v1
work=$(mktemp -d /tmp/nucleus-bench.XXXXXX)
mkdir -p "$work/bin" && ln -s "$shim" "$work/bin/containerd-shim-nucleus-v1"
bash contrib/busybox-image.sh "$work" >/dev/null
address=$work/c.sock
printf 'version = 2\nroot = "%s/root"\nstate = "%s/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s"\n' \
  "$work" "$work" "$address" > "$work/config.toml"
printf '[runtime]\nname = "runc"\n' > "$work/runc.toml"
PATH=$work/bin:$PATH containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
cpid=$!
cleanup() {
  kill "$cpid" 2>/dev/null; wait "$cpid" 2>/dev/null || true
  pkill -9 -f -- "-address $address" 2>/dev/null || true
  grep " $work" /proc/self/mountinfo | cut -d' ' -f5 | sort -r | xargs -r -n1 umount -l
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 100); do ctr -a "$address" version >/dev/null 2>&1 && break; sleep 0.1; done
image=docker.io/library/nucleus-busybox:latest

now() { date +%s%N; }
declare -A pss rss threads latency
for kind in runc-v2 nucleus; do
  ns=bench-$kind
  ctr -a "$address" -n "$ns" images import "$work/image.tar" >/dev/null
  if [ "$kind" = nucleus ]; then rt=(--runtime io.nucleus.v1 --runtime-config-path "$work/runc.toml"); pat=containerd-shim-nucleus-v1
  else rt=(--runtime io.containerd.runc.v2); pat=containerd-shim-runc-v2; fi
  # Latency: one container start to exit, end to end through containerd.
  ctr -a "$address" -n "$ns" run --rm "${rt[@]}" "$image" warm /bin/true
  t0=$(now)
  for i in $(seq "$M"); do ctr -a "$address" -n "$ns" run --rm "${rt[@]}" "$image" "lat-$i" /bin/true; done
  latency[$kind]=$(( ($(now) - t0) / M / 1000 ))
  # Footprint: N long-running containers, one shim each.
  for i in $(seq "$N"); do ctr -a "$address" -n "$ns" run -d "${rt[@]}" "$image" "c-$i" /bin/sleep 100000; done
  sleep 2
  pids=$(pgrep -f -- "$pat .*-namespace $ns " || true)
  count=0; p_total=0; r_total=0; t_total=0
  for p in $pids; do
    p_total=$(( p_total + $(awk '/^Pss:/ {print $2}' "/proc/$p/smaps_rollup") ))
    r_total=$(( r_total + $(awk '/^VmRSS:/ {print $2}' "/proc/$p/status") ))
    t_total=$(( t_total + $(awk '/^Threads:/ {print $2}' "/proc/$p/status") ))
    count=$((count + 1))
  done
  [ "$count" -gt 0 ] || { echo "no $pat processes found" >&2; exit 1; }
  pss[$kind]=$((p_total / count)); rss[$kind]=$((r_total / count)); threads[$kind]=$((t_total * 10 / count))
  for i in $(seq "$N"); do
    ctr -a "$address" -n "$ns" task kill -s SIGKILL "c-$i" >/dev/null 2>&1 || true
  done
  sleep 1
  for i in $(seq "$N"); do
    ctr -a "$address" -n "$ns" task delete "c-$i" >/dev/null 2>&1 || true
    ctr -a "$address" -n "$ns" containers delete "c-$i" >/dev/null 2>&1 || true
  done
  echo "$kind: $count shims measured"
done

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '\n%-28s %14s %14s %8s\n' "per shim, $N containers" runc-v2 nucleus ratio
printf '%-28s %11s kB %11s kB %8s\n' "PSS" "${pss[runc-v2]}" "${pss[nucleus]}" "$(ratio "${pss[nucleus]}" "${pss[runc-v2]}")"
printf '%-28s %11s kB %11s kB %8s\n' "RSS" "${rss[runc-v2]}" "${rss[nucleus]}" "$(ratio "${rss[nucleus]}" "${rss[runc-v2]}")"
printf '%-28s %14s %14s %8s\n' "threads" "$(awk -v t="${threads[runc-v2]}" 'BEGIN{printf "%.1f", t/10}')" "$(awk -v t="${threads[nucleus]}" 'BEGIN{printf "%.1f", t/10}')" "$(ratio "${threads[nucleus]}" "${threads[runc-v2]}")"
printf '%-28s %11s us %11s us %8s\n' "ctr run --rm /bin/true" "${latency[runc-v2]}" "${latency[nucleus]}" "$(ratio "${latency[nucleus]}" "${latency[runc-v2]}")"
