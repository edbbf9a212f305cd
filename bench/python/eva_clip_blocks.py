#!/usr/bin/python3
"""Baseline for bench_eva_clip: a from-scratch PyTorch module with the shapes of EVA02-CLIP-bigE-14-plus's
vision tower (Conv2d patch embed 14 with bias, cls + pos, post-norm blocks of width 1792 / 16 heads of 112 /
fused qkv with q and v biases / GELU MLP 15360 / LayerNorm eps 1e-6, final norm, cls, head 1024), random
weights, eval mode, no_grad, float32 or bfloat16 parameters. Times one 224x224 image through `depth` blocks.
Prints one JSON object.  Usage: eva_clip_blocks.py DEPTH DTYPE(fp32|bf16) THREADS REPEATS"""
import json, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F

W, HEADS, HID, E, P = 1792, 16, 15360, 1024, 14


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(W, eps=1e-6), nn.LayerNorm(W, eps=1e-6)
        self.qkv = nn.Linear(W, 3 * W, bias=False)
        self.q_bias, self.v_bias = nn.Parameter(torch.randn(W) * 0.01), nn.Parameter(torch.randn(W) * 0.01)
        self.proj = nn.Linear(W, W)
        self.fc1, self.fc2 = nn.Linear(W, HID), nn.Linear(HID, W)

    def attn(self, x):
        b, n, _ = x.shape
        bias = torch.cat((self.q_bias, torch.zeros_like(self.v_bias), self.v_bias))
        q, k, v = F.linear(x, self.qkv.weight, bias).reshape(b, n, 3, HEADS, -1).permute(2, 0, 3, 1, 4)
        a = ((q * (W // HEADS) ** -0.5) @ k.transpose(-2, -1)).softmax(-1)
        return self.proj((a @ v).transpose(1, 2).reshape(b, n, W))

    def forward(self, x):
        x = x + self.norm1(self.attn(x))
        return x + self.norm2(self.fc2(F.gelu(self.fc1(x))))


class Vision(nn.Module):
    def __init__(self, depth):
        super().__init__()
        self.patch = nn.Conv2d(3, W, P, P)
        self.cls_token, self.pos_embed = nn.Parameter(torch.randn(1, 1, W)), nn.Parameter(torch.randn(1, 257, W))
        self.blocks = nn.ModuleList([Block() for _ in range(depth)])
        self.norm = nn.LayerNorm(W, eps=1e-6)
        self.head = nn.Linear(W, E)

    def forward(self, px):
        x = self.patch(px).flatten(2).transpose(1, 2)
        x = torch.cat((self.cls_token.expand(x.shape[0], -1, -1), x), 1) + self.pos_embed
        for blk in self.blocks:
            x = blk(x)
        return self.head(self.norm(x)[:, 0])


def main():
    depth, dtype, threads, reps = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    m = Vision(depth).eval().to(dt)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() >= 2:
                p.mul_(0.02)
    px = torch.randn(1, 3, 224, 224, dtype=dt)
    with torch.no_grad():
        m(px)
        best = 1e30
        for _ in range(reps):
            t0 = time.perf_counter()
            m(px)
            best = min(best, time.perf_counter() - t0)
    print(json.dumps({"depth": depth, "dtype": dtype, "threads": threads, "seconds_per_image": best,
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
