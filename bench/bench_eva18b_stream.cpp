// EVA-CLIP-18B streamed through a machine smaller than the model (issue 20 item 3): the text
// tower resident, the 48 vision blocks streamed from the mapped checkpoint with read-ahead and
// release (experts/eva18b_stream/streamed_vision.h over tensor_io/block_stream.h). Made for the
// file bench/make_random_eva18b writes (official widths, random fp16 weights, 36.65 GB).
//
//   bench_eva18b_stream --weights FILE [--batches 1,16,64] [--blocks 48,3,2] [--precision bf16|fp32]
//                       [--max-seconds 0,600,600] [--read-ahead 1] [--io-pass] [--no-release] [--no-evict]
//                       [--threads N]
//
// --blocks: vision blocks run per batch size (same order as --batches; one value = for all). Fewer
// than 48: the batch's time is measured on those blocks and extrapolated to 48 (marked as such).
// --max-seconds: per batch size, stop after the block that passes this many seconds (0: no limit);
// the batch is then extrapolated to 48 blocks from the blocks run, like --blocks.
// --io-pass: first walks all blocks without computing (page in, release): the pure streaming rate.
// Before each batch the file is dropped from the page cache (posix_fadvise DONTNEED; --no-evict
// keeps it) and the peak-RSS mark is reset (/proc/self/clear_refs 5), so each batch starts cold.
// Per batch (JSON): seconds, seconds per block, per-phase seconds (wait = blocked on disk, build =
// fp16 -> bf16 conversion, compute, release), share of time waiting on disk, disk bytes read
// (/proc/self/io read_bytes: page-cache misses, mmap faults included), peak RSS (VmHWM) and the
// sampled peaks of RssAnon (heap) and RssFile (mapped weight pages), the machine's load average.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "omnibind/common/error.h"
#include "omnibind/common/process_memory.h"
#include "omnibind/experts/eva18b_stream/streamed_vision.h"
#include "omnibind/experts/eva_clip/eva_clip_checkpoint.h"
#include "omnibind/experts/eva_clip/eva_clip_config.h"
#include "omnibind/experts/eva_clip/eva_clip_model.h"
#include "omnibind/experts/weight_source.h"
#include "omnibind/tensor_io/compute_threads.h"

using json = nlohmann::ordered_json;
using omnibind::InputError;
using omnibind::require;
using namespace omnibind::experts::eva18b_stream;
using Clock = std::chrono::steady_clock;

namespace {

double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

long long proc_field(const std::string& path, const std::string& key) {
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key + ":", 0) == 0) return std::atoll(line.c_str() + key.size() + 1);
  return -1;
}
long long read_bytes() { return proc_field("/proc/self/io", "read_bytes"); }
double status_gb(const std::string& key) { return proc_field("/proc/self/status", key) * 1024.0 / 1e9; }  // kB

std::string first_line(const std::string& path) {
  std::ifstream f(path);
  std::string s;
  std::getline(f, s);
  return s;
}
std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "";
}

std::vector<int64_t> ints(const std::string& s) {
  std::vector<int64_t> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, ',');)
    if (!x.empty()) out.push_back(std::stoll(x));
  return out;
}

