#!/usr/bin/python3
"""Baseline for bench_uni3d_grouping: Uni3D's grouping on the CPU with vectorised torch, as a CPU
fallback of the reference would run it - an FPS loop in torch (running-min distances, argmax per
step; pointnet2's kernel has no CPU version) and the reference knn_point (matmul distances +
topk), then the gathers. Times are process CPU time (the machine is shared). Prints one JSON object. Usage: uni3d_grouping.py [xyz.f32 file] [threads]."""
import json, sys, time

import numpy as np
import torch


def fps(xyz, m):
    n = xyz.shape[0]
    idx = torch.zeros(m, dtype=torch.long)
    temp = torch.full((n,), 1e10)
    valid = (xyz * xyz).sum(1) > 1e-3
    temp[~valid] = -1.0
    old = 0
    for j in range(1, m):
        d = ((xyz - xyz[old]) ** 2).sum(1)
        temp = torch.minimum(temp, torch.where(valid, d, temp))
        old = int(torch.argmax(temp))
        idx[j] = old
    return idx


def knn(k, xyz, centers):
    d = -2 * centers @ xyz.T
    d += (centers ** 2).sum(-1, keepdim=True)
    d += (xyz ** 2).sum(-1)[None, :]
    return torch.topk(d, k, dim=-1, largest=False, sorted=False)[1]


def group(xyz, rgb, g, k):
    t0 = time.process_time()
    idx = fps(xyz, g)
    centers = xyz[idx]
    t1 = time.process_time()
    nn = knn(k, xyz, centers)
    t2 = time.process_time()
    feats = torch.cat([xyz[nn] - centers[:, None, :], rgb[nn]], -1)
    t3 = time.process_time()
    return (t1 - t0, t2 - t1, t3 - t0), feats


def main():
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    torch.set_num_threads(threads)
    if len(sys.argv) > 1 and sys.argv[1] != "-":
        xyz = torch.from_numpy(np.fromfile(sys.argv[1], dtype=np.float32).reshape(-1, 3))
    else:
        g = torch.Generator().manual_seed(0)
        xyz = torch.rand(10000, 3, generator=g) * 2 - 1
    rgb = torch.full_like(xyz, 0.4)
    best = None
    with torch.no_grad():
        for _ in range(3):
            t, _ = group(xyz, rgb, 512, 64)
            best = t if best is None or t[2] < best[2] else best
    print(json.dumps({"impl": "torch %s vectorised (FPS loop + matmul/topk kNN)" % torch.__version__,
                      "threads": threads, "points": int(xyz.shape[0]), "groups": 512, "group_size": 64,
                      "fps_ms": best[0] * 1e3, "knn_ms": best[1] * 1e3, "total_ms": best[2] * 1e3}))


if __name__ == "__main__":
    main()
