#!/usr/bin/python3
"""Baseline for bench_htsat: the reference HTSAT module itself (OmniBind's vendored laion_clap
clap_module/htsat.py + feature_fusion.py + utils.py), read at run time from a fetched OmniBind git
mirror (nothing of it is stored in this repository), built at the preset's widths with its own
random init, eval mode, no_grad, plus the Linear-ReLU-Linear projection. WavCaps' HTSAT is the same
network (models/htsat.py differs only in where the mel front end lives), so the CLAP file serves all
three presets. Times bn0 -> reshape_wav2img -> forward_features (which also runs the unused tscam
head, as the reference does) -> projection -> normalize, from a [B, C, 1001, 64] log-mel.
The torchlibrosa front-end classes and the training-only imports of utils.py (h5py, tqdm; torchvision when absent) are
replaced by empty placeholders: nothing on the timed path uses them.
Prints one JSON object.
Usage: htsat_reference.py MIRROR_GIT_DIR PRESET(wavcaps|clap-fusion|clap-base) DTYPE(fp32|bf16)
                          THREADS BATCH WARMUP ITERS LONGER(0|1)"""
import json, os, subprocess, sys, tempfile, time, types

import torch
import torch.nn as nn
import torch.nn.functional as F

COMMIT = "d574f1b495aae014a1da051fdd68b7f10d41e719"
PRESETS = {  # embed_dim, depths, heads, fusion, projection width
    "wavcaps": (96, [2, 2, 6, 2], [4, 8, 16, 32], False, 1024),
    "clap-fusion": (96, [2, 2, 6, 2], [4, 8, 16, 32], True, 512),
    "clap-base": (128, [2, 2, 12, 2], [4, 8, 16, 32], False, 512),
}


def placeholder(name, **attrs):
    m = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(m, k, v)
    sys.modules[name] = m
    return m


class Unused(nn.Module):
    def __init__(self, *args, **kwargs):
        super().__init__()


def load_reference(git_dir):
    pkg = tempfile.mkdtemp(prefix="htsat_ref_")
    os.makedirs(os.path.join(pkg, "clap_module"))
    open(os.path.join(pkg, "clap_module", "__init__.py"), "w").close()
    for f in ("htsat.py", "feature_fusion.py", "utils.py"):
        src = subprocess.run(["git", "--git-dir", git_dir, "show", f"{COMMIT}:omni_model/laion_clap/clap_module/{f}"],
                             check=True, capture_output=True).stdout
        open(os.path.join(pkg, "clap_module", f), "wb").write(src)
    placeholder("torchlibrosa")
    placeholder("torchlibrosa.stft", Spectrogram=Unused, LogmelFilterBank=Unused)
    placeholder("torchlibrosa.augmentation", SpecAugmentation=Unused)
    try:
        import torchvision.ops.misc  # noqa: F401 (utils.py imports FrozenBatchNorm2d from it)
    except ImportError:
        placeholder("torchvision")
        placeholder("torchvision.ops")
        placeholder("torchvision.ops.misc", FrozenBatchNorm2d=Unused)
    placeholder("h5py")
    placeholder("tqdm", tqdm=lambda x, *a, **k: x)
    sys.path.insert(0, pkg)
    from clap_module.htsat import HTSAT_Swin_Transformer
    return HTSAT_Swin_Transformer


def main():
    git_dir, preset, dtype = sys.argv[1], sys.argv[2], sys.argv[3]
    threads, batch, warmup, iters, longer = (int(a) for a in sys.argv[4:9])
    torch.set_num_threads(threads)
    Htsat = load_reference(git_dir)
    embed, depths, heads, fusion, proj_dim = PRESETS[preset]
    cfg = types.SimpleNamespace(mel_bins=64, window_size=1024, hop_size=480, sample_rate=48000, fmin=50, fmax=14000)
    torch.manual_seed(0)
    t0 = time.time()
    model = Htsat(spec_size=256, patch_size=4, patch_stride=(4, 4), num_classes=527, embed_dim=embed, depths=depths,
                  num_heads=heads, window_size=8, config=cfg, enable_fusion=fusion,
                  fusion_type="aff_2d" if fusion else "None").eval()
    nf = embed * 2 ** (len(depths) - 1)
    proj = nn.Sequential(nn.Linear(nf, proj_dim), nn.ReLU(), nn.Linear(proj_dim, proj_dim)).eval()
    dt = torch.bfloat16 if dtype == "bf16" else torch.float32
    model, proj = model.to(dt), proj.to(dt)
    init_s = time.time() - t0
    mel = (torch.randn(batch, 4 if fusion else 1, 1001, 64) * 20 - 40).to(dt)
    longer_idx = torch.arange(batch) if (fusion and longer) else torch.zeros(0, dtype=torch.long)

    def run():
        x = model.bn0(mel.transpose(1, 3)).transpose(1, 3)
        x = model.reshape_wav2img(x)
        out = model.forward_features(x, longer_idx=longer_idx) if fusion else model.forward_features(x)
        return F.normalize(proj(out["embedding"]), dim=-1)

    with torch.no_grad():
        for _ in range(warmup):
            run()
        c0, s = time.process_time(), time.time()
        for _ in range(iters):
            run()
        sec, cpu = (time.time() - s) / iters, (time.process_time() - c0) / iters
    print(json.dumps({"impl": "pytorch-reference", "model": "htsat", "preset": preset, "precision": dtype,
                      "fusion_longer": bool(longer) if fusion else None, "batch": batch, "threads": threads,
                      "warmup": warmup, "iters": iters, "seconds_per_batch": round(sec, 3),
                      "clips_per_s": round(batch / sec, 3), "cpu_seconds_per_batch": round(cpu, 3),
                      "clips_per_cpu_s": round(batch / cpu, 3), "random_init_s": round(init_s, 2),
                      "torch": torch.__version__}))


if __name__ == "__main__":
    main()
