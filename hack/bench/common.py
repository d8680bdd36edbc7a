"""Shared pieces of `make bench`: exec events from the kernel, inotify, percentiles, process memory,
mounts and cgroups, and small process helpers.

Owns no benchmark logic and never touches anything outside the paths and cgroup parent it is given.
"""

import ctypes
import ctypes.util
import errno
import math
import os
import select
import socket
import struct
import subprocess
import time

MARKER_ENV = "PEAPOD_BENCH"

_libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p] * 3 + [ctypes.c_ulong, ctypes.c_char_p]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]


def now_ns():
    """CLOCK_MONOTONIC in ns: the clock the kernel stamps exec events with (ktime_get_ns)."""
    return time.monotonic_ns()


def log(msg):
    print(f"bench: {msg}", flush=True)


# --- exec events (netlink process connector) -------------------------------------------------------------

_NETLINK_CONNECTOR = 11
_CN_IDX_PROC = 1
_CN_VAL_PROC = 1
_PROC_CN_MCAST_LISTEN = 1
_PROC_EVENT_EXEC = 0x2
_NLMSG_DONE = 3
_NLMSG_HDR = 16
_CN_MSG = 20


class ExecWatcher:
    """Reports, with the kernel's own CLOCK_MONOTONIC timestamp, every execve on the machine.

    A workload is recognised by its command name and by the `PEAPOD_BENCH=<marker>` variable in its
    environment, so only the processes of the current iteration count, whoever started them.
    Open one per iteration: the socket is not read between iterations and would overflow.
    """

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_CONNECTOR)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, 16 << 20)  # SO_RCVBUFFORCE (root)
        except OSError:
            pass
        self.sock.bind((0, _CN_IDX_PROC))
        op = struct.pack("I", _PROC_CN_MCAST_LISTEN)
        cn = struct.pack("IIIIHH", _CN_IDX_PROC, _CN_VAL_PROC, 0, 0, len(op), 0) + op
        self.sock.send(struct.pack("IHHII", _NLMSG_HDR + len(cn), _NLMSG_DONE, 0, 0, 0) + cn)
        self.lost = False

    def fileno(self):
        return self.sock.fileno()

    def read_execs(self):
        """Drains pending messages; returns [(pid, kernel_ns)] of exec events."""
        out = []
        while True:
            try:
                data = self.sock.recv(65536, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return out
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    self.lost = True
                    continue
                raise
            off = 0
            while off + _NLMSG_HDR <= len(data):
                length = struct.unpack_from("I", data, off)[0]
                if length < _NLMSG_HDR:
                    break
                ev = off + _NLMSG_HDR + _CN_MSG
                if ev + 24 <= len(data):
                    what, _cpu, ts = struct.unpack_from("IIQ", data, ev)
                    if what == _PROC_EVENT_EXEC:
                        pid = struct.unpack_from("i", data, ev + 16)[0]
                        out.append((pid, ts))
                off += (length + 3) & ~3

    def close(self):
        self.sock.close()


def is_workload(pid, marker, comm="sleep"):
    """True when `pid` runs `comm` with PEAPOD_BENCH=<marker> in its environment."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as f:
            if f.read().strip() != comm.encode():
                return False
        with open(f"/proc/{pid}/environ", "rb") as f:
            return f"{MARKER_ENV}={marker}".encode() in f.read().split(b"\0")
    except OSError:
        return False


# --- inotify ------------------------------------------------------------------------------------------------

IN_OPEN = 0x20


class Inotify:
    """A minimal inotify watch on one directory (ctypes; the standard library has none)."""

    def __init__(self, path, mask):
        self.fd = _libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        if _libc.inotify_add_watch(self.fd, os.fsencode(path), mask) < 0:
            err = ctypes.get_errno()
            os.close(self.fd)
            raise OSError(err, f"inotify_add_watch {path}")

    def fileno(self):
        return self.fd

    def read_names(self):
        """Drains pending events; returns the names they carry, in order."""
        names = []
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return names
            off = 0
            while off + 16 <= len(data):
                _wd, _mask, _cookie, n = struct.unpack_from("iIII", data, off)
                names.append(data[off + 16 : off + 16 + n].rstrip(b"\0").decode(errors="replace"))
                off += 16 + n

    def close(self):
        os.close(self.fd)


def wait_readable(objs, timeout):
    if timeout <= 0:
        return []
    r, _, _ = select.select(objs, [], [], timeout)
    return r


# --- statistics ---------------------------------------------------------------------------------------------


def percentile(values, p):
    """Linear interpolation between closest ranks (numpy's default, R type 7)."""
    xs = sorted(values)
    if not xs:
        return math.nan
    k = (len(xs) - 1) * p / 100.0
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def summary(values):
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "min": min(values) if values else math.nan,
        "max": max(values) if values else math.nan,
    }


# --- process memory -----------------------------------------------------------------------------------------


def smaps_rollup(pid):
    """{'Rss': kB, 'Pss': kB, 'Private': kB} of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            text = f.read()
    except OSError:
        return None
    fields = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
            fields[parts[0][:-1]] = int(parts[1])
    return {
        "Rss": fields.get("Rss", 0),
        "Pss": fields.get("Pss", 0),
        "Private": fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0),
    }


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def pids_mentioning(text):
    """Pids whose command line contains `text` (never this process)."""
    me = os.getpid()
    return [p for p in all_pids() if p != me and any(text in a for a in cmdline(p))]


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        for c in children(todo.pop()):
            out.append(c)
            todo.append(c)
    return out


def wait_until(what, timeout, cond, interval=0.01):
    """Polls `cond` until it returns a truthy value; raises TimeoutError naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def run(args, env=None, check=True, quiet=True, timeout=600):
    """Runs a command to completion; returns its stdout text. Raises with stderr on failure."""
    p = subprocess.run(
        args,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        timeout=timeout,
    )
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, args))} failed ({p.returncode}): {p.stderr.decode().strip()}")
    if not quiet and p.stderr:
        print(p.stderr.decode(), end="")
    return p.stdout.decode()


