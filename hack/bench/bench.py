#!/usr/bin/env python3
"""`make bench` driver (called by hack/bench.sh): startup latency, memory per sandbox and image pull
throughput of peapod beside bare runc and podman, in one run on this machine.

    bench.py run --work DIR --peapod BIN --images DIR --out DIR [--runs 20] [--pods 10] [--pull-reps 5]
    bench.py cleanup --work DIR

Writes OUT/results.json and OUT/results.md. Everything it starts lives under --work and the cgroup parent;
a finally block (and bench.sh's trap, through `cleanup`) removes it all, also when interrupted.
"""

import argparse
import json
import os
import signal
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cleanup  # noqa: E402
import machine  # noqa: E402
import memory  # noqa: E402
import pull  # noqa: E402
import report  # noqa: E402
import startup  # noqa: E402
from common import cgroup_dirs, log  # noqa: E402
from systems import Podman, PeapodNode, RuncFloor, unpack_rootfs  # noqa: E402

CGROUP_PARENT = "/peapod-bench"
# peapod clamps --poll-interval to at least 0.1 s (src/cli/run.rs), so this is the shortest it takes.
WARM_POLL = 0.1


def interrupted(signum, _frame):
    raise KeyboardInterrupt(f"signal {signum}")


def setup(args):
    """The three systems, ready to start pods: image imported/loaded, rootfs unpacked, supervisor up."""
    work, images = args.work, args.images
    oci = os.path.join(images, "busybox.oci.tar")
    warm = PeapodNode(args.peapod, os.path.join(work, "peapod-warm"), f"{CGROUP_PARENT}/warm", WARM_POLL)
    cold = PeapodNode(args.peapod, os.path.join(work, "peapod-cold"), f"{CGROUP_PARENT}/cold", WARM_POLL)
    for node in (warm, cold):
        node.import_image(oci)
    rootfs = os.path.join(work, "runc", "rootfs")
    os.makedirs(os.path.dirname(rootfs), exist_ok=True)
    unpack_rootfs(oci, rootfs, os.path.join(work, "runc", "unpack"))
    fl = RuncFloor(os.path.join(work, "runc"), rootfs, f"{CGROUP_PARENT}/runc")
    if not cgroup_dirs(cleanup.LIBPOD_PARENT):
        open(os.path.join(work, "created-libpod-parent"), "w").close()
    pm = Podman(os.path.join(work, "podman"))
    pm.load(os.path.join(images, "busybox.docker.tar"))
    warm.spawn()
    return warm, cold, fl, pm


def bench(args):
    results = {"machine": machine.describe(args.peapod), "config": {
        "runs": args.runs, "pods": args.pods, "pull_reps": args.pull_reps, "warm_poll_interval": WARM_POLL,
        "pull_layers": args.pull_layers, "pull_layer_mb": args.pull_layer_mb,
    }}
    warm, cold, fl, pm = setup(args)
    if "startup" in args.only:
        systems = [
            ("peapod", lambda n, m: startup.peapod_warm(warm, n, m), lambda n: warm.remove_and_wait(n)),
            ("peapod-cold", lambda n, m: startup.peapod_cold(cold, n, m),
             lambda n: startup.peapod_cold_teardown(cold, n)),
            ("runc", lambda n, m: startup.floor(fl, n, m), fl.remove_pod),
            ("podman", lambda n, m: startup.podman(pm, n, m), lambda n: pm.down(os.path.join(pm.root, "yaml", f"{n}.yaml"))),
        ]
        results["startup"] = startup.run_rounds(systems, args.runs)
    if "memory" in args.only:
        results["memory"] = memory.run_all(warm, fl, pm, args.pods)
    warm.stop()
    if "pull" in args.only:
        results["pull"] = pull.run_pull(os.path.join(args.work, "pull"), args.peapod,
                                        os.path.join(args.images, "busybox.oci.tar"), args.pull_reps,
                                        args.pull_layers, args.pull_layer_mb)
    results["machine"]["loadavg_end"] = machine.loadavg()
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--work", required=True)
    r.add_argument("--peapod", required=True)
    r.add_argument("--images", required=True)
    r.add_argument("--out", required=True)
    r.add_argument("--runs", type=int, default=20)
    r.add_argument("--pods", type=int, default=10)
    r.add_argument("--pull-reps", type=int, default=5)
    r.add_argument("--pull-layers", type=int, default=3)
    r.add_argument("--pull-layer-mb", type=int, default=20)
    r.add_argument("--only", default="startup,memory,pull", type=lambda s: s.split(","))
    c = sub.add_parser("cleanup")
    c.add_argument("--work", required=True)
    args = p.parse_args()

    if args.cmd == "cleanup":
        problems = cleanup.cleanup(args.work, CGROUP_PARENT)
        for line in problems:
            log(f"cleanup: {line}")
        return 1 if problems else 0

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # SIGINT too: a background job starts with it ignored
        signal.signal(sig, interrupted)
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.out, exist_ok=True)
    results = None
    try:
        results = bench(args)
    except KeyboardInterrupt as e:
        log(f"interrupted ({e})")
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # a second signal must not cut cleanup short
            signal.signal(sig, signal.SIG_IGN)
        log("cleaning up")
        problems = cleanup.cleanup(args.work, CGROUP_PARENT)
        for line in problems:
            log(f"cleanup: {line}")
    if results is None:
        return 130
    results["cleanup_problems"] = problems
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(report.markdown(results))
    log(f"wrote {args.out}/results.md and results.json")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
