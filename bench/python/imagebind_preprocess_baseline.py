#!/usr/bin/env python3
"""Baseline for bench_imagebind_preprocess: ImageBind's reference preprocessing (imagebind/data.py,
load_and_transform_vision_data / load_and_transform_audio_data) re-expressed with the same
libraries it uses (PIL, torchvision transforms, torchaudio resample + kaldi fbank, the clip
sampler's Fraction arithmetic). Bench-only: needs python3-torchvision and python3-torchaudio
(Debian), which the C++ project itself does not.

usage: imagebind_preprocess_baseline.py --repeat N --images a.jpg ... --audios a.wav ...
prints one JSON object: best-of-N process CPU seconds (torch pinned to 1 thread) for the whole image list and the whole audio list.
"""
import argparse
import json
import time
from fractions import Fraction

import torch
import torchaudio
from PIL import Image
from torchvision import transforms

VISION = transforms.Compose([
    transforms.Resize(224, interpolation=transforms.InterpolationMode.BICUBIC),
    transforms.CenterCrop(224),
    transforms.ToTensor(),
    transforms.Normalize(mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711)),
])
AUDIO_NORM = transforms.Normalize(mean=-4.268, std=9.138)


def image_input(path):
    with open(path, "rb") as f:
        img = Image.open(f).convert("RGB")
    return VISION(img)


def clip_times(duration, clip=2, clips=3):
    # pytorchvideo ConstantClipsPerVideoSampler: latest start as a Fraction of the float, evenly spread.
    latest = Fraction(max(duration - clip, 0))
    step = latest / max(clips - 1, 1)
    return [(step * k, step * k + clip) for k in range(clips)]


def audio_input(path, rate=16000):
    wave, sr = torchaudio.load(path)
    if sr != rate:
        wave = torchaudio.functional.resample(wave, orig_freq=sr, new_freq=rate)
    out = []
    for start, end in clip_times(wave.size(1) / rate):
        clip = wave[:, int(start * rate):int(end * rate)]
        clip -= clip.mean()  # in place on the view, as the reference does
        fb = torchaudio.compliance.kaldi.fbank(
            clip, htk_compat=True, sample_frequency=rate, use_energy=False, window_type="hanning",
            num_mel_bins=128, dither=0.0, frame_length=25, frame_shift=10).transpose(0, 1)
        p = 204 - fb.size(1)
        fb = torch.nn.functional.pad(fb, (0, p)) if p > 0 else fb[:, :204]
        out.append(AUDIO_NORM(fb.unsqueeze(0)))
    return torch.stack(out)


def best_of(fn, items, repeat):
    for it in items:  # warm-up
        fn(it)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for it in items:
            fn(it)
        best = min(best, time.process_time() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--images", nargs="*", default=[])
    ap.add_argument("--audios", nargs="*", default=[])
    a = ap.parse_args()
    torch.set_num_threads(1)
    res = {"torch": torch.__version__, "torchaudio": torchaudio.__version__, "threads": 1}
    if a.images:
        res["image_seconds"] = best_of(image_input, a.images, a.repeat)
    if a.audios:
        res["audio_seconds"] = best_of(audio_input, a.audios, a.repeat)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
