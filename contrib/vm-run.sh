#!/usr/bin/env bash
# Boots the VM lane's Debian 13 guest (built by contrib/vm-image.sh) under
# qemu/TCG, runs one script in it as root and exits with that script's status.
#
#   contrib/vm-run.sh --run SCRIPT [--share DIR]... [--result DIR]
#                     [--timeout SECONDS] [--mem SIZE] [--smp N] [--quiet]
#                     [--image DIR] [--append 'KERNEL ARGS']
#   contrib/vm-run.sh --shell [--share DIR]...    (interactive: log in as root;
#                     no timeout, no results; leave with poweroff or Ctrl-A x)
#
#   --run SCRIPT   executable script to run in the guest, as root, with the
#                  first --share as working directory; if it is not under a
#                  --share, its own directory is shared as well
#   --share DIR    host directory mounted in the guest at the same absolute
#                  path (symlinks resolved), read-write; repeatable
#   --result DIR   where the results go (created; an old rc, output.log,
#                  lane-error, console.log, qemu.log in it are removed first).
#                  Default: a temporary directory removed at exit (the console
#                  is echoed to stdout anyway unless --quiet)
#   --timeout S    kill the guest after S seconds (default 3600)
#   --mem SIZE     guest memory, qemu -m syntax (default 4G)
#   --smp N        guest CPUs (default 2)
#   --quiet        do not echo the guest console to stdout
#   --image DIR    image directory (default: `vm-image.sh --path`, i.e. the
#                  image built from the current contrib/vm-image.sh)
#   --append ARGS  extra kernel command-line arguments (also $NUCLEUS_VM_APPEND)
#
# Result directory (shared with the guest at its host path, 9p tag nresult):
#   output.log   the script's stdout+stderr (guest side, written as it runs)
#   rc           the script's exit status, written by the guest when it ends
#   lane-error   why the guest could not run the script (then rc is 125)
#   console.log  the guest's serial console: boot, the script's output, rc
#   qemu.log     qemu's own stdout/stderr
# Each --share DIR is the 9p tag nshareN (N = 0, 1, ... in order), mounted at
# DIR by nucleus-lane.service in the guest; kernel command line:
#   nucleus.result=nresult:RESULT nucleus.share=nshare0:DIR ... nucleus.run=SCRIPT
#
# Exit status: the script's own (0-255), or
#   124  the guest did not finish within --timeout (qemu killed)
#   125  the lane failed: the guest powered off without writing an rc (boot
#        failure, kernel panic, result share not mountable), the guest could
#        not run the script (lane-error), or qemu/the image is missing
#   2    usage error
# so scripts should not exit 124 or 125 themselves.
#
# Nothing is left behind: the guest writes to a qcow2 overlay in a temporary
# directory (the image itself is never written), and qemu (killed by its own
# pid, never by name), the overlay and the temporary directories go at exit,
# also on INT/TERM.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
me=vm-run.sh
readonly RC_TIMEOUT=124 RC_LANE=125

log() { printf '%s: %s\n' "$me" "$*" >&2; }
usage() { log "$*"; log "usage: vm-run.sh --run SCRIPT [--share DIR]... [--result DIR] [--timeout S] [--mem SIZE] [--smp N] [--quiet] [--image DIR] [--append ARGS] | --shell [--share DIR]..."; exit 2; }
lane_fail() { log "$*"; exit "$RC_LANE"; }

run='' result='' timeout=3600 mem=4G smp=2 quiet='' image='' shell='' append=${NUCLEUS_VM_APPEND:-}
shares=()
while [ $# -gt 0 ]; do
  case $1 in
    --run|--share|--result|--timeout|--mem|--smp|--image|--append)
      [ $# -ge 2 ] || usage "$1 needs a value"
      case $1 in
        --run) run=$2 ;; --share) shares+=("$2") ;; --result) result=$2 ;;
        --timeout) timeout=$2 ;; --mem) mem=$2 ;; --smp) smp=$2 ;;
        --image) image=$2 ;; --append) append="$append $2" ;;
      esac
      shift 2 ;;
    --quiet) quiet=1; shift ;;
    --shell) shell=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
    *) usage "unknown argument $1" ;;
  esac
done
[ -n "$shell" ] || [ -n "$run" ] || usage "--run SCRIPT or --shell is required"
[ -z "$shell" ] || [ -z "$run" ] || usage "--shell and --run exclude each other"
[[ $timeout =~ ^[1-9][0-9]*$ ]] || usage "--timeout takes whole seconds"
[[ $smp =~ ^[1-9][0-9]*$ ]] || usage "--smp takes a number"

