#!/usr/bin/python3
"""Baseline for bench_uni3d_forward: a from-scratch PyTorch module with the shapes of Uni3D-giant's
point encoder (mini-PointNet over 512 groups of 64, encoder2trans, pos MLP, EVA-01 blocks of width
1408 / 16 heads / GELU MLP 6144, fc_norm, trans2embed 1024), random weights, eval mode, no_grad.
Times one cloud through `depth` blocks. Prints one JSON object.
Usage: uni3d_forward.py DEPTH DTYPE(fp32|bf16) THREADS REPEATS"""
import json, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F

D, HEADS, HID, E, G, K, C = 1408, 16, 6144, 1024, 512, 64, 512


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(D, eps=1e-6), nn.LayerNorm(D, eps=1e-6)
        self.qkv = nn.Linear(D, 3 * D)
        self.proj = nn.Linear(D, D)
        self.fc1, self.fc2 = nn.Linear(D, HID), nn.Linear(HID, D)

    def forward(self, x):
        b, n, _ = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, HEADS, D // HEADS).permute(2, 0, 3, 1, 4)
        a = ((q * (D // HEADS) ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        x = x + self.proj((a @ v).transpose(1, 2).reshape(b, n, D))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class PointEncoder(nn.Module):
    def __init__(self, depth):
        super().__init__()
        self.c1 = nn.Sequential(nn.Conv1d(6, 128, 1), nn.BatchNorm1d(128), nn.ReLU(), nn.Conv1d(128, 256, 1))
        self.c2 = nn.Sequential(nn.Conv1d(512, 512, 1), nn.BatchNorm1d(512), nn.ReLU(), nn.Conv1d(512, C, 1))
        self.enc2trans = nn.Linear(C, D)
        self.pos = nn.Sequential(nn.Linear(3, 128), nn.GELU(), nn.Linear(128, D))
        self.cls_token, self.cls_pos = nn.Parameter(torch.randn(1, 1, D)), nn.Parameter(torch.randn(1, 1, D))
        self.blocks = nn.ModuleList([Block() for _ in range(depth)])
        self.fc_norm = nn.LayerNorm(D, eps=1e-6)
        self.trans2embed = nn.Linear(D, E)

    def forward(self, feats, centers):
        b = feats.shape[0]
        f = self.c1(feats.reshape(b * G, K, 6).transpose(2, 1))
        f = torch.cat([f.max(2, keepdim=True)[0].expand(-1, -1, K), f], 1)
        f = self.c2(f).max(2)[0].reshape(b, G, C)
        x = torch.cat([self.cls_token.expand(b, -1, -1), self.enc2trans(f)], 1)
        x = x + torch.cat([self.cls_pos.expand(b, -1, -1), self.pos(centers)], 1)
        for blk in self.blocks:
            x = blk(x)
        return self.trans2embed(self.fc_norm(x[:, 0]))


def main():
    depth, dtype, threads, reps = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    m = PointEncoder(depth).eval().to(dt)
    feats, centers = torch.randn(1, G, K, 6).to(dt), torch.rand(1, G, 3).to(dt)
    best = 1e30
    with torch.no_grad():
        m(feats, centers)
        for _ in range(reps):
            t0 = time.perf_counter()  # wall time; the caller pins OPENBLAS_NUM_THREADS to THREADS
            m(feats, centers)
            best = min(best, time.perf_counter() - t0)
    print(json.dumps({"impl": "torch %s" % torch.__version__, "depth": depth, "dtype": dtype, "threads": threads,
                      "seconds_per_cloud": best}))


if __name__ == "__main__":
    main()
