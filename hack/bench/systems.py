"""The three systems under test, each able to start one 2-container pod and to take it down again:

- PeapodNode: `peapod run` on a private state dir, run dir and cgroup parent;
- RuncFloor:  bare `runc run -d` of two containers sharing net/ipc/uts namespaces;
- Podman:     `podman kube play` with a private containers.conf, root and runroot.

Owns what each system needs on disk (under the work dir it is given) and how to find its processes.
Measuring is left to the callers.
"""

import glob
import json
import os
import shutil
import signal
import subprocess

from common import MARKER_ENV, cgroup_dirs, cmdline, mount_overlay, pids_mentioning, run, umount, wait_until

IMAGE = "localhost/busybox:1.35.0"
GRACE_SECONDS = 1


def pod_yaml(kind, name, marker):
    """The benchmark pod: two busybox `sleep 3600` containers (the same spec for peapod and podman)."""
    api = "peapod.dev/v1alpha1" if kind == "PodGroup" else "v1"
    ctrs = "".join(
        f"""  - name: {c}
    image: {IMAGE}
    imagePullPolicy: IfNotPresent
    command: [sleep, "3600"]
    env: [{{name: {MARKER_ENV}, value: "{marker}"}}]
"""
        for c in ("a", "b")
    )
    return f"""apiVersion: {api}
kind: {kind}
metadata:
  name: {name}
spec:
  terminationGracePeriodSeconds: {GRACE_SECONDS}
  containers:
{ctrs}"""


class PeapodNode:
    """One `peapod run` node: state, run and manifest dirs under `root`, pods under `cgroup_parent`."""

    def __init__(self, binary, root, cgroup_parent, poll_interval):
        self.binary = binary
        self.root = root
        self.state = os.path.join(root, "state")
        self.run_dir = os.path.join(root, "run")
        self.manifests = os.path.join(root, "manifests")
        self.staging = os.path.join(root, "staging")
        self.cgroup_parent = cgroup_parent
        self.poll_interval = poll_interval
        self.proc = None
        for d in (self.manifests, self.staging):
            os.makedirs(d, exist_ok=True)

    def env(self):
        env = dict(os.environ)
        env.update(PEAPOD_STATE_DIR=self.state, PEAPOD_RUN_DIR=self.run_dir, PEAPOD_LOG="info")
        return env

    def import_image(self, archive):
        run([self.binary, "image", "import", archive], env=self.env())

    def start_cmd(self):
        return [
            self.binary, "run", "-f", self.manifests, "--poll-interval", str(self.poll_interval),
            "--cgroup-parent", self.cgroup_parent,
        ]

    def spawn(self):
        """Starts `peapod run` (own session: a Ctrl-C on the terminal reaches only the benchmark)."""
        logf = open(os.path.join(self.root, "supervisor.log"), "ab")
        self.proc = subprocess.Popen(
            self.start_cmd(), env=self.env(), stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
            start_new_session=True,
        )
        logf.close()
        return self.proc

    def stop(self, timeout=120):
        """SIGINT (graceful: stops every pod), then waits for the supervisor to exit."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def check_alive(self):
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"peapod run exited ({self.proc.returncode}); see {self.root}/supervisor.log")

    def stage(self, name, marker):
        """Writes a manifest outside the watched dir; returns (staged path, final path)."""
        staged = os.path.join(self.staging, f"{name}.yaml")
        with open(staged, "w") as f:
            f.write(pod_yaml("PodGroup", name, marker))
        return staged, os.path.join(self.manifests, f"{name}.yaml")

    def status(self, name):
        """The pod's status file content (what `peapod get -o json` prints), or None."""
        for path in glob.glob(os.path.join(self.state, "standalone", "*.json")):
            try:
                with open(path) as f:
                    pod = json.load(f)
            except (OSError, ValueError):
                continue
            if pod.get("metadata", {}).get("name") == name:
                return pod
        return None

    def all_running(self, name, containers=2):
        pod = self.status(name)
        statuses = ((pod or {}).get("status") or {}).get("containerStatuses") or []
        running = [s for s in statuses if "running" in (s.get("state") or {})]
        return len(running) == containers

    def pod_gone(self, uid):
        """True when nothing of pod `uid` is left: status, pod dir, cgroup, helpers."""
        if glob.glob(os.path.join(self.state, "standalone", f"{uid}.json")):
            return False
        if os.path.exists(os.path.join(self.state, "pods", uid)):
            return False
        if cgroup_dirs(f"{self.cgroup_parent}/pod{uid}"):
            return False
        return not any(uid in " ".join(cmdline(p)) for p in self.helper_pids())

    def helper_pids(self):
        """(pause pids, shim pids) of this node."""
        pause, shim = [], []
        for pid in pids_mentioning(self.root):
            argv = cmdline(pid)
            if len(argv) >= 2 and argv[1] == "pause":
                pause.append(pid)
            elif len(argv) >= 2 and argv[1] == "shim":
                shim.append(pid)
        return pause, shim

    def runc_pids(self):
        return [p for p in pids_mentioning(self.run_dir) if os.path.basename(cmdline(p)[0]) == "runc"]

    def remove_and_wait(self, name, timeout=60):
        """Removes a pod's manifest and waits until the pod is entirely gone."""
        pod = self.status(name)
        uid = (pod or {}).get("metadata", {}).get("uid")
        os.remove(os.path.join(self.manifests, f"{name}.yaml"))
        if uid:
            wait_until(f"peapod pod {name} to be gone", timeout, lambda: self.pod_gone(uid), 0.05)


