// Issue 13 item 8: speed of the WavCaps and LAION-CLAP experts at the released widths with random
// weights (experts::WeightSource::random, no file needed), fp32 and bf16, against OmniBind's
// reference PyTorch modules on the same machine, threads and inputs, in the same run.
//
//   audio  wavcaps (HTSAT 96/[2,2,6,2]/[4,8,16,32] + audio_proj 768->1024->1024), clap-fusion
//          (HTSAT-tiny + AFF-2D, CLAP_G) and clap-base (HTSAT-base 128/[2,2,12,2], CLAP_M), each with
//          its projection + normalisation: clips/s from the model's log-mel input [B, C, 1001, 64]
//          (C = 4 for clap-fusion, every clip 'longer' unless --fusion-longer 0).
//   text   bert (bert-base-uncased, [CLS] state, text_proj 768->1024->1024, WavCaps) and roberta
//          (roberta-base + pooler, text_projection 768->512->512, CLAP): texts/s from token ids
//          [B, L] (L = 30 / 77, row i holds 12 + (7 i mod 19) tokens; the baseline builds the same).
//   preprocessing  decode + librosa-style load (libsoxr) + pad/crop + log-mel per clip, for the
//          three audio front ends (WavCaps / CLAP_M torchlibrosa log-mel with the model's matrices,
//          CLAP_G int16 round trip + HTK mel fusion), on the shared demo clips and FSDD clips.
//          Also the in-model torchlibrosa log-mel alone (10 s clip), which the tower rows exclude.
//
// Baseline: with --baseline-python PY --reference-dir DIR (an extracted zehanwang01/OmniBind tree or
// a fetched git mirror), bench/python/audio_text_experts_baseline.py runs the reference modules
// (vendored htsat.py, transformers_430 BertModel / RobertaModel) right after ours, model by model;
// without them, or when the reference does not import, the baseline is reported unavailable.
// Times: best-of-iters wall seconds per batch (the machine is shared) and mean process CPU seconds.
// Ratios: reference fp32 seconds / ours (fp32 and bf16), on best wall; aims fp32 >= 1.0, bf16 >= 1.5.
// Output: JSON lines ("kind": "ours" | "reference" | "ratio" | "preprocess" | "logmel" | "probe" |
// "gemm_probe"), then one "summary" object. Probes (ours only, not part of the comparison): roberta on
// the texts cut to their longest real length (what trimming CLAP's 77-token padding would give, with
// the largest embedding difference), and one BERT FFN GEMM in fp32 / bf16 / bf16-stored-fp32-computed.
//   bench_audio_text_experts [--models wavcaps,clap-fusion,clap-base,bert,roberta] [--precision fp32,bf16]
//       [--audio-batches 1,8] [--text-batches 8,32] [--threads 1] [--warmup 1] [--iters 3]
//       [--fusion-longer 1] [--baseline-python /usr/bin/python3 --reference-dir DIR] [--baseline-bf16 0]
//       [--shared DIR] [--fsdd-clips 20] [--preprocess 1] [--gemm-probe 1] [--trim-probe 1]
//       [--bf16-audio-batches 1] [--bf16-text-batches 8] [--bf16-iters N]  (bf16 rows only at those batches,
//       N iterations without warm-up: on CPUs without bf16 units a bf16 GEMM is ~30-50x slower than fp32)
#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "omnibind/common/process_memory.h"
#include "omnibind/experts/clap/clap_config.h"
#include "omnibind/experts/clap/clap_model.h"
#include "omnibind/experts/wavcaps/wavcaps_config.h"
#include "omnibind/experts/wavcaps/wavcaps_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/media/audio.h"
#include "omnibind/preprocess/audio_waveform.h"
#include "omnibind/preprocess/clap_mel.h"
#include "omnibind/preprocess/torchlibrosa_logmel.h"
#include "omnibind/tensor_io/compute_threads.h"

namespace fs = std::filesystem;
using namespace omnibind;
namespace wavcaps = omnibind::experts::wavcaps;
namespace clap = omnibind::experts::clap;
using nlohmann::json;

namespace {

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string p; std::getline(ss, p, ',');)
    if (!p.empty()) out.push_back(p);
  return out;
}

std::vector<int> split_ints(const std::string& s) {
  std::vector<int> out;
  for (const auto& p : split(s)) out.push_back(std::stoi(p));
  return out;
}

