#!/usr/bin/env bash
# kube-apiserver.sh — build kube-apiserver v1.20.2 from Debian bookworm's `kubernetes` source package and print
# the path of the binary on stdout (everything else goes to stderr).
#
# Writes, under $PEAPOD_CACHE (default /var/cache/peapod-test)/kube-apiserver/:
#   v1.20.2/kube-apiserver   the binary (cached: a second run only prints its path)
#   v1.20.2/recipe           what was changed in the source before that build; a binary whose recipe differs
#                            from $RECIPE below (an older build) is rebuilt
#   src/                     the downloaded source package (.dsc, .orig.tar.gz, .debian.tar.xz), kept so a
#                            rebuild needs no network
#   build.log                output of the last build
# The source is fetched with a throw-away apt configuration (a private deb-src entry built from the Debian
# mirror this machine already uses, private lists and cache): /etc/apt and /var/lib/apt are not touched.
# The vendored github.com/modern-go/reflect2 1.0.1 crashes under Go >= 1.18 ("fatal error: fault" in
# mapiterinit), so it is replaced by Debian's golang-github-modern-go-reflect2-dev copy before the build.
# The vendored OpenAPI type validators (k8s.io/kube-openapi/pkg/validation/validate and go-openapi/validate)
# test for null with `reflect.DeepEqual(reflect.Zero(t), reflect.ValueOf(data))`, which compares two
# reflect.Value headers. Built with Go <= 1.15 (as upstream built 1.20) that is never true; since Go 1.16
# reflect.Zero and an interface holding "" share one zero buffer, so every "" in a custom resource is
# refused as `Invalid value: "null": ... must be of type string` (go-openapi/validate#137). Real 1.20 API
# servers store "". The check is reduced to `data == nil` before the build, as kube-openapi did upstream
# (kubernetes/kube-openapi#230, in Kubernetes 1.21).
# Concurrent runs are serialised with flock; the loser waits and then reuses the winner's binary.
# Needs: golang-go, make, rsync, jq, dpkg-dev, golang-github-modern-go-reflect2-dev (hack/install-deps.sh test).
set -euo pipefail

readonly DEB_VERSION=1.20.5+really1.20.2-1.1+deb12u1
readonly KUBE_VERSION=v1.20.2
readonly SUITE=bookworm
readonly REFLECT2=/usr/share/gocode/src/github.com/modern-go/reflect2
# Bump when the changes made to the source before the build change: cached binaries of another recipe are rebuilt.
readonly RECIPE="reflect2-from-debian openapi-zero-value-check"
readonly ZERO_CHECK='if data == nil || reflect.DeepEqual(reflect.Zero(reflect.TypeOf(data)), reflect.ValueOf(data)) {'
readonly VALIDATORS=(vendor/k8s.io/kube-openapi/pkg/validation/validate/type.go vendor/github.com/go-openapi/validate/type.go)

cache=${PEAPOD_CACHE:-/var/cache/peapod-test}/kube-apiserver
bin=$cache/$KUBE_VERSION/kube-apiserver
recipe=$cache/$KUBE_VERSION/recipe

