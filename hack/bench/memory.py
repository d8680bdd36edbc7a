"""Memory of the helper processes that keep N 2-container pods running, per system.

RSS, PSS and private (Private_Clean + Private_Dirty) come from /proc/PID/smaps_rollup, summed over the
helpers and divided by N. The workloads themselves (`sleep`) are the same on every system and not
counted. Owns starting and removing its N pods; never touches anything else.
"""

import os
import subprocess
import time

from common import ExecWatcher, descendants, is_workload, log, smaps_rollup, wait_readable, wait_until

SETTLE_SECONDS = 2.0
START_TIMEOUT = 120


def measure(pids):
    """Sums smaps_rollup over `pids`; returns (count, {'Rss','Pss','Private'} in kB)."""
    total = {"Rss": 0, "Pss": 0, "Private": 0}
    n = 0
    for pid in pids:
        m = smaps_rollup(pid)
        if m is None:
            continue
        n += 1
        for k in total:
            total[k] += m[k]
    return n, total


def group(label, pids, pods):
    n, total = measure(pids)
    return {
        "label": label,
        "processes": n,
        "processes_per_pod": n / pods,
        "total_kb": total,
        "per_pod_kb": {k: v / pods for k, v in total.items()},
    }


def wait_workloads(watcher, marker, count):
    """Waits until `count` workloads with `marker` have exec'd (the watcher was opened before the starts)."""
    seen = set()
    deadline = time.monotonic() + START_TIMEOUT
    while len(seen) < count:
        wait_readable([watcher], min(0.5, deadline - time.monotonic()))
        for pid, _ts in watcher.read_execs():
            if is_workload(pid, marker):
                seen.add(pid)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(seen)}/{count} workloads with marker {marker} started")
    return seen


def peapod(node, pods):
    marker = f"mem-peapod-{os.getpid()}"
    names = [f"mem-peapod-{i:02d}" for i in range(pods)]
    watcher = ExecWatcher()
    try:
        for name in names:
            staged, final = node.stage(name, marker)
            os.rename(staged, final)
        wait_workloads(watcher, marker, 2 * pods)
    finally:
        watcher.close()
    wait_until("peapod status to show every pod running", START_TIMEOUT,
               lambda: all(node.all_running(n) for n in names), 0.1)
    time.sleep(SETTLE_SECONDS)
    pause, shim = node.helper_pids()
    runc = node.runc_pids()
    out = {
        "pods": pods,
        "groups": [
            group("peapod pause", pause, pods),
            group("peapod shim", shim, pods),
            group("runc left running", runc, pods),
        ],
        "per_node": [group("peapod run (supervisor)", [node.proc.pid], 1)],
    }
    out["helpers"] = group("all helpers", pause + shim + runc, pods)
    for name in names:
        os.remove(os.path.join(node.manifests, f"{name}.yaml"))
    wait_until("peapod pods to be gone", 120, lambda: node.helper_pids() == ([], []), 0.1)
    return out


def floor(fl, pods):
    marker = f"mem-runc-{os.getpid()}"
    names = [f"mem-runc-{i:02d}" for i in range(pods)]
    watcher = ExecWatcher()
    try:
        for name in names:
            fl.start_pod(name, marker)
        wait_workloads(watcher, marker, 2 * pods)
    finally:
        watcher.close()
    time.sleep(SETTLE_SECONDS)
    runc = fl.runc_pids()
    out = {"pods": pods, "groups": [group("runc left running", runc, pods)], "per_node": []}
    out["helpers"] = group("all helpers", runc, pods)
    for name in names:
        fl.remove_pod(name)
    return out


def podman(pm, pods):
    marker = f"mem-podman-{os.getpid()}"
    names = [f"mem-podman-{i:02d}" for i in range(pods)]
    paths = [pm.write_yaml(n, marker) for n in names]
    watcher = ExecWatcher()
    try:
        for name, path in zip(names, paths):
            subprocess.run(pm.play_cmd(path), env=pm.env(), check=True, stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            pm.record_pod(name)
        wait_workloads(watcher, marker, 2 * pods)
    finally:
        watcher.close()
    for name in names:
        if not pm.both_running(name):
            raise RuntimeError(f"podman ps does not show both containers of {name} running")
    time.sleep(SETTLE_SECONDS)
    infra = []
    for name in names:
        for _n, _state, pid, is_infra in pm.containers(name):
            if is_infra and pid:
                infra += [pid] + descendants(pid)
    conmon = pm.conmon_pids()
    left = pm.podman_pids()
    out = {
        "pods": pods,
        "groups": [
            group("conmon", conmon, pods),
            group("infra container (catatonit)", infra, pods),
            group("podman left running", left, pods),
        ],
        "per_node": [],
    }
    out["helpers"] = group("all helpers", conmon + infra + left, pods)
    for path in paths:
        pm.down(path)
    return out


def run_all(node, fl, pm, pods):
    results = {}
    for name, fn, target in (("peapod", peapod, node), ("runc", floor, fl), ("podman", podman, pm)):
        log(f"memory: {name} with {pods} pods")
        results[name] = fn(target, pods)
        h = results[name]["helpers"]
        log(f"memory: {name}: {h['processes_per_pod']:.1f} helper processes per pod, "
            f"PSS {h['per_pod_kb']['Pss']:.0f} kB per pod")
    return results
