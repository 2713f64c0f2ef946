#!/usr/bin/env bash
# Builds the VM lane's guest, once: a Debian 13 (trixie) root file system with
# systemd (pure cgroup v2), Debian's containerd, runc, crun and runsc, as a
# raw ext4 image plus its kernel and initrd. contrib/vm-run.sh boots it.
#
#   contrib/vm-image.sh           build unless already built; print the image dir
#   contrib/vm-image.sh --path    print the image dir; exit 1 if not built
#   contrib/vm-image.sh --rebuild build again even if it is there
#
# Environment: NUCLEUS_VM_DIR (default /opt/nucleus-test/vm),
#              NUCLEUS_VM_MIRROR (default http://deb.debian.org/debian).
#
# The image lives in $NUCLEUS_VM_DIR/trixie-KEY/ (rootfs.img, vmlinuz,
# initrd.img, packages.txt, build.log), KEY being a hash of this script, the
# guest package list and the guest files in contrib/vm/ (nucleus-lane and
# nucleus-lane.service), so editing any of them builds a new image and the
# older ones are removed. The build runs in a temporary directory beside it
# and is renamed into place when complete: an interrupted build never leaves
# a directory with the final name. Runs as root (debootstrap, chroot); on a
# Debian 12 host it installs debootstrap and qemu-system-x86 itself.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
vm_dir=${NUCLEUS_VM_DIR:-/opt/nucleus-test/vm}
mirror=${NUCLEUS_VM_MIRROR:-http://deb.debian.org/debian}
suite=trixie
# Depends only (debootstrap does not follow Recommends), so the guest stays
# lean. e2fsprogs/util-linux/kmod are needed at boot; iproute2/iptables and
# the CNI plugins are what container networking tests reach for. dbus is only
# a Recommends of systemd, but every real systemd host has it, and runc's and
# crun's systemd cgroup driver reach systemd through it. docker.io (26.1,
# dockerd, on Debian's containerd) and docker-cli for the Docker suite;
# their unit is disabled below and the suite starts it.
guest_pkgs=(linux-image-amd64 systemd-sysv udev kmod dbus file containerd runc crun runsc
  busybox-static containernetworking-plugins iproute2 iptables procps util-linux e2fsprogs
  docker.io docker-cli)
guest_files=("$here/vm/nucleus-lane" "$here/vm/nucleus-lane.service")
# Sparse: only what the root file system holds takes space on the host; the
# rest is room for what tests write inside the guest (into a per-run overlay).
image_size=8G

log() { printf 'vm-image.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# debootstrap from bookworm (it knows trixie), and qemu-system-x86 from
# bookworm-backports: bookworm's 7.2 cannot be installed beside the
# qemu-utils 10.0 from backports that this machine has, and the two must be
# of one version. The backports source is the project's own file, pinned by
# nothing: backports are NotAutomatic, so only what is asked for with -t
# comes from there. Does nothing when everything is already installed.
ensure_host_packages() {
  local missing=() backports=()
  installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'ok installed'; }
  for p in debootstrap e2fsprogs; do installed "$p" || missing+=("$p"); done
  installed qemu-system-x86 || backports+=(qemu-system-x86)
  # qemu-img makes vm-run.sh's per-run overlay.
  installed qemu-utils || backports+=(qemu-utils)
  [ ${#missing[@]} -eq 0 ] && [ ${#backports[@]} -eq 0 ] && return 0

  local apt=(apt-get -q -y -o DPkg::Lock::Timeout=600 --no-install-recommends)
  if [ ${#backports[@]} -gt 0 ]; then
    local src=/etc/apt/sources.list.d/nucleus-bookworm-backports.sources
    if ! grep -rqs --include='*.list' --include='*.sources' 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
      log "adding $src"
      cat >"$src" <<'EOF'
# Added by nucleus-shim contrib/vm-image.sh: qemu-system-x86 for the VM test
# lane, of the same version as qemu-utils from bookworm-backports. Backports
# are NotAutomatic: nothing else comes from here unless asked for.
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    fi
  fi
  log "installing ${missing[*]} ${backports[*]}"
  # apt's chatter to stderr: stdout carries only the image directory.
  "${apt[@]}" update >&2
  [ ${#missing[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive "${apt[@]}" install "${missing[@]}" >&2
  # -t: qemu-system-common/-data and seabios must come from backports too.
  [ ${#backports[@]} -eq 0 ] || DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -t bookworm-backports "${backports[@]}" >&2
}

key=$({ cat "${BASH_SOURCE[0]}" "${guest_files[@]}"; printf '%s\n' "$suite" "${guest_pkgs[@]}"; } | sha256sum | cut -c1-16)
image=$vm_dir/$suite-$key

case ${1:-} in
  --path)
    [ -f "$image/rootfs.img" ] || die "no image for this script at $image: run contrib/vm-image.sh"
    printf '%s\n' "$image"; exit 0 ;;
  --rebuild) rebuild=1 ;;
  '') rebuild= ;;
  *) die "usage: vm-image.sh [--path|--rebuild]" ;;
esac

[ "$(id -u)" = 0 ] || die "run as root (debootstrap, chroot)"
# Also when the image is there: vm-run.sh needs qemu on this host.
ensure_host_packages
if [ -z "$rebuild" ] && [ -f "$image/rootfs.img" ]; then
  log "image up to date: $image"
  printf '%s\n' "$image"; exit 0
fi

mkdir -p "$vm_dir"
# One build at a time; a second caller waits and then finds the image built.
exec 9>"$vm_dir/.lock"
flock 9
if [ -z "$rebuild" ] && [ -f "$image/rootfs.img" ]; then
  log "image up to date: $image"
  printf '%s\n' "$image"; exit 0
fi

# Removes a build directory, unmounting first whatever debootstrap left
# mounted in it (proc, sys) if it was interrupted; --one-file-system keeps
# rm out of anything still mounted there.
remove_tree() {
  local dir=$1 m
  [ -d "$dir" ] || return 0
  while read -r m; do umount -l "$m" 2>/dev/null || true
  done < <(awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
  rm -rf --one-file-system "$dir"
}

# Builds left by an interrupted run (we hold the lock: none is in progress).
for old in "$vm_dir"/.build.*; do
  if [ -e "$old" ]; then remove_tree "$old"; fi
done

start=$SECONDS
tmp=$(mktemp -d "$vm_dir/.build.XXXXXX")
root=$tmp/root
blog=$tmp/build.log
failed_log=$vm_dir/failed-build.log
child=''
# A failed or interrupted build leaves nothing but its log. debootstrap runs
# in a process group of its own (see below), which is stopped first, so
# nothing writes into the tree while it is removed.
# shellcheck disable=SC2317  # run by the EXIT trap
on_exit() {
  if [ -n "$child" ]; then kill -TERM -- "-$child" 2>/dev/null || true; wait "$child" 2>/dev/null || true; fi
  if cp -f "$blog" "$failed_log" 2>/dev/null; then log "build log: $failed_log"; fi
  remove_tree "$tmp"
}
trap on_exit EXIT
trap 'log interrupted; exit 130' INT
trap 'log terminated; exit 143' TERM
rm -f "$failed_log"
log "building $image"

step() { log "$* ($((SECONDS - start)) s)"; }
step "debootstrap --variant=minbase $suite from $mirror"
# In the background and in a process group of its own (setsid: pid = group
# id), so that INT/TERM to this script stop it and the dpkg runs it started
# at once rather than after the minute it takes.
setsid debootstrap --variant=minbase --components=main \
  --include="$(IFS=,; printf '%s' "${guest_pkgs[*]}")" \
  "$suite" "$root" "$mirror" >>"$blog" 2>&1 </dev/null &
child=$!
if ! wait "$child"; then
  child=''
  tail -n 40 "$blog" >&2
  die "debootstrap failed"
fi
child=''

step "configuring the guest"
in_root() { chroot "$root" "$@" >>"$blog" 2>&1; }
echo nucleus-vm >"$root/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\tnucleus-vm\n::1\tlocalhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
# Pass 0: the root is a fresh copy of this image every run, nothing to fsck.
printf '/dev/vda\t/\text4\trw,errors=remount-ro\t0\t0\n' >"$root/etc/fstab"
# One machine-id per image (an empty one would make systemd treat every
# boot as a first boot).
tr -d '-' </proc/sys/kernel/random/uuid >"$root/etc/machine-id"
# A throwaway test VM: root logs in on the console without a password.
in_root passwd -d root
install -m 0755 "$here/vm/nucleus-lane" "$root/usr/local/sbin/nucleus-lane"
install -m 0644 "$here/vm/nucleus-lane.service" "$root/etc/systemd/system/nucleus-lane.service"
in_root systemctl enable nucleus-lane.service
# containerd's postinst enables its unit; make sure, without touching the
# unit or /etc/containerd.
in_root systemctl enable containerd.service
# Docker only when its suite starts it: at boot it would cost the emulated
# CPUs seconds and set the FORWARD chain's policy to DROP under the CNI tests.
in_root systemctl disable docker.service docker.socket
# The console login only when no script runs (vm-run.sh --shell): in a lane
# run its prompt would land in the middle of the script's output.
mkdir -p "$root/etc/systemd/system/serial-getty@.service.d"
printf '[Unit]\nConditionKernelCommandLine=!nucleus.run\n' \
  >"$root/etc/systemd/system/serial-getty@.service.d/nucleus-lane.conf"
# Periodic jobs that would compete with the tests for two emulated CPUs.
for u in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer \
    e2scrub_reap.service fstrim.timer; do
  if [ -e "$root/usr/lib/systemd/system/$u" ]; then in_root systemctl mask "$u"; fi
done
# No network in the guest, and the lists would only be stale.
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*

step "checking the kernel and initrd"
kernels=("$root"/boot/vmlinuz-*)
if [ ${#kernels[@]} -ne 1 ] || [ ! -f "${kernels[0]}" ]; then die "expected one kernel in $root/boot, found: ${kernels[*]}"; fi
kver=${kernels[0]##*/vmlinuz-}
if [ ! -f "$root/boot/initrd.img-$kver" ]; then
  in_root update-initramfs -c -k "$kver" || die "update-initramfs failed"
fi
# The initramfs must find /dev/vda and mount ext4 on it: each driver either
# built into the kernel or a module in the initrd.
chroot "$root" lsinitramfs "/boot/initrd.img-$kver" >"$tmp/initrd.list"
for m in virtio_pci virtio_blk ext4; do
  grep -q "/$m\.ko" "$tmp/initrd.list" "$root/usr/lib/modules/$kver/modules.builtin" ||
    die "$m is neither built into kernel $kver nor in its initrd"
done
rm "$tmp/initrd.list"
cp "${kernels[0]}" "$tmp/vmlinuz"
cp "$root/boot/initrd.img-$kver" "$tmp/initrd.img"
dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Package} ${Version}\n' >"$tmp/packages.txt"

step "mkfs.ext4 -d (image of $(du -sh --one-file-system "$root" | cut -f1))"
truncate -s "$image_size" "$tmp/rootfs.img"
mkfs.ext4 -q -F -L nucleus-root -d "$root" "$tmp/rootfs.img" >>"$blog" 2>&1 || die "mkfs.ext4 failed"
# vm-run.sh only ever reads it, through an overlay.
chmod 0444 "$tmp/rootfs.img"
remove_tree "$root"
printf '%s\n' "$key" >"$tmp/KEY"
chmod 0755 "$tmp"

# Complete: rename into place (same file system: atomic), then drop the
# images of other keys (and the one --rebuild replaces). A vm-run.sh still
# booting one keeps its open files.
if [ -e "$image" ]; then mv -T "$image" "$tmp.old"; fi
mv -T "$tmp" "$image"
trap - EXIT
remove_tree "$tmp.old"
for old in "$vm_dir/$suite"-*; do
  [ "$old" = "$image" ] || remove_tree "$old"
done
log "built $image in $((SECONDS - start)) s: kernel $kver, $(du -h --apparent-size "$image/rootfs.img" | cut -f1) image using $(du -h "$image/rootfs.img" | cut -f1)"
printf '%s\n' "$image"
