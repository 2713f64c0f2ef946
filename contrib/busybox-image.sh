#!/usr/bin/env bash
# Builds a busybox rootfs and an OCI image layout tarball from Debian's
# busybox-static, with no registry: OUT/rootfs and OUT/image.tar
# (imported with `ctr images import`, named docker.io/library/nucleus-busybox:latest).
# IMAGE_NAME and IMAGE_CMD (a JSON array) override the name and the command,
# e.g. a pod's pause image: IMAGE_CMD='["/bin/sleep","2147483647"]'.
set -euo pipefail
out=${1:?usage: busybox-image.sh OUTDIR}
name=${IMAGE_NAME:-docker.io/library/nucleus-busybox:latest}
cmd=${IMAGE_CMD:-'["/bin/sh"]'}
busybox=$(command -v busybox || true)
[ -n "$busybox" ] || { echo "busybox-image.sh: busybox not found (apt-get install busybox-static)" >&2; exit 1; }
file -L "$busybox" 2>/dev/null | grep -q 'dynamically linked' && { echo "busybox-image.sh: $busybox is dynamic; install busybox-static" >&2; exit 1; }

rm -rf "$out/rootfs" "$out/layout"
mkdir -p "$out/rootfs"/{bin,dev,proc,sys,tmp,etc,root,var/www} "$out/layout/blobs/sha256"
cp "$busybox" "$out/rootfs/bin/busybox"
# Hardlinks, not symlinks: every applet is a real file.
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -f "$out/rootfs/bin/busybox" "$out/rootfs/bin/$applet"
done
chmod 1777 "$out/rootfs/tmp"
echo 'root:x:0:0:root:/root:/bin/sh' > "$out/rootfs/etc/passwd"
echo 'root:x:0:' > "$out/rootfs/etc/group"

blob() { # file -> prints "sha256-hex size" and stores the blob
  local d s
  d=$(sha256sum "$1" | cut -d' ' -f1); s=$(stat -c %s "$1")
  mv "$1" "$out/layout/blobs/sha256/$d"; echo "$d $s"
}
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$out/rootfs" -cf "$out/layer.tar" .
read -r layer layer_size < <(blob "$out/layer.tar")
printf '{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":%s},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
  "$cmd" "$layer" > "$out/config.json"
read -r config config_size < <(blob "$out/config.json")
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$config" "$config_size" "$layer" "$layer_size" > "$out/manifest.json"
read -r manifest manifest_size < <(blob "$out/manifest.json")
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"latest"}}]}' \
  "$manifest" "$manifest_size" "$name" > "$out/layout/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$out/layout/oci-layout"
tar --owner=0 --group=0 --numeric-owner -C "$out/layout" -cf "$out/image.tar.tmp" .
mv "$out/image.tar.tmp" "$out/image.tar"
rm -rf "$out/layout"
echo "$out/image.tar ($name) and $out/rootfs"
