"""Turns results.json into the markdown results section of BENCHMARKS.md. Formatting only."""

from common import summary

STARTUP_ROWS = [
    ("peapod", "start", "peapod, `peapod run` already running", "manifest renamed into the watched dir → both `sleep` exec'd"),
    ("peapod", "seen_to_start", "peapod, `peapod run` already running",
     "supervisor opens the manifest → both `sleep` exec'd (no poll delay)"),
    ("peapod", "seen", "peapod, `peapod run` already running", "manifest renamed → supervisor opens it (poll delay)"),
    ("peapod", "status", "peapod, `peapod run` already running", "manifest renamed → status file shows both running"),
    ("peapod-cold", "start", "peapod, fresh `peapod run -f DIR`", "process start → both `sleep` exec'd"),
    ("peapod-cold", "seen", "peapod, fresh `peapod run -f DIR`", "process start → supervisor opens the manifest"),
    ("peapod-cold", "status", "peapod, fresh `peapod run -f DIR`", "process start → status file shows both running"),
    ("runc", "start", "bare runc (floor)", "first overlay mount → both `sleep` exec'd"),
    ("runc", "returned", "bare runc (floor)", "first overlay mount → second `runc run -d` returned"),
    ("podman", "start", "podman kube play (peer)", "command start → both `sleep` exec'd"),
    ("podman", "returned", "podman kube play (peer)", "command start → command returned"),
]


def fmt(x, digits=0):
    return f"{x:.{digits}f}"


def startup_table(res):
    lines = [
        "| System | Interval | p50 ms | p95 ms | min ms | max ms |",
        "|---|---|--:|--:|--:|--:|",
    ]
    for system, key, label, interval in STARTUP_ROWS:
        values = [r[key] for r in res.get(system, []) if key in r]
        if not values:
            continue
        s = summary(values)
        lines.append(f"| {label} | {interval} | {fmt(s['p50'])} | {fmt(s['p95'])} | {fmt(s['min'])} | {fmt(s['max'])} |")
    lines += ["", "Second container after the first (exec to exec), p50 / p95 ms: " + ", ".join(
        f"{name} {fmt(summary([r['first_to_second'] for r in runs])['p50'])} / "
        f"{fmt(summary([r['first_to_second'] for r in runs])['p95'])}"
        for name, runs in res.items() if runs
    ) + "."]
    return lines


def kb(x):
    return f"{x / 1024:.2f}"


def memory_table(res):
    lines = [
        "| System | Processes | Processes per pod | RSS MiB per pod | PSS MiB per pod | Private MiB per pod |",
        "|---|---|--:|--:|--:|--:|",
    ]
    names = {"peapod": "peapod", "runc": "bare runc (floor)", "podman": "podman kube play (peer)"}
    for system in ("peapod", "runc", "podman"):
        m = res.get(system)
        if not m:
            continue
        h = m["helpers"]
        lines.append(f"| **{names[system]}** | **all helpers** | **{h['processes_per_pod']:.1f}** | "
                     f"**{kb(h['per_pod_kb']['Rss'])}** | **{kb(h['per_pod_kb']['Pss'])}** | "
                     f"**{kb(h['per_pod_kb']['Private'])}** |")
        for g in m["groups"]:
            lines.append(f"| | {g['label']} | {g['processes_per_pod']:.1f} | {kb(g['per_pod_kb']['Rss'])} | "
                         f"{kb(g['per_pod_kb']['Pss'])} | {kb(g['per_pod_kb']['Private'])} |")
    for system in ("peapod", "runc", "podman"):
        for g in (res.get(system) or {}).get("per_node", []):
            lines.append(f"| {names[system]}, per node | {g['label']} | {g['processes']} (per node) | "
                         f"{kb(g['total_kb']['Rss'])} | {kb(g['total_kb']['Pss'])} | {kb(g['total_kb']['Private'])} |")
    return lines


def pull_table(res):
    mb = res["compressed_bytes"] / 1e6
    lines = [
        f"Image: busybox + {res['layers'] - 1} random-data layers, {res['layers']} gzip layers, "
        f"{mb:.1f} MB compressed (layers + config); unpacked "
        + ", ".join(f"{k} {v / 1e6:.1f} MB" for k, v in res["unpacked_bytes"].items())
        + f". {res['reps']} repetitions each, interleaved.",
        "",
        "| Tool | p50 s | p95 s | MB/s at p50 | MB/s at p95 time |",
        "|---|--:|--:|--:|--:|",
    ]
    for tool, s in res["seconds"].items():
        lines.append(f"| {tool} | {s['p50']:.2f} | {s['p95']:.2f} | {mb / s['p50']:.1f} | {mb / s['p95']:.1f} |")
    return lines


def machine_table(m):
    keys = ["date", "cpu", "memory", "kernel", "cgroups", "peapod", "runc", "podman", "conmon", "skopeo", "umoci",
            "docker-registry", "python", "loadavg_start", "loadavg_end"]
    lines = ["| | |", "|---|---|"]
    for k in keys:
        if k in m:
            lines.append(f"| {k.replace('_', ' ')} | {str(m[k]).replace('|', '/')} |")
    return lines


def markdown(results):
    cfg = results["config"]
    out = ["### Machine", ""] + machine_table(results["machine"]) + [""]
    if "startup" in results:
        out += [f"### Startup latency (one 2-container pod, {cfg['runs']} runs per system after 1 warm-up, "
                f"`--poll-interval {cfg['warm_poll_interval']}`)", ""] + startup_table(results["startup"]) + [""]
    if "memory" in results:
        out += [f"### Memory per sandbox ({cfg['pods']} 2-container pods running per system; per-pod = total / "
                f"{cfg['pods']})", ""] + memory_table(results["memory"]) + [""]
    if "pull" in results:
        out += ["### Image pull + unpack from a loopback registry", ""] + pull_table(results["pull"]) + [""]
    if results.get("cleanup_problems"):
        out += ["Cleanup problems: " + "; ".join(results["cleanup_problems"]), ""]
    return "\n".join(out)
