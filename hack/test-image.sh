#!/usr/bin/env bash
# test-image.sh OUT_DIR — build peapod's busybox test image from the host's busybox-static, with umoci and
# skopeo, and no download.
#
# Writes into OUT_DIR:
#   busybox.oci.tar         oci-archive named localhost/busybox:<busybox version>
#   busybox-latest.oci.tar  the same image named localhost/busybox:latest (an OCI archive could list both
#                           names, but then `podman load` and skopeo refuse it: "more than one image in oci")
#   busybox.docker.tar      docker-archive with both tags (RepoTags carries several; podman loads both)
#   images.txt          one line per name: NAME FORMAT FILE (FILE relative to OUT_DIR; '#' starts a comment)
# The image: /bin/busybox plus a symlink per applet (what `busybox --install -s` would create), /etc/passwd
# and /etc/group with root (0), app (1000) and nobody (65534), /tmp 1777, /root, /home/app; Cmd ["sh"], Env
# PATH. Timestamps are pinned to /bin/busybox's mtime, so the same busybox gives the same image digest.
# Does nothing when every output is newer than /bin/busybox and this script. Needs umoci, skopeo and
# busybox-static (hack/install-deps.sh demo).
set -euo pipefail

log() { echo "test-image.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

(($# == 1)) || die "usage: $0 OUT_DIR"
out=$1
busybox=/bin/busybox
self=$(readlink -f "${BASH_SOURCE[0]}")
outputs=(busybox.oci.tar busybox-latest.oci.tar busybox.docker.tar images.txt)

up_to_date() {
  local f
  for f in "${outputs[@]}"; do
    [[ $out/$f -nt $busybox && $out/$f -nt $self ]] || return 1
  done
}

[[ -x $busybox ]] || die "$busybox not found: install busybox-static (hack/install-deps.sh demo)"
for tool in umoci skopeo; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run hack/install-deps.sh demo"
done
mkdir -p "$out" || die "cannot create $out"
out=$(readlink -f "$out")
[[ $out != *:* ]] || die "OUT_DIR must not contain ':' (skopeo image names use it): $out"

if up_to_date; then
  log "up to date in $out"
  exit 0
fi
exec 9>"$out/.test-image.lock"
flock -w 300 9 || die "timed out waiting for $out/.test-image.lock"
if up_to_date; then
  log "up to date in $out"
  exit 0
fi

# "BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary." -> 1.35.0
version=$("$busybox" 2>/dev/null | sed -n '1s/^BusyBox v\([0-9][0-9.]*\).*/\1/p')
[[ -n $version ]] || die "cannot read the version from '$busybox'"
name=localhost/busybox
epoch=$(stat -c %Y "$busybox")
created=$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)

rm -rf "$out"/.test-image.*/ # left by an interrupted run (we hold the lock)
work=$(mktemp -d "$out/.test-image.XXXXXX")
trap 'rm -rf "$work"' EXIT
layout=$work/layout
bundle=$work/bundle

populate_rootfs() {
  local root=$1 applet
  install -d -m 0755 "$root"/{bin,sbin,usr/bin,usr/sbin,etc,dev,proc,sys,var,home}
  install -d -m 0700 "$root/root"
  install -d -m 1777 "$root/tmp"
  install -d -m 0755 -o 1000 -g 1000 "$root/home/app"
  install -m 0755 "$busybox" "$root/bin/busybox"
  while read -r applet; do
    [[ -n $applet && $applet != bin/busybox ]] || continue
    ln -sf /bin/busybox "$root/$applet"
  done < <("$busybox" --list-full)
  printf '%s\n' \
    'root:x:0:0:root:/root:/bin/sh' \
    'app:x:1000:1000:app:/home/app:/bin/sh' \
    'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'app:x:1000:' 'nobody:x:65534:' >"$root/etc/group"
  chmod 0644 "$root/etc/passwd" "$root/etc/group"
  find "$root" -exec touch -h -d "@$epoch" {} +
}

log "building $name:$version from $busybox"
umoci init --layout "$layout" || die "umoci init failed"
umoci new --image "$layout:build" || die "umoci new failed"
umoci unpack --image "$layout:build" "$bundle" >/dev/null || die "umoci unpack failed"
populate_rootfs "$bundle/rootfs"
umoci repack --image "$layout:build" --history.created "$created" \
  --history.created_by "hack/test-image.sh from busybox $version" "$bundle" || die "umoci repack failed"
umoci config --image "$layout:build" --created "$created" --history.created "$created" \
  --os linux --architecture amd64 --config.cmd sh \
  --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  || die "umoci config failed"
umoci gc --layout "$layout" || die "umoci gc failed"

# One OCI layout per name, tarred the way skopeo's oci-archive transport does (but with pinned metadata).
declare -A oci_file=([$version]=busybox.oci.tar [latest]=busybox-latest.oci.tar)
for tag in "$version" latest; do
  dir=$work/oci-$tag file=${oci_file[$tag]}
  skopeo copy -q "oci:$layout:build" "oci:$dir:$name:$tag" || die "skopeo copy to oci:$dir:$name:$tag failed"
  tar -C "$dir" --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner \
    -cf "$work/$file" oci-layout index.json blobs || die "cannot write $work/$file"
  skopeo inspect --raw "oci-archive:$work/$file" >/dev/null || die "$file does not load"
done
skopeo copy -q --additional-tag "$name:latest" "oci:$layout:build" \
  "docker-archive:$work/busybox.docker.tar:$name:$version" || die "skopeo copy to docker-archive failed"
skopeo inspect --raw "docker-archive:$work/busybox.docker.tar" >/dev/null || die "docker archive does not load"

{
  echo '# NAME FORMAT FILE'
  for tag in "$version" latest; do
    echo "$name:$tag oci-archive ${oci_file[$tag]}"
    echo "$name:$tag docker-archive busybox.docker.tar"
  done
} >"$work/images.txt"

mv -f "$work/busybox.oci.tar" "$work/busybox-latest.oci.tar" "$work/busybox.docker.tar" "$out/"
mv -f "$work/images.txt" "$out/images.txt" # last: its mtime marks a complete set
log "wrote $name:$version and $name:latest to $out (see $out/images.txt)"
