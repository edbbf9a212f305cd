#!/usr/bin/python3
"""PyTorch baseline for bench_audio_text_experts: OmniBind's own reference modules, at the released
widths with their own random init, eval() + torch.inference_mode(), torch.set_num_threads(N) (and
OpenBLAS's pool set to N, as the C++ side does).

Nothing of the reference is stored in this repository: --reference-dir is either an extracted
zehanwang01/OmniBind tree (the folder holding omni_model/) or a git directory of a fetched mirror,
from which commit d574f1b is extracted (`git archive`) into a temporary folder. When it is absent or
does not import, the script prints {"available": false, "reason": ...} lines instead of failing.

Modules timed (same inputs, shapes and batch as the C++ bench):
  wavcaps      omni_model/wavcaps/models/htsat.py HTSAT_Swin_Transformer (AudioEncoder's arguments),
               the lines of its forward() after the front end (bn0 -> reshape_wav2img ->
               forward_features) + audio_proj MLP (768 -> 1024 -> 1024) + F.normalize twice
               (ASE.encode_audio, then WavCaps.emb_audios).
  clap-fusion  omni_model/laion_clap/clap_module/htsat.py with enable_fusion, aff_2d: its forward()
               itself on {"mel_fusion", "longer"} + audio_projection (768 -> 512 -> 512) + normalize x2.
  clap-base    the same file, HTSAT-base widths, no fusion: the lines of forward() after the
               torchlibrosa front end + projection + normalize x2.
  bert         transformers_430 BertModel(bert-base-uncased config, add_pooling_layer=False),
               last hidden state at [CLS] + text_proj (768 -> 1024 -> 1024) + normalize x2.
  roberta      transformers_430 RobertaModel(roberta-base config, with pooler), pooler_output +
               text_projection (768 -> 512 -> 512) + normalize x2.
Audio input: a [B, C, 1001, 64] log-mel (C = 4 for clap-fusion); the in-model torchlibrosa front
ends of wavcaps / clap-base are not timed here (torchlibrosa is not installed; see below).
Text input: deterministic token ids [B, L] (L = 30 for bert, 77 for roberta) with per-row lengths
12 + (7 i mod 19), the same formula the C++ bench uses.

Import stand-ins (sys.modules entries; none of them is called on the timed path):
  torchlibrosa(.stft, .augmentation): Spectrogram, LogmelFilterBank, SpecAugmentation are built in
    __init__ but only run in the front end / in training; replaced by empty modules.
  ruamel.yaml (wavcaps htsat.py imports it unused), h5py, torchvision.ops.misc.FrozenBatchNorm2d
    (laion utils.py, training only), huggingface_hub, safetensors (transformers_430 import them for
    hub download / file saving only): attribute-returning placeholders.
  The packages transformers_430/__init__.py and models/__init__.py (lazy import tables, dependency
    version checks) are not executed: bare package objects point at the real folders, so the real
    modeling_bert.py / modeling_roberta.py / modeling_utils.py / activations.py / pytorch_utils.py /
    utils/ are what runs.

Usage: audio_text_experts_baseline.py --reference-dir DIR --model NAME --precision fp32[,bf16]
         --batches 1,8 --threads N --warmup W --iters I [--longer 1]
Prints one JSON object per (precision, batch) on its own line."""
import argparse
import atexit
import importlib
import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types

COMMIT = "d574f1b495aae014a1da051fdd68b7f10d41e719"
BERT_L, ROBERTA_L = 30, 77


def emit(obj):
    print(json.dumps(obj), flush=True)


def placeholder(name, **attrs):
    """A stand-in module: given attributes, any other attribute is a fresh placeholder class."""
    m = types.ModuleType(name)
    m.__path__ = []
    m.__spec__ = importlib.machinery.ModuleSpec(name, None)
    for k, v in attrs.items():
        setattr(m, k, v)

    def getattr_(attr, _n=name):
        if attr.startswith("__"):
            raise AttributeError(attr)
        return type(attr, (Exception,), {"__module__": _n})

    m.__getattr__ = getattr_
    sys.modules[name] = m
    parent, _, child = name.rpartition(".")
    if parent in sys.modules:
        setattr(sys.modules[parent], child, m)
    return m


def bare_package(name, path):
    m = types.ModuleType(name)
    m.__path__ = [path]
    m.__spec__ = importlib.machinery.ModuleSpec(name, None, is_package=True)
    m.__spec__.submodule_search_locations = [path]
    sys.modules[name] = m
    return m


