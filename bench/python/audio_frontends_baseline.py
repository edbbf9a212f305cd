#!/usr/bin/env python3
"""Baseline for bench_audio_frontends: the Python path the WavCaps / CLAP experts run before the
model (librosa.load with soxr, then torchlibrosa log-mel or torchaudio HTK mel + fusion), one
thread, best-of-N process CPU seconds over the file list. Prints one JSON object; when a package
is missing prints {"error": ...} and exits 3 (librosa, torch, torchaudio, torchvision, torchlibrosa,
safetensors are needed)."""
import argparse
import json
import sys
import time

try:
    import librosa
    import numpy as np
    import torch
    import torch.nn.functional as F
    import torchaudio
    import torchvision
    from safetensors.torch import load_file
    from torchlibrosa import LogmelFilterBank, Spectrogram
except Exception as exc:  # report why the baseline cannot run
    print(json.dumps({"error": "baseline unavailable: %s: %s" % (type(exc).__name__, exc)}))
    sys.exit(3)


def best_of(files, repeat, fn):
    for f in files:
        fn(f)
    best = float("inf")
    for _ in range(repeat):
        t0 = time.process_time()
        for f in files:
            fn(f)
        best = min(best, time.process_time() - t0)
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--wavcaps-weights")
    ap.add_argument("--clap-weights")
    ap.add_argument("--files", nargs="+")
    a = ap.parse_args()
    torch.set_num_threads(1)

    def front(sr, hop, path, stft_prefix, mel_key):
        spec = Spectrogram(n_fft=1024, hop_length=hop, win_length=1024, window="hann", center=True,
                           pad_mode="reflect", freeze_parameters=True)
        logmel = LogmelFilterBank(sr=sr, n_fft=1024, n_mels=64, fmin=50, fmax=14000, ref=1.0, amin=1e-10,
                                  top_db=None, freeze_parameters=True)
        sd = load_file(path)
        spec.stft.conv_real.weight.data = sd[stft_prefix + "conv_real.weight"]
        spec.stft.conv_imag.weight.data = sd[stft_prefix + "conv_imag.weight"]
        logmel.melW.data = sd[mel_key]
        return lambda x: logmel(spec(x))

    wc = front(32000, 320, a.wavcaps_weights, "audio_encoder.audio_enc.audio_feats_extractor.mel_trans.stft.",
               "audio_encoder.audio_enc.audio_feats_extractor.log_trans.melW")
    cm = front(48000, 480, a.clap_weights, "audio_branch.spectrogram_extractor.stft.", "audio_branch.logmel_extractor.melW")
    mel_tf = torchaudio.transforms.MelSpectrogram(sample_rate=48000, n_fft=1024, win_length=1024, hop_length=480,
                                                  center=True, pad_mode="reflect", power=2.0, norm=None,
                                                  onesided=True, n_mels=64, f_min=50, f_max=14000)
    to_db = torchaudio.transforms.AmplitudeToDB(top_db=None)

    @torch.no_grad()
    def wavcaps(f):
        y, _ = librosa.load(f, sr=32000, mono=True)
        x = torch.tensor(y).unsqueeze(0)
        x = F.pad(x, [0, max(0, 320000 - x.shape[-1])])[:, :320000]
        wc(x)

    def clap_wave(f):
        y, _ = librosa.load(f, sr=48000)
        y = (np.clip(y, -1.0, 1.0) * 32767.0).astype(np.int16)
        return torch.from_numpy((y / 32767.0).astype(np.float32))

    def mel(x):
        return to_db(mel_tf(x)).T

    @torch.no_grad()
    def clap_g(f):
        x = clap_wave(f)
        n = x.shape[0]
        if n <= 480000:
            x = F.pad(x.repeat(480000 // n), (0, 480000 - (480000 // n) * n))
            m = mel(x)
            torch.stack([m, m, m, m])
        else:
            m = mel(x)
            if m.shape[0] == 1001:
                torch.stack([m, m, m, m])
            else:
                parts = np.array_split(np.arange(m.shape[0] - 1000), 3)
                starts = [int(p[len(p) // 2]) if len(p) else 0 for p in parts]
                shrink = torchvision.transforms.Resize([1001, 64])(m[None])[0]
                torch.stack([shrink] + [m[s:s + 1001] for s in starts])

    @torch.no_grad()
    def clap_m(f):
        x = clap_wave(f)
        n = x.shape[0]
        if n <= 480000:
            x = F.pad(x.repeat(480000 // n), (0, 480000 - (480000 // n) * n))
        else:
            s = (n - 480000) // 2
            x = x[s:s + 480000]
        cm(x.unsqueeze(0))

    out = {
        "versions": {"librosa": librosa.__version__, "torch": torch.__version__, "torchaudio": torchaudio.__version__},
        "wavcaps_seconds": best_of(a.files, a.repeat, wavcaps),
        "clap_g_seconds": best_of(a.files, a.repeat, clap_g),
        "clap_m_seconds": best_of(a.files, a.repeat, clap_m),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
