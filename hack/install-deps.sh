#!/usr/bin/env bash
# install-deps.sh [demo|test] — install the Debian packages peapod's `make demo` or `make test` needs.
#
#   demo: runc, busybox-static, umoci, skopeo (run containers, build the busybox test image).
#   test: demo + CNI plugins, docker-registry, etcd-server, podman, iproute2, hyperfine, openssl, the Go
#         toolchain and build tools for hack/kube-apiserver.sh (golang-go, make, rsync, jq, dpkg-dev, xz-utils,
#         golang-github-modern-go-reflect2-dev), unzip + npm for hack/helm.sh, python3-venv if python3 lacks
#         venv/ensurepip (hack/lint-tools.sh).
# The default mode is `test`. Writes nothing but what dpkg installs. Only missing packages are installed;
# `apt-get update` runs once, and only when something is missing. Needs root.
set -euo pipefail

mode=${1:-test}
die() { echo "install-deps: $*" >&2; exit 1; }

demo_pkgs=(runc busybox-static umoci skopeo)
test_pkgs=(
  containernetworking-plugins docker-registry etcd-server etcd-client podman iproute2 hyperfine openssl
  golang-go make rsync jq dpkg-dev xz-utils golang-github-modern-go-reflect2-dev
  unzip ca-certificates curl
)

case "$mode" in
  demo) wanted=("${demo_pkgs[@]}") ;;
  test) wanted=("${demo_pkgs[@]}" "${test_pkgs[@]}") ;;
  *) die "usage: $0 [demo|test] (got '$mode')" ;;
esac

if [[ $mode == test ]]; then
  # npm may come from elsewhere (the machine image has Node.js); only use Debian's when there is none.
  command -v npm >/dev/null 2>&1 || wanted+=(npm)
  # lint-tools.sh makes a venv; Debian's python3 needs python3-venv for that, other pythons carry it.
  if ! command -v python3 >/dev/null 2>&1; then
    wanted+=(python3 python3-venv)
  elif ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
    wanted+=(python3-venv)
  fi
fi

installed() {
  [[ $(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true) == installed ]]
}

missing=()
for pkg in "${wanted[@]}"; do
  installed "$pkg" || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#wanted[@]} packages for '$mode' already installed"
  exit 0
fi

[[ $(id -u) == 0 ]] || die "missing packages (${missing[*]}) and not root: run as root"

export DEBIAN_FRONTEND=noninteractive
echo "install-deps: installing ${missing[*]}"
apt-get update -qq || die "apt-get update failed (is the Debian mirror in /etc/apt/sources.list* reachable?)"
apt-get install -y -qq "${missing[@]}" >/dev/null || die "apt-get install failed for: ${missing[*]}"

for pkg in "${missing[@]}"; do
  installed "$pkg" || die "package $pkg still not installed after apt-get install"
done
echo "install-deps: done (${#missing[@]} installed)"
