#!/usr/bin/python3
"""Baseline for bench_siglip_towers: a from-scratch PyTorch module with the shapes and ops of the SigLIP
vision towers as transformers 4.37.2 runs them (eager attention): Conv2d patch embed with bias, position
embedding (no class token), pre-LN encoder layers with separate q/k/v/out projections (with bias, scale
head_dim^-0.5, float32 softmax), tanh-approximate GELU MLP, LayerNorm eps 1e-6, post_layernorm, then the
MAP head (learned probe, torch nn.MultiheadAttention with packed in_proj, batch_first, LayerNorm,
residual MLP), image_embeds = pooled / ||pooled||. Random weights, eval mode, no_grad, float32 or bfloat16
parameters. Times a batch of 384x384 images through `depth` layers. Prints one JSON object.
Usage: siglip_blocks.py SIZE(large16|so400m14) DEPTH DTYPE(fp32|bf16) THREADS REPEATS [BATCH]"""
import json, sys, time

import torch
import torch.nn as nn
import torch.nn.functional as F

SIZES = {"large16": (1024, 16, 4096, 16), "so400m14": (1152, 16, 4304, 14)}  # hidden, heads, MLP, patch
S = 384


class Mlp(nn.Module):
    def __init__(self, d, hid):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, hid), nn.Linear(hid, d)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class Layer(nn.Module):
    def __init__(self, d, heads, hid):
        super().__init__()
        self.heads, self.hd = heads, d // heads
        self.layer_norm1, self.layer_norm2 = nn.LayerNorm(d, eps=1e-6), nn.LayerNorm(d, eps=1e-6)
        self.q_proj, self.k_proj, self.v_proj, self.out_proj = (nn.Linear(d, d) for _ in range(4))
        self.mlp = Mlp(d, hid)

    def attn(self, x):
        b, n, d = x.shape
        q, k, v = (p(x).view(b, n, self.heads, self.hd).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        a = torch.matmul(q, k.transpose(2, 3)) * self.hd ** -0.5
        a = F.softmax(a, dim=-1, dtype=torch.float32).to(q.dtype)
        return self.out_proj(torch.matmul(a, v).transpose(1, 2).contiguous().reshape(b, n, d))

    def forward(self, x):
        x = x + self.attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class Head(nn.Module):
    def __init__(self, d, heads, hid):
        super().__init__()
        self.probe = nn.Parameter(torch.randn(1, 1, d))
        self.attention = nn.MultiheadAttention(d, heads, batch_first=True)
        self.layernorm = nn.LayerNorm(d, eps=1e-6)
        self.mlp = Mlp(d, hid)

    def forward(self, x):
        h = self.attention(self.probe.repeat(x.shape[0], 1, 1), x, x)[0]
        return (h + self.mlp(self.layernorm(h)))[:, 0]


class Vision(nn.Module):
    def __init__(self, size, depth):
        super().__init__()
        d, heads, hid, p = SIZES[size]
        self.patch_embedding = nn.Conv2d(3, d, p, p)
        self.position_embedding = nn.Embedding((S // p) ** 2, d)
        self.register_buffer("position_ids", torch.arange((S // p) ** 2).view(1, -1), persistent=False)
        self.layers = nn.ModuleList([Layer(d, heads, hid) for _ in range(depth)])
        self.post_layernorm = nn.LayerNorm(d, eps=1e-6)
        self.head = Head(d, heads, hid)

    def forward(self, px):
        x = self.patch_embedding(px).flatten(2).transpose(1, 2) + self.position_embedding(self.position_ids)
        for layer in self.layers:
            x = layer(x)
        pooled = self.head(self.post_layernorm(x))
        return pooled / pooled.norm(p=2, dim=-1, keepdim=True)


def main():
    size, depth, dtype, threads, reps = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    batch = int(sys.argv[6]) if len(sys.argv) > 6 else 1
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    m = Vision(size, depth).eval().to(dt)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() >= 2:
                p.mul_(0.02)
    px = (torch.rand(batch, 3, S, S) * 2 - 1).to(dt)
    with torch.no_grad():
        m(px)
        best = 1e30
        for _ in range(reps):
            t0 = time.perf_counter()
            m(px)
            best = min(best, time.perf_counter() - t0)
    print(json.dumps({"size": size, "depth": depth, "dtype": dtype, "threads": threads, "batch": batch,
                      "seconds_per_batch": best, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
