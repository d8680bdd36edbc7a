"""Image pull + unpack throughput from a loopback registry: `peapod image pull` beside `skopeo copy` +
`umoci unpack` of the same multi-layer image, interleaved, in the same run.

The image is busybox plus `layers` layers of `layer_mb` MB of random data (incompressible), gzip
compressed by umoci; it is pushed to Debian's docker-registry on 127.0.0.1 (a free port, storage and
config under the work dir). Owns the registry process; the caller's cleanup kills it if this is
interrupted.
"""

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import urllib.request

from common import log, now_ns, run, summary, wait_until


def tree_bytes(path):
    """Apparent size of every regular file and symlink under `path` (hard links counted once)."""
    total, seen = 0, set()
    for root, dirs, files in os.walk(path):
        for n in dirs + files:
            st = os.lstat(os.path.join(root, n))
            if stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


def build_image(work, base_archive, layers, layer_mb):
    """busybox + random-data layers in an OCI layout; returns (layout dir, tag)."""
    layout = os.path.join(work, "layout")
    os.makedirs(work, exist_ok=True)
    run(["skopeo", "copy", "-q", f"oci-archive:{base_archive}", f"oci:{layout}:l0"])
    for i in range(1, layers + 1):
        bundle = os.path.join(work, f"bundle-{i}")
        run(["umoci", "unpack", "--image", f"{layout}:l{i - 1}", bundle])
        data = os.path.join(bundle, "rootfs", "data")
        os.makedirs(data, exist_ok=True)
        with open(os.path.join(data, f"random-{i}.bin"), "wb") as f:
            for _ in range(layer_mb):
                f.write(os.urandom(1 << 20))
        run(["umoci", "repack", "--image", f"{layout}:l{i}", bundle])
        shutil.rmtree(bundle)
    run(["umoci", "gc", "--layout", layout])
    return layout, f"l{layers}"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Registry:
    """Debian's docker-registry on 127.0.0.1, storage and config under `root`."""

    def __init__(self, root):
        self.root = root
        self.port = free_port()
        self.config = os.path.join(root, "config.yml")
        os.makedirs(os.path.join(root, "storage"), exist_ok=True)
        with open(self.config, "w") as f:
            f.write(
                f"""version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: {root}/storage
http:
  addr: 127.0.0.1:{self.port}
"""
            )
        logf = open(os.path.join(root, "registry.log"), "ab")
        self.proc = subprocess.Popen(["docker-registry", "serve", self.config], stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=logf, start_new_session=True)
        logf.close()
        wait_until(f"docker-registry on 127.0.0.1:{self.port}", 30, self.ready, 0.05)

    def ready(self):
        if self.proc.poll() is not None:
            raise RuntimeError(f"docker-registry exited ({self.proc.returncode}); see {self.root}/registry.log")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/v2/", timeout=1) as r:
                return r.status == 200
        except OSError:
            return False

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def timed(args, env=None):
    t0 = now_ns()
    run(args, env=env)
    return (now_ns() - t0) / 1e9


def run_pull(work, peapod, base_archive, reps, layers, layer_mb):
    os.makedirs(work, exist_ok=True)
    log(f"pull: building busybox + {layers} x {layer_mb} MB random layers")
    layout, tag = build_image(os.path.join(work, "build"), base_archive, layers, layer_mb)
    registry = Registry(os.path.join(work, "registry"))
    try:
        ref = f"127.0.0.1:{registry.port}/bench/img:v1"
        run(["skopeo", "copy", "-q", "--dest-tls-verify=false", f"oci:{layout}:{tag}", f"docker://{ref}"])
        manifest = json.loads(run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"]))
        layer_sizes = [d["size"] for d in manifest["layers"]]
        compressed = sum(layer_sizes) + manifest["config"]["size"]
        peapod_s, skopeo_s, umoci_s, both_s = [], [], [], []
        unpacked = {}
        for r in range(reps + 1):  # round 0 is a warm-up (page cache, first exec of each binary)
            t = {}
            for system in (("peapod", "skopeo") if r % 2 == 0 else ("skopeo", "peapod")):
                rep_dir = os.path.join(work, f"{system}-{r}")
                os.makedirs(rep_dir)
                if system == "peapod":
                    env = dict(os.environ, PEAPOD_STATE_DIR=os.path.join(rep_dir, "state"), PEAPOD_LOG="warn")
                    t["peapod"] = timed([peapod, "image", "pull", ref], env=env)
                    unpacked["peapod"] = tree_bytes(os.path.join(rep_dir, "state", "images", "layers"))
                else:
                    oci = os.path.join(rep_dir, "oci")
                    t["skopeo"] = timed(["skopeo", "copy", "-q", "--src-tls-verify=false", f"docker://{ref}",
                                         f"oci:{oci}:v1"])
                    t["umoci"] = timed(["umoci", "unpack", "--image", f"{oci}:v1", os.path.join(rep_dir, "bundle")])
                    unpacked["umoci"] = tree_bytes(os.path.join(rep_dir, "bundle", "rootfs"))
                shutil.rmtree(rep_dir)
            label = "warm-up" if r == 0 else f"rep {r}/{reps}"
            log(f"pull {label}: peapod {t['peapod']:.2f}s, skopeo+umoci {t['skopeo'] + t['umoci']:.2f}s")
            if r > 0:
                peapod_s.append(t["peapod"])
                skopeo_s.append(t["skopeo"])
                umoci_s.append(t["umoci"])
                both_s.append(t["skopeo"] + t["umoci"])
    finally:
        registry.stop()

    def rate(secs):
        return [compressed / 1e6 / s for s in secs]

    return {
        "layers": len(layer_sizes),
        "layer_sizes": layer_sizes,
        "compressed_bytes": compressed,
        "unpacked_bytes": unpacked,
        "reps": reps,
        "seconds": {
            "peapod image pull": summary(peapod_s),
            "skopeo copy": summary(skopeo_s),
            "umoci unpack": summary(umoci_s),
            "skopeo copy + umoci unpack": summary(both_s),
        },
        "mb_per_s": {
            "peapod image pull": summary(rate(peapod_s)),
            "skopeo copy + umoci unpack": summary(rate(both_s)),
        },
        "raw_seconds": {"peapod": peapod_s, "skopeo": skopeo_s, "umoci": umoci_s},
    }