class RuncFloor:
    """Bare runc: two containers from the same unpacked rootfs, the second joining the first's network,
    IPC and UTS namespaces by /proc path (what a pod shares), each on its own overlay like a pod's."""

    def __init__(self, root, rootfs, cgroup_parent):
        self.root = root
        self.rootfs = rootfs
        self.runc_root = os.path.join(root, "runc-root")
        self.cgroup_parent = cgroup_parent
        os.makedirs(self.runc_root, exist_ok=True)
        spec_dir = os.path.join(root, "spec")
        os.makedirs(spec_dir, exist_ok=True)
        run(["runc", "spec", "--bundle", spec_dir])
        with open(os.path.join(spec_dir, "config.json")) as f:
            self.template = json.load(f)

    def config(self, cid, marker, join_pid):
        c = json.loads(json.dumps(self.template))
        p = c["process"]
        p["terminal"] = False
        p["args"] = ["sleep", "3600"]
        p["env"] = p.get("env", []) + [f"{MARKER_ENV}={marker}"]
        c["root"] = {"path": "rootfs", "readonly": False}
        shared = {"network": "net", "ipc": "ipc", "uts": "uts"}
        if join_pid is None:
            c["hostname"] = "floor"
        else:
            c.pop("hostname", None)
            for ns in c["linux"]["namespaces"]:
                if ns["type"] in shared:
                    ns["path"] = f"/proc/{join_pid}/ns/{shared[ns['type']]}"
        c["linux"]["cgroupsPath"] = f"{self.cgroup_parent}/{cid}"
        return c

    def bundle(self, cid):
        return os.path.join(self.root, "bundles", cid)

    def start_container(self, cid, marker, join_pid):
        """Overlay rootfs, config.json, `runc run -d`; returns the container's pid."""
        b = self.bundle(cid)
        for d in ("upper", "work", "rootfs"):
            os.makedirs(os.path.join(b, d))
        mount_overlay(self.rootfs, os.path.join(b, "upper"), os.path.join(b, "work"), os.path.join(b, "rootfs"))
        with open(os.path.join(b, "config.json"), "w") as f:
            json.dump(self.config(cid, marker, join_pid), f)
        pid_file = os.path.join(b, "pid")
        # The container inherits runc's stdio: a pipe would never reach EOF, so output goes to a file.
        with open(os.path.join(b, "runc.log"), "wb") as out:
            rc = subprocess.run(["runc", "--root", self.runc_root, "run", "-d", "--pid-file", pid_file, "--bundle", b,
                                 cid], stdin=subprocess.DEVNULL, stdout=out, stderr=out).returncode
        if rc != 0:
            with open(os.path.join(b, "runc.log")) as f:
                raise RuntimeError(f"runc run -d {cid} failed ({rc}): {f.read().strip()}")
        with open(pid_file) as f:
            return int(f.read())

    def start_pod(self, name, marker):
        """Both containers, the second joining the first's namespaces; returns when `runc run -d` returned."""
        first = self.start_container(f"{name}-a", marker, None)
        self.start_container(f"{name}-b", marker, first)

    def remove_pod(self, name):
        for cid in (f"{name}-b", f"{name}-a"):
            run(["runc", "--root", self.runc_root, "delete", "--force", cid], check=False)
            umount(os.path.join(self.bundle(cid), "rootfs"), detach=False)
            shutil.rmtree(self.bundle(cid), ignore_errors=True)

    def runc_pids(self):
        return pids_mentioning(self.runc_root)


