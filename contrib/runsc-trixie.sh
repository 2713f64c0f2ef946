#!/usr/bin/env bash
# Unpacks Debian 13's runsc (gVisor 20240729, a static binary) under DIR
# (default /opt/nucleus-test/runtimes/trixie) for the terminal tests on a
# second runsc version. Nothing is installed system-wide: the host keeps its
# own runsc. The package comes through apt with its own list and cache dirs,
# so the archive signature is checked as for any install. Idempotent.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "runsc-trixie.sh: run as root" >&2; exit 1; }
dest=${1:-/opt/nucleus-test/runtimes/trixie}
if [[ "$("$dest/usr/bin/runsc" --version 2>/dev/null || true)" == *20240729* ]]; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/sources" "$tmp/lists/partial" "$tmp/cache/archives/partial"
cat > "$tmp/sources/trixie.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
apt_opts=(-q -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$tmp/sources"
  -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update >/dev/null
(cd "$tmp" && apt-get "${apt_opts[@]}" download runsc >/dev/null)
rm -rf "$dest"
mkdir -p "$dest"
dpkg-deb -x "$tmp"/runsc_*.deb "$dest"
version=$("$dest/usr/bin/runsc" --version)
[[ "$version" == *20240729* ]] || { echo "runsc-trixie.sh: trixie's runsc is not 20240729: $version" >&2; exit 1; }
echo "runsc-trixie.sh: ${version%%$'\n'*} in $dest"
