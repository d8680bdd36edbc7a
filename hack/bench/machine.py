"""What the benchmark ran on: CPU, kernel, memory, cgroup layout, tool versions, peapod build."""

import os
import platform
import subprocess
import time


def first_line(args):
    try:
        out = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             timeout=30).stdout.decode()
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"unavailable ({e})"
    return out.strip().splitlines()[0] if out.strip() else ""


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_model():
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor()


def mem_total_gib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1 << 20)
    return 0.0


def cgroup_layout():
    kinds = set()
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fstype = line.partition(" - ")[2].split()[0]
            if fstype in ("cgroup", "cgroup2"):
                kinds.add(fstype)
    if kinds == {"cgroup2"}:
        return "v2 (unified)"
    if "cgroup2" in kinds:
        return "v1 (hybrid: v1 controllers, empty v2 hierarchy)"
    return "v1"


def peapod_build(peapod):
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(peapod))))
    commit = first_line(["git", "-C", repo, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", repo, "diff", "--quiet", "HEAD", "--", "src", "Cargo.toml", "Cargo.lock"],
                           stdin=subprocess.DEVNULL).returncode != 0
    profile = os.path.basename(os.path.dirname(os.path.abspath(peapod)))
    size = os.path.getsize(peapod) / 1e6
    return (f"{first_line([peapod, '--version'])}, commit {commit}{' (src modified)' if dirty else ''}, "
            f"{profile} build, binary {size:.1f} MB")


def describe(peapod):
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "cpu": f"{os.cpu_count()} x {cpu_model()}",
        "nproc": os.cpu_count(),
        "memory": f"{mem_total_gib():.1f} GiB",
        "kernel": platform.release(),
        "cgroups": cgroup_layout(),
        "peapod": peapod_build(peapod),
        "runc": first_line(["runc", "--version"]),
        "podman": first_line(["podman", "--version"]),
        "conmon": first_line(["conmon", "--version"]),
        "skopeo": first_line(["skopeo", "--version"]),
        "umoci": first_line(["umoci", "--version"]),
        "docker-registry": first_line(["docker-registry", "--version"]),
        "python": platform.python_version(),
        "loadavg_start": loadavg(),
    }
