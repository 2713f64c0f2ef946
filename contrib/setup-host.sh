#!/usr/bin/env bash
# Prepares a Debian (bookworm) host for nucleus-shim, as root: installs
# containerd, the OCI runtimes, busybox-static and the CNI plugins (CRI pods)
# from Debian's packages, and fixes the cgroup layout crun needs. Idempotent.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "setup-host.sh: run as root" >&2; exit 1; }

# protobuf-compiler: protoc, which the CRI test client (k8s-cri) needs at build time.
# patchelf: contrib/runtimes.sh points newer Debian runtimes at their own libc.
pkgs=(containerd runc crun runsc busybox-static containernetworking-plugins iproute2 file tar coreutils
  protobuf-compiler util-linux procps patchelf)
missing=()
for p in "${pkgs[@]}"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-host.sh: installing ${missing[*]}"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

command -v cargo >/dev/null || {
  echo "setup-host.sh: cargo not found: install a current Rust toolchain (rustup) first" >&2; exit 1; }

# Hybrid cgroups (v1 controllers plus a v2 mount holding a controller): crun
# refuses them ("cgroups in hybrid mode not supported"). Give hugetlb its own
# v1 hierarchy so the v2 mount holds no controller.
unified=/sys/fs/cgroup/unified
if [ -f "$unified/cgroup.controllers" ] && grep -qw hugetlb "$unified/cgroup.controllers"; then
  if ! grep -q ' /sys/fs/cgroup/hugetlb ' /proc/self/mountinfo; then
    mkdir -p /sys/fs/cgroup/hugetlb
    mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
    echo "setup-host.sh: mounted hugetlb as a cgroup v1 hierarchy (crun hybrid-mode fix)"
  fi
fi
mkdir -p /run/containerd/s && chmod 0700 /run/containerd/s
echo "setup-host.sh: host ready ($(containerd --version | cut -d' ' -f3), runc $(runc --version | head -1 | cut -d' ' -f3), $(crun --version | head -1), runsc $(runsc --version | head -1 | cut -d' ' -f3))"
