// files/s of ImageBind image and audio preprocessing (decode + transform, from file paths), against
// the reference Python pipeline (bench/python/imagebind_preprocess_baseline.py) run in the same
// invocation. Both single-threaded; best-of-N process CPU seconds. Prints one JSON object.
//   bench_imagebind_preprocess [--repeat N] [--shared DIR] [--python /usr/bin/python3]
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "omnibind/common/process_memory.h"
#include "omnibind/media/audio.h"
#include "omnibind/media/image.h"
#include "omnibind/preprocess/imagebind_audio.h"
#include "omnibind/preprocess/imagebind_image.h"

namespace fs = std::filesystem;
using namespace omnibind;

namespace {

std::vector<std::string> list(const std::vector<std::string>& dirs, const std::vector<std::string>& exts) {
  std::vector<std::string> out;
  for (const auto& d : dirs) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) continue;
    std::vector<std::string> here;
    for (const auto& e : fs::directory_iterator(d)) {
      const std::string ext = e.path().extension().string();
      if (std::find(exts.begin(), exts.end(), ext) != exts.end()) here.push_back(e.path().string());
    }
    std::sort(here.begin(), here.end());
    out.insert(out.end(), here.begin(), here.end());
  }
  return out;
}

// Process CPU time: the machine is shared by several busy users, and both sides are
// single-threaded, so CPU time is the stable measure of the work (the baseline uses the same).
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

}  // namespace

int main(int argc, char** argv) {
  omnibind::common::keep_freed_memory_in_process();  // large tensors reuse heap pages (process_memory.h)
  int repeat = 5;
  std::string shared = OMNIBIND_SHARED_DIR, python = "/usr/bin/python3";
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--repeat") repeat = std::stoi(argv[i + 1]);
    else if (a == "--shared") shared = argv[i + 1];
    else if (a == "--python") python = argv[i + 1];
  }
  at::set_num_threads(1);
  const std::vector<std::string> dirs = {shared + "/data/demo", shared + "/fixtures/imagebind_mini/inputs"};
  const auto images = list(dirs, {".jpg", ".jpeg", ".png"});
  const auto audios = list(dirs, {".wav", ".flac", ".ogg"});
  if (images.empty() || audios.empty()) {
    std::cerr << "bench_imagebind_preprocess: no inputs under " << shared << "\n";
    return 2;
  }
  const double img_s = best_of(images, repeat, [](const std::string& p) {
    (void)preprocess::imagebind_image_input(media::decode_image_file(p));
  });
  const double aud_s = best_of(audios, repeat, [](const std::string& p) {
    (void)preprocess::imagebind_audio_input(media::decode_audio_file(p));
  });

  nlohmann::json out;
  out["bench"] = "imagebind_preprocess";
  out["threads"] = 1;
  out["measure"] = "best-of-N process CPU seconds for the whole file list (decode + preprocess)";
  out["repeat_best_of"] = repeat;
  out["images"] = images.size();
  out["audios"] = audios.size();
  out["cpp"] = {{"image_seconds", img_s}, {"audio_seconds", aud_s},
                {"image_files_per_s", images.size() / img_s}, {"audio_files_per_s", audios.size() / aud_s}};

  // Baseline: the reference pipeline in Python, same files, same run.
  std::string cmd = shell_quote(python) + " " + shell_quote(std::string(OMNIBIND_SOURCE_DIR) +
                                                            "/bench/python/imagebind_preprocess_baseline.py") +
                    " --repeat " + std::to_string(repeat) + " --images";
  for (const auto& p : images) cmd += " " + shell_quote(p);
  cmd += " --audios";
  for (const auto& p : audios) cmd += " " + shell_quote(p);
  cmd += " 2>/dev/null";
  std::string text;
  if (FILE* pipe = popen(cmd.c_str(), "r")) {
    std::array<char, 4096> buf;
    size_t n;
    while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) text.append(buf.data(), n);
    const int rc = pclose(pipe);
    if (rc == 0) {
      try {
        const auto py = nlohmann::json::parse(text);
        const double pi = py.at("image_seconds"), pa = py.at("audio_seconds");
        out["python_reference"] = py;
        out["python_reference"]["image_files_per_s"] = images.size() / pi;
        out["python_reference"]["audio_files_per_s"] = audios.size() / pa;
        out["speedup"] = {{"image", pi / img_s}, {"audio", pa / aud_s}};
      } catch (const std::exception& e) {
        out["python_reference"] = {{"error", std::string("unparsable output: ") + e.what()}};
      }
    } else {
      out["python_reference"] = {{"error", "baseline failed (needs python3-torch, python3-torchvision, "
                                           "python3-torchaudio), exit " + std::to_string(rc)}};
    }
  }
  std::cout << out.dump(2) << std::endl;
  return 0;
}
