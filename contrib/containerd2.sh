#!/usr/bin/env bash
# Unpacks containerd 2.x (Debian's own package, from sid) under DIR (default
# /opt/nucleus-test/containerd2) for the CRI tests of containerd's config
# version 3. Nothing is installed system-wide: the host keeps bookworm's
# containerd. The package comes through apt with its own list and cache dirs,
# so the archive signature is checked as for any install. Idempotent.
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "containerd2.sh: run as root" >&2; exit 1; }
dest=${1:-/opt/nucleus-test/containerd2}
if "$dest/usr/bin/containerd" --version 2>/dev/null | grep -q ' v\?2\.'; then
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/sources" "$tmp/lists/partial" "$tmp/cache/archives/partial"
cat > "$tmp/sources/sid.sources" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
apt_opts=(-q -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$tmp/sources"
  -o "Dir::State::Lists=$tmp/lists" -o "Dir::Cache=$tmp/cache" -o APT::Sandbox::User=root)
apt-get "${apt_opts[@]}" update >/dev/null
(cd "$tmp" && apt-get "${apt_opts[@]}" download containerd >/dev/null)
rm -rf "$dest"
mkdir -p "$dest"
dpkg-deb -x "$tmp"/containerd_*.deb "$dest"
version=$("$dest/usr/bin/containerd" --version)
echo "$version" | grep -q ' v\?2\.' || { echo "containerd2.sh: sid has no containerd 2.x: $version" >&2; exit 1; }
echo "containerd2.sh: $version in $dest"
