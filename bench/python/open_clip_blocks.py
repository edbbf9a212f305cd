#!/usr/bin/python3
"""Baseline for bench_open_clip: a from-scratch PyTorch module with the shapes and ops of
DFN5B-CLIP-ViT-H-14's image tower as open_clip 2.24.0 runs it (Conv2d patch 14 without bias, class token
+ positional embedding, ln_pre, pre-norm blocks of width 1280 in LND layout with torch's
nn.MultiheadAttention (packed in_proj, 16 heads, need_weights=False), QuickGELU MLP 5120, LayerNorm eps
1e-5, ln_post over all tokens, class token, @ proj to 1024), random weights, eval mode, no_grad, float32
or bfloat16 parameters. Times a batch of 224x224 images through `depth` blocks. Prints one JSON object.
Usage: open_clip_blocks.py DEPTH DTYPE(fp32|bf16) THREADS REPEATS [BATCH]"""
import json, sys, time

import torch
import torch.nn as nn

W, HEADS, HID, E, P, S = 1280, 16, 5120, 1024, 14, 224


class QuickGELU(nn.Module):
    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(W), nn.LayerNorm(W)
        self.attn = nn.MultiheadAttention(W, HEADS)  # batch_first=False, as open_clip 2.24.0
        self.mlp = nn.Sequential(nn.Linear(W, HID), QuickGELU(), nn.Linear(HID, W))

    def forward(self, x):  # [L, N, D]
        h = self.ln_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=None)[0]
        return x + self.mlp(self.ln_2(x))


class Vision(nn.Module):
    def __init__(self, depth):
        super().__init__()
        grid = S // P
        self.conv1 = nn.Conv2d(3, W, P, P, bias=False)
        self.class_embedding = nn.Parameter(torch.randn(W))
        self.positional_embedding = nn.Parameter(torch.randn(grid * grid + 1, W))
        self.ln_pre, self.ln_post = nn.LayerNorm(W), nn.LayerNorm(W)
        self.resblocks = nn.ModuleList([Block() for _ in range(depth)])
        self.proj = nn.Parameter(torch.randn(W, E))

    def forward(self, px):
        x = self.conv1(px).reshape(px.shape[0], W, -1).permute(0, 2, 1)
        x = torch.cat([self.class_embedding.view(1, 1, -1).expand(x.shape[0], -1, -1), x], 1)
        x = self.ln_pre(x + self.positional_embedding)
        x = x.permute(1, 0, 2)  # NLD -> LND
        for blk in self.resblocks:
            x = blk(x)
        x = self.ln_post(x.permute(1, 0, 2))
        return x[:, 0] @ self.proj  # encode_image(normalize=False), as OpenClipModel::encode_image


def main():
    depth, dtype, threads, reps = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    batch = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    m = Vision(depth).eval().to(dt)
    with torch.no_grad():
        for p in m.parameters():
            if p.dim() >= 2:
                p.mul_(0.02)
    px = torch.randn(batch, 3, S, S, dtype=dt)
    with torch.no_grad():
        m(px)
        best = 1e30
        for _ in range(reps):
            t0 = time.perf_counter()
            m(px)
            best = min(best, time.perf_counter() - t0)
    print(json.dumps({"depth": depth, "dtype": dtype, "threads": threads, "batch": batch,
                      "seconds_per_batch": best, "torch": torch.__version__}))


if __name__ == "__main__":
    main()
