#!/usr/bin/env python3
"""Tests of the `omnibind` Python module (plain unittest; CTest runs it with PYTHONPATH=build/python).

The model is the small demo's bundle (`omnibind demo --size small`: four zoo experts over audio, image,
3-D points and text plus trained heads), so every modality goes through the real decoders. Parity is
exact: the module and `omnibind embed --model` / `omnibind fuse` must give identical float32 arrays for
the same inputs (arrays in the module, the same samples written to files for the CLI).

Exit status 77 (CTest: skipped) with a SKIPPED line when numpy, the module or the CLI is missing.
"""
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
import unittest
import wave
import zlib


def skip(reason):
    print("SKIPPED: " + reason)
    sys.exit(77)


try:
    import numpy as np
except ImportError:
    skip("numpy is not installed (apt-get install python3-numpy)")
try:
    import omnibind
except ImportError as e:
    skip("the omnibind module is not importable (build it: ninja -C build omnibind_python): %s" % e)

HERE = os.path.dirname(os.path.abspath(__file__))
CLI = os.environ.get("OMNIBIND_BINARY", os.path.join(HERE, "..", "..", "build", "omnibind"))
if not os.path.exists(CLI):
    skip("the omnibind CLI is not built (%s)" % CLI)

THREADS = "1"  # the CLI and the module compute with the same thread count, so the floats are identical


def cli(*args):
    r = subprocess.run([CLI] + [str(a) for a in args], capture_output=True, text=True)
    if r.returncode != 0:
        raise AssertionError("omnibind %s failed (%d): %s" % (" ".join(map(str, args)), r.returncode, r.stderr))
    return r


# --- independent writers/readers of the file formats (no omnibind code involved) ---------------------------

def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    dtypes = {"F32": "<f4", "F64": "<f8", "I64": "<i8", "I32": "<i4"}
    for key, v in header.items():
        s, e = v["data_offsets"]
        out[key] = np.frombuffer(data[8 + n + s:8 + n + e], dtype=dtypes[v["dtype"]]).reshape(v["shape"])
    return out, meta


def write_safetensors(path, tensors):
    header, blobs, off = {}, [], 0
    for key, a in tensors.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[key] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))


def write_png(path, rgb):
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
                chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def write_float_wav(path, samples, rate):
    """IEEE float32 WAV; samples [T] or [C, T]."""
    a = np.atleast_2d(np.asarray(samples, dtype="<f4"))
    channels, frames = a.shape
    data = a.T.tobytes()
    fmt = struct.pack("<HHIIHHH", 3, channels, rate, rate * channels * 4, channels * 4, 32, 0)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"fact" + struct.pack("<II", 4, frames) + \
        b"data" + struct.pack("<I", len(data)) + data
    with open(path, "wb") as f:
        f.write(b"RIFF" + struct.pack("<I", len(body)) + body)


def write_pcm16_wav(path, samples, rate):
    a = np.atleast_2d(np.asarray(samples, dtype="<i2"))
    with wave.open(path, "wb") as w:
        w.setnchannels(a.shape[0])
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(a.T.tobytes())


def close(a, b):
    """Rows of the same inputs computed in batches of another composition: GEMM blocking changes the last bits."""
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-6)


class OmniBindTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="omnibind_py_")
        cls.dir = cls.tmp.name
        # OMNIBIND_TEST_DEMO=DIR reuses a previous `omnibind demo --size small --threads 1` output (faster reruns).
        cls.demo = os.environ.get("OMNIBIND_TEST_DEMO") or os.path.join(cls.dir, "demo")
        if not os.path.exists(os.path.join(cls.demo, "bundle", "bundle.json")):
            cli("demo", "--size", "small", "--out", cls.demo, "--threads", THREADS, "--quiet")
        cls.bundle = os.path.join(cls.demo, "bundle")
        omnibind.set_threads(int(THREADS))
        cls.model = omnibind.Model(cls.bundle, threads=int(THREADS))
        world = os.path.join(cls.demo, "world")
        cls.files = {}
        for root, _, names in os.walk(world):
            for n in sorted(names):
                ext = os.path.splitext(n)[1]
                kind = {".png": "image", ".wav": "audio", ".ply": "point"}.get(ext)
                if kind:
                    cls.files.setdefault(kind, []).append(os.path.join(root, n))
        for k in cls.files:
            cls.files[k] = sorted(cls.files[k])[:10]
        cls.rate = 16000
        with wave.open(cls.files["audio"][0]) as w:
            cls.rate = w.getframerate()
        cls.count = 0

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def path(self, name):
        OmniBindTest.count += 1
        return os.path.join(self.dir, "%d_%s" % (OmniBindTest.count, name))

    def cli_embed(self, modality, inputs, *extra):
        out = self.path(modality + ".safetensors")
        cli("embed", "--model", self.bundle, "--modality", modality, "--out", out, "--threads", THREADS, *extra, *inputs)
        return read_safetensors(out)[0]

    # --- module and model ----------------------------------------------------------------------------------

    def test_import(self):
        self.assertTrue(issubclass(omnibind.InputError, ValueError))
        self.assertTrue(omnibind.__version__)
        self.assertIn("zoo", omnibind.experts())

    def test_model(self):
        m = self.model
        self.assertEqual(sorted(m.modalities), ["audio", "image", "point", "text"])
        self.assertGreater(m.dim, 0)
        self.assertTrue(m.name.startswith("omnibind:"))
        self.assertIn("dim=%d" % m.dim, repr(m))
        self.assertTrue(m.experts("audio"))
        self.assertEqual(len(m.slots("audio")), len(m.slots("audio")))

    # --- parity with `omnibind embed --model` ---------------------------------------------------------------

    def test_embed_files_equals_cli(self):
        for modality in ("image", "audio", "point"):
            files = self.files[modality]
            want = self.cli_embed(modality, files)[modality]
            got = self.model.embed_files(files)  # modality from the extension
            self.assertEqual(got.dtype, np.float32)
            self.assertEqual(got.shape, (len(files), self.model.dim))
            np.testing.assert_array_equal(got, want, err_msg=modality)
            want3 = self.cli_embed(modality, files, "--batch", "3")[modality]
            np.testing.assert_array_equal(self.model.embed_files(files, modality, batch_size=3), want3)
            close(want3, want)

    def test_return_experts_equals_cli_save_experts(self):
        files = self.files["audio"]
        want = self.cli_embed("audio", files, "--save-experts")
        emb, info = self.model.embed_files(files, return_experts=True)
        np.testing.assert_array_equal(emb, want["audio"])
        self.assertEqual(sorted(info["experts"]), sorted(k.split("/", 1)[1] for k in want if "/" in k))
        for name, rows in info["experts"].items():
            np.testing.assert_array_equal(rows, want["audio/" + name])
        w = info["routing_weights"]
        self.assertEqual(w.shape, (len(files), len(info["slots"])))
        np.testing.assert_allclose(w.sum(axis=1), 1, atol=1e-5)

    def test_prefetch_does_not_change_results(self):
        # Model.embed_* run pipeline::embed_stream (reading/preprocessing on a worker thread, `prefetch` batches
        # ahead), as `omnibind embed --model --prefetch N` does: the floats do not depend on the overlap.
        files = self.files["audio"]
        want = self.cli_embed("audio", files, "--batch", "4", "--prefetch", "0")["audio"]
        for prefetch in (0, 1, 3):
            np.testing.assert_array_equal(self.model.embed_files(files, batch_size=4, prefetch=prefetch), want)
        texts = ["a dog %d" % i for i in range(5)]
        np.testing.assert_array_equal(self.model.embed_texts(texts, batch_size=2, prefetch=0),
                                      self.model.embed_texts(texts, batch_size=2))
        self.assertInputError(lambda: self.model.embed_texts(["x"], prefetch=-1), "prefetch")

    def test_embed_files_refuses_another_modality_by_contents(self):
        # A PNG named .wav is an image by its bytes: refused before any expert runs, as `embed --modality audio`.
        disguised = self.path("picture.wav")
        with open(self.files["image"][0], "rb") as f, open(disguised, "wb") as g:
            g.write(f.read())
        msg = self.assertInputError(lambda: self.model.embed_files([disguised], "audio"), disguised)
        self.assertIn("image file, not audio", msg)
        # Without a modality it is guessed from the contents too.
        np.testing.assert_array_equal(self.model.embed_files([disguised]), self.model.embed_files(self.files["image"][:1]))

    def test_embed_texts_equals_cli(self):
        texts = ["a high buzzing sound", "a red round thing", "a tall shape", "dogs", "é ü ß 漢字"]
        want = self.cli_embed("text", [], *sum((["--text", t] for t in texts), []))["text"]
        np.testing.assert_array_equal(self.model.embed_texts(texts), want)
        np.testing.assert_array_equal(self.model.embed(text=texts), want)
        close(self.model.embed_texts(texts[0]), want[:1])
        txt = self.path("caption.txt")
        with open(txt, "w") as f:
            f.write(texts[1] + "\n")
        np.testing.assert_array_equal(self.model.embed_files([txt]), self.model.embed_texts([texts[1]]))

    def test_image_arrays_equal_cli(self):
        rng = np.random.default_rng(1)
        imgs = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8), rng.integers(0, 256, (20, 45, 3), dtype=np.uint8)]
        files = []
        for i, a in enumerate(imgs):
            files.append(self.path("img%d.png" % i))
            write_png(files[-1], a)
        want = self.cli_embed("image", files)["image"]
        np.testing.assert_array_equal(self.model.embed(image=imgs), want)
        np.testing.assert_array_equal(self.model.embed(image=imgs[0]), self.cli_embed("image", files[:1])["image"])
        np.testing.assert_array_equal(self.model.embed(image=np.stack([imgs[0], imgs[0]])),
                                      self.model.embed(image=[imgs[0], imgs[0]]))
        close(self.model.embed(image=imgs[0]), want[:1])
        # Non-contiguous views are read as their values.
        flipped = imgs[1][:, ::-1]
        np.testing.assert_array_equal(self.model.embed(image=flipped), self.model.embed(image=flipped.copy()))

    def test_audio_arrays_equal_cli(self):
        rng = np.random.default_rng(2)
        rate = self.rate
        mono = (rng.standard_normal(rate // 2) * 0.2).astype(np.float32)
        stereo = (rng.standard_normal((2, rate // 3)) * 0.2).astype(np.float32)
        pcm = (rng.standard_normal(rate // 2) * 5000).astype(np.int16)
        f_mono, f_stereo, f_pcm = self.path("mono.wav"), self.path("stereo.wav"), self.path("pcm.wav")
        write_float_wav(f_mono, mono, rate)
        write_float_wav(f_stereo, stereo, rate)
        write_pcm16_wav(f_pcm, pcm, rate)
        want = self.cli_embed("audio", [f_mono, f_stereo, f_pcm])["audio"]
        got = self.model.embed(audio=[(mono, rate), (stereo, rate), (pcm, rate)])
        np.testing.assert_array_equal(got, want)
        one = self.model.embed(audio=(mono, rate))
        np.testing.assert_array_equal(one, self.cli_embed("audio", [f_mono])["audio"])
        close(one, want[:1])
        # float64 is rounded to float32 as the decoder does for 64-bit float files.
        np.testing.assert_array_equal(self.model.embed(audio=(mono.astype(np.float64), rate)), one)
        # int16 PCM is exact: the same as the float samples x / 32768.
        np.testing.assert_array_equal(self.model.embed(audio=(pcm.astype(np.float32) / 32768, rate)),
                                      self.model.embed(audio=(pcm, rate)))

    def test_point_arrays_equal_cli(self):
        rng = np.random.default_rng(3)
        xyz = rng.standard_normal((700, 3)).astype(np.float32)
        xyzrgb = np.concatenate([rng.standard_normal((500, 3)), rng.random((500, 3))], axis=1)  # float64
        f1, f2 = self.path("a.npy"), self.path("b.npy")
        np.save(f1, xyz)
        np.save(f2, xyzrgb)
        want = self.cli_embed("point", [f1, f2])["point"]
        np.testing.assert_array_equal(self.model.embed(point=[xyz, xyzrgb]), want)
        np.testing.assert_array_equal(self.model.embed(point=np.asfortranarray(xyz)), self.model.embed(point=xyz))
        np.testing.assert_array_equal(self.model.embed(point=np.stack([xyz, xyz])), self.model.embed(point=[xyz, xyz]))
        close(self.model.embed(point=xyz), want[:1])

    # --- fuse ----------------------------------------------------------------------------------------------

    def test_fuse_equals_cli(self):
        files = self.files["image"]
        saved = self.cli_embed("image", files, "--save-experts")
        experts = {k: v for k, v in saved.items() if "/" in k}
        inp = self.path("experts.safetensors")
        write_safetensors(inp, experts)
        with open(os.path.join(self.bundle, "bundle.json")) as f:
            config = json.load(f)["binding"]
        cfg_file = self.path("binding.json")
        with open(cfg_file, "w") as f:
            json.dump(config, f)
        heads = os.path.join(self.bundle, "heads.safetensors")
        out = self.path("unified.safetensors")
        cli("fuse", "--head", heads, "--config", cfg_file, "--in", inp, "--out", out, "--threads", THREADS, "--batch", "8")
        want = read_safetensors(out)[0]["image"]
        np.testing.assert_array_equal(omnibind.fuse(heads, cfg_file, experts, batch_size=8)["image"], want)
        got = omnibind.fuse(heads, config, experts, batch_size=8)["image"]  # config as a dict
        np.testing.assert_array_equal(got, want)
        # The unified embedding of the bundle is the fusion of its experts' embeddings.
        np.testing.assert_array_equal(saved["image"], want)
        b = omnibind.Binding(heads, json.dumps(config))
        self.assertEqual(b.dim, self.model.dim)
        # Zero-copy views: Fortran order, a strided slice, float64 all give the same rows.
        views = {k: np.asfortranarray(v) for k, v in experts.items()}
        np.testing.assert_array_equal(b.fuse(views, batch_size=8)["image"], want)
        doubled = {k: np.repeat(v, 2, axis=0)[::2] for k, v in experts.items()}
        np.testing.assert_array_equal(b.fuse(doubled, batch_size=8)["image"], want)
        r = b.fuse(experts, routing_weights=True)
        self.assertEqual(r["image/routing_weights"].shape[0], len(files))

    def test_fuse_reads_c_contiguous_arrays_in_place(self):
        # numpy reports its allocations to tracemalloc (the engine's tensors are not): a copy of the input would
        # show as a peak of its size. The Fortran-ordered input shows that the probe sees copies.
        import tracemalloc
        b = omnibind.Binding(os.path.join(self.bundle, "heads.safetensors"))
        rng = np.random.default_rng(5)
        rows = 4096
        inputs = {"image/" + e: rng.standard_normal((rows, w), dtype=np.float32)
                  for e, w in zip(b.experts("image"), self.expert_widths("image"))}
        size = min(a.nbytes for a in inputs.values())
        fortran = {k: np.asfortranarray(v) for k, v in inputs.items()}
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            b.fuse(inputs)
            in_place = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            b.fuse(fortran)
            copied = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        self.assertLess(in_place, size // 4)
        self.assertGreaterEqual(copied, size)

    def expert_widths(self, modality):
        emb, info = self.model.embed_files(self.files[modality][:1], return_experts=True)
        return [info["experts"][e].shape[1] for e in self.model.experts(modality)]

    def test_progress_callback(self):
        calls = []
        self.model.embed_files(self.files["point"], batch_size=4, progress=lambda done, total: calls.append((done, total)))
        n = len(self.files["point"])
        self.assertEqual(calls, [(min(n, i + 4), n) for i in range(0, n, 4)])
        # progress=True: a tqdm bar (or a stderr line without tqdm); same numbers either way.
        np.testing.assert_array_equal(self.model.embed_files(self.files["point"], batch_size=4, progress=True),
                                      self.model.embed_files(self.files["point"], batch_size=4))
        self.assertInputError(lambda: self.model.embed_texts(["x"], progress=3), "progress")

    def test_quickstart_example_runs(self):
        script = os.path.join(HERE, "..", "..", "examples", "quickstart.py")
        r = subprocess.run([sys.executable, script, self.demo], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONPATH=os.path.dirname(omnibind.__file__)))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("audio -> point top-1 of the right class", r.stdout)

    # --- from_preset (omnibind convert --preset --from) -----------------------------------------------------

    def test_from_preset_lists_every_missing_file(self):
        # A success needs a folder of released files (the C++ test tests/cli/convert_release_test.cpp builds a mini
        # one from the shared fixtures); here the error path: every missing file at once, nothing written.
        empty = self.path("release")
        os.mkdir(empty)
        out = self.path("base.bundle")
        with self.assertRaises(omnibind.InputError) as cm:
            omnibind.Model.from_preset("base", from_dir=empty, out=out)
        msg = str(cm.exception)
        self.assertNotIn("\n", msg)
        missing = cm.exception.missing
        self.assertEqual(len(missing), 9, missing)  # heads, 3 WavCaps, EVA, Uni3D-L, ImageBind, BPE, BERT vocab
        for needle in ("checkpoints/projs/base.pt", "checkpoints/wavcaps/HTSAT-BERT-PT.pt", ".checkpoints/imagebind_huge.pth",
                       "bpe/bpe_simple_vocab_16e6.txt.gz", "bert-base-uncased", "--file WAVCAPS_PT=PATH"):
            self.assertTrue(any(needle in line for line in missing), needle)
            self.assertIn(needle, msg)
        self.assertIn("9 file(s) missing under " + empty, msg)
        self.assertFalse(os.path.exists(out))
        # The same lines `omnibind convert` prints.
        r = subprocess.run([CLI, "convert", "--preset", "base", "--from", empty, "--out", out], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(["omnibind convert: missing " + line for line in missing], r.stderr.splitlines()[:len(missing)])
        # A file given by name is no longer missing; unknown names and presets, a missing folder: one line.
        heads = os.path.join(self.bundle, "heads.safetensors")
        with self.assertRaises(omnibind.InputError) as cm:
            omnibind.Model.from_preset("base", from_dir=empty, out=out, files={"heads": heads})
        self.assertEqual(len(cm.exception.missing), 8)
        self.assertInputError(lambda: omnibind.Model.from_preset("base", from_dir=empty, out=out,
                                                                 files={"no_such_file": heads}), "no_such_file")
        self.assertInputError(lambda: omnibind.Model.from_preset("huge", from_dir=empty, out=out), "huge")
        self.assertInputError(lambda: omnibind.Model.from_preset("base", from_dir=self.path("absent"), out=out),
                              "not a directory")
        self.assertInputError(lambda: omnibind.Model.from_preset("base", from_dir=empty, out=out, files=["heads"]), "dict")
        self.assertInputError(lambda: omnibind.Model.from_preset("base", from_dir=empty, out=out, expert_files="move"),
                              "expert_files")
        self.assertFalse(os.path.exists(out))

    def test_from_preset_equals_cli_convert(self):
        # A Base release at the shared mini fixtures' widths with random weights (bench/make_random_release, as
        # bench/random_release_check.sh makes it), some files outside the release layout (named with files=).
        gen = os.environ.get("OMNIBIND_MAKE_RANDOM_RELEASE", os.path.join(os.path.dirname(CLI), "bench", "make_random_release"))
        shared = os.environ.get("OMNIBIND_SHARED_DIR") or os.path.join(HERE, "..", "..", "..", "shared")
        F = os.path.join(shared, "fixtures")
        if not os.path.exists(gen):
            self.skipTest("SKIPPED: %s is not built (ninja -C build make_random_release)" % gen)
        if not os.path.isdir(os.path.join(F, "wavcaps_mini")):
            self.skipTest("SKIPPED: the shared fixtures are absent (%s)" % F)
        uni3d = self.path("uni3d.json")
        with open(uni3d, "w") as f:
            json.dump({"pc_model": "eva_giant_patch14_560", "pc_feat_dim": 32, "embed_dim": 48, "num_group": 64,
                       "group_size": 16, "pc_encoder_dim": 64, "npoints": 10000,
                       "timm_overrides": {"embed_dim": 32, "depth": 2, "num_heads": 4}}, f)
        rel = self.path("release")
        subprocess.run([gen, "--preset", "base", "--out", rel, "--seed", "3", "--unified-dim", "64", "--heads-hidden", "32",
                        "--config", "wavcaps=%s/wavcaps_mini/config.json" % F, "--vocab", "wavcaps=%s/wavcaps_mini/vocab_mini.txt" % F,
                        "--config", "eva_clip=%s/eva02_clip_mini/config.json" % F, "--config", "uni3d=" + uni3d,
                        "--config", "imagebind=%s/imagebind_mini/config.json" % F], check=True, capture_output=True)
        files = {"EVA_E14p": os.path.join(rel, "EVA02_CLIP_E_psz14_plus_s9B.pt"), "IB": os.path.join(rel, "imagebind_huge.pth"),
                 "UNI3D_L": os.path.join(rel, "uni3d-g", "lvis", "model.pt"),
                 "bpe": os.path.join(shared, "data", "bpe", "bpe_simple_vocab_16e6.txt.gz"),
                 "bert_vocab": os.path.join(F, "wavcaps_mini", "vocab_mini.txt"),
                 "EVA_E14p.config": os.path.join(F, "eva02_clip_mini", "config.json"),
                 "IB.config": os.path.join(F, "imagebind_mini", "config.json"), "UNI3D_L.config": uni3d}
        for space in ("WAVCAPS_PT", "WAVCAPS_FT_aud", "WAVCAPS_FT_clo"):
            files[space + ".config"] = os.path.join(F, "wavcaps_mini", "config.json")
        out = self.path("py.bundle")
        m = omnibind.Model.from_preset("base", from_dir=rel, out=out, files=files, threads=int(THREADS))
        self.assertEqual(sorted(m.modalities), ["audio", "image", "point", "text"])
        self.assertEqual(m.dim, 64)
        self.assertEqual(m.path, out)
        cli_out = self.path("cli.bundle")
        cli("convert", "--preset", "base", "--from", rel, "--out", cli_out, *sum((["--file", "%s=%s" % kv] for kv in files.items()), []))
        with open(os.path.join(out, "bundle.json")) as f, open(os.path.join(cli_out, "bundle.json")) as g:
            self.assertEqual(json.load(f), json.load(g))
        texts = ["a dog barking", "rain on a roof"]
        want = read_safetensors(self.cli_embed_with(cli_out, "text", [], "--text", texts[0], "--text", texts[1]))[0]["text"]
        np.testing.assert_array_equal(m.embed_texts(texts), want)
        # Refused when out exists (overwrite=True replaces it), nothing else touched.
        self.assertInputError(lambda: omnibind.Model.from_preset("base", from_dir=rel, out=out, files=files))
        again = omnibind.Model.from_preset("base", from_dir=rel, out=out, files=files, overwrite=True, threads=int(THREADS))
        np.testing.assert_array_equal(again.embed_texts(texts), want)

    def cli_embed_with(self, bundle, modality, inputs, *extra):
        out = self.path(modality + ".safetensors")
        cli("embed", "--model", bundle, "--modality", modality, "--out", out, "--threads", THREADS, *extra, *inputs)
        return out

    # --- train / evaluate ----------------------------------------------------------------------------------

    def test_train_equals_cli(self):
        pools = os.path.join(self.demo, "pools", "train")
        cfg_file = self.path("binding.json")
        with open(os.path.join(self.bundle, "bundle.json")) as f, open(cfg_file, "w") as g:
            json.dump(json.load(f)["binding"], g)
        # The mined tuples depend on the thread count of the mining GEMMs: mine with the same count as the module.
        pairs = self.path("pairs.safetensors")
        cli("pairs", "--pools", pools, "--out", pairs, "--threads", THREADS, "--seed", "3", "--quiet")
        opts = ["--seed", "3", "--threads", THREADS, "--epochs-proj", "1", "--epochs-router", "1", "--batch", "64"]
        want_file = self.path("cli_heads.safetensors")
        cli("train", "--pools", pools, "--config", cfg_file, "--out", want_file, "--pairs", pairs, "--quiet", *opts)
        want = read_safetensors(want_file)[0]
        for given_pairs in (pairs, None):  # the CLI's tuples, then mined in the call
            got_file = self.path("py_heads.safetensors")
            stages = []
            r = omnibind.train(pools, cfg_file, got_file, pairs=given_pairs, seed=3, threads=int(THREADS), epochs_proj=1,
                               epochs_router=1, batch_size=64,
                               progress=lambda stage, fraction, loss: stages.append(fraction))
            self.assertEqual(r["out"], got_file)
            self.assertGreater(r["tuples"], 0)
            self.assertTrue(stages)
            got = read_safetensors(got_file)[0]
            self.assertEqual(sorted(want), sorted(got))
            for k in want:
                np.testing.assert_array_equal(got[k], want[k], err_msg=k)
        self.assertInputError(lambda: omnibind.train(pools, cfg_file, self.path("x.bin")), ".safetensors")
        self.assertInputError(lambda: omnibind.train(self.path("no_pools"), cfg_file, self.path("x.safetensors")))

    def test_evaluate_equals_cli(self):
        pools = os.path.join(self.demo, "pools", "eval")
        heads = os.path.join(self.bundle, "heads.safetensors")
        out = self.path("table.json")
        cli("eval", "--pools", pools, "--head", heads, "--json", out)
        with open(out) as f:
            want = json.load(f)
        got = omnibind.evaluate(pools, heads)
        self.assertEqual(got, want)
        self.assertTrue(got["rows"])
        self.assertInputError(lambda: omnibind.evaluate(self.path("no_pools"), heads))

    # --- index ---------------------------------------------------------------------------------------------

    def test_index(self):
        emb = self.model.embed_files(self.files["image"])
        n = len(emb)
        path = self.path("idx")
        idx = omnibind.Index(path, dim=self.model.dim)
        ids = idx.add(emb, [{"n": i, "parity": "even" if i % 2 == 0 else "odd"} for i in range(n)], modality="image",
                      sources=self.files["image"])
        self.assertEqual(list(ids), list(range(n)))
        self.assertEqual(len(idx), n)
        found, scores, items = idx.search(emb, k=3)
        self.assertEqual(found.shape, (n, 3))
        self.assertEqual(list(found[:, 0]), list(ids))
        np.testing.assert_allclose(scores[:, 0], 1, atol=1e-5)
        self.assertEqual(items[4][0]["metadata"], {"n": 4, "parity": "even"})
        self.assertEqual(items[4][0]["source"], self.files["image"][4])
        found, scores, items = idx.search(emb[1], k=n, where={"parity": "odd"})
        self.assertEqual(found.shape, (1, n))
        self.assertTrue(all(i % 2 == 1 for i in found[0] if i >= 0))
        self.assertEqual(int((found[0] >= 0).sum()), n // 2)
        self.assertTrue(np.all(np.isneginf(scores[0][found[0] < 0])))
        self.assertEqual(int((idx.search(emb[:1], k=2, where={"n": 3})[0] >= 0).sum()), 1)
        self.assertEqual(int((idx.search(emb[:1], k=2, modality="audio")[0] >= 0).sum()), 0)
        del idx
        again = omnibind.Index(path, readonly=True)
        self.assertEqual(len(again), n)
        np.testing.assert_allclose(again.vector(2), emb[2] / np.linalg.norm(emb[2]), atol=1e-6)
        with self.assertRaises(omnibind.InputError):
            again.add(emb, modality="image")

    def test_index_search_by_ids_and_composed_queries_equals_cli(self):
        emb = self.model.embed_files(self.files["image"])
        n = len(emb)
        path = self.path("idx")
        idx = omnibind.Index(path, dim=self.model.dim)
        idx.add(emb, modality="image", sources=self.files["image"])
        # ids=[...]: one query per stored item, its own vector.
        found, scores, items = idx.search(ids=[1, 4], k=3)
        self.assertEqual(found.shape, (2, 3))
        self.assertEqual(list(found[:, 0]), [1, 4])
        np.testing.assert_allclose(scores[:, 0], 1, atol=1e-5)
        np.testing.assert_array_equal(found, idx.search(np.stack([idx.vector(1), idx.vector(4)]), k=3)[0])
        self.assertEqual(list(idx.search(ids=np.array([2]), k=2, exclude=[2])[0][0]).count(2), 0)
        # query=[...]: one composed query, what `omnibind search --id/--add/--sub/--weight` computes.
        k = min(5, n)
        got_ids, got_scores, _ = idx.search(query=[(2, 1.0), (5, 0.5), (7, -0.25)], k=k)
        r = cli("search", path, "--id", "2", "--add", "id:5", "--sub", "id:7", "--weight", "1,0.5,0.25", "-k", k, "--json")
        want = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
        self.assertEqual(list(got_ids[0]), [w["id"] for w in want])
        np.testing.assert_allclose(got_scores[0], [w["score"] for w in want], rtol=0, atol=1e-6)
        # Vectors and ids mix; a bare item has weight 1; the sum is renormalised.
        v = emb[3] * 7.0
        mixed = idx.search(query=[v, 6], k=k)
        direct = emb[3] / np.linalg.norm(emb[3]) + idx.vector(6)
        np.testing.assert_array_equal(mixed[0], idx.search(direct / np.linalg.norm(direct), k=k)[0])
        np.testing.assert_allclose(mixed[1], idx.search(direct / np.linalg.norm(direct), k=k)[1], atol=1e-6)
        # Errors: one line each, nothing searched.
        self.assertInputError(lambda: idx.search(ids=[n + 100]), "no item with id %d" % (n + 100))
        self.assertInputError(lambda: idx.search(ids=[]), "empty")
        self.assertInputError(lambda: idx.search(query=[]), "empty")
        self.assertInputError(lambda: idx.search(query=[(1, 1.0), (1, -1.0)]))  # sums to zero
        self.assertInputError(lambda: idx.search(query=["a dog"]), "embed_texts")
        self.assertInputError(lambda: idx.search(query=[(1, "heavy")]), "weight")
        self.assertInputError(lambda: idx.search(query=[np.ones(3, np.float32)]), "3 dims")
        self.assertInputError(lambda: idx.search(query=(1, 2.0)), "query[1]")  # a query is a list of items or pairs
        self.assertInputError(lambda: idx.search(emb[0], ids=[1]), "exactly one")
        self.assertInputError(lambda: idx.search(), "exactly one")
        self.assertInputError(lambda: idx.search(ids=[0.5]), "integer")

    def test_index_errors(self):
        idx = omnibind.Index(self.path("idx"), dim=4)
        for bad, kw in [(np.ones((2, 5), np.float32), {"modality": "x"}),  # wrong width
                        (np.array([[1, np.nan, 0, 0]], np.float32), {"modality": "x"}),
                        (np.zeros((1, 4), np.float32), {"modality": "x"}),
                        (np.ones((1, 4), np.int64), {"modality": "x"}),
                        (np.ones((1, 4), np.float32), {}),  # no modality
                        (np.ones((2, 4), np.float32), {"modality": "x", "metadata": [{}]}),
                        (np.ones((1, 4), np.float32), {"modality": "x", "metadata": [{"f": object()}]})]:
            with self.assertRaises(omnibind.InputError, msg=repr((bad, kw))):
                idx.add(bad, **kw)
        self.assertEqual(len(idx), 0)
        with self.assertRaises(omnibind.InputError):
            omnibind.Index(self.path("absent"))
        with self.assertRaises(omnibind.InputError):
            idx.search(np.ones(3, np.float32))
        with self.assertRaises(omnibind.InputError):
            idx.search(np.ones(4, np.float32), exclude=["a"])
        with self.assertRaises(omnibind.InputError):
            idx.remove([0.5])
        with self.assertRaises(omnibind.InputError):
            idx.search(np.ones(4, np.float32), k=0)

    # --- errors --------------------------------------------------------------------------------------------

    def assertInputError(self, fn, contains=None):
        with self.assertRaises(omnibind.InputError) as cm:
            fn()
        msg = str(cm.exception)
        self.assertTrue(msg)
        self.assertNotIn("\n", msg)
        if contains:
            self.assertIn(contains, msg)
        return msg

    def test_errors(self):
        m = self.model
        rate = self.rate
        img = np.zeros((8, 8, 3), np.uint8)
        self.assertInputError(lambda: omnibind.Model(self.path("nothing")))
        self.assertInputError(lambda: m.embed_files([]), "empty")
        self.assertInputError(lambda: m.embed_texts([]), "empty")
        self.assertInputError(lambda: m.embed(image=[]), "empty")
        self.assertInputError(lambda: m.embed(), "exactly one")
        self.assertInputError(lambda: m.embed(image=img, text="x"), "exactly one")
        self.assertInputError(lambda: m.embed_texts(["ok", 3]), "texts[1]")
        self.assertInputError(lambda: m.embed_files([self.path("missing.png")]), "no such file")
        self.assertInputError(lambda: m.embed_files([self.dir]), "directory")
        self.assertInputError(lambda: omnibind.Model(self.bundle, precision="fp8"))
        unknown = self.path("a.xyz1")
        open(unknown, "w").close()
        self.assertInputError(lambda: m.embed_files([unknown]), "modality")
        self.assertInputError(lambda: m.embed_files(self.files["image"][:1] + self.files["audio"][:1]), "mix")
        self.assertInputError(lambda: m.embed_files(self.files["image"][:1], "smell"))
        self.assertInputError(lambda: m.embed_files(self.files["image"][:1], "audio"), self.files["image"][0])
        self.assertInputError(lambda: m.embed_texts(["x"], batch_size=0))
        # images
        self.assertInputError(lambda: m.embed(image=img.astype(np.float32)), "uint8")
        self.assertInputError(lambda: m.embed(image=np.zeros((8, 8), np.uint8)), "[height, width, 3]")
        self.assertInputError(lambda: m.embed(image=np.zeros((8, 8, 4), np.uint8)), "shape")
        self.assertInputError(lambda: m.embed(image=np.zeros((0, 8, 3), np.uint8)))
        self.assertInputError(lambda: m.embed(image=[img, "x"]), "image[1]")
        self.assertInputError(lambda: m.embed(image=np.array([object()] * 3)))
        # audio
        good = np.zeros(rate // 4, np.float32)
        nan = good.copy()
        nan[5] = np.nan
        self.assertInputError(lambda: m.embed(audio=(nan, rate)), "NaN")
        self.assertInputError(lambda: m.embed(audio=[(good, rate), (nan, rate)]), "audio[1]")
        self.assertInputError(lambda: m.embed(audio=(good, 0)), "sample rate")
        self.assertInputError(lambda: m.embed(audio=(good, 16000.5)), "sample rate")
        self.assertInputError(lambda: m.embed(audio=good), "sample_rate")
        self.assertInputError(lambda: m.embed(audio=(good.astype(np.int32), rate)), "int32")
        self.assertInputError(lambda: m.embed(audio=(np.zeros(0, np.float32), rate)), "no samples")
        self.assertInputError(lambda: m.embed(audio=(np.zeros((rate, 2), np.float32), rate)), ".T")
        self.assertInputError(lambda: m.embed(audio=(np.zeros((1, 2, 3), np.float32), rate)))
        # points
        pts = np.zeros((50, 3), np.float32)
        pts[3, 1] = np.inf
        self.assertInputError(lambda: m.embed(point=pts), "point[0]")
        self.assertInputError(lambda: m.embed(point=np.zeros((50, 4), np.float32)), "[N, 3]")
        self.assertInputError(lambda: m.embed(point=np.zeros((50, 3), np.int32)), "int32")
        self.assertInputError(lambda: m.embed(point=np.zeros((0, 3), np.float32)))
        # fuse
        heads = os.path.join(self.bundle, "heads.safetensors")
        b = omnibind.Binding(heads)  # the config in the heads' metadata
        name = b.experts("image")[0]
        key = "image/" + name
        self.assertInputError(lambda: b.fuse({}), "no inputs")
        self.assertInputError(lambda: b.fuse({"image": np.ones((1, 4), np.float32)}), "<modality>/<EXPERT>")
        self.assertInputError(lambda: b.fuse({"smell/X": np.ones((1, 4), np.float32)}))
        self.assertInputError(lambda: b.fuse({key: np.ones((1, 3), np.float32)}), "missing")
        self.assertInputError(lambda: b.fuse({k: np.ones((2, 1), np.float32) for k in ["image/" + e for e in b.experts("image")]}),
                              "width")
        self.assertInputError(lambda: b.fuse({key: np.ones((1, 4), np.int32)}), "float")
        self.assertInputError(lambda: omnibind.Binding(heads, "no-such-preset"), "preset")
        self.assertInputError(lambda: omnibind.fuse(heads, None, {key: "text"}))

    def test_nan_in_fuse_input(self):
        files = self.files["image"][:3]
        saved = self.cli_embed("image", files, "--save-experts")
        experts = {k: v.copy() for k, v in saved.items() if "/" in k}
        first = sorted(experts)[0]
        experts[first][1, 0] = np.nan
        heads = os.path.join(self.bundle, "heads.safetensors")
        self.assertInputError(lambda: omnibind.fuse(heads, None, experts), "NaN")

    # --- threads -------------------------------------------------------------------------------------------

    def test_concurrent_embeds(self):
        files = self.files["image"] + self.files["image"]
        texts = ["a sound %d" % i for i in range(24)]
        want_img = self.model.embed_files(files)
        want_txt = self.model.embed_texts(texts)
        results, errors = {}, []

        def work(i):
            try:
                results[i] = self.model.embed_files(files) if i % 2 == 0 else self.model.embed_texts(texts)
            except Exception as e:  # pragma: no cover
                errors.append(e)

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.assertEqual(errors, [])
        for i in range(4):
            np.testing.assert_array_equal(results[i], want_img if i % 2 == 0 else want_txt)

    def test_gil_released_while_computing(self):
        # Another Python thread keeps running while the model computes (it could not if the GIL were held).
        files = self.files["audio"] * 3
        ticks = [0]
        stop = threading.Event()

        def spin():
            while not stop.is_set():
                ticks[0] += 1

        before = []
        t = threading.Thread(target=spin)
        t.start()
        try:
            before.append(ticks[0])
            self.model.embed_files(files, batch_size=len(files))
            during = ticks[0] - before[0]
        finally:
            stop.set()
            t.join()
        self.assertGreater(during, 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