# Paths go onto the kernel command line (split at blanks) and into -virtfs
# options (split at commas): refuse what either would mangle.
check_path() {
  [[ $1 =~ ^/[A-Za-z0-9._/+@%=:~-]*$ ]] || usage "path not usable in the guest (blanks, commas, quotes...): $1"
}
# Absolute and with symlinks resolved: the guest mounts at the real path, as
# a test binary's current_exe() and CARGO_MANIFEST_DIR see it.
canon() { realpath -e -- "$1" 2>/dev/null || usage "no such file or directory: $1"; }

for i in "${!shares[@]}"; do
  shares[i]=$(canon "${shares[i]}")
  [ -d "${shares[i]}" ] || usage "--share ${shares[i]}: not a directory"
  check_path "${shares[i]}"
done
under_share() {
  local s
  for s in ${shares[@]+"${shares[@]}"}; do
    case $1 in "$s"/*) return 0 ;; esac
  done
  return 1
}
if [ -n "$run" ]; then
  run=$(canon "$run")
  [ -f "$run" ] || usage "--run $run: not a file"
  [ -x "$run" ] || usage "--run $run: not executable"
  check_path "$run"
  if ! under_share "$run"; then
    log "sharing ${run%/*} too (the script is under no --share)"
    shares+=("${run%/*}")
  fi
fi

command -v qemu-system-x86_64 >/dev/null || lane_fail "qemu-system-x86_64 not found: run contrib/vm-image.sh (it installs it)"
command -v qemu-img >/dev/null || lane_fail "qemu-img not found: run contrib/vm-image.sh (it installs it)"
if [ -z "$image" ]; then
  image=$(bash "$here/vm-image.sh" --path) || lane_fail "no guest image: run contrib/vm-image.sh first"
fi
for f in rootfs.img vmlinuz initrd.img; do
  [ -f "$image/$f" ] || lane_fail "$image/$f missing: run contrib/vm-image.sh"
done

# Everything this run creates besides the result directory lives here.
work=$(mktemp -d "${TMPDIR:-/tmp}/nucleus-vm.XXXXXX")
own_result=
qemu_pid='' tail_pid=''
# Our own qemu, by its pid (other qemus may run on this machine): TERM, and
# KILL if it is still there 5 s later.
stop_qemu() {
  kill -TERM "$qemu_pid" 2>/dev/null || return 0
  for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qemu_pid" 2>/dev/null || return 0; sleep 0.5; done
  log "qemu (pid $qemu_pid) ignored SIGTERM: SIGKILL"
  kill -KILL "$qemu_pid" 2>/dev/null || true
}
# shellcheck disable=SC2317  # run by the EXIT trap
cleanup() {
  local rc=$?
  if [ -n "$qemu_pid" ]; then stop_qemu; wait "$qemu_pid" 2>/dev/null || true; fi
  if [ -n "$tail_pid" ]; then kill "$tail_pid" 2>/dev/null || true; wait "$tail_pid" 2>/dev/null || true; fi
  rm -rf "$work"
  if [ -n "$own_result" ]; then rm -rf "$result"; fi
  exit "$rc"
}
trap cleanup EXIT
trap 'log "interrupted"; exit 130' INT
trap 'log "terminated"; exit 143' TERM

if [ -z "$shell" ]; then
  if [ -z "$result" ]; then
    result=$(mktemp -d "${TMPDIR:-/tmp}/nucleus-vm-result.XXXXXX")
    own_result=1
  fi
  mkdir -p -- "$result"
  result=$(canon "$result")
  check_path "$result"
  # A stale rc would pass for this run's.
  rm -f -- "$result"/{rc,rc.tmp,output.log,lane-error,console.log,qemu.log}
fi

# A copy-on-write overlay per run: the guest may write anything, the image
# stays as built. cache=unsafe below: the overlay is thrown away, flushes to
# it would only cost time.
qemu-img create -q -f qcow2 -F raw -b "$image/rootfs.img" "$work/overlay.qcow2"

cmdline="root=/dev/vda rw console=ttyS0,115200 quiet panic=1"
# A throwaway guest under emulation: speculative-execution mitigations only
# cost time.
cmdline+=" mitigations=off"
# PID 1 and the getty would send ANSI resets and size queries to the serial
# console (noise in console.log); TERM=dumb makes systemd skip them, and the
# script inherits it (no colour codes in output.log).
cmdline+=" TERM=dumb"
virtfs=()
add_share() { # TAG DIR
  virtfs+=(-virtfs "local,path=$2,mount_tag=$1,security_model=none,id=$1")
}
if [ -n "$result" ]; then
  add_share nresult "$result"
  cmdline+=" nucleus.result=nresult:$result"
fi
for i in "${!shares[@]}"; do
  add_share "nshare$i" "${shares[i]}"
  cmdline+=" nucleus.share=nshare$i:${shares[i]}"
done
[ -z "$run" ] || cmdline+=" nucleus.run=$run"
[ -z "$append" ] || cmdline+=" $append"
# x86's COMMAND_LINE_SIZE: the kernel would cut the rest off silently.
[ ${#cmdline} -lt 2048 ] || usage "kernel command line too long (${#cmdline} bytes, 2047 at most): fewer or shorter paths"

qemu=(qemu-system-x86_64
  # /dev/kvm here cannot boot a stock kernel (kvm_pvm): emulate.
  -accel "tcg,thread=multi" -cpu max -smp "$smp" -m "$mem"
  -kernel "$image/vmlinuz" -initrd "$image/initrd.img" -append "$cmdline"
  -drive "file=$work/overlay.qcow2,format=qcow2,if=virtio,cache=unsafe"
  "${virtfs[@]}"
  # No network (loopback only); entropy for early getrandom() callers.
  -nic none -device virtio-rng-pci
  # Poweroff or a panic (panic=1 reboots) ends qemu instead of rebooting.
  -no-reboot)

if [ -n "$shell" ]; then
  log "booting $image for a shell (log in as root, no password; 'poweroff' or Ctrl-A x to leave)"
  TMPDIR=$work "${qemu[@]}" -nographic
  exit 0
fi

log "booting $image (timeout ${timeout} s, results in $result)"
start=$SECONDS
# stdin from /dev/null and no monitor: nothing the caller's terminal does
# reaches qemu. TMPDIR: anything qemu makes for itself goes with $work.
TMPDIR=$work "${qemu[@]}" -display none -monitor none -serial "file:$result/console.log" \
  </dev/null >"$result/qemu.log" 2>&1 &
qemu_pid=$!
if [ -z "$quiet" ]; then
  # Follows the console until qemu is gone; -F waits for qemu to create it.
  tail -n +1 -F --pid="$qemu_pid" "$result/console.log" 2>/dev/null &
  tail_pid=$!
fi
# Watchdog: poll rather than `wait -n` on qemu and a sleeper, because
# `wait -n` misses a child that ended before it was called (qemu failing at
# once would then wait out the whole timeout). bash reaps its children as they
# end, so kill -0 fails as soon as qemu is gone; `wait` still has its status.
deadline=$((SECONDS + timeout))
timed_out=
while kill -0 "$qemu_pid" 2>/dev/null; do
  if [ "$SECONDS" -ge "$deadline" ]; then
    timed_out=1
    log "timeout: the guest did not finish within $timeout s; killing qemu (pid $qemu_pid)"
    stop_qemu
    break
  fi
  sleep 1
done
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
qemu_pid=''
if [ -n "$tail_pid" ]; then wait "$tail_pid" 2>/dev/null || true; tail_pid=''; fi
elapsed=$((SECONDS - start))

# Where to look afterwards (not in a temporary result directory: it is gone).
console_hint() { if [ -z "$own_result" ]; then printf '; console log: %s' "$result/console.log"; fi; }
show_tail() { # when the console was not echoed, show how it ended
  if [ -n "$quiet" ] && [ -s "$result/console.log" ]; then
    log "last lines of the guest console:"; tail -n 30 "$result/console.log" >&2
  fi
  if [ -s "$result/qemu.log" ]; then log "qemu said:"; cat "$result/qemu.log" >&2; fi
}

if [ -n "$timed_out" ]; then
  show_tail
  log "FAILED: guest timed out after $elapsed s (limit $timeout s)$(console_hint)"
  exit "$RC_TIMEOUT"
fi
if [ -f "$result/lane-error" ]; then
  show_tail
  lane_fail "FAILED: the guest could not run the script: $(cat "$result/lane-error")"
fi
if [ ! -f "$result/rc" ]; then
  show_tail
  lane_fail "FAILED: the guest stopped after $elapsed s without writing an rc (qemu exit $qemu_rc)$(console_hint)"
fi
rc=$(cat "$result/rc")
if ! [[ $rc =~ ^[0-9]+$ ]] || [ "$rc" -gt 255 ]; then lane_fail "FAILED: unreadable rc from the guest: '$rc'"; fi
log "guest script exited with $rc after $elapsed s in the guest VM"
exit "$rc"
