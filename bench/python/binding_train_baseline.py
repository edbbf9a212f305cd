"""Plain PyTorch binding training of the same shapes and step counts as bench_binding_train's world.

Reads the spec JSON bench_binding_train writes (spaces with their input width and number of training pairs,
heads, hidden, unified width, epochs, batch, tuples, router widths, each modality's router input width and
slots) and trains, written plainly as a PyTorch user would:
  1. per space, K heads one after the other: Linear-BN-ReLU-Linear-BN, L2, symmetric InfoNCE (t = 0.05)
     against the target rows, AdamW(1e-3, wd 1e-4), a fresh permutation per epoch;
  2. routers (projectors frozen, evaluated per batch): per modality Linear-BN-ReLU-Linear-BN-Tanh-Linear,
     softmax(sigmoid(.) [x text temperature]) over the slots' ensemble embeddings, InfoNCE over every
     modality pair + the text router's family cross-entropy (margin 0.5).
The data are random unit rows of the right shapes (the speed does not depend on the values).
Prints JSON: wall/user/sys seconds and page faults, per stage and in total.
"""
import json
import math
import resource
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def usage():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return time.perf_counter(), r.ru_utime, r.ru_stime, r.ru_minflt + r.ru_majflt


def since(a, b):
    return {"wall_s": b[0] - a[0], "user_s": b[1] - a[1], "sys_s": b[2] - a[2], "page_faults": b[3] - a[3]}


def make_head(d, hidden, out):
    return nn.Sequential(nn.Linear(d, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, out), nn.BatchNorm1d(out))


def make_router(d, hidden, slots):
    return nn.Sequential(nn.Linear(d, hidden[0]), nn.BatchNorm1d(hidden[0]), nn.ReLU(), nn.Linear(hidden[0], hidden[1]),
                         nn.BatchNorm1d(hidden[1]), nn.Tanh(), nn.Linear(hidden[1], slots))


def info_nce(a, b, t=0.05):
    logits = a @ b.t() / t
    target = torch.arange(a.shape[0])
    return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2


def unit(n, d):
    return F.normalize(torch.randn(n, d), dim=1)


def main():
    spec = json.load(open(sys.argv[1]))
    torch.set_num_threads(spec["threads"])
    torch.manual_seed(spec["seed"])
    K, H, D, B = spec["heads"], spec["hidden"], spec["out"], spec["batch"]
    T = spec["tuples"]
    start = usage()

    heads = {}
    for space in spec["spaces"]:
        N, d = space["pairs"], space["dim"]
        x, y = unit(N, d), unit(N, D)
        heads[space["name"]] = []
        for _ in range(K):
            head = make_head(d, H, D)
            head.train()
            opt = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=1e-4)
            for _ in range(spec["proj_epochs"]):
                perm = torch.randperm(N)
                for b in range(0, N - 1, B):
                    ids = perm[b:b + B]
                    loss = info_nce(F.normalize(head(x[ids]), dim=-1), y[ids])
                    opt.zero_grad()
                    loss.backward()
                    opt.step()
                    loss.item()
            head.eval()
            heads[space["name"]].append(head)
    proj_end = usage()

    mods = spec["modalities"]
    data = {}
    routers, params = {}, []
    for m in mods:
        data[m["name"]] = {"router_in": unit(T, m["router_in"]),
                           "slots": [unit(T, s["dim"]) for s in m["slots"]]}
        routers[m["name"]] = make_router(m["router_in"], spec["router_hidden"], len(m["slots"]))
        params += list(routers[m["name"]].parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=1e-4)
    source = torch.randint(3, (T,))
    text = [m for m in mods if m["name"] == "text"]
    family = torch.zeros(len(text[0]["slots"]) if text else 1, 3)  # slot -> families it covers
    family[:, 0] = 1
    family[-1, 1] = 1
    for _ in range(spec["router_epochs"]):
        for r in routers.values():
            r.train()
        perm = torch.randperm(T)
        for b in range(0, T - 1, B):
            rows = perm[b:b + B]
            unified, weights = [], {}
            for m in mods:
                with torch.no_grad():
                    slots = []
                    for s, x in zip(m["slots"], data[m["name"]]["slots"]):
                        xs = x[rows]
                        slots.append(torch.stack([F.normalize(h(xs), dim=-1) for h in heads[s["space"]]]).mean(0))
                    slots = torch.stack(slots, 1)  # [B, S, D]
                s = torch.sigmoid(routers[m["name"]](data[m["name"]]["router_in"][rows]))
                if m["name"] == "text":
                    s = s * spec["text_temperature"]
                w = torch.softmax(s, -1)
                weights[m["name"]] = w
                unified.append(F.normalize((slots * w.unsqueeze(2)).sum(1), dim=-1))
            loss, pairs = 0, 0
            for i in range(len(unified)):
                for j in range(i + 1, len(unified)):
                    loss = loss + info_nce(unified[i], unified[j])
                    pairs += 1
            loss = loss / max(1, pairs)
            if "text" in weights:
                mass = (weights["text"] @ family).clamp_min(1e-8)
                p = mass / mass.sum(1, keepdim=True)
                nll = -p.log().gather(1, source[rows].unsqueeze(1))
                loss = loss + F.relu(nll + math.log(0.5)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss.item()
    end = usage()
    result = since(start, end)
    result["projector"] = since(start, proj_end)
    result["router"] = since(proj_end, end)
    result["torch"] = torch.__version__
    result["threads"] = torch.get_num_threads()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