double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

struct Timing {
  double best_wall = 0, mean_wall = 0, mean_cpu = 0;
};

Timing time_it(int warmup, int iters, const std::function<void()>& f) {
  for (int i = 0; i < warmup; ++i) f();
  Timing t;
  t.best_wall = std::numeric_limits<double>::infinity();
  const double c0 = cpu_now();
  for (int i = 0; i < iters; ++i) {
    const auto s = std::chrono::steady_clock::now();
    f();
    const double w = std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count();
    t.best_wall = std::min(t.best_wall, w);
    t.mean_wall += w / iters;
  }
  t.mean_cpu = (cpu_now() - c0) / iters;
  return t;
}

double r4(double x) { return std::round(x * 1e4) / 1e4; }

void emit(const json& j) {
  std::cout << j.dump() << "\n" << std::flush;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// Token ids + mask [B, L], the formula bench/python/audio_text_experts_baseline.py uses.
std::pair<at::Tensor, at::Tensor> text_inputs(int64_t batch, int64_t length, bool bert) {
  const int64_t cls = bert ? 101 : 0, sep = bert ? 102 : 2, pad = bert ? 0 : 1, lo = 1000, hi = bert ? 30000 : 50000;
  at::Tensor ids = at::full({batch, length}, pad, at::kLong), mask = at::zeros({batch, length}, at::kLong);
  auto I = ids.accessor<int64_t, 2>();
  auto M = mask.accessor<int64_t, 2>();
  for (int64_t i = 0; i < batch; ++i) {
    const int64_t n = std::min<int64_t>(length, 12 + (7 * i) % 19);
    I[i][0] = cls;
    for (int64_t j = 1; j < n - 1; ++j) I[i][j] = lo + (i * 7919 + j * 104729) % (hi - lo);
    I[i][n - 1] = sep;
    for (int64_t j = 0; j < n; ++j) M[i][j] = 1;
  }
  return {ids, mask};
}

// Runs the baseline for one model; one JSON object per (precision, batch), or one unavailable line.
std::vector<json> baseline(const std::string& python, const std::string& ref_dir, const std::string& model,
                           const std::string& precisions, const std::vector<int>& batches, int threads, int warmup,
                           int iters, int longer) {
  if (python.empty() || ref_dir.empty())
    return {{{"impl", "pytorch-reference"}, {"model", model}, {"available", false},
             {"reason", "not requested (--baseline-python and --reference-dir)"}}};
  if (!fs::exists(ref_dir))
    return {{{"impl", "pytorch-reference"}, {"model", model}, {"available", false},
             {"reason", "reference directory absent: " + ref_dir}}};
  std::string b;
  for (int x : batches) b += (b.empty() ? "" : ",") + std::to_string(x);
  const std::string cmd = shell_quote(python) + " " +
                          shell_quote(std::string(OMNIBIND_SOURCE_DIR) + "/bench/python/audio_text_experts_baseline.py") +
                          " --reference-dir " + shell_quote(ref_dir) + " --model " + model + " --precision " +
                          precisions + " --batches " + b + " --threads " + std::to_string(threads) + " --warmup " +
                          std::to_string(warmup) + " --iters " + std::to_string(iters) + " --longer " +
                          std::to_string(longer) + " 2>/dev/null";
  std::string text;
  int rc = -1;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    std::array<char, 4096> buf;
    size_t got;
    while ((got = fread(buf.data(), 1, buf.size(), p)) > 0) text.append(buf.data(), got);
    rc = pclose(p);
  }
  std::vector<json> out;
  std::stringstream ss(text);
  for (std::string line; std::getline(ss, line);) {
    if (line.empty() || line[0] != '{') continue;
    try {
      out.push_back(json::parse(line));
    } catch (const json::exception&) {
    }
  }
  if (out.empty())
    out.push_back({{"impl", "pytorch-reference"}, {"model", model}, {"available", false},
                   {"reason", "baseline printed no JSON (exit " + std::to_string(rc) + ")"}});
  return out;
}

