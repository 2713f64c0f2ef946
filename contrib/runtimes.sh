#!/usr/bin/env bash
# Unpacks the OCI runtimes of newer Debian suites beside the host's own, for
# the end-to-end suites: Debian 13's (trixie) and sid's runc, crun and runsc,
# and CRIU (checkpoint/restore; bookworm's 3.17 cannot dump on this kernel)
# under ROOT/<suite>/ (ROOT: $NUCLEUS_RUNTIMES_DIR, default
# /opt/nucleus-test/runtimes), e.g. ROOT/trixie/usr/sbin/runc. Nothing is
# installed system-wide: the host keeps bookworm's runtimes. Packages come
# through apt with their own list and cache dirs, so the archive signature is
# checked as for any install.
#
# runc and crun of these suites need glibc >= 2.38 (bookworm has 2.36): each
# tree also gets the suite's own libc6 and every library package the runtimes
# depend on (apt resolves the Depends; the NEEDED entries of the binaries are
# then checked against the tree), and the two binaries are patched
# (patchelf, which contrib/setup-host.sh installs) to use the tree's loader
# and libraries: --set-interpreter and an RPATH (not RUNPATH: RPATH also
# applies to the libraries' own dependencies).
# runsc is static and runs as shipped. criu is patched like runc and crun.
#
# Each tree gets ROOT/<suite>/nucleus-runtimes.env (NUCLEUS_RUNC=...,
# NUCLEUS_CRUN=..., NUCLEUS_RUNSC=..., NUCLEUS_CRIU=..., the variables tests/common/mod.rs
# reads) and ROOT/<suite>/nucleus-runtimes.packages (package version lines).
# Idempotent: a suite is unpacked again only when the archive offers other
# versions than the tree holds (or the tree does not verify); when the
# archive cannot be reached a verified tree is kept as it is.
#
# Usage: contrib/runtimes.sh [SUITE...]   (default: trixie sid)
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "runtimes.sh: run as root" >&2; exit 1; }
root=${NUCLEUS_RUNTIMES_DIR:-/opt/nucleus-test/runtimes}
suites=("$@")
[ ${#suites[@]} -gt 0 ] || suites=(trixie sid)
mkdir -p "$root"
exec 9>"$root/.lock"
flock 9

for tool in patchelf file flock; do
  command -v "$tool" >/dev/null || { echo "runtimes.sh: no $tool: run contrib/setup-host.sh" >&2; exit 1; }
done

# Where each runtime sits in its package, and the variable naming it.
declare -A bin_of=([runc]=usr/sbin/runc [crun]=usr/bin/crun [runsc]=usr/bin/runsc [criu]=usr/sbin/criu)
declare -A var_of=([runc]=NUCLEUS_RUNC [crun]=NUCLEUS_CRUN [runsc]=NUCLEUS_RUNSC [criu]=NUCLEUS_CRIU)
runtimes=(runc crun runsc criu)
# Loaded at run time, not linked: crun dlopens libcriu for checkpoint.
dlopened=(libcriu2)

die() { echo "runtimes.sh: $*" >&2; exit 1; }

is_dynamic() { file -L "$1" | grep -q 'dynamically linked'; }

# Every shared library `bin` needs (recursively) is in the tree's lib dirs.
check_needed() {
  local tree=$1 bin=$2 libdirs=$3 todo=("$2") seen=" " f so d found missing=()
  while [ ${#todo[@]} -gt 0 ]; do
    f=${todo[0]}
    todo=("${todo[@]:1}")
    for so in $(patchelf --print-needed "$f"); do
      case "$seen" in *" $so "*) continue ;; esac
      seen+="$so "
      found=
      for d in ${libdirs//:/ }; do
        if [ -e "$tree${d#"$final"}/$so" ]; then found=$tree${d#"$final"}/$so; break; fi
      done
      if [ -z "$found" ]; then missing+=("$so"); else todo+=("$(readlink -f "$found")"); fi
    done
  done
  [ ${#missing[@]} -eq 0 ] || die "$suite: ${bin##*/} needs ${missing[*]}, which no unpacked package has"
}

# The runtimes of the tree run, and the dynamic ones load nothing from the host.
verify() {
  local tree=$1 r b libs
  [ -f "$tree/nucleus-runtimes.packages" ] || return 1
  for r in "${runtimes[@]}"; do
    b=$tree/${bin_of[$r]}
    "$b" --version >/dev/null 2>&1 || return 1
    if is_dynamic "$b"; then
      libs=$(LD_TRACE_LOADED_OBJECTS=1 "$b" 2>&1) || return 1
      if echo "$libs" | grep '=>' | grep -v "=> $tree/" | grep -q .; then
        echo "runtimes.sh: $b loads host libraries:" >&2
        echo "$libs" >&2
        return 1
      fi
    fi
  done
}

report() {
  local tree=$1 r line
  line="runtimes.sh: $suite:"
  for r in "${runtimes[@]}"; do
    line+=" $r $("$tree/${bin_of[$r]}" --version 2>&1 | sed -n '1s/^[a-z]* version //ip; 1s/^Version: //p')"
    [ "$r" = criu ] || line+=","
  done
  echo "$line ($tree)"
}

# One scratch dir for the whole run (apt lists and downloads, ~30 MB a
# suite), a subdir per suite, removed however the script ends.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
for suite in "${suites[@]}"; do
  final=$root/$suite
  tmp=$scratch/$suite
  mkdir -p "$tmp"
  mkdir -p "$tmp/sources" "$tmp/lists/partial" "$tmp/cache/archives/partial" "$tmp/debs"
  cat > "$tmp/sources/$suite.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  apt_opts=(-q -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$tmp/sources"
    -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o APT::Sandbox::User=root)
  if ! apt-get "${apt_opts[@]}" update >"$tmp/update.log" 2>&1; then
    if verify "$final"; then
      echo "runtimes.sh: $suite: archive unreachable, keeping the unpacked runtimes" >&2
      report "$final"
      continue
    fi
    cat "$tmp/update.log" >&2
    die "$suite: apt-get update failed"
  fi
  # The runtimes and the library packages they depend on, recursively
  # (libc6, libseccomp2, libcap2, libsystemd0, libyajl2 or libjson-c5,
  # libblake3-0, ...), each at the suite's version.
  pkgs=$( (echo "${runtimes[@]}" "${dlopened[@]}" | tr ' ' '\n'
    apt-cache "${apt_opts[@]}" depends --recurse --no-recommends --no-suggests --no-conflicts \
      --no-breaks --no-replaces --no-enhances "${runtimes[@]}" "${dlopened[@]}" | grep -v '^ ' | grep '^lib') | sort -u)
  # shellcheck disable=SC2086
  wanted=$(apt-cache "${apt_opts[@]}" show --no-all-versions $pkgs \
    | awk '/^Package: /{p=$2} /^Version: /{print p, $2}' | sort -u)
  [ "$(echo "$wanted" | wc -l)" = "$(echo "$pkgs" | wc -l)" ] \
    || die "$suite: not one version for each of ${pkgs//$'\n'/ }: $wanted"
  if [ "$(cat "$final/nucleus-runtimes.packages" 2>/dev/null)" = "$wanted" ] && verify "$final"; then
    report "$final"
    continue
  fi
  # shellcheck disable=SC2086
  (cd "$tmp/debs" && apt-get "${apt_opts[@]}" download $pkgs >/dev/null)
  new=$root/.$suite.new
  rm -rf "$new"
  mkdir -p "$new"
  for deb in "$tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$new"; done
  loader=$(find "$new" -name ld-linux-x86-64.so.2 -type f | head -1)
  [ -n "$loader" ] || die "$suite: libc6 has no ld-linux-x86-64.so.2"
  # The dirs holding shared libraries, as they will be named once in place.
  libdirs=$(find "$new" -name 'lib*.so*' \( -type f -o -type l \) -not -path '*/gconv/*' -printf '%h\n' | sort -u \
    | sed "s|^$new|$final|" | paste -sd:)
  for r in "${runtimes[@]}"; do
    b=$new/${bin_of[$r]}
    [ -f "$b" ] || die "$suite: $r has no ${bin_of[$r]}"
    is_dynamic "$b" || continue
    patchelf --set-interpreter "$final${loader#"$new"}" --force-rpath --set-rpath "$libdirs" "$b"
    check_needed "$new" "$b" "$libdirs"
  done
  echo "$wanted" > "$new/nucleus-runtimes.packages"
  for r in "${runtimes[@]}"; do echo "${var_of[$r]}=$final/${bin_of[$r]}"; done > "$new/nucleus-runtimes.env"
  rm -rf "$final"
  mv "$new" "$final"
  if ! verify "$final"; then
    for r in "${runtimes[@]}"; do "$final/${bin_of[$r]}" --version || true; done
    rm -rf "$final"
    die "$suite: the unpacked runtimes do not run"
  fi
  report "$final"
  rm -rf "$tmp"
done
