// files/s of the WavCaps and LAION-CLAP audio front ends (decode + librosa-style load with libsoxr
// + features, from file paths), with a per-stage breakdown, against the Python path librosa +
// torchlibrosa / torchaudio (bench/python/audio_frontends_baseline.py) run in the same invocation
// when its packages import (it reports why not otherwise). Both single-threaded; best-of-N process
// CPU seconds. Prints one JSON object.
//   bench_audio_frontends [--repeat N] [--shared DIR] [--python /usr/bin/python3]
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "omnibind/media/audio.h"
#include "omnibind/preprocess/audio_waveform.h"
#include "omnibind/preprocess/clap_mel.h"
#include "omnibind/preprocess/torchlibrosa_logmel.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace fs = std::filesystem;
using namespace omnibind;

namespace {

std::vector<std::string> list(const std::vector<std::string>& dirs) {
  std::vector<std::string> out;
  for (const auto& d : dirs) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) continue;
    std::vector<std::string> here;
    for (const auto& e : fs::directory_iterator(d))
      if (e.path().extension() == ".wav") here.push_back(e.path().string());
    std::sort(here.begin(), here.end());
    out.insert(out.end(), here.begin(), here.end());
  }
  return out;
}

// Process CPU time (the machine is shared; both sides run one thread).
double cpu_now() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

template <class F>
double best_of(const std::vector<std::string>& files, int repeat, F&& f) {
  for (const auto& p : files) f(p);  // warm-up
  double best = std::numeric_limits<double>::infinity();
  for (int r = 0; r < repeat; ++r) {
    const double t0 = cpu_now();
    for (const auto& p : files) f(p);
    best = std::min(best, cpu_now() - t0);
  }
  return best;
}

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

preprocess::TorchlibrosaWeights weights_of(const std::string& path, const std::string& prefix_stft,
                                           const std::string& key_mel) {
  const auto st = tensor_io::read_safetensors(path);
  return preprocess::checked_torchlibrosa_weights(
      {tensor_io::to_tensor(st.tensors.at(prefix_stft + "conv_real.weight")).clone(),
       tensor_io::to_tensor(st.tensors.at(prefix_stft + "conv_imag.weight")).clone(),
       tensor_io::to_tensor(st.tensors.at(key_mel)).clone()},
      path);
}

at::Tensor as_tensor(const std::vector<float>& v) {
  return at::from_blob(const_cast<float*>(v.data()), {static_cast<int64_t>(v.size())}, at::kFloat).clone();
}

}  // namespace