std::vector<std::string> wav_files(const std::string& shared, int fsdd_clips) {
  std::vector<std::string> out, fsdd;
  std::error_code ec;
  const std::string demo = shared + "/data/demo", f = shared + "/data/fsdd";
  if (fs::is_directory(demo, ec))
    for (const auto& e : fs::directory_iterator(demo))
      if (e.path().extension() == ".wav") out.push_back(e.path().string());
  std::sort(out.begin(), out.end());
  if (fs::is_directory(f, ec))
    for (const auto& e : fs::directory_iterator(f))
      if (e.path().extension() == ".wav") fsdd.push_back(e.path().string());
  std::sort(fsdd.begin(), fsdd.end());
  if (static_cast<int>(fsdd.size()) > fsdd_clips) fsdd.resize(fsdd_clips);
  out.insert(out.end(), fsdd.begin(), fsdd.end());
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  common::keep_freed_memory_in_process();
  std::string models_arg = "wavcaps,clap-fusion,clap-base,bert,roberta", precision_arg = "fp32,bf16";
  std::string audio_batches_arg = "1,8", text_batches_arg = "8,32", python, ref_dir, shared = OMNIBIND_SHARED_DIR;
  int threads = 1, warmup = 1, iters = 3, fusion_longer = 1, baseline_bf16 = 0, fsdd_clips = 20, do_pre = 1;
  int bf16_iters = 0, gemm_probe = 1, trim_probe = 1;  // 0: same as --iters
  std::string bf16_audio_arg, bf16_text_arg;  // empty: the same batches as fp32
  for (int i = 1; i < argc; i += 2) {
    const std::string k = argv[i];
    if (i + 1 >= argc) {
      std::fprintf(stderr, "bench_audio_text_experts: option %s needs a value\n", k.c_str());
      return 2;
    }
    const std::string v = argv[i + 1];
    if (k == "--models") models_arg = v;
    else if (k == "--precision") precision_arg = v;
    else if (k == "--audio-batches") audio_batches_arg = v;
    else if (k == "--text-batches") text_batches_arg = v;
    else if (k == "--threads") threads = std::stoi(v);
    else if (k == "--warmup") warmup = std::stoi(v);
    else if (k == "--iters") iters = std::max(1, std::stoi(v));
    else if (k == "--fusion-longer") fusion_longer = std::stoi(v);
    else if (k == "--baseline-python") python = v;
    else if (k == "--reference-dir") ref_dir = v;
    else if (k == "--baseline-bf16") baseline_bf16 = std::stoi(v);
    else if (k == "--shared") shared = v;
    else if (k == "--fsdd-clips") fsdd_clips = std::stoi(v);
    else if (k == "--preprocess") do_pre = std::stoi(v);
    else if (k == "--bf16-audio-batches") bf16_audio_arg = v;
    else if (k == "--bf16-text-batches") bf16_text_arg = v;
    else if (k == "--bf16-iters") bf16_iters = std::stoi(v);
    else if (k == "--gemm-probe") gemm_probe = std::stoi(v);
    else if (k == "--trim-probe") trim_probe = std::stoi(v);
    else {
      std::fprintf(stderr, "bench_audio_text_experts: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  threads = tensor_io::set_compute_threads(threads);
  const auto precisions = split(precision_arg);
  const auto audio_batches = split_ints(audio_batches_arg), text_batches = split_ints(text_batches_arg);
  json summary = {{"kind", "summary"}, {"threads", threads}, {"warmup", warmup}, {"iters", iters}};
  c10::InferenceMode guard;

  // One random model per family and precision; the audio and text rows share it.
  std::map<std::string, wavcaps::WavCapsModel> wavcaps_models;
  std::map<std::string, clap::ClapModel> clap_models;  // key: size + precision
  auto dtype_of = [](const std::string& p) { return p == "bf16" ? at::kBFloat16 : at::kFloat; };
  auto wavcaps_model = [&](const std::string& prec) -> const wavcaps::WavCapsModel& {
    auto it = wavcaps_models.find(prec);
    if (it == wavcaps_models.end())
      it = wavcaps_models
               .emplace(prec, wavcaps::WavCapsModel::load(experts::WeightSource::random(at::kFloat, 1),
                                                          wavcaps::wavcaps_released_config(), dtype_of(prec)))
               .first;
    return it->second;
  };
  auto clap_model = [&](const std::string& size, const std::string& prec) -> const clap::ClapModel& {
    auto it = clap_models.find(size + prec);
    if (it == clap_models.end())
      it = clap_models
               .emplace(size + prec, clap::ClapModel::load(experts::WeightSource::random(at::kFloat, 2),
                                                           clap::clap_released_config(size), dtype_of(prec)))
               .first;
    return it->second;
  };

  for (const std::string& model : split(models_arg)) {
    const bool audio = model == "wavcaps" || model == "clap-fusion" || model == "clap-base";
    if (!audio && model != "bert" && model != "roberta") {
      std::fprintf(stderr, "bench_audio_text_experts: unknown model %s\n", model.c_str());
      return 2;
    }
    const auto& batches = audio ? audio_batches : text_batches;
    const std::string unit = audio ? "clips_per_s" : "texts_per_s";
    std::map<std::string, double> ours_best, ours_cpu;  // precision/batch -> best wall / mean CPU seconds
    for (const auto& prec : precisions) {
      const auto t0 = std::chrono::steady_clock::now();
      std::function<at::Tensor(const at::Tensor&, const at::Tensor&)> run;
      if (model == "wavcaps" || model == "bert") {
        const auto& m = wavcaps_model(prec);
        if (audio) run = [&m](const at::Tensor& mel, const at::Tensor&) { return m.audio_embed(mel); };
        else run = [&m](const at::Tensor& ids, const at::Tensor& mask) { return m.text_embed(ids, mask); };
      } else {
        const auto& m = clap_model(model == "clap-base" ? "base" : "fusion", prec);
        if (audio)
          run = [&m, fusion_longer](const at::Tensor& mel, const at::Tensor&) {
            std::vector<bool> longer;
            if (m.config.fusion()) longer.assign(mel.size(0), fusion_longer != 0);
            return m.audio_embed(mel, longer);
          };
        else run = [&m](const at::Tensor& ids, const at::Tensor& mask) { return m.text_embed(ids, mask); };
      }
      const double init_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      for (int batch : batches) {
        const bool bf16 = prec == "bf16";
        const std::string& only = audio ? bf16_audio_arg : bf16_text_arg;  // bf16 is slow on CPUs without bf16 units
        if (bf16 && !only.empty()) {
          const auto keep = split_ints(only);
          if (std::find(keep.begin(), keep.end(), batch) == keep.end()) continue;
        }
        const int w_n = bf16 && bf16_iters > 0 ? 0 : warmup, i_n = bf16 && bf16_iters > 0 ? bf16_iters : iters;
        at::Tensor a, b;
        if (audio) {
          at::manual_seed(0);
          a = at::randn({batch, model == "clap-fusion" ? 4 : 1, 1001, 64}) * 20 - 40;
        } else {
          std::tie(a, b) = text_inputs(batch, model == "bert" ? 30 : 77, model == "bert");
        }
        const Timing t = time_it(w_n, i_n, [&] { (void)run(a, b); });
        ours_best[prec + "/" + std::to_string(batch)] = t.best_wall;
        ours_cpu[prec + "/" + std::to_string(batch)] = t.mean_cpu;
        emit({{"kind", "ours"}, {"impl", "omnibind-cpp"}, {"model", model}, {"precision", prec}, {"batch", batch},
              {"threads", threads}, {"warmup", w_n}, {"iters", i_n}, {"seconds_best", r4(t.best_wall)}, {"seconds_mean", r4(t.mean_wall)},
              {"cpu_seconds_mean", r4(t.mean_cpu)}, {unit, r4(batch / t.best_wall)},
              {"random_init_s", r4(init_s)}});
        if (model == "roberta" && trim_probe && prec == "fp32") {
          // What dropping the all-padding columns would give (CLAP pads every text to 77; padded keys
          // get float32-min scores, so the real tokens' outputs do not depend on them): ours on
          // ids[:, :longest], with the largest difference to the full-length embeddings.
          const int64_t longest = b.sum(1).max().item<int64_t>();
          const at::Tensor at_ = a.narrow(1, 0, longest).contiguous(), bt = b.narrow(1, 0, longest).contiguous();
          const Timing tt = time_it(w_n, i_n, [&] { (void)run(at_, bt); });
          const double diff = (run(a, b) - run(at_, bt)).abs().max().item<double>();
          emit({{"kind", "probe"}, {"impl", "omnibind-cpp"}, {"model", "roberta-trimmed-padding"}, {"precision", prec},
                {"batch", batch}, {"threads", threads}, {"tokens", longest}, {"seconds_best", r4(tt.best_wall)},
                {"cpu_seconds_mean", r4(tt.mean_cpu)}, {unit, r4(batch / tt.best_wall)},
                {"max_abs_diff_vs_77", diff}, {"speedup_cpu_vs_77", r4(t.mean_cpu / tt.mean_cpu)}});
        }
      }
    }
    // The reference right after ours, same shapes, batches and threads.
    const std::string ref_prec = baseline_bf16 ? "fp32,bf16" : "fp32";
    std::map<std::string, json> ref_rows;
    for (json& r : baseline(python, ref_dir, model, ref_prec, batches, threads, warmup, iters, fusion_longer)) {
      r["kind"] = "reference";
      emit(r);
      if (r.value("available", false))
        ref_rows[r["precision"].get<std::string>() + "/" + std::to_string(r["batch"].get<int>())] = r;
    }
    for (int batch : batches) {
      json ratio = {{"kind", "ratio"}, {"model", model}, {"batch", batch}, {"threads", threads},
                    {"measure", "reference fp32 best wall seconds / ours (fp32, bf16); *_cpu: mean process CPU seconds"}};
      const auto ref = ref_rows.find("fp32/" + std::to_string(batch));
      json row = {{"batch", batch}};
      for (const auto& prec : precisions) {
        const std::string key = prec + "/" + std::to_string(batch);
        if (!ours_best.count(key)) continue;
        const double ours = ours_best[key];
        row["ours_" + prec + "_" + unit] = r4(batch / ours);
        row["ours_" + prec + "_cpu_s"] = r4(ours_cpu[key]);
        if (ref != ref_rows.end()) {
          const double x = ref->second["seconds_best"].get<double>() / ours;
          ratio[prec + "_cpu"] = r4(ref->second["cpu_seconds_mean"].get<double>() / ours_cpu[key]);
          ratio[prec] = r4(x);
          ratio[prec + "_aim"] = prec == "bf16" ? 1.5 : 1.0;
          ratio[prec + "_meets_aim"] = x >= (prec == "bf16" ? 1.5 : 1.0);
        }
      }
      if (ref != ref_rows.end()) {
        row["reference_fp32_" + unit] = ref->second[unit];
        row["reference_fp32_cpu_s"] = ref->second["cpu_seconds_mean"];
        for (const auto& prec : precisions)
          if (ratio.contains(prec)) {
            row["ratio_" + prec] = ratio[prec];
            row["ratio_" + prec + "_cpu"] = ratio[prec + "_cpu"];
          }
        emit(ratio);
      }
      const auto ref_bf = ref_rows.find("bf16/" + std::to_string(batch));
      if (ref_bf != ref_rows.end()) row["reference_bf16_" + unit] = ref_bf->second[unit];
      summary["models"][model].push_back(row);
    }
  }
  // Free the models before the preprocessing part.
  wavcaps_models.clear();
  clap_models.clear();

  if (do_pre) {
    const auto files = wav_files(shared, fsdd_clips);
    if (files.empty()) {
      emit({{"kind", "preprocess"}, {"available", false}, {"reason", "no .wav under " + shared + "/data/{demo,fsdd}"}});
    } else {
      // Front-end matrices of the right shapes (values do not change the work): random, as the towers.
      experts::WeightSource w = experts::WeightSource::random(at::kFloat, 3);
      const preprocess::TorchlibrosaWeights fe = preprocess::checked_torchlibrosa_weights(
          {w.get("conv_real", {513, 1, 1024}), w.get("conv_imag", {513, 1, 1024}), w.get("melW", {513, 64})},
          "random front end");
      double seconds_of_audio = 0;
      for (const auto& p : files) {
        const media::Audio a = media::decode_audio_file(p);
        seconds_of_audio += static_cast<double>(a.frames()) / a.sample_rate;
      }
      const double n = static_cast<double>(files.size());
      auto each = [&](const std::function<void(const std::string&)>& f) {
        return time_it(1, iters, [&] {
          for (const auto& p : files) f(p);
        });
      };
      std::map<std::string, Timing> t;
      t["decode"] = each([](const std::string& p) { (void)media::decode_audio_file(p); });
      t["wavcaps"] = each([&](const std::string& p) {
        const auto wave = preprocess::wavcaps_waveform(media::decode_audio_file(p), p);
        (void)preprocess::torchlibrosa_logmel(
            at::from_blob(const_cast<float*>(wave.data()), {1, static_cast<int64_t>(wave.size())}, at::kFloat), fe, 320);
      });
      t["clap-fusion"] = each([](const std::string& p) {
        (void)preprocess::clap_audio_input(media::decode_audio_file(p), true, p);
      });
      t["clap-base"] = each([&](const std::string& p) {
        const auto in = preprocess::clap_audio_input(media::decode_audio_file(p), false, p);
        (void)preprocess::torchlibrosa_logmel(in.waveform.unsqueeze(0), fe, 480);
      });
      json pre = {{"kind", "preprocess"}, {"impl", "omnibind-cpp"}, {"threads", threads}, {"files", files.size()},
                  {"audio_seconds", r4(seconds_of_audio)},
                  {"measure", "best-of-iters wall over the file list; cpu = mean process CPU"},
                  {"baseline", "librosa is not installable on this machine (not in Debian); no same-run librosa column"}};
      for (const auto& [k, v] : t) {
        pre[k] = {{"clips_per_s", r4(n / v.best_wall)}, {"clips_per_cpu_s", r4(n / v.mean_cpu)}};
      }
      pre["includes"] = {{"wavcaps", "decode + soxr 32 kHz + pad/crop 10 s + torchlibrosa log-mel (hop 320)"},
                         {"clap-fusion", "decode + soxr 48 kHz + int16 round trip + repeatpad + HTK mel fusion [4,1001,64]"},
                         {"clap-base", "decode + soxr 48 kHz + int16 round trip + repeatpad/crop + torchlibrosa log-mel (hop 480)"}};
      emit(pre);
      summary["preprocess"] = pre;
    }
    // The in-model torchlibrosa front end alone (excluded from the tower rows above), one 10 s clip.
    experts::WeightSource w = experts::WeightSource::random(at::kFloat, 4);
    const preprocess::TorchlibrosaWeights fe = preprocess::checked_torchlibrosa_weights(
        {w.get("conv_real", {513, 1, 1024}), w.get("conv_imag", {513, 1, 1024}), w.get("melW", {513, 64})}, "random");
    json lm = {{"kind", "logmel"}, {"impl", "omnibind-cpp"}, {"threads", threads}};
    for (auto [name, samples, hop] : {std::tuple<const char*, int64_t, int64_t>{"wavcaps_32k_hop320", 320000, 320},
                                      {"clap_base_48k_hop480", 480000, 480}}) {
      at::manual_seed(0);
      const at::Tensor wave = at::randn({1, samples}) * 0.1;
      const Timing tl = time_it(1, iters, [&] { (void)preprocess::torchlibrosa_logmel(wave, fe, hop); });
      lm[name] = {{"seconds_best", r4(tl.best_wall)}, {"clips_per_s", r4(1 / tl.best_wall)}};
    }
    emit(lm);
    summary["logmel_in_model"] = lm;
  }
  if (gemm_probe) {
    // Why bf16 is slow here: one BERT-base FFN GEMM ([B*L, 768] x [768, 3072]) in fp32, in bf16 (what
    // bf16 linears run), and bf16-stored weights cast to fp32 per call (the same memory saving).
    json g = {{"kind", "gemm_probe"}, {"threads", threads}, {"shape", "x[240,768] . W[3072,768]^T + b"}};
    at::manual_seed(0);
    const at::Tensor x = at::randn({240, 768}), wt = at::randn({3072, 768}) * 0.02, bias = at::zeros({3072});
    const at::Tensor xb = x.to(at::kBFloat16), wb = wt.to(at::kBFloat16), bb = bias.to(at::kBFloat16);
    const double flop = 2.0 * 240 * 768 * 3072;
    const Timing f = time_it(1, 5, [&] { (void)at::linear(x, wt, bias); });
    const Timing b = time_it(0, 1, [&] { (void)at::linear(xb, wb, bb); });
    const Timing c = time_it(1, 5, [&] { (void)at::linear(x, wb.to(at::kFloat), bias); });
    g["fp32_gflops"] = r4(flop / f.best_wall * 1e-9);
    g["bf16_gflops"] = r4(flop / b.best_wall * 1e-9);
    g["bf16_weights_fp32_compute_gflops"] = r4(flop / c.best_wall * 1e-9);
    emit(g);
    summary["gemm_probe"] = g;
  }
  emit(summary);
  return 0;
}