# --- mounts and cgroups -------------------------------------------------------------------------------------

MS_RDONLY = 1


def mount_overlay(lower, upper, work, target):
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    if _libc.mount(b"overlay", os.fsencode(target), b"overlay", 0, opts) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount overlay on {target}: {os.strerror(err)}")


def umount(target, detach=True):
    if _libc.umount2(os.fsencode(target), 2 if detach else 0) != 0:  # MNT_DETACH
        err = ctypes.get_errno()
        if err not in (errno.EINVAL, errno.ENOENT):
            raise OSError(err, f"umount {target}: {os.strerror(err)}")


def _unescape(s):
    return s.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")


def mounts_under(prefix):
    """Mount points at or below `prefix`, deepest first."""
    prefix = prefix.rstrip("/")
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            target = _unescape(line.split()[4])
            if target == prefix or target.startswith(prefix + "/"):
                out.append(target)
    return sorted(set(out), key=lambda t: (-t.count("/"), t))


def cgroup_mounts():
    """Mount points of every cgroup hierarchy (v1 controllers and the v2 unified one)."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if right.split()[0] in ("cgroup", "cgroup2"):
                out.append(_unescape(left.split()[4]))
    return out


def cgroup_dirs(rel):
    """The directories of cgroup `rel` (e.g. /peapod-bench) that exist, one per hierarchy."""
    rel = rel.strip("/")
    return [os.path.join(m, rel) for m in cgroup_mounts() if os.path.isdir(os.path.join(m, rel))]


def cgroup_tree_pids(rel):
    pids = set()
    for top in cgroup_dirs(rel):
        for root, _dirs, files in os.walk(top):
            if "cgroup.procs" in files:
                try:
                    with open(os.path.join(root, "cgroup.procs")) as f:
                        pids.update(int(x) for x in f.read().split())
                except OSError:
                    pass
    return sorted(pids)


def remove_cgroup_tree(rel):
    """Removes cgroup `rel` and everything below it in every hierarchy, deepest first; returns leftovers."""
    left = []
    for top in cgroup_dirs(rel):
        dirs = [root for root, _d, _f in os.walk(top)]
        for d in sorted(dirs, key=lambda p: -p.count("/")):
            try:
                os.rmdir(d)
            except OSError:
                left.append(d)
    return left