def reference_root(ref):
    """The folder holding omni_model/: ref itself, or commit COMMIT extracted from a git dir."""
    if os.path.isdir(os.path.join(ref, "omni_model")):
        return ref
    git_dir = ref
    if os.path.isdir(os.path.join(ref, ".git")):
        git_dir = os.path.join(ref, ".git")
    if not os.path.exists(os.path.join(git_dir, "HEAD")):
        raise RuntimeError(f"{ref}: neither an OmniBind tree (omni_model/) nor a git directory")
    out = tempfile.mkdtemp(prefix="omnibind_ref_")
    atexit.register(shutil.rmtree, out, True)
    paths = ["omni_model/wavcaps/models", "omni_model/laion_clap/clap_module", "omni_model/transformers_430"]
    tar = subprocess.run(["git", "--git-dir", git_dir, "archive", COMMIT] + paths, check=True,
                         capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", out], input=tar, check=True)
    return out


def import_reference(root, model):
    import torch.nn as nn

    class Unused(nn.Module):
        def __init__(self, *args, **kwargs):
            super().__init__()

    om = os.path.join(root, "omni_model")
    if model in ("wavcaps", "clap-fusion", "clap-base"):
        placeholder("torchlibrosa", Spectrogram=Unused, LogmelFilterBank=Unused)
        placeholder("torchlibrosa.stft", Spectrogram=Unused, LogmelFilterBank=Unused)
        placeholder("torchlibrosa.augmentation", SpecAugmentation=Unused)
    if model == "wavcaps":
        placeholder("ruamel")
        placeholder("ruamel.yaml")
        bare_package("models", os.path.join(om, "wavcaps", "models"))
        return importlib.import_module("models.htsat").HTSAT_Swin_Transformer
    if model in ("clap-fusion", "clap-base"):
        try:
            import torchvision.ops.misc  # noqa: F401
        except ImportError:
            placeholder("torchvision")
            placeholder("torchvision.ops")
            placeholder("torchvision.ops.misc", FrozenBatchNorm2d=Unused)
        placeholder("h5py")
        try:
            import tqdm  # noqa: F401
        except ImportError:
            placeholder("tqdm", tqdm=lambda x, *a, **k: x)
        bare_package("clap_module", os.path.join(om, "laion_clap", "clap_module"))
        return importlib.import_module("clap_module.htsat").HTSAT_Swin_Transformer
    for n in ("huggingface_hub", "huggingface_hub.utils", "huggingface_hub.file_download", "safetensors",
              "safetensors.torch"):
        try:
            importlib.import_module(n)
        except ImportError:
            placeholder(n)
    tf = os.path.join(om, "transformers_430")
    bare_package("transformers_430", tf).__version__ = "4.30.2"
    bare_package("transformers_430.models", os.path.join(tf, "models"))
    sub = "bert" if model == "bert" else "roberta"
    bare_package(f"transformers_430.models.{sub}", os.path.join(tf, "models", sub))
    mod = importlib.import_module(f"transformers_430.models.{sub}.modeling_{sub}")
    cfg = importlib.import_module(f"transformers_430.models.{sub}.configuration_{sub}")
    return (mod.BertModel, cfg.BertConfig) if sub == "bert" else (mod.RobertaModel, cfg.RobertaConfig)


def text_inputs(torch, batch, length, kind):
    """Token ids + mask [B, L]: row i has 12 + (7 i mod 19) tokens (capped at L), then padding."""
    cls_, sep, pad, lo, hi = (101, 102, 0, 1000, 30000) if kind == "bert" else (0, 2, 1, 1000, 50000)
    ids = torch.full((batch, length), pad, dtype=torch.long)
    mask = torch.zeros((batch, length), dtype=torch.long)
    for i in range(batch):
        n = min(length, 12 + (7 * i) % 19)
        ids[i, 0] = cls_
        for j in range(1, n - 1):
            ids[i, j] = lo + (i * 7919 + j * 104729) % (hi - lo)
        ids[i, n - 1] = sep
        mask[i, :n] = 1
    return ids, mask


def build(torch, model, ref):
    """-> (modules list, make_input(batch, dtype) -> args, run(args) -> tensor, unit, info)."""
    import torch.nn as nn
    import torch.nn.functional as F

    def mlp(i, o):
        return nn.Sequential(nn.Linear(i, o), nn.ReLU(), nn.Linear(o, o))

    if model in ("wavcaps", "clap-fusion", "clap-base"):
        embed, depths, proj_dim = {"wavcaps": (96, [2, 2, 6, 2], 1024), "clap-fusion": (96, [2, 2, 6, 2], 512),
                                   "clap-base": (128, [2, 2, 12, 2], 512)}[model]
        heads = [4, 8, 16, 32]
        fusion = model == "clap-fusion"
        if model == "wavcaps":
            # inference.yaml's audio_args / training flags, as AudioEncoder passes them.
            config = {"audio_args": {"sr": 32000, "n_fft": 1024, "hop_length": 320, "f_min": 50, "f_max": 14000,
                                     "n_mels": 64, "max_length": 30, "mono": True},
                      "training": {"spec_augmentation": True}}
            tower = ref(spec_size=256, patch_size=4, patch_stride=(4, 4), num_classes=527, embed_dim=embed,
                        depths=depths, num_heads=heads, window_size=8, config=config)
        else:
            config = types.SimpleNamespace(mel_bins=64, window_size=1024, hop_size=480, sample_rate=48000,
                                           fmin=50, fmax=14000)
            tower = ref(spec_size=256, patch_size=4, patch_stride=(4, 4), num_classes=527, embed_dim=embed,
                        depths=depths, num_heads=heads, window_size=8, config=config, enable_fusion=fusion,
                        fusion_type="aff_2d" if fusion else "None")
        proj = mlp(tower.num_features, proj_dim)

        def make_input(batch, dtype, longer=True):
            g = torch.Generator().manual_seed(0)
            mel = (torch.randn(batch, 4 if fusion else 1, 1001, 64, generator=g) * 20 - 40).to(dtype)
            return mel, torch.full((batch,), bool(longer))

        def run(args):
            mel, longer = args
            if fusion:  # the module's own forward (no front end in CLAP_G)
                out = tower({"mel_fusion": mel, "longer": longer.clone()})
            else:       # forward() after the torchlibrosa front end, line by line
                x = tower.bn0(mel.transpose(1, 3)).transpose(1, 3)
                out = tower.forward_features(tower.reshape_wav2img(x))
            e = F.normalize(proj(out["embedding"]), dim=-1)
            return F.normalize(e, dim=-1)

        return [tower, proj], make_input, run, "clips"

    Model, Config = ref
    if model == "bert":
        cfg = Config()  # bert-base-uncased: 30522 x 768, 12 layers, 12 heads, 3072, 512 positions
        enc = Model(cfg, add_pooling_layer=False)
        proj, L = mlp(768, 1024), BERT_L
    else:
        cfg = Config(vocab_size=50265, max_position_embeddings=514, type_vocab_size=1, layer_norm_eps=1e-5,
                     pad_token_id=1, bos_token_id=0, eos_token_id=2)
        enc = Model(cfg)  # with pooler (CLAP reads pooler_output)
        proj, L = mlp(768, 512), ROBERTA_L

    def make_input(batch, dtype, longer=True):
        return text_inputs(torch, batch, L, model)

    def run(args):
        ids, mask = args
        out = enc(input_ids=ids, attention_mask=mask)
        h = out[0][:, 0, :] if model == "bert" else out["pooler_output"]
        return F.normalize(F.normalize(proj(h), dim=-1), dim=-1)

    return [enc, proj], make_input, run, "texts"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--reference-dir", required=True)
    ap.add_argument("--model", required=True, choices=["wavcaps", "clap-fusion", "clap-base", "bert", "roberta"])
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--batches", default="1")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--longer", type=int, default=1)
    a = ap.parse_args()
    base = {"impl": "pytorch-reference", "model": a.model, "threads": a.threads}
    # Same thread count everywhere the C++ side sets it (tensor_io::set_compute_threads): libtorch's
    # OpenMP pool and OpenBLAS's own pthread pool, which torch.set_num_threads does not reach.
    os.environ["OMP_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = str(a.threads)
    try:
        import torch
        root = reference_root(a.reference_dir)
        ref = import_reference(root, a.model)
    except Exception as e:  # noqa: BLE001 - any failure means "no baseline", reported as JSON
        emit(dict(base, available=False, reason=f"{type(e).__name__}: {e}"))
        return
    torch.set_num_threads(a.threads)
    try:
        import ctypes
        ctypes.CDLL("libopenblas.so.0").openblas_set_num_threads(a.threads)
    except (OSError, AttributeError):
        pass  # another BLAS: OPENBLAS_NUM_THREADS / OMP_NUM_THREADS above
    torch.manual_seed(0)
    t0 = time.time()
    modules, make_input, run, unit = build(torch, a.model, ref)
    init_s = time.time() - t0
    for m in modules:
        m.eval()
    for prec in a.precision.split(","):
        dtype = torch.bfloat16 if prec == "bf16" else torch.float32
        for m in modules:
            m.to(dtype)
        for batch in (int(b) for b in a.batches.split(",")):
            args = make_input(batch, dtype, a.longer)
            walls = []
            with torch.inference_mode():
                for _ in range(a.warmup):
                    run(args)
                c0 = time.process_time()
                for _ in range(a.iters):
                    s = time.perf_counter()
                    run(args)
                    walls.append(time.perf_counter() - s)
                cpu = (time.process_time() - c0) / a.iters
            best = min(walls)
            emit(dict(base, available=True, precision=prec, batch=batch, warmup=a.warmup, iters=a.iters,
                      seconds_best=round(best, 4), seconds_mean=round(sum(walls) / len(walls), 4),
                      cpu_seconds_mean=round(cpu, 4), **{f"{unit}_per_s": round(batch / best, 3)},
                      random_init_s=round(init_s, 2), torch=torch.__version__))


if __name__ == "__main__":
    main()
