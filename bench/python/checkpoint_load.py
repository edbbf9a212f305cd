# Baseline for bench_checkpoint_load: makes a synthetic state dict checkpoint and times torch.load.
#   checkpoint_load.py make <path> <megabytes> <zip|legacy>
#   checkpoint_load.py load <path> <repeat>      -> JSON {"open_s", "read_s"} (best of repeat)
import json, sys, time
import torch

torch.set_num_threads(1)
if sys.argv[1] == "make":
    path, mb, fmt = sys.argv[2], int(sys.argv[3]), sys.argv[4]
    g = torch.Generator().manual_seed(0)
    sd, total, i = {}, 0, 0
    while total < mb << 20:  # transformer-like mix: big matrices, small vectors, BN counters
        sd[f"blocks.{i}.attn.qkv.weight"] = torch.randn(768, 256, generator=g)
        sd[f"blocks.{i}.attn.qkv.bias"] = torch.randn(768, generator=g)
        sd[f"blocks.{i}.norm.num_batches_tracked"] = torch.tensor(i)
        total += 768 * 257 * 4
        i += 1
    torch.save(sd, path, _use_new_zipfile_serialization=(fmt == "zip"))
else:
    path, repeat = sys.argv[2], int(sys.argv[3])
    best_open, best_read = 1e9, 1e9
    for _ in range(repeat):
        t0 = time.perf_counter()
        sd = torch.load(path, map_location="cpu", weights_only=True)
        t1 = time.perf_counter()
        s = sum(float(t.double().sum()) for t in sd.values())  # same work as the C++ "read" pass
        t2 = time.perf_counter()
        best_open, best_read = min(best_open, t1 - t0), min(best_read, t2 - t0)
    print(json.dumps({"open_s": best_open, "read_s": best_read, "tensors": len(sd)}))