log() { echo "kube-apiserver.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

# cached: 0 when the binary exists and was built with this recipe.
cached() { [[ -x $bin && $(cat "$recipe" 2>/dev/null) == "$RECIPE" ]]; }

if cached; then
  echo "$bin"
  exit 0
fi

mkdir -p "$cache" || die "cannot create cache dir $cache"
exec 9>"$cache/.lock"
if ! flock -n 9; then
  log "another build holds $cache/.lock; waiting (up to 30 min)"
  flock -w 1800 9 || die "timed out waiting for $cache/.lock"
fi
if cached; then
  echo "$bin"
  exit 0
fi
[[ -x $bin ]] && log "$bin was built with another recipe ('$(cat "$recipe" 2>/dev/null)'); rebuilding"

[[ -x /usr/lib/go/bin/go ]] || die "Debian's Go (/usr/lib/go/bin/go) not found: run hack/install-deps.sh test"
for tool in make rsync jq dpkg-source apt-get; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run hack/install-deps.sh test"
done
[[ -f $REFLECT2/reflect2.go ]] || die "$REFLECT2 missing: run hack/install-deps.sh test"

rm -rf "$cache"/work.* # left by an interrupted build (we hold the lock, so no build is using them)
work=$(mktemp -d "$cache/work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# deb-src entries for every Debian $SUITE* repository apt already uses (same mirror, no host named here).
write_sources() {
  local uri rel comp keyring=/usr/share/keyrings/debian-archive-keyring.gpg n=0
  # shellcheck disable=SC2016 # $(FIELD) is apt's template syntax, not shell
  local format='$(REPO_URI) $(RELEASE) $(COMPONENT)'
  while read -r uri rel comp; do
    [[ $rel == "$SUITE" || $rel == "$SUITE"-* ]] || continue
    printf 'Types: deb-src\nURIs: %s\nSuites: %s\nComponents: %s\n' "$uri" "$rel" "$comp"
    [[ -f $keyring ]] && printf 'Signed-By: %s\n' "$keyring"
    printf '\n'
    n=$((n + 1))
  done < <(apt-get indextargets --format "$format" 'Identifier: Packages' 'Origin: Debian' | sort -u)
  ((n > 0)) || die "no Debian $SUITE repository in /etc/apt/sources.list*: cannot derive a deb-src entry"
}

fetch_source() {
  local apt="$work/apt"
  mkdir -p "$apt/sources.list.d" "$apt/lists/partial" "$apt/cache/archives/partial" "$work/dl"
  write_sources >"$apt/sources.list.d/peapod-src.sources"
  local opts=(
    -o Dir::Etc::SourceList=/dev/null -o "Dir::Etc::SourceParts=$apt/sources.list.d"
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root -qq
  )
  log "fetching source package kubernetes=$DEB_VERSION"
  apt-get "${opts[@]}" update >&2 || die "apt-get update (deb-src, private lists) failed"
  (cd "$work/dl" && apt-get "${opts[@]}" source --download-only "kubernetes=$DEB_VERSION") >&2 \
    || die "apt-get source kubernetes=$DEB_VERSION failed"
  rm -rf "$cache/src"
  mv "$work/dl" "$cache/src"
}

dsc=$cache/src/kubernetes_$DEB_VERSION.dsc
[[ -f $dsc ]] || fetch_source
[[ -f $dsc ]] || die "source package $dsc not found after download"

tree=$work/kubernetes
log "unpacking $dsc"
dpkg-source -x "$dsc" "$tree" >/dev/null 2>&1 || die "dpkg-source -x $dsc failed"

log "replacing vendored modern-go/reflect2 with $REFLECT2"
rm -rf "$tree/vendor/github.com/modern-go/reflect2"
cp -rL "$REFLECT2" "$tree/vendor/github.com/modern-go/reflect2"

log "reducing the vendored OpenAPI type validators' null check to data == nil"
for f in "${VALIDATORS[@]}"; do
  grep -qF "$ZERO_CHECK" "$tree/$f" || die "$f: the zero-value check to replace is not there"
  perl -pi -e 'BEGIN { $check = shift } s/\Q$check\E/if data == nil {/' "$ZERO_CHECK" "$tree/$f"
  ! grep -qF "$ZERO_CHECK" "$tree/$f" || die "$f: the zero-value check is still there after the edit"
done

mkdir -p "$tree/.go/src/k8s.io" "$work/home"
ln -s ../../.. "$tree/.go/src/k8s.io/kubernetes"

log "building cmd/kube-apiserver (a few minutes; output in $cache/build.log)"
start=$SECONDS
if ! (
  cd "$tree" &&
    env PATH="/usr/lib/go/bin:$PATH" HOME="$work/home" GOPATH="$tree/.go" GOCACHE="$work/gocache" \
      GOPROXY=off GOTOOLCHAIN=local GOFLAGS= CGO_ENABLED=0 make WHAT=cmd/kube-apiserver
) >"$cache/build.log" 2>&1; then
  tail -n 30 "$cache/build.log" >&2
  die "build failed; full log in $cache/build.log"
fi
log "built in $((SECONDS - start)) s"

out=$tree/_output/bin/kube-apiserver
version=$("$out" --version 2>&1) || die "$out --version failed: $version"
[[ $version == "Kubernetes $KUBE_VERSION" ]] || die "unexpected version from $out: '$version'"

mkdir -p "$(dirname "$bin")"
install -m 0755 "$out" "$bin.tmp"
mv -f "$bin.tmp" "$bin"
echo "$RECIPE" >"$recipe"
exec 9>&- # let waiters take the binary while the EXIT trap removes the (large) work tree
echo "$bin"
