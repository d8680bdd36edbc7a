"""Startup latency of one 2-container pod on each system, measured in interleaved rounds.

Every time is CLOCK_MONOTONIC. The end of a start is the kernel's timestamp of the second workload's
execve of `sleep` (netlink process connector), so every system is timed to the same event without
polling. peapod's extra points (manifest opened by the supervisor, status file showing both containers
running) and the peers' command return are reported beside it. Owns no cleanup beyond its own pods.
"""

import os
import subprocess
import time

from common import (
    IN_OPEN,
    ExecWatcher,
    Inotify,
    is_workload,
    log,
    now_ns,
    wait_readable,
    wait_until,
)

START_TIMEOUT = 60


class Waiter:
    """Collects, for one iteration, the workload execs, the first open of a manifest and a command's exit."""

    def __init__(self, marker, inotify_dir=None, inotify_name=None):
        self.marker = marker
        self.watcher = ExecWatcher()
        self.inotify = Inotify(inotify_dir, IN_OPEN) if inotify_dir else None
        self.inotify_name = inotify_name
        self.execs = {}
        self.seen = None
        self.returned = None
        self.returncode = None
        self.pidfd = None
        self.proc = None

    def track(self, proc):
        """Also waits for `proc` to exit (pidfd: its exit time is taken when the kernel reports it)."""
        self.proc = proc
        self.pidfd = os.pidfd_open(proc.pid)

    def close(self):
        self.watcher.close()
        if self.inotify:
            self.inotify.close()
        if self.pidfd is not None:
            os.close(self.pidfd)

    def done(self, want_seen):
        if len(self.execs) < 2:
            return False
        if want_seen and self.seen is None:
            return False
        return self.proc is None or self.returned is not None

    def wait(self, timeout=START_TIMEOUT, want_seen=False, alive=None):
        deadline = time.monotonic() + timeout
        while not self.done(want_seen):
            objs = [self.watcher] + ([self.inotify] if self.inotify else [])
            if self.pidfd is not None and self.returned is None:
                objs.append(self.pidfd)
            ready = wait_readable(objs, min(0.5, deadline - time.monotonic()))
            if self.inotify and self.inotify in ready:
                for name in self.inotify.read_names():
                    if name == self.inotify_name and self.seen is None:
                        self.seen = now_ns()
            for pid, ts in self.watcher.read_execs():
                if pid not in self.execs and is_workload(pid, self.marker):
                    self.execs[pid] = ts
            if self.pidfd is not None and self.pidfd in ready and self.returned is None:
                self.returned = now_ns()
                self.returncode = self.proc.wait()
            if alive:
                alive()
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"pod with marker {self.marker}: {len(self.execs)}/2 workloads started after {timeout}s"
                    + (" (exec events were lost)" if self.watcher.lost else "")
                )
        if self.watcher.lost:
            log("warning: the kernel dropped exec events in this iteration")
        return sorted(self.execs.values())


def ms(a, b):
    return (b - a) / 1e6


def peapod_warm(node, name, marker):
    """A running `peapod run` picks up a manifest renamed into its directory."""
    staged, final = node.stage(name, marker)
    w = Waiter(marker, node.manifests, os.path.basename(final))
    try:
        t0 = now_ns()
        os.rename(staged, final)
        execs = w.wait(want_seen=True, alive=node.check_alive)
        t_status = now_ns() if node.all_running(name) else None
        if t_status is None:
            wait_until(f"status of {name} to show both running", START_TIMEOUT, lambda: node.all_running(name), 0.002)
            t_status = now_ns()
    finally:
        w.close()
    return {
        "start": ms(t0, execs[-1]),
        "seen": ms(t0, w.seen),
        "seen_to_start": ms(w.seen, execs[-1]),
        "first_to_second": ms(execs[0], execs[-1]),
        "status": ms(t0, t_status),
        "seen_to_status": ms(w.seen, t_status),
    }


def peapod_cold(node, name, marker):
    """A fresh `peapod run -f DIR` whose directory holds the manifest: process start to both running."""
    staged, final = node.stage(name, marker)
    os.rename(staged, final)
    w = Waiter(marker, node.manifests, os.path.basename(final))
    try:
        t0 = now_ns()
        node.spawn()
        execs = w.wait(want_seen=True, alive=node.check_alive)
        wait_until(f"status of {name} to show both running", START_TIMEOUT, lambda: node.all_running(name), 0.002)
        t_status = now_ns()
    finally:
        w.close()
    return {
        "start": ms(t0, execs[-1]),
        "seen": ms(t0, w.seen),
        "seen_to_start": ms(w.seen, execs[-1]),
        "first_to_second": ms(execs[0], execs[-1]),
        "status": ms(t0, t_status),
    }


def peapod_cold_teardown(node, name):
    node.stop()
    os.remove(os.path.join(node.manifests, f"{name}.yaml"))
    wait_until("peapod helpers to exit", 30, lambda: node.helper_pids() == ([], []), 0.05)


def floor(fl, name, marker):
    """Bare runc: overlay mounts, config.json and `runc run -d` for both containers, from Python."""
    w = Waiter(marker)
    try:
        t0 = now_ns()
        fl.start_pod(name, marker)
        t_ret = now_ns()
        execs = w.wait()
    finally:
        w.close()
    return {"start": ms(t0, execs[-1]), "returned": ms(t0, t_ret), "first_to_second": ms(execs[0], execs[-1])}


def podman(pm, name, marker):
    """`podman kube play` of the same spec as a v1 Pod; timed to both execs and to the command's return."""
    path = pm.write_yaml(name, marker)
    errlog = open(os.path.join(pm.root, "play.log"), "ab")
    w = Waiter(marker)
    try:
        t0 = now_ns()
        proc = subprocess.Popen(pm.play_cmd(path), env=pm.env(), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=errlog)
        w.track(proc)
        execs = w.wait()
    finally:
        w.close()
        errlog.close()
    if w.returncode != 0:
        raise RuntimeError(f"podman kube play {path} failed ({w.returncode}); see {pm.root}/play.log")
    pm.record_pod(name)
    if not pm.both_running(name):
        raise RuntimeError(f"podman ps does not show both containers of {name} running")
    return {"start": ms(t0, execs[-1]), "returned": ms(t0, w.returned), "first_to_second": ms(execs[0], execs[-1])}


def run_rounds(systems, runs, warmup=1):
    """Runs `warmup + runs` rounds; each round starts and removes one pod on every system, the order rotating
    by round so no system always runs right after another. Returns {system: [result, ...]}."""
    results = {name: [] for name, _, _ in systems}
    for r in range(warmup + runs):
        label = "warm-up" if r < warmup else f"run {r - warmup + 1}/{runs}"
        order = systems[r % len(systems):] + systems[: r % len(systems)]
        line = []
        for name, start, teardown in order:
            pod = f"bench-{name}-{r:02d}"
            marker = f"{pod}-{os.getpid()}"
            res = start(pod, marker)
            teardown(pod)
            if r >= warmup:
                results[name].append(res)
            line.append(f"{name} {res['start']:.0f}ms")
        log(f"startup {label}: " + ", ".join(line))
    return results
