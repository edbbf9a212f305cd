#!/usr/bin/env python3
"""What calling the engine through Python costs: `omnibind.Model.embed_files` vs `omnibind embed --model` on the
same files, bundle, batch size and threads, in the same run (issue 19: under 5 % for batches of 64).

The CLI's time includes process start, bundle load, expert build and writing the output; its in-process
embedding time per item is measured as a difference: (CLI(N inputs) - CLI(B inputs)) / (N - B), B = one batch,
so the fixed costs cancel. The module is measured the same way on a loaded model ((py(N) - py(B)) / (N - B),
"differential") and directly (py(N) / N, "direct"). Runs alternate CLI / Python. Both wall time and CPU time (user + sys of
every thread: getrusage of the CLI child, process_time of this process) are recorded; on a shared machine the
CPU time is the stable one (wall time swings with the neighbours' load), so the verdict uses the minimum CPU
time over --repeats (the least disturbed run); medians of both are reported too.

  PYTHONPATH=build/python /usr/bin/python3 bench/python/bench_python_overhead.py --json out.json
  (--demo DIR reuses an `omnibind demo --size small` output; else one is made in a temp dir)
"""
import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import omnibind

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cli", default=os.environ.get("OMNIBIND_BINARY", os.path.join(HERE, "..", "..", "build", "omnibind")))
    ap.add_argument("--demo", help="an `omnibind demo --size small` output (default: made in a temp dir)")
    ap.add_argument("--modality", default="image", choices=["image", "audio", "point"])
    ap.add_argument("--items", type=int, default=1024, help="N (both also run one batch)")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="compute threads of both (1: the CPU times are stable)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()

    tmp = tempfile.TemporaryDirectory(prefix="bench_py_")
    demo = a.demo or os.path.join(tmp.name, "demo")
    if not os.path.exists(os.path.join(demo, "bundle", "bundle.json")):
        subprocess.run([a.cli, "demo", "--size", "small", "--out", demo, "--threads", str(a.threads), "--quiet"], check=True)
    bundle = os.path.join(demo, "bundle")
    ext = {"image": ".png", "audio": ".wav", "point": ".ply"}[a.modality]
    world = sorted(os.path.join(r, n) for r, _, ns in os.walk(os.path.join(demo, "world")) for n in ns if n.endswith(ext))
    if not world:
        sys.exit("no %s files in %s/world" % (ext, demo))
    files = [world[i % len(world)] for i in range(a.items)]
    lists = {}
    for n in (a.batch, a.items):
        lists[n] = os.path.join(tmp.name, "list%d.txt" % n)
        with open(lists[n], "w") as f:
            f.write("\n".join(files[:n]) + "\n")

    def children_cpu():
        r = resource.getrusage(resource.RUSAGE_CHILDREN)
        return r.ru_utime + r.ru_stime

    def cli(n):
        out = os.path.join(tmp.name, "cli.safetensors")
        t, c = time.perf_counter(), children_cpu()
        subprocess.run([a.cli, "embed", "--model", bundle, "--modality", a.modality, "--batch", str(a.batch),
                        "--threads", str(a.threads), "--out", out, "@" + lists[n]], check=True, capture_output=True)
        return time.perf_counter() - t, children_cpu() - c

    t = time.perf_counter()
    model = omnibind.Model(bundle, threads=a.threads)
    model.embed_files(files[:a.batch], a.modality, batch_size=a.batch)  # builds the experts, warms the caches
    py_load = time.perf_counter() - t

    def py(n):
        t, c = time.perf_counter(), time.process_time()
        model.embed_files(files[:n], a.modality, batch_size=a.batch)
        return time.perf_counter() - t, time.process_time() - c

    wall = {"cli_b": [], "cli_n": [], "py_b": [], "py_n": []}
    cpu_s = {k: [] for k in wall}
    for _ in range(a.repeats):
        for key, fn, n in (("cli_b", cli, a.batch), ("py_n", py, a.items), ("cli_n", cli, a.items), ("py_b", py, a.batch)):
            w, c = fn(n)
            wall[key].append(w)
            cpu_s[key].append(c)

    def summary(runs, pick):
        m = {k: pick(v) for k, v in runs.items()}
        d = a.items - a.batch
        cli_item = (m["cli_n"] - m["cli_b"]) / d
        py_diff = (m["py_n"] - m["py_b"]) / d
        py_direct = m["py_n"] / a.items
        return {"per_run": m, "cli_ms_per_item": 1e3 * cli_item, "py_ms_per_item_differential": 1e3 * py_diff,
                "py_ms_per_item_direct": 1e3 * py_direct,
                "overhead_pct_differential": 100.0 * (py_diff - cli_item) / cli_item,
                "overhead_pct_direct": 100.0 * (py_direct - cli_item) / cli_item}
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    result = {
        "bench": "python_overhead", "modality": a.modality, "items": a.items, "batch": a.batch, "threads": a.threads,
        "repeats": a.repeats, "bundle": model.name, "cpu": cpu, "cores": os.cpu_count(),
        "load": os.getloadavg(), "py_load_and_warmup_s": py_load,
        "wall_s": wall, "cpu_s": cpu_s,
        "cpu_min": summary(cpu_s, min), "cpu_median": summary(cpu_s, statistics.median),
        "wall_min": summary(wall, min), "wall_median": summary(wall, statistics.median),
    }
    result["overhead_pct"] = result["cpu_min"]["overhead_pct_differential"]
    text = json.dumps(result, indent=1)
    print(text)
    if a.json:
        with open(a.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
