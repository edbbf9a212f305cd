#!/usr/bin/python3
"""PyTorch baseline for bench_imagebind_towers: ImageBind-huge-shaped vision/audio/text towers
written from scratch with torch.nn (nn.MultiheadAttention in [L, B, D] layout, Conv3d/Conv2d stems),
random weights, eval + inference_mode. Prints one JSON line per tower and precision.
  /usr/bin/python3 bench/python/imagebind_towers.py --tower vision --precision fp32 --threads 2
"""
import argparse, json, time
import torch
from torch import nn


class Block(nn.Module):
    def __init__(self, d, heads, bias_kv):
        super().__init__()
        self.norm_1 = nn.LayerNorm(d, eps=1e-6)
        self.attn = nn.MultiheadAttention(d, heads, add_bias_kv=bias_kv)
        self.norm_2 = nn.LayerNorm(d, eps=1e-6)
        self.fc1, self.fc2, self.act = nn.Linear(d, 4 * d), nn.Linear(4 * d, d), nn.GELU()

    def forward(self, x, mask):  # x [L, B, D]
        h = self.norm_1(x)
        x = x + self.attn(h, h, h, need_weights=False, attn_mask=mask)[0]
        return x + self.fc2(self.act(self.fc1(self.norm_2(x))))


class Tower(nn.Module):
    def __init__(self, kind, d, depth, heads, out=1024):
        super().__init__()
        self.kind = kind
        if kind == "vision":
            self.stem = nn.Conv3d(3, d, kernel_size=(2, 14, 14), stride=(2, 14, 14), bias=False)
            n = 257
            self.pre = nn.LayerNorm(d, eps=1e-6)
        elif kind == "audio":
            self.stem = nn.Conv2d(1, d, kernel_size=16, stride=10, bias=False)
            self.stem_norm = nn.LayerNorm(d)
            n = 229
        else:
            self.tok = nn.Embedding(49408, d)
            n = 77
            self.register_buffer("mask", torch.full((77, 77), float("-inf")).triu(1))
        if kind != "text":
            self.cls = nn.Parameter(torch.randn(1, 1, d) * 0.02)
        self.pos = nn.Parameter(torch.randn(1, n, d) * 0.02)
        self.blocks = nn.ModuleList([Block(d, heads, kind == "audio") for _ in range(depth)])
        self.head_norm = nn.LayerNorm(d, eps=1e-6)
        self.proj = nn.Linear(d, out, bias=False)

    def forward(self, x):
        mask = None
        if self.kind == "vision":
            x = self.stem(x.unsqueeze(2).repeat(1, 1, 2, 1, 1)).flatten(2).transpose(1, 2)
        elif self.kind == "audio":
            b, s = x.shape[:2]
            x = self.stem_norm(self.stem(x.reshape(b * s, *x.shape[2:])).flatten(2).transpose(1, 2))
        else:
            ids, x, mask = x, self.tok(x), self.mask
        if self.kind != "text":
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1)
        x = x + self.pos
        if self.kind == "vision":
            x = self.pre(x)
        x = x.transpose(0, 1)
        for blk in self.blocks:
            x = blk(x, mask)
        x = x.transpose(0, 1)
        x = x[torch.arange(x.shape[0]), ids.argmax(-1)] if self.kind == "text" else x[:, 0]
        e = nn.functional.normalize(self.proj(self.head_norm(x)).float(), dim=-1)
        return e.reshape(b, s, -1).mean(1) if self.kind == "audio" else e


SHAPES = {"vision": (1280, 32, 16, 8), "audio": (768, 12, 12, 8), "text": (1024, 24, 16, 32)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tower", default="all")
    ap.add_argument("--precision", default="all")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--iters", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    for prec in ("fp32", "bf16"):
        if a.precision not in ("all", prec):
            continue
        dtype = torch.bfloat16 if prec == "bf16" else torch.float32
        for kind, (d, depth, heads, batch) in SHAPES.items():
            if a.tower not in ("all", kind):
                continue
            model = Tower(kind, d, depth, heads).eval().to(dtype)
            if kind == "vision":
                x = torch.randn(batch, 3, 224, 224, dtype=dtype)
            elif kind == "audio":
                x = torch.randn(batch, 3, 1, 128, 204, dtype=dtype)
            else:
                x = torch.randint(1, 49406, (batch, 77))
                x[:, 0], x[:, 20] = 49406, 49407
            with torch.inference_mode():
                for _ in range(a.warmup):
                    model(x)
                t, c = time.perf_counter(), time.process_time()
                for _ in range(a.iters):
                    model(x)
                sec = (time.perf_counter() - t) / a.iters
                cpu = (time.process_time() - c) / a.iters
            print(json.dumps({"impl": "pytorch-" + torch.__version__, "tower": kind, "precision": prec, "config": "huge",
                              "batch": batch, "threads": a.threads, "warmup": a.warmup, "iters": a.iters,
                              "seconds_per_batch": round(sec, 3), "embeddings_per_s": round(batch / sec, 3),
                              "cpu_seconds_per_batch": round(cpu, 3), "embeddings_per_cpu_s": round(batch / cpu, 3)}), flush=True)
            del model


if __name__ == "__main__":
    main()
