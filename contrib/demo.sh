#!/usr/bin/env bash
# One command from a fresh Debian machine (as root) to a container run by
# nucleus: prepares the host, builds and installs the shim, builds a busybox
# rootfs and image locally (no registry), and runs it through
#   ctr run --runtime io.nucleus.v1
# on runsc, crun and runc. Uses the system containerd if it is running,
# otherwise a private one started for the demo.
set -euo pipefail
cd "$(dirname "$0")/.."
bash contrib/setup-host.sh
cargo build --release --locked
install -m 0755 target/release/containerd-shim-nucleus-v1 /usr/local/bin/containerd-shim-nucleus-v1
install -d -m 0755 /etc/nucleus
for b in runsc crun runc; do install -m 0644 "contrib/nucleus-$b.toml" "/etc/nucleus/$b.toml"; done
[ -e /etc/nucleus/nucleus.toml ] || install -m 0644 contrib/nucleus-runsc.toml /etc/nucleus/nucleus.toml

work=$(mktemp -d /tmp/nucleus-demo.XXXXXX)
bash contrib/busybox-image.sh "$work" >/dev/null
address=/run/containerd/containerd.sock
pid=
if ! ctr -a "$address" version >/dev/null 2>&1; then
  address=$work/containerd.sock
  printf 'version = 2\nroot = "%s/root"\nstate = "%s/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s"\n' \
    "$work" "$work" "$address" > "$work/config.toml"
  PATH=/usr/local/bin:$PATH containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do ctr -a "$address" version >/dev/null 2>&1 && break; sleep 0.1; done
fi
cleanup() {
  [ -z "$pid" ] || { kill "$pid"; wait "$pid" 2>/dev/null || true; }
  # Mounts a failed run may have left under the demo's dir (none after a
  # clean run: grep finding nothing is not a failure).
  { grep " $work/" /proc/self/mountinfo || true; } | cut -d' ' -f5 | sort -r | xargs -r -n1 umount -l
  rm -rf "$work"
  # The namespace's parent cgroup (/nucleus-demo) that runc and crun make
  # for ctr's default /<namespace>/<id> path and leave (as under runc-v2):
  # removed once empty, on v1 from every hierarchy.
  rmdir /sys/fs/cgroup/nucleus-demo /sys/fs/cgroup/*/nucleus-demo 2>/dev/null || true
}
trap cleanup EXIT
ctr -a "$address" -n nucleus-demo images import "$work/image.tar" >/dev/null
for b in runsc crun runc; do
  echo "== $b"
  ctr -a "$address" -n nucleus-demo run --rm --runtime io.nucleus.v1 \
    --runtime-config-path "/etc/nucleus/$b.toml" \
    docker.io/library/nucleus-busybox:latest "demo-$b" \
    sh -c 'echo "hello from $(uname -s) $(uname -r) on '"$b"'"'
done
