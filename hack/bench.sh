#!/usr/bin/env bash
# bench.sh — `make bench`: peapod beside bare runc (the floor) and `podman kube play` (the peer), measured in
# the same run on this machine: startup latency of a 2-container pod, memory per sandbox, image pull + unpack
# throughput from a loopback registry. Method and results: BENCHMARKS.md.
#
# Writes target/bench/results.md and target/bench/results.json, then replaces the part of BENCHMARKS.md
# between the "bench:results" markers with results.md. Everything runs under a temporary work dir and the
# cgroup parent /peapod-bench; the EXIT/INT/TERM/HUP trap removes all of it (processes, mounts, cgroups,
# podman pods, the registry, the work dir) even when interrupted.
#
# Environment: PEAPOD_BIN (default target/release/peapod), PEAPOD_TEST_IMAGES (default target/test-images),
# BENCH_RUNS (20), BENCH_PODS (10), BENCH_PULL_REPS (5), BENCH_ONLY (startup,memory,pull; a subset skips
# rewriting BENCHMARKS.md). Needs root; `make bench` installs the packages and builds peapod and the image.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { echo "bench.sh: $*" >&2; }
die() { log "error: $*"; exit 1; }

peapod=$(readlink -f "${PEAPOD_BIN:-target/release/peapod}")
images=$(readlink -f "${PEAPOD_TEST_IMAGES:-target/test-images}")
out=target/bench
only=${BENCH_ONLY:-startup,memory,pull}

[[ $EUID -eq 0 ]] || die "run as root (namespaces, mounts, cgroups, runc, podman)"
[[ -x $peapod ]] || die "$peapod not found: cargo build --release --locked"
[[ -f $images/busybox.oci.tar && -f $images/busybox.docker.tar ]] ||
  die "test images missing in $images: hack/test-image.sh $images"
for tool in runc podman conmon skopeo umoci docker-registry python3; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool not found: hack/install-deps.sh test"
done
python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' || die "python3 >= 3.9 needed (os.pidfd_open)"
[[ -d /sys/fs/cgroup ]] || die "no cgroup file system at /sys/fs/cgroup"
for d in /sys/fs/cgroup/*/peapod-bench /sys/fs/cgroup/peapod-bench; do
  [[ -e $d ]] && die "$d exists: another bench running, or a leftover (remove it after checking)"
done

work=$(mktemp -d /tmp/peapod-bench.XXXXXX)
py=
cleanup() {
  local rc=$?
  trap - EXIT INT TERM HUP
  python3 hack/bench/bench.py cleanup --work "$work" || rc=1
  exit "$rc"
}
# The driver runs in the background so that a signal reaches this trap at once; it is told to stop (its own
# finally block cleans up), then the EXIT trap cleans up again, idempotently.
interrupted() {
  [[ -n $py ]] && kill -TERM "$py" 2>/dev/null && wait "$py"
  exit "$1"
}
trap cleanup EXIT
trap 'interrupted 130' INT
trap 'interrupted 143' TERM
trap 'interrupted 129' HUP

mkdir -p "$out"
log "work dir $work; results in $out/"
python3 hack/bench/bench.py run --work "$work" --peapod "$peapod" --images "$images" --out "$out" \
  --runs "${BENCH_RUNS:-20}" --pods "${BENCH_PODS:-10}" --pull-reps "${BENCH_PULL_REPS:-5}" --only "$only" &
py=$!
wait "$py"
py=

if [[ $only == startup,memory,pull ]]; then
  python3 - "$out/results.md" BENCHMARKS.md <<'EOF'
import sys
results, target = sys.argv[1], sys.argv[2]
begin, end = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"
text = open(target).read()
if begin not in text or end not in text:
    sys.exit(f"{target}: markers {begin} / {end} not found")
new = open(results).read().rstrip("\n")
head, rest = text.split(begin, 1)
_, tail = rest.split(end, 1)
open(target, "w").write(f"{head}{begin}\n{new}\n{end}{tail}")
EOF
  log "BENCHMARKS.md results section rewritten from $out/results.md"
else
  log "BENCH_ONLY=$only: BENCHMARKS.md left as is; see $out/results.md"
fi
