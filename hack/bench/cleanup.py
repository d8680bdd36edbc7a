"""Removes everything a benchmark run (finished or interrupted) left: podman pods and containers, processes,
OCI runtime state, mounts, cgroups, the work dir. Idempotent; safe to run twice (the Python finally and
then bench.sh's trap).

Only touches what is provably the benchmark's: processes whose command line names the work dir or whose
environment carries PEAPOD_BENCH, processes in the benchmark's cgroup parent, podman pods recorded in
the work dir, mounts under the work dir, the cgroup parent and podman's `libpod_parent` cgroup only if
the benchmark created it.
"""

import glob
import os
import shutil
import signal
import subprocess
import time

from common import (
    MARKER_ENV,
    all_pids,
    cgroup_tree_pids,
    log,
    mounts_under,
    pids_mentioning,
    remove_cgroup_tree,
    umount,
)

LIBPOD_PARENT = "/libpod_parent"


def marked_pids():
    """Workload processes of any system: they carry PEAPOD_BENCH in their environment."""
    out = []
    for pid in all_pids():
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if f"{MARKER_ENV}=".encode() in f.read():
                    out.append(pid)
        except OSError:
            pass
    return [p for p in out if p != os.getpid()]


def podman_cleanup(pm_root):
    conf = os.path.join(pm_root, "containers.conf")
    if not os.path.exists(conf):
        return
    env = dict(os.environ, CONTAINERS_CONF=conf)
    base = ["podman", "--root", os.path.join(pm_root, "storage"), "--runroot", os.path.join(pm_root, "runroot"),
            "--storage-driver", "overlay"]
    for args in (["pod", "rm", "-af", "-t", "0"], ["rm", "-af", "-t", "0"]):
        try:
            subprocess.run(base + args, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            log(f"warning: podman {' '.join(args)}: {e}")


def podman_pod_cgroups(pm_root):
    try:
        with open(os.path.join(pm_root, "pod-ids")) as f:
            return [f"{LIBPOD_PARENT}/{line.strip()}" for line in f if line.strip()]
    except OSError:
        return []


def ancestors():
    """This process and its ancestors (bench.sh, make): never killed, though their command lines may name
    the work dir."""
    out, pid = set(), os.getpid()
    while pid > 1:
        out.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return out


def kill_all(work, cgroup_parent, extra_cgroups):
    """SIGKILLs, until none is left (30 s at most), every process that is provably the benchmark's."""
    deadline = time.monotonic() + 30
    while True:
        pids = set(pids_mentioning(work)) | set(cgroup_tree_pids(cgroup_parent)) | set(marked_pids())
        for cg in extra_cgroups:
            pids |= set(cgroup_tree_pids(cg))
        pids -= ancestors()
        if not pids:
            return []
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        # Reap what is ours (the registry, a supervisor) so it does not linger as a zombie.
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        if time.monotonic() > deadline:
            return sorted(pids)
        time.sleep(0.1)


def runc_delete_all(work):
    """`runc delete --force` of every container in any runc root under the work dir."""
    roots = [os.path.dirname(os.path.dirname(p)) for p in glob.glob(f"{work}/**/state.json", recursive=True)
             if os.path.basename(os.path.dirname(os.path.dirname(p))) in ("runc", "runc-root")]
    for root in sorted(set(roots)):
        for cid in os.listdir(root):
            subprocess.run(["runc", "--root", root, "delete", "--force", cid], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cleanup(work, cgroup_parent):
    """Removes everything; returns a list of what could not be removed (empty when clean)."""
    problems = []
    pm_root = os.path.join(work, "podman")
    if os.path.isdir(work):
        podman_cleanup(pm_root)
    pod_cgroups = podman_pod_cgroups(pm_root)
    left = kill_all(work, cgroup_parent, pod_cgroups)
    if left:
        problems.append(f"processes still alive: {left}")
    if os.path.isdir(work):
        runc_delete_all(work)
    for m in mounts_under(work):
        try:
            umount(m)
        except OSError as e:
            problems.append(str(e))
    if mounts_under(work):
        problems.append(f"mounts left: {mounts_under(work)}")
    problems += [f"cgroup left: {d}" for d in remove_cgroup_tree(cgroup_parent)]
    for cg in pod_cgroups:
        problems += [f"cgroup left: {d}" for d in remove_cgroup_tree(cg)]
    if os.path.exists(os.path.join(work, "created-libpod-parent")):
        remove_cgroup_tree(LIBPOD_PARENT)  # what still holds processes is not ours: rmdir fails on it
    if os.path.isdir(work):
        shutil.rmtree(work, ignore_errors=True)
        if os.path.exists(work):
            problems.append(f"work dir left: {work}")
    return problems
