"""Plain PyTorch baseline of OmniBind binding training (issue 16 item 2), the yardstick of
bench_world_family: the same pseudo tuples (the safetensors file `omnibind pairs` writes), the same
pools, the same binding config, the same losses and head/router shapes as the C++ trainer
(src/omnibind/training/binding_trainer.cpp, docs/reference/binding_training.md), written the way a
PyTorch user would write it:

1. per projected space (config order, the backbone excluded, "IB" last) K heads
   Linear(d, H) - BatchNorm1d - ReLU - Linear(H, D) - BatchNorm1d, output L2-normalised, each trained alone
   with symmetric InfoNCE (fixed temperature) from the space's embedding of a tuple member to the
   backbone's embedding of the target member (the same modality when the backbone covers it, else the
   tuple's text member: --uncovered-target; which tuples an uncovered modality trains on: --uncovered-pairs,
   --uncovered-keep), AdamW, one shuffled pass over all (tuple, modality) pairs per epoch, at least
   --min-steps-proj optimiser steps per head (more epochs for small pools);
2. heads frozen (eval mode); per routed modality a router Linear - BN - ReLU - Linear - BN - Tanh - Linear,
   sigmoid, x text_temperature for text, softmax over the slots; slots = mean over a space's heads of the
   normalised head outputs (the IB slot: IB heads, mixed 0.1/0.9 with the backbone when it is in the output,
   renormalised except for audio without the backbone); L_align = mean symmetric InfoNCE over the modality
   pairs of the routed unified embeddings, L_dec = -log of the text router's mass on the family of the
   caption's source, clipped at -log(margin).

Deliberate difference: the frozen slot embeddings of every tuple are computed once before the router
epochs (the C++ trainer recomputes them per batch); the numbers are the same, only the time differs.

Then evaluates on the world's held-out true tuples: class-level precision@1 (the top-1 retrieved item has
the query's class), averaged over both directions, per modality pair, for learned routing, uniform routing
and every single space covering the pair. Prints one JSON object.

  binding_baseline.py --world DIR --pairs TUPLES.safetensors [--threads 2] [--seed 1] [--epochs-proj 8]
                      [--epochs-router 8] [--batch 256] [--min-steps-proj 60] [--uncovered-target text|image|mean]
                      [--uncovered-pairs all|anchored|none] [--uncovered-keep 1]
"""
import argparse
import json
import math
import os
import struct
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MODALITIES = ["audio", "image", "point", "text"]
TUPLE_SLOTS = ["point", "audio", "image", "text"]  # slot order of the tuple file
PAIRS = [("audio", "text"), ("image", "text"), ("point", "text"), ("audio", "image"), ("image", "point"), ("audio", "point")]
IB = "IB"
DTYPES = {"F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32}


def read_safetensors(path):
    """{name: tensor} and the metadata of a safetensors file (no safetensors package on Debian)."""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        dtype = DTYPES[info["dtype"]]
        buf = bytearray(data[base + a:base + b])
        t = torch.frombuffer(buf, dtype=dtype) if b > a else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"])
    return out, meta


class Pool:
    """A pool directory: per modality, every expert's rows as float32 and the int64 columns."""

    def __init__(self, d):
        with open(os.path.join(d, "manifest.json")) as f:
            self.manifest = json.load(f)
        self.experts = {e["name"]: e for e in self.manifest["experts"]}
        self.rows = {}
        for m, info in self.manifest["modalities"].items():
            parts = [read_safetensors(os.path.join(d, s))[0] for s in info["shards"]]
            self.rows[m] = {k: torch.cat([p[k] for p in parts]) for k in parts[0]}
            for k, v in self.rows[m].items():
                if v.is_floating_point():
                    self.rows[m][k] = v.float()
        self.prompts = read_safetensors(os.path.join(d, "prompts.safetensors"))[0] if os.path.exists(
            os.path.join(d, "prompts.safetensors")) else None

    def has(self, m, e):
        return m in self.rows and e in self.rows[m]

    def dim(self, e):
        return self.experts[e]["dim"]


def head(d, h, out):
    return nn.Sequential(nn.Linear(d, h), nn.BatchNorm1d(h), nn.ReLU(), nn.Linear(h, out), nn.BatchNorm1d(out))


def router(d, hidden, slots):
    return nn.Sequential(nn.Linear(d, hidden[0]), nn.BatchNorm1d(hidden[0]), nn.ReLU(), nn.Linear(hidden[0], hidden[1]),
                         nn.BatchNorm1d(hidden[1]), nn.Tanh(), nn.Linear(hidden[1], slots))


def info_nce(a, b, t):
    logits = a @ b.t() / t
    target = torch.arange(a.shape[0])
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


class Binding:
    """The binding config's structure: spaces, slots per modality, router inputs."""

    def __init__(self, cfg, pool):
        self.cfg = cfg
        self.experts = cfg["experts"]
        for n in self.experts:
            self.experts[n]["dim"] = pool.dim(n)
        self.backbone = cfg["backbone"]
        self.bb_out = cfg.get("backbone_in_output", False)
        self.K = cfg.get("heads_per_space", 7)
        self.H = cfg.get("projector_hidden", 2048)
        self.router_hidden = cfg.get("router_hidden", [512, 100])
        self.text_temp = cfg.get("text_temperature", 10.0)
        self.router_inputs = cfg["router_inputs"]
        self.D = self.experts[self.backbone]["dim"]
        self.projected = [n for n in self.experts if n not in (IB, self.backbone)]

    def covers(self, e, m):
        return e in self.experts and m in self.experts[e]["modalities"]

    def has_ib_slot(self, m):
        return self.covers(IB, m) or (self.bb_out and self.covers(self.backbone, m))

    def slots(self, m):
        s = [n for n in self.projected if self.covers(n, m)]
        if self.has_ib_slot(m):
            s.append(IB if self.covers(IB, m) else self.backbone)
        return s

    def needed(self, m):
        out = []
        for n in self.projected + [IB, self.backbone] + self.router_inputs.get(m, []):
            if n in out:
                continue
            if (n in self.projected and self.covers(n, m)) or (n == IB and self.covers(IB, m)) or \
                    (n == self.backbone and self.bb_out and self.covers(n, m)) or n in self.router_inputs.get(m, []):
                out.append(n)
        return out


def gather(pool, tuples, m, e, rows):
    """Member embeddings of a slot: weighted sum over its k members (absent = 0), normalised."""
    s = TUPLE_SLOTS.index(m)
    idx = tuples["index"][rows, s]  # [B, k]
    w = tuples["weight"][rows, s] * (idx >= 0).float()
    x = pool.rows[m][e][idx.clamp(min=0).reshape(-1)].reshape(idx.shape[0], idx.shape[1], -1)
    return F.normalize((x * w.unsqueeze(2)).sum(1), dim=-1)


def target_modality(b, pool, m, uncovered):
    if b.covers(b.backbone, m) and pool.has(m, b.backbone):
        return m
    if uncovered == "mean":
        return "mean"
    for t in [uncovered, "text", "image", "audio", "point"]:
        if b.covers(b.backbone, t) and pool.has(t, b.backbone):
            return t
    raise SystemExit("the backbone has no embeddings in the pool")


def targets(b, pool, tuples, target, rows):
    if target != "mean":
        return gather(pool, tuples, target, b.backbone, rows)
    parts = [gather(pool, tuples, m, b.backbone, rows) for m in TUPLE_SLOTS if b.covers(b.backbone, m) and pool.has(m, b.backbone)]
    return F.normalize(sum(parts), dim=-1)


def pair_rows(b, pool, tuples, m, target, a):
    """Tuples whose (input m, target) pair trains a head: every tuple for a covered m; for an uncovered m those
    --uncovered-pairs allows (all / anchored: the anchor is the input or a target member / none), then the
    --uncovered-keep share with the highest pair score (lower hop similarity of the two members), per anchor."""
    T = tuples["index"].shape[0]
    if target == m or (a.uncovered_pairs == "all" and a.uncovered_keep >= 1.0):
        return torch.arange(T)
    if a.uncovered_pairs == "none":
        return torch.zeros(0, dtype=torch.long)
    tslots = [TUPLE_SLOTS.index(t) for t in TUPLE_SLOTS if b.covers(b.backbone, t) and pool.has(t, b.backbone)] \
        if target == "mean" else [TUPLE_SLOTS.index(target)]
    i = TUPLE_SLOTS.index(m)
    anchor = tuples["anchor"]
    keep = torch.ones(T, dtype=torch.bool)
    if a.uncovered_pairs == "anchored":
        keep = anchor == i
        for t in tslots:
            keep |= anchor == t
    score = tuples["score"][:, i].clone()
    for t in tslots:
        score = torch.minimum(score, tuples["score"][:, t])
    if a.uncovered_keep < 1.0:
        kept = torch.zeros(T, dtype=torch.bool)
        for s in range(4):
            rows = (keep & (anchor == s)).nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            take = max(1, math.ceil(a.uncovered_keep * rows.numel()))
            order = torch.sort(score[rows], stable=True, descending=True).indices
            kept[rows[order[:take]]] = True
        keep = kept
    return keep.nonzero().squeeze(1)


def train_heads(b, pool, tuples, a):
    T = tuples["index"].shape[0]
    spaces = b.projected + ([IB] if IB in b.experts else [])
    heads = {}
    for si, name in enumerate(spaces):
        mods = [m for m in b.experts[name]["modalities"] if pool.has(m, name)]
        rows = {m: pair_rows(b, pool, tuples, m, target_modality(b, pool, m, a.uncovered_target), a) for m in mods}
        xs = torch.cat([gather(pool, tuples, m, name, rows[m]) for m in mods])
        ys = torch.cat([targets(b, pool, tuples, target_modality(b, pool, m, a.uncovered_target), rows[m]) for m in mods])
        N = xs.shape[0]
        # --min-steps-proj: more epochs when --epochs-proj would give a head fewer optimiser steps (small pools)
        steps_per_epoch = max(1, math.ceil((N - 1) / a.batch))
        epochs = max(a.epochs_proj, math.ceil(a.min_steps_proj / steps_per_epoch))
        heads[name] = []
        for k in range(b.K):
            torch.manual_seed(a.seed * 1000003 + si * 101 + k)
            h = head(b.experts[name]["dim"], b.H, b.D)
            opt = torch.optim.AdamW(h.parameters(), lr=a.lr, weight_decay=a.weight_decay)
            h.train()
            for _ in range(epochs):
                perm = torch.randperm(N)
                for s in range(0, N - 1, a.batch):
                    ids = perm[s:s + a.batch]
                    if ids.shape[0] < 2:
                        continue
                    loss = info_nce(F.normalize(h(xs[ids]), dim=-1), ys[ids], a.temperature)
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
            h.eval()
            heads[name].append(h)
    return heads


@torch.no_grad()
def slot_embeddings(b, heads, m, inputs):
    """[B, S, D] slot embeddings of modality m from raw expert rows (frozen heads)."""
    out = []
    for n in b.projected:
        if b.covers(n, m):
            out.append(torch.stack([F.normalize(h(inputs[n]), dim=-1) for h in heads[n]], 1).mean(1))
    if b.has_ib_slot(m):
        use_ib, use_bb = b.covers(IB, m), b.bb_out and b.covers(b.backbone, m)
        s = torch.stack([F.normalize(h(inputs[IB]), dim=-1) for h in heads[IB]], 1).mean(1) if use_ib else None
        if use_ib and use_bb:
            s = 0.1 * s + 0.9 * inputs[b.backbone]
        elif use_bb:
            s = inputs[b.backbone]
        if m != "audio" or use_bb:
            s = F.normalize(s, dim=-1)
        out.append(s)
    return torch.stack(out, 1)


def family_mask(b):
    slots = b.slots("text")
    mask = torch.zeros(len(slots), 3)
    for i, n in enumerate(slots):
        members = [IB, b.backbone] if n in (IB, b.backbone) else [n]
        for x in members:
            for f, fm in enumerate(["audio", "image", "point"]):
                if b.covers(x, fm):
                    mask[i, f] = 1
    return mask


def train_routers(b, pool, tuples, heads, a):
    T = tuples["index"].shape[0]
    routed = [m for m in MODALITIES if b.slots(m) and m in b.router_inputs]
    mods = [m for m in routed if m in pool.rows]
    all_rows = torch.arange(T)
    slots, rin = {}, {}
    for m in mods:  # frozen: computed once
        inputs = {n: gather(pool, tuples, m, n, all_rows) for n in b.needed(m)}
        slots[m] = slot_embeddings(b, heads, m, inputs)
        rin[m] = torch.cat([inputs[n] for n in b.router_inputs[m]], 1)
    torch.manual_seed(a.seed * 7919 + 17)
    routers = {m: router(sum(pool.dim(n) for n in b.router_inputs[m]), b.router_hidden, len(b.slots(m))) for m in routed}
    params = [p for m in mods for p in routers[m].parameters()]
    opt = torch.optim.AdamW(params, lr=a.router_lr, weight_decay=a.weight_decay)
    fmask = family_mask(b) if "text" in mods else None
    src_col = pool.rows["text"].get("source") if "text" in pool.rows else None
    text_rows = tuples["index"][:, TUPLE_SLOTS.index("text"), 0] if "text" in mods else None
    for _ in range(a.epochs_router):
        for r in routers.values():
            r.train()
        perm = torch.randperm(T)
        for s in range(0, T - 1, a.batch):
            rows = perm[s:s + a.batch]
            if rows.shape[0] < 2:
                continue
            unified, weights = {}, {}
            for m in mods:
                sc = torch.sigmoid(routers[m](rin[m][rows]))
                if m == "text":
                    sc = sc * b.text_temp
                w = torch.softmax(sc, -1)
                weights[m] = w
                unified[m] = F.normalize((slots[m][rows] * w.unsqueeze(2)).sum(1), dim=-1)
            pairs = [(x, y) for i, x in enumerate(mods) for y in mods[i + 1:]]
            loss = sum(info_nce(unified[x], unified[y], a.temperature) for x, y in pairs) / max(1, len(pairs))
            if not a.no_decoupling and fmask is not None and src_col is not None:
                tr = text_rows[rows]
                src = src_col[tr.clamp(min=0)]
                known = (src >= 0) & (tr >= 0) & (fmask.sum(0) > 0)[src.clamp(min=0)]
                if known.any():
                    mass = (weights["text"] @ fmask).clamp(min=1e-8)
                    p = mass / mass.sum(1, keepdim=True)
                    sel = known.nonzero().squeeze(1)
                    nll = -p[sel].log().gather(1, src[sel].unsqueeze(1))
                    if a.decoupling_margin < 1.0:
                        nll = F.relu(nll + math.log(a.decoupling_margin))
                    loss = loss + nll.mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    for r in routers.values():
        r.eval()
    return routers


@torch.no_grad()
def unified(b, heads, routers, m, inputs, learned):
    s = slot_embeddings(b, heads, m, inputs)
    if not learned:
        return F.normalize(s.mean(1), dim=-1)
    sc = torch.sigmoid(routers[m](torch.cat([inputs[n] for n in b.router_inputs[m]], 1)))
    if m == "text":
        sc = sc * b.text_temp
    return F.normalize((s * torch.softmax(sc, -1).unsqueeze(2)).sum(1), dim=-1)


def class_p1(qa, la, qb, lb):
    """Class-level precision@1 of a<->b: share of queries whose top-1 item of the other side has their class, both directions."""
    s = qa @ qb.t()
    return 0.5 * ((lb[s.argmax(1)] == la).float().mean().item() + (la[s.argmax(0)] == lb).float().mean().item())


def evaluate(b, pool_eval, heads, routers):
    rows = pool_eval.rows
    out = {}
    emb = {"learned": {}, "uniform": {}}
    for m in MODALITIES:
        if m not in rows or not b.slots(m):
            continue
        inputs = {n: rows[m][n] for n in b.needed(m)}
        emb["learned"][m] = unified(b, heads, routers, m, inputs, True)
        emb["uniform"][m] = unified(b, heads, routers, m, inputs, False)
    for x, y in PAIRS:
        key = x + "-" + y
        if x not in rows or y not in rows:
            continue
        r = {}
        for kind in ("learned", "uniform"):
            if x in emb[kind] and y in emb[kind]:
                r[kind] = class_p1(emb[kind][x], rows[x]["label"], emb[kind][y], rows[y]["label"])
        singles = {n: class_p1(rows[x][n], rows[x]["label"], rows[y][n], rows[y]["label"])
                   for n in pool_eval.experts if n in rows[x] and n in rows[y]}
        if singles:
            best = max(singles, key=singles.get)
            r["best_single"], r["best_single_space"] = singles[best], best
        out[key] = r
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--world", required=True, help="directory with train/, eval/, config.json (omnibind world)")
    ap.add_argument("--pairs", required=True, help="tuples mined from WORLD/train (omnibind pairs)")
    ap.add_argument("--config", default=None, help="binding config (default WORLD/config.json)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs-proj", type=int, default=8)
    ap.add_argument("--min-steps-proj", type=int, default=60)
    ap.add_argument("--epochs-router", type=int, default=8)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--router-lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-4)
    ap.add_argument("--temperature", type=float, default=0.05)
    ap.add_argument("--decoupling-margin", type=float, default=0.5)
    ap.add_argument("--no-decoupling", action="store_true")
    ap.add_argument("--uncovered-target", default="text", choices=["text", "image", "mean"])
    ap.add_argument("--uncovered-pairs", default="all", choices=["all", "anchored", "none"])
    ap.add_argument("--uncovered-keep", type=float, default=1.0)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    t0 = time.time()
    pool = Pool(os.path.join(a.world, "train"))
    with open(a.config or os.path.join(a.world, "config.json")) as f:
        cfg = json.load(f)
    tuples, _ = read_safetensors(a.pairs)
    b = Binding(cfg, pool)
    t_load = time.time() - t0
    t0 = time.time()
    heads = train_heads(b, pool, tuples, a)
    t_proj = time.time() - t0
    t0 = time.time()
    routers = train_routers(b, pool, tuples, heads, a)
    t_router = time.time() - t0
    t0 = time.time()
    res = evaluate(b, Pool(os.path.join(a.world, "eval")), heads, routers)
    t_eval = time.time() - t0
    print(json.dumps({"baseline": "pytorch", "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "tuples": int(tuples["index"].shape[0]), "seconds_load": t_load, "seconds_projectors": t_proj,
                      "seconds_routers": t_router, "seconds_train": t_proj + t_router, "seconds_eval": t_eval,
                      "pairs": res}))


if __name__ == "__main__":
    main()