class Podman:
    """podman with a private containers.conf, storage root and runroot, all under `root`."""

    def __init__(self, root):
        self.root = root
        self.conf = os.path.join(root, "containers.conf")
        self.pods_file = os.path.join(root, "pod-ids")
        os.makedirs(os.path.join(root, "yaml"), exist_ok=True)
        with open(self.conf, "w") as f:
            f.write(
                f"""[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{root}/events.log"
runtime = "runc"
tmp_dir = "{root}/tmp"
volume_path = "{root}/volumes"

[network]
network_config_dir = "{root}/networks"
"""
            )

    def env(self):
        env = dict(os.environ)
        env["CONTAINERS_CONF"] = self.conf
        return env

    def cmd(self, *args):
        return [
            "podman", "--root", os.path.join(self.root, "storage"), "--runroot", os.path.join(self.root, "runroot"),
            "--storage-driver", "overlay", *args,
        ]

    def podman(self, *args, check=True, timeout=300):
        return run(self.cmd(*args), env=self.env(), check=check, timeout=timeout)

    def load(self, archive):
        self.podman("load", "-q", "-i", archive)

    def write_yaml(self, name, marker):
        path = os.path.join(self.root, "yaml", f"{name}.yaml")
        with open(path, "w") as f:
            f.write(pod_yaml("Pod", name, marker))
        return path

    def play_cmd(self, path):
        # --network none: a loopback-only pod network, as peapod's without CNI (no bridge, no netavark).
        return self.cmd("kube", "play", "--replace", "--network", "none", path)

    def record_pod(self, name):
        pod_id = self.podman("pod", "inspect", "--format", "{{.ID}}", name).strip()
        with open(self.pods_file, "a") as f:
            f.write(pod_id + "\n")
        return pod_id

    def containers(self, name):
        """[(name, state, pid, is_infra)] of pod `name`."""
        out = self.podman("ps", "-a", "--filter", f"pod={name}", "--format", "json")
        return [(c["Names"][0], c["State"], c.get("Pid", 0), c.get("IsInfra", False)) for c in json.loads(out or "[]")]

    def both_running(self, name):
        ctrs = [c for c in self.containers(name) if not c[3]]
        return len(ctrs) == 2 and all(c[1] == "running" for c in ctrs)

    def down(self, path):
        self.podman("kube", "down", path, timeout=120)

    def conmon_pids(self):
        return [p for p in pids_mentioning(self.root) if os.path.basename(self.cmdline0(p)) == "conmon"]

    def podman_pids(self):
        return [p for p in pids_mentioning(self.root) if os.path.basename(self.cmdline0(p)) == "podman"]

    @staticmethod
    def cmdline0(pid):
        argv = cmdline(pid)
        return argv[0] if argv else ""


def unpack_rootfs(archive, dest, scratch):
    """Unpacks the busybox OCI archive into `dest` (the floor's read-only lower dir) with skopeo + umoci."""
    layout = os.path.join(scratch, "layout")
    os.makedirs(scratch, exist_ok=True)
    run(["skopeo", "copy", "-q", f"oci-archive:{archive}", f"oci:{layout}:img"])
    bundle = os.path.join(scratch, "bundle")
    run(["umoci", "unpack", "--image", f"{layout}:img", bundle])
    os.rename(os.path.join(bundle, "rootfs"), dest)
    shutil.rmtree(scratch)