int main(int argc, char** argv) {
  int repeat = 3;
  std::string shared = OMNIBIND_SHARED_DIR, python = "/usr/bin/python3";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--repeat") repeat = std::stoi(argv[i + 1]);
    else if (a == "--shared") shared = argv[i + 1];
    else if (a == "--python") python = argv[i + 1];
  }
  at::set_num_threads(1);
  const std::string wc = shared + "/fixtures/wavcaps_mini", cb = shared + "/fixtures/clap_mini/base";
  const auto files = list({wc + "/inputs", shared + "/fixtures/clap_mini/fusion/inputs"});
  if (files.empty() || !fs::exists(wc + "/weights.safetensors") || !fs::exists(cb + "/weights.safetensors")) {
    std::cerr << "bench_audio_frontends: fixtures wavcaps_mini / clap_mini absent under " << shared << "\n";
    return 2;
  }
  // The STFT / mel constants come from checkpoints (the mini fixtures store the full-size ones).
  const auto w_wc = weights_of(wc + "/weights.safetensors", "audio_encoder.audio_enc.audio_feats_extractor.mel_trans.stft.",
                               "audio_encoder.audio_enc.audio_feats_extractor.log_trans.melW");
  const auto w_cm = weights_of(cb + "/weights.safetensors", "audio_branch.spectrogram_extractor.stft.",
                               "audio_branch.logmel_extractor.melW");

  // Stage breakdown (the same work the full pipelines below do, split).
  const double decode_s = best_of(files, repeat, [](const std::string& p) { (void)media::decode_audio_file(p); });
  std::vector<media::Audio> decoded;
  for (const auto& p : files) decoded.push_back(media::decode_audio_file(p));
  auto each_decoded = [&](auto&& f) {
    return best_of({"all"}, repeat, [&](const std::string&) {
      for (size_t i = 0; i < decoded.size(); ++i) f(decoded[i], files[i]);
    });
  };
  const double load32_s = each_decoded([](const media::Audio& a, const std::string& p) { (void)preprocess::librosa_load(a, 32000, p); });
  const double load48_s = each_decoded([](const media::Audio& a, const std::string& p) { (void)preprocess::librosa_load(a, 48000, p); });
  const at::Tensor wave320 = as_tensor(std::vector<float>(320000, 0.01f));
  const double logmel_wc_s = best_of(files, repeat, [&](const std::string&) { (void)preprocess::torchlibrosa_logmel(wave320, w_wc, 320); });
  const at::Tensor wave480 = as_tensor(std::vector<float>(480000, 0.01f));
  const double htk_s = best_of(files, repeat, [&](const std::string&) { (void)preprocess::clap_log_mel(wave480); });

  // Full pipelines from file paths.
  const double wavcaps_s = best_of(files, repeat, [&](const std::string& p) {
    const auto w = preprocess::wavcaps_waveform(media::decode_audio_file(p), p);
    (void)preprocess::torchlibrosa_logmel(as_tensor(w).unsqueeze(0), w_wc, 320);
  });
  const double clap_g_s = best_of(files, repeat, [&](const std::string& p) {
    (void)preprocess::clap_audio_input(media::decode_audio_file(p), true, p);
  });
  const double clap_m_s = best_of(files, repeat, [&](const std::string& p) {
    const auto in = preprocess::clap_audio_input(media::decode_audio_file(p), false, p);
    (void)preprocess::torchlibrosa_logmel(in.waveform.unsqueeze(0), w_cm, 480);
  });

  const double n = static_cast<double>(files.size());
  nlohmann::json out;
  out["bench"] = "audio_frontends";
  out["threads"] = 1;
  out["measure"] = "best-of-N process CPU seconds for the whole file list";
  out["repeat_best_of"] = repeat;
  out["files"] = files.size();
  out["cpp"] = {
      {"wavcaps_files_per_s", n / wavcaps_s},   // decode + load 32k + pad/crop + torchlibrosa log-mel
      {"clap_g_files_per_s", n / clap_g_s},     // decode + load 48k + int16 + repeatpad/chunks + HTK mel fusion
      {"clap_m_files_per_s", n / clap_m_s},     // decode + load 48k + int16 + repeatpad/crop + torchlibrosa log-mel
      {"stage_seconds_per_file",
       {{"decode", decode_s / n}, {"librosa_load_32k_after_decode", load32_s / n},
        {"librosa_load_48k_after_decode", load48_s / n}, {"torchlibrosa_logmel_10s_32k", logmel_wc_s / n},
        {"clap_htk_log_mel_10s_48k", htk_s / n}}}};

  std::string cmd = shell_quote(python) + " " +
                    shell_quote(std::string(OMNIBIND_SOURCE_DIR) + "/bench/python/audio_frontends_baseline.py") +
                    " --repeat " + std::to_string(repeat) + " --wavcaps-weights " + shell_quote(wc + "/weights.safetensors") +
                    " --clap-weights " + shell_quote(cb + "/weights.safetensors") + " --files";
  for (const auto& p : files) cmd += " " + shell_quote(p);
  cmd += " 2>&1";
  std::string text;
  int rc = -1;
  if (FILE* pipe = popen(cmd.c_str(), "r")) {
    std::array<char, 4096> buf;
    size_t got;
    while ((got = fread(buf.data(), 1, buf.size(), pipe)) > 0) text.append(buf.data(), got);
    rc = pclose(pipe);
  }
  nlohmann::json py;
  try {
    py = nlohmann::json::parse(text.substr(text.find('{')));
  } catch (const std::exception&) {
    py = {{"error", "baseline produced no JSON (exit " + std::to_string(rc) + "): " + text.substr(0, 300)}};
  }
  if (!py.contains("error")) {
    for (const char* k : {"wavcaps", "clap_g", "clap_m"}) {
      const std::string key = std::string(k) + "_seconds";
      if (py.contains(key)) {
        py[std::string(k) + "_files_per_s"] = n / py[key].get<double>();
        out["speedup"][k] = py[key].get<double>() / (k == std::string("wavcaps") ? wavcaps_s : k == std::string("clap_g") ? clap_g_s : clap_m_s);
      }
    }
  }
  out["python_reference"] = py;
  std::cout << out.dump(1) << "\n";
  return 0;
}
