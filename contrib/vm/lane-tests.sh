#!/bin/bash
# Guest side of the VM lane (contrib/vm-lane.sh runs it through
# contrib/vm-run.sh, as root, in the Debian 13 guest). Sets nucleus up the way
# the README tells a user on a systemd host to, then runs the end-to-end
# suites against the system containerd (NUCLEUS_TEST_CONTAINERD=system):
#   - the shim on containerd's PATH (/usr/local/bin), the contrib configs
#     under /etc/nucleus;
#   - Debian's /etc/containerd/config.toml plus the handlers of
#     contrib/containerd-config.toml; for the tests only: the local pause
#     image as the sandbox image (no registry here) and a CNI bridge;
#   - `systemctl restart containerd` (its own unit: Type=notify, so
#     NOTIFY_SOCKET is in the environment of every shim it starts);
#   - Docker's daemon.json from contrib/, dockerd started for the docker
#     suite (tests/docker.rs, whose tests run with --ignored: only here).
# Reads $NUCLEUS_VM_RESULT/lane.env (LANE_SHIM, LANE_PROBE, LANE_CI,
# LANE_BIN_<suite>, LANE_SUITES); writes $NUCLEUS_VM_RESULT/summary.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
result=${NUCLEUS_VM_RESULT:?not in the VM lane}
# shellcheck source=/dev/null
. "$result/lane.env"
cd "$repo"

say() { printf 'lane-tests: %s\n' "$*"; }

say "host: $(. /etc/os-release && echo "$PRETTY_NAME"), kernel $(uname -r), $(stat -fc %T /sys/fs/cgroup)"
say "$(containerd --version)"
say "runc $(runc --version | head -1 | cut -d' ' -f3), $(crun --version | head -1), runsc $(runsc --version | head -1 | cut -d' ' -f3)"
say "containerd unit: $(systemctl show -p Type --value containerd), NOTIFY_SOCKET=$(tr '\0' '\n' </proc/"$(systemctl show -p MainPID --value containerd)"/environ | sed -n 's/^NOTIFY_SOCKET=//p')"

# Whether the emulator itself computes right (contrib/vm/emulator-check.rs):
# a known QEMU TCG defect can crash any guest program; the summary says so.
emulator=$("$LANE_EMULATOR_CHECK" 2>&1 || true)
say "$emulator"

# The shim and its configs, as README's Kubernetes section says.
install -m 0755 "$LANE_SHIM" /usr/local/bin/containerd-shim-nucleus-v1
install -d -m 0755 /etc/nucleus
for b in runsc crun runc; do install -m 0644 "contrib/nucleus-$b.toml" "/etc/nucleus/$b.toml"; done
# As the host's CRI tests do: runsc builds that take a pod's network
# namespace for the host's (see README) run pods on the kernel's stack.
sed -i 's/^\[runtime\]$/[runtime]\nrunsc_pod_host_stack = true/' /etc/nucleus/runsc.toml

# Docker, as README "nerdctl and Docker" says: the runtimes of
# contrib/docker-daemon.json. dockerd starts with the docker suite (its unit
# is disabled in the image), and the plain `nucleus` entry's nucleus.toml
# with it (the other suites run with no /etc/nucleus/nucleus.toml).
install -d -m 0755 /etc/docker
install -m 0644 contrib/docker-daemon.json /etc/docker/daemon.json

# containerd's config: the distribution's, plus the contrib handlers.
pause=docker.io/library/nucleus-pause:latest
cfg=/etc/containerd/config.toml
[ -f "$cfg.dist" ] || cp "$cfg" "$cfg.dist"
cri_header='^[[:space:]]*\[plugins\."io\.containerd\.grpc\.v1\.cri"\][[:space:]]*$'
snippet=$(grep -v '^[[:space:]]*#' contrib/containerd-config.toml)
if grep -q "$cri_header" "$cfg.dist"; then
  # The CRI table exists: its keys go under it, the handlers' tables after.
  sed "/$cri_header/a\\    sandbox_image = \"$pause\"" "$cfg.dist" >"$cfg"
  printf '\n# contrib/containerd-config.toml\n%s\n' "$(grep -v "$cri_header" <<<"$snippet")" >>"$cfg"
