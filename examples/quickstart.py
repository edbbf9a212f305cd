#!/usr/bin/env python3
"""OmniBind from Python, notebook style: embed the demo's sounds, pictures and 3-D shapes with its model
bundle, search across modalities, and draw a 2-D map of the unified space.

    build/omnibind demo --size small --out demo-out        # a bundle and a small world of media files
    PYTHONPATH=build/python /usr/bin/python3 examples/quickstart.py demo-out [--map map.png]

Every cell below is one call into the C++ engine (docs/PYTHON.md); numpy does the rest. The map needs
matplotlib (python3-matplotlib) and is skipped without it.
"""
import argparse
import collections
import json
import os
import tempfile

import numpy as np

import omnibind

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("demo", help="an `omnibind demo` output directory")
parser.add_argument("--map", default="", help="write the 2-D map of the unified space here (PNG, needs matplotlib)")
args = parser.parse_args()

# %% The model: a bundle of four small expert spaces bound into one by OmniBind's heads and routers.
model = omnibind.Model(os.path.join(args.demo, "bundle"))
print(model)

# %% The held-out items of the demo world: files of three modalities; the class is in the file name.
with open(os.path.join(args.demo, "world", "eval.json")) as f:
    world = json.load(f)
files = collections.defaultdict(list)
for item in world:
    if item["modality"] in ("audio", "image", "point"):
        files[item["modality"]].append(item["path"])
classes = {m: [os.path.basename(p).rsplit("_", 1)[0] for p in ps] for m, ps in files.items()}

# %% Embed each modality from its files: float32 [n, dim], unit rows, one space for all.
emb = {m: model.embed_files(ps) for m, ps in files.items()}
for m, e in emb.items():
    print("%-5s %s" % (m, e.shape))

# %% Decoded arrays work too: a 0.75 s rising tone straight from numpy (float32 samples in [-1, 1]).
rate = 16000
t = np.arange(int(0.75 * rate)) / rate
tone = (0.3 * np.sin(2 * np.pi * (300 + 400 * t) * t)).astype(np.float32)
tone_vec = model.embed(audio=(tone, rate))

# %% An index of every item (FAISS + SQLite, like `omnibind index`), with the class as metadata.
scratch = tempfile.TemporaryDirectory(prefix="omnibind_quickstart_")
index_dir = os.path.join(scratch.name, "world.index")
index = omnibind.Index(index_dir, dim=model.dim)
for m in emb:
    index.add(emb[m], [{"class": c} for c in classes[m]], modality=m, sources=files[m])
print("index:", index)

# %% Any-to-any search: sounds -> 3-D shapes (no expert ever saw a sound with a shape), shapes -> sounds,
# pictures -> sounds, a caption -> shapes.
def right_class(query, queries_classes, target):
    ids, scores, items = index.search(query, k=1, modality=target)
    return np.mean([hits[0]["metadata"]["class"] == c for hits, c in zip(items, queries_classes)])

for q, target in [("audio", "point"), ("point", "audio"), ("image", "audio"), ("audio", "image")]:
    print("%-5s -> %-5s top-1 of the right class: %3.0f%%" % (q, target, 100 * right_class(emb[q], classes[q], target)))

caption = "the sound of a " + classes["audio"][0]
ids, scores, items = index.search(model.embed_texts([caption]), k=3, modality="point")
print("%r -> shapes: %s" % (caption, ", ".join("%s (%.2f)" % (h["metadata"]["class"], s) for h, s in zip(items[0], scores[0]))))
ids, scores, items = index.search(tone_vec, k=3, modality="image")
print("a rising tone -> pictures: %s" % ", ".join(h["metadata"]["class"] for h in items[0]))

# %% The routers: how much each expert space counts for a modality (learned per input).
_, info = model.embed_files(files["audio"][:8], return_experts=True)
weights = info["routing_weights"].mean(axis=0)
print("audio routing:", ", ".join("%s %.2f" % (s, w) for s, w in zip(info["slots"], weights)))

# %% A 2-D map of the unified space (PCA with numpy), coloured by class, one marker per modality.
if args.map:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("map: matplotlib is not installed (apt-get install python3-matplotlib); skipped")
    else:
        allv = np.concatenate([emb[m] for m in emb])
        centred = allv - allv.mean(axis=0)
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        xy = centred @ vt[:2].T
        names = sorted(set(sum(classes.values(), [])))
        colour = {c: plt.cm.tab20(i % 20) for i, c in enumerate(names)}
        fig, ax = plt.subplots(figsize=(7, 6))
        start = 0
        for m, marker in zip(emb, "o^s"):
            n = len(emb[m])
            ax.scatter(xy[start:start + n, 0], xy[start:start + n, 1], c=[colour[c] for c in classes[m]], marker=marker,
                       label=m, s=28, edgecolors="k", linewidths=0.3)
            start += n
        ax.legend(title="modality")
        ax.set_title("OmniBind unified space (PCA), colour = class")
        fig.savefig(args.map, dpi=120, bbox_inches="tight")
        print("map:", args.map)

del index  # closes the index before its scratch directory goes
scratch.cleanup()
