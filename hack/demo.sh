#!/usr/bin/env bash
# demo.sh — the README's `make demo`: import the busybox test image, run examples/two-containers.yaml with
# `peapod run`, show that its containers share localhost, a volume and the hostname, then stop it gracefully.
# Uses the default state and run directories (/var/lib/peapod, /run/peapod); needs root.
set -euo pipefail
cd "$(dirname "$0")/.."

peapod=${PEAPOD_BIN:-target/release/peapod}
images=${PEAPOD_TEST_IMAGES:-target/test-images}
log=target/demo-run.log
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

[[ $EUID -eq 0 ]] || { echo "demo.sh: run as root (peapod creates namespaces, mounts and cgroups)" >&2; exit 1; }

say peapod image import "$images/busybox-latest.oci.tar"
"$peapod" image import "$images/busybox-latest.oci.tar"
"$peapod" image ls

say "peapod run -f examples/two-containers.yaml   # in the background, log in $log"
"$peapod" run -f examples/two-containers.yaml >"$log" 2>&1 &
run_pid=$!
cleanup() { kill -INT "$run_pid" 2>/dev/null && wait "$run_pid" 2>/dev/null || true; }
trap cleanup EXIT

for _ in $(seq 1 300); do
  if "$peapod" get two-containers 2>/dev/null | grep -q ' 2/2 .*Running'; then break; fi
  kill -0 "$run_pid" 2>/dev/null || { cat "$log"; echo "demo.sh: peapod run exited" >&2; exit 1; }
  sleep 0.2
done

say peapod get
"$peapod" get
say peapod get -o wide
"$peapod" get -o wide
say "peapod exec two-containers -c reader -- wget -q -O- http://localhost:8080/   # localhost is shared"
"$peapod" exec two-containers -c reader -- wget -q -O- http://localhost:8080/
say "peapod exec two-containers -c reader -- cat /pod-data/index.html   # the emptyDir volume is shared"
"$peapod" exec two-containers -c reader -- cat /pod-data/index.html
say "hostname in each container   # the UTS namespace is shared"
echo "writer: $("$peapod" exec two-containers -c writer -- hostname)"
echo "reader: $("$peapod" exec two-containers -c reader -- hostname)"
say peapod logs two-containers -c reader --tail 2
for _ in $(seq 1 50); do
  [[ -n $("$peapod" logs two-containers -c reader 2>/dev/null) ]] && break
  sleep 0.2
done
"$peapod" logs two-containers -c reader --tail 2
say "peapod get two-containers -o yaml | head -40"
"$peapod" get two-containers -o yaml | head -40

say "kill -INT peapod run   # Ctrl-C: every pod stops gracefully"
trap - EXIT
kill -INT "$run_pid"
wait "$run_pid" || true
"$peapod" get