else
  cp "$cfg.dist" "$cfg"
  printf '\n# contrib/containerd-config.toml\n%s\n' "$(sed "/$cri_header/a\\  sandbox_image = \"$pause\"" <<<"$snippet")" >>"$cfg"
fi
bridge=nlane0 prefix=10.88.77.
mkdir -p /etc/cni/net.d
cat >/etc/cni/net.d/10-nucleus-lane.conflist <<JSON
{"cniVersion": "1.0.0", "name": "nucleus-lane", "plugins": [
  {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": false,
   "ipam": {"type": "host-local", "ranges": [[{"subnet": "${prefix}0/24"}]]}},
  {"type": "loopback"}]}
JSON
systemctl restart containerd
for _ in $(seq 100); do ctr version >/dev/null 2>&1 && break; sleep 0.2; done
ctr version >/dev/null || { say "containerd did not come back"; journalctl -u containerd -n 50 --no-pager; exit 1; }

export NUCLEUS_TEST_CONTAINERD=system NUCLEUS_TEST_POD_NETWORK="$bridge:$prefix"
export NUCLEUS_PROBE_BIN=$LANE_PROBE NUCLEUS_SHIM_BIN=/usr/local/bin/containerd-shim-nucleus-v1
export RUST_BACKTRACE=1
[ -n "$LANE_CI" ] && export CI=$LANE_CI
# Each suite with the tests that belong here: containerd 2.x tests start a
# private containerd 2.x; the runsc network check rewrites a private
# handler's config. CRI pods share the k8s.io namespace: one at a time.
# A containerd restart stops it for every test: restarts one at a time too.
default_suites="clean_start lifecycle:--skip,containerd2 exec control conformance hardening breakout
  restart:--skip,containerd2,--test-threads=1 log_uri cri:--skip,containerd2,--skip,runsc_pod_network,--test-threads=1
  docker:--ignored"
rc=0
: >"$result/summary"
echo "$emulator" >>"$result/summary"
for entry in ${LANE_SUITES:-$default_suites}; do
  suite=${entry%%:*}
  args=()
  [ "$entry" = "$suite" ] || IFS=, read -r -a args <<<"${entry#*:}"
  bin_var=LANE_BIN_$suite
  bin=${!bin_var:-}
  [ -n "$bin" ] || { say "no test binary for $suite"; rc=1; continue; }
  threads=(--test-threads=2)
  for a in ${args[@]+"${args[@]}"}; do case $a in --test-threads=*) threads=() ;; esac; done
  t0=$(date +%s)
  if [ "$suite" = docker ] && ! systemctl is-active -q docker; then
    install -m 0644 contrib/nucleus-clients.toml /etc/nucleus/nucleus.toml
    say "starting dockerd ($(dockerd --version))"
    systemctl start docker || { journalctl -u docker -n 30 --no-pager; rc=1; }
  fi
  say "== $suite ${args[*]:-}"
  src=0
  "$bin" ${threads[@]+"${threads[@]}"} ${args[@]+"${args[@]}"} 2>&1 || src=$?
  line="$suite: $([ $src = 0 ] && echo passed || echo "FAILED ($src)") in $(($(date +%s) - t0)) s"
  say "$line"
  echo "$line" >>"$result/summary"
  [ $src = 0 ] || rc=1
done
if systemctl is-active -q docker; then
  journalctl -u docker --no-pager -o short-precise >"$result/docker.journal" || true
  systemctl stop docker docker.socket || true
fi
journalctl -u containerd --no-pager -o short-precise >"$result/containerd.journal" || true
# The kernel's view (OOM kills, fatal signals, segfaults): a shim that died
# without a word in containerd's journal shows up here.
journalctl -k --no-pager -o short-precise >"$result/kernel.log" || true
# Nothing of nucleus's may be left running.
left=$(pgrep -af 'containerd-shim-nucleus-v1|runsc-sandbox|runsc-gofer' || true)
if [ -n "$left" ]; then
  say "left running after the suites:"; printf '%s\n' "$left"
  echo "leftover processes: FAILED" >>"$result/summary"
  rc=1
fi
exit $rc