void evict(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// Peaks of RssAnon / RssFile sampled every 50 ms while alive.
struct Sampler {
  std::atomic<bool> stop{false};
  double anon = 0, file = 0;
  std::thread t;
  Sampler() {
    t = std::thread([this] {
      while (!stop) {
        anon = std::max(anon, status_gb("RssAnon"));
        file = std::max(file, status_gb("RssFile"));
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    });
  }
  ~Sampler() {
    stop = true;
    t.join();
  }
};

void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

int run(int argc, char** argv) {
  std::string weights, precision = "bf16";
  std::vector<int64_t> batches{1, 16, 64}, blocks{48};
  int64_t read_ahead = 1, threads = 0;
  std::vector<int64_t> max_seconds{0};
  bool io_pass = false, release = true, do_evict = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      require(i + 1 < argc, a + " needs a value");
      return argv[++i];
    };
    if (a == "--weights") weights = next();
    else if (a == "--batches") batches = ints(next());
    else if (a == "--blocks") blocks = ints(next());
    else if (a == "--max-seconds") max_seconds = ints(next());
    else if (a == "--precision") precision = next();
    else if (a == "--read-ahead") read_ahead = std::stoll(next());
    else if (a == "--threads") threads = std::stoll(next());
    else if (a == "--io-pass") io_pass = true;
    else if (a == "--no-release") release = false;
    else if (a == "--no-evict") do_evict = false;
    else throw InputError("bench_eva18b_stream: unknown argument " + a);
  }
  require(!weights.empty(), "bench_eva18b_stream: --weights FILE is required (bench/make_random_eva18b writes one)");
  require(precision == "bf16" || precision == "fp32", "--precision must be bf16 or fp32");
  omnibind::common::keep_freed_memory_in_process();
  const int compute_threads = omnibind::tensor_io::set_compute_threads(static_cast<int>(threads));
  const at::ScalarType compute = precision == "bf16" ? at::kBFloat16 : at::kFloat;
  c10::InferenceMode guard;

  json out;
  out["machine"] = {{"cpu", cpu_model()},
                    {"compute_threads", compute_threads},  // libtorch + OpenBLAS pools (tensor_io/compute_threads.h)
                    {"hardware_concurrency", std::thread::hardware_concurrency()},
                    {"mem_total_gb", proc_field("/proc/meminfo", "MemTotal") * 1024.0 / 1e9},
                    {"loadavg_start", first_line("/proc/loadavg")}};
  if (do_evict) evict(weights);
  auto t0 = Clock::now();
  namespace eva = omnibind::experts::eva_clip;
  const eva::EvaClipCheckpoint ckpt = eva::open_checkpoint(weights);
  const eva::EvaClipConfig config = eva::builtin_config("EVA-CLIP-18B");
  eva::require_config_matches(ckpt, config, "eva_clip_18b");
  eva::require_complete(ckpt, config);
  const auto& dict = *ckpt.dict;
  std::ifstream sz(weights, std::ios::ate | std::ios::binary);
  out["file"] = {{"path", weights}, {"bytes", static_cast<long long>(sz.tellg())}, {"open_seconds", since(t0)}};

  // Text tower: resident for the whole run (EVA02-CLIP-E's text tower, 1536-wide projection).
  t0 = Clock::now();
  const omnibind::experts::WeightSource root(dict, compute, "EVA-CLIP-18B");
  const auto model = eva::EvaClipModel::load(config, root, ckpt.text_prefix, ckpt.logit_scale_key, eva::EvaClipModel::kText,
                                             ckpt.layout);
  const auto& text = model.text;
  const double text_load = since(t0);
  // bf16 from the fp16 file: the text tower now holds converted copies, so its mapped pages are
  // dropped like a streamed block's (a one-block BlockStream released without being waited for).
  if (compute != at::kFloat) {
    omnibind::tensor_io::StateDict text_dict(dict.source());
    for (const auto& name : dict.names())
      if (name.rfind(ckpt.text_prefix.empty() ? "text_" : ckpt.text_prefix, 0) == 0) text_dict.add(name, dict.at(name));
    omnibind::tensor_io::BlockStream pages({{"text tower", text_dict}}, {.read_ahead = 0});
    pages.release(0);
  }
  at::Tensor ids = at::zeros({1, 77}, at::TensorOptions().dtype(at::kLong));
  ids.index_put_({0, 0}, 49406);
  for (int k = 1; k <= 8; ++k) ids.index_put_({0, k}, 320 + k);
  ids.index_put_({0, 9}, 49407);
  t0 = Clock::now();
  const at::Tensor tf = text.forward(ids);
  out["text_tower"] = {{"load_seconds", text_load}, {"forward_seconds_1_text", since(t0)},
                       {"features", {tf.size(0), tf.size(1)}},
                       {"rss_anon_gb_after_load", status_gb("RssAnon")}};

  t0 = Clock::now();
  StreamedVision sv(dict, config.vision, config.embed_dim, compute,
                    {.read_ahead = read_ahead, .release = release, .what = "EVA-CLIP-18B vision"}, ckpt.layout);
  const auto st0 = sv.stream().stats();
  out["vision"] = {{"setup_seconds", since(t0)},
                   {"streamed_bytes", st0.streamed_bytes},
                   {"resident_bytes_in_blocks", st0.resident_bytes},
                   {"largest_block_bytes", st0.largest_block_bytes},
                   {"precision", precision},
                   {"read_ahead", read_ahead},
                   {"release", release}};

  if (io_pass) {
    if (do_evict) evict(weights);
    reset_peak_rss();
    Sampler sampler;
    std::vector<std::string> prefixes;
    for (int64_t i = 0; i < config.vision.layers; ++i) prefixes.push_back(eva::EvaVisionTower::block_prefix(i, ckpt.layout) + ".");
    omnibind::tensor_io::BlockStream s(omnibind::tensor_io::blocks_by_prefixes(dict, prefixes),
                                       {.read_ahead = read_ahead, .release = release});
    const long long r0 = read_bytes();
    t0 = Clock::now();
    for (size_t i = 0; i < s.size(); ++i) {
      s.wait(i);
      s.release(i);
    }
    const double sec = since(t0);
    const auto st = s.stats();
    out["io_pass"] = {{"seconds", sec},
                      {"read_bytes", read_bytes() - r0},
                      {"gb_per_s", st.streamed_bytes / 1e9 / sec},
                      {"fetch_seconds", st.fetch_seconds},
                      {"wait_seconds", st.wait_seconds},
                      {"populate_read", st.populate_read},
                      {"peak_rss_gb", status_gb("VmHWM")},
                      {"peak_rss_file_gb", sampler.file},
                      {"peak_rss_anon_gb", sampler.anon}};
    std::cerr << out["io_pass"].dump() << "\n";
  }

  json runs = json::array();
  for (size_t k = 0; k < batches.size(); ++k) {
    const int64_t b = batches[k];
    const int64_t nb = blocks.size() == 1 ? blocks[0] : blocks.at(k);
    const int64_t ms = max_seconds.size() == 1 ? max_seconds[0] : max_seconds.at(k);
    if (do_evict) evict(weights);
    const at::Tensor px = at::randn({b, 3, 224, 224}, at::TensorOptions().dtype(at::kFloat));
    const std::string load0 = first_line("/proc/loadavg");
    reset_peak_rss();
    const auto s0 = sv.stream().stats();
    const long long r0 = read_bytes();
    StreamedVisionStats st;
    at::Tensor feats;
    double peak_anon = 0, peak_file = 0;
    {
      Sampler sampler;
      feats = sv.forward(px, &st, nb, static_cast<double>(ms));
      peak_anon = sampler.anon;
      peak_file = sampler.file;
    }
    const long long rb = read_bytes() - r0;
    const auto s1 = sv.stream().stats();
    const double block_mean = st.blocks_run ? (st.total_seconds - st.embed_seconds - st.finish_seconds) / st.blocks_run : 0;
    json r = {{"images", b},
              {"blocks_run", st.blocks_run},
              {"seconds", st.total_seconds},
              {"seconds_per_block", block_mean},
              {"seconds_per_48_blocks", st.blocks_run == 48 ? st.total_seconds
                                                            : st.embed_seconds + st.finish_seconds + 48 * block_mean},
              {"extrapolated", st.blocks_run != 48},
              {"images_per_hour", 3600.0 * b / (st.embed_seconds + st.finish_seconds + 48 * block_mean)},
              {"phase_seconds",
               {{"wait_disk", st.wait_seconds},
                {"build", st.build_seconds},
                {"compute", st.compute_seconds},
                {"release", st.release_seconds},
                {"embed", st.embed_seconds},
                {"finish", st.finish_seconds}}},
              {"share_waiting_on_disk", st.wait_seconds / st.total_seconds},
              {"worker_fetch_seconds", s1.fetch_seconds - s0.fetch_seconds},
              {"read_bytes", rb},
              {"read_bytes_per_block", st.blocks_run ? rb / st.blocks_run : 0},
              {"streamed_bytes_expected", st.blocks_run * static_cast<long long>(st0.largest_block_bytes)},
              {"peak_rss_gb", status_gb("VmHWM")},
              {"peak_rss_anon_gb", peak_anon},
              {"peak_rss_file_gb", peak_file},
              {"block_seconds", st.block_seconds},
              {"features_finite", feats.isfinite().all().item<bool>()},
              {"loadavg_before", load0},
              {"loadavg_after", first_line("/proc/loadavg")}};
    std::cerr << r.dump() << "\n";
    runs.push_back(r);
  }
  out["batches"] = runs;
  out["machine"]["loadavg_end"] = first_line("/proc/loadavg");
  std::cout << out.dump(2) << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const InputError& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
}
