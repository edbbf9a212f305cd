// Writes an EVA-CLIP-18B-shaped checkpoint with random weights: the key names, order and shapes
// of the released EVA_CLIP_18B_psz14_s6B.fp16.pt (shared/docs/experts/eva_clip_18b.md; the order
// of shared/fixtures/eva_clip_18b_mini/weights.safetensors), float16, as one safetensors file
// (the loaders detect the format from the bytes). At the official widths it is 36.65 GB: for
// measuring the streamed vision tower (bench_eva18b_stream) without the download. Never write it
// inside the repository.
//
//   make_random_eva18b --out FILE [--depth N] [--seed S] [--dry-run]
//
// --depth: vision blocks (default 48; fewer when the disk cannot hold the whole file: say so).
// The disk's free space is checked first (statvfs): a disk too small is a one-line error (exit 2).
// Values: WeightSource::random_values (N(0, 0.02) weights, 1 + N(0, 0.05) norms, N(0, 0.01) biases,
// N(0, 0.1) embeddings; deterministic per seed and tensor index), generated and written one tensor
// at a time (memory ~ the largest tensor, 0.5 GB float32). Every GB written is flushed and dropped
// from the page cache (fdatasync + posix_fadvise DONTNEED) so writing 37 GB does not evict the
// rest of a shared machine's cache. Prints one JSON object.
#include <ATen/ATen.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include "omnibind/common/error.h"
#include "omnibind/experts/weight_source.h"

namespace fs = std::filesystem;
using omnibind::InputError;
using omnibind::require;
using omnibind::experts::WeightSource;
using Kind = WeightSource::Kind;

namespace {

struct T {
  std::string name;
  std::vector<int64_t> shape;
  Kind kind;
  bool f32 = false;  // logit_scale stays float32 (0-d)
  int64_t numel() const {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    return n;
  }
  int64_t bytes() const { return numel() * (f32 ? 4 : 2); }
};

// Official widths (EVA-CLIP-18B.json).
std::vector<T> eva18b_tensors(int64_t depth) {
  const int64_t W = 5120, M = 25600, P = 14, L = 257, E = 1536;
  const int64_t TW = 1280, TL = 32, C = 77, V = 49408;
  std::vector<T> t;
  t.push_back({"logit_scale", {}, Kind::Scalar, true});
  t.push_back({"visual.cls_token", {1, 1, W}, Kind::Embedding});
  t.push_back({"visual.pos_embed", {1, L, W}, Kind::Embedding});
  t.push_back({"visual.patch_embed.proj.weight", {W, 3, P, P}, Kind::Weight});
  t.push_back({"visual.patch_embed.proj.bias", {W}, Kind::Bias});
  for (int64_t i = 0; i < depth; ++i) {
    const std::string b = "visual.blocks." + std::to_string(i) + ".";
    t.push_back({b + "norm1.weight", {W}, Kind::NormWeight});
    t.push_back({b + "attn.qkv.weight", {3 * W, W}, Kind::Weight});
    t.push_back({b + "attn.proj.weight", {W, W}, Kind::Weight});
    t.push_back({b + "attn.proj.bias", {W}, Kind::Bias});
    t.push_back({b + "norm2.weight", {W}, Kind::NormWeight});
    t.push_back({b + "mlp.fc1.weight", {M, W}, Kind::Weight});
    t.push_back({b + "mlp.fc1.bias", {M}, Kind::Bias});
    t.push_back({b + "mlp.fc2.weight", {W, M}, Kind::Weight});
    t.push_back({b + "mlp.fc2.bias", {W}, Kind::Bias});
  }
  t.push_back({"visual.norm.weight", {W}, Kind::NormWeight});
  t.push_back({"visual.head.weight", {E, W}, Kind::Weight});
  t.push_back({"text.positional_embedding", {C, TW}, Kind::Embedding});
  t.push_back({"text.text_projection", {TW, E}, Kind::Weight});
  t.push_back({"text.token_embedding.weight", {V, TW}, Kind::Embedding});
  for (int64_t i = 0; i < TL; ++i) {
    const std::string b = "text.transformer.resblocks." + std::to_string(i) + ".";
    t.push_back({b + "ln_1.weight", {TW}, Kind::NormWeight});
    t.push_back({b + "ln_1.bias", {TW}, Kind::Bias});
    t.push_back({b + "attn.in_proj_weight", {3 * TW, TW}, Kind::Weight});
    t.push_back({b + "attn.in_proj_bias", {3 * TW}, Kind::Bias});
    t.push_back({b + "attn.out_proj.weight", {TW, TW}, Kind::Weight});
    t.push_back({b + "attn.out_proj.bias", {TW}, Kind::Bias});
    t.push_back({b + "ln_2.weight", {TW}, Kind::NormWeight});
    t.push_back({b + "ln_2.bias", {TW}, Kind::Bias});
    t.push_back({b + "mlp.c_fc.weight", {4 * TW, TW}, Kind::Weight});
    t.push_back({b + "mlp.c_fc.bias", {4 * TW}, Kind::Bias});
    t.push_back({b + "mlp.c_proj.weight", {TW, 4 * TW}, Kind::Weight});
    t.push_back({b + "mlp.c_proj.bias", {TW}, Kind::Bias});
  }
  t.push_back({"text.ln_final.weight", {TW}, Kind::NormWeight});
  t.push_back({"text.ln_final.bias", {TW}, Kind::Bias});
  return t;
}

void write_all(int fd, const void* p, size_t n, const std::string& path) {
  const char* c = static_cast<const char*>(p);
  while (n > 0) {
    const ssize_t w = ::write(fd, c, n);
    if (w <= 0) throw InputError(path + ": write failed (disk full?)");
    c += w;
    n -= static_cast<size_t>(w);
  }
}

int run(int argc, char** argv) {
  std::string out;
  int64_t depth = 48;
  uint64_t seed = 18;
  bool dry = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      require(i + 1 < argc, "make_random_eva18b: " + a + " needs a value");
      return argv[++i];
    };
    if (a == "--out") out = next();
    else if (a == "--depth") depth = std::stoll(next());
    else if (a == "--seed") seed = std::stoull(next());
    else if (a == "--dry-run") dry = true;
    else throw InputError("make_random_eva18b: unknown argument " + a);
  }
  require(!out.empty(), "make_random_eva18b: --out FILE is required");
  require(depth >= 1 && depth <= 48, "make_random_eva18b: --depth must be 1..48");
  const auto tensors = eva18b_tensors(depth);
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", t.f32 ? "F32" : "F16"}, {"shape", t.shape},
                      {"data_offsets", {offset, offset + static_cast<uint64_t>(t.bytes())}}};
    offset += static_cast<uint64_t>(t.bytes());
  }
  header["__metadata__"] = {{"format", "pt"},
                            {"generator", "omnibind bench/make_random_eva18b (random weights, EVA-CLIP-18B layout)"}};
  std::string h = header.dump();
  while ((h.size() + 8) % 8 != 0) h.push_back(' ');
  const uint64_t total = 8 + h.size() + offset;

  const fs::path target = fs::absolute(out);
  fs::create_directories(target.parent_path());
  struct statvfs vfs {};
  require(::statvfs(target.parent_path().c_str(), &vfs) == 0, target.parent_path().string() + ": cannot stat the disk");
  const uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
  const uint64_t margin = 2ull << 30;  // leave 2 GiB to the rest of the machine
  nlohmann::ordered_json report = {{"file", target.string()}, {"depth", depth}, {"bytes", total},
                                   {"tensors", tensors.size()}, {"disk_free_bytes", free_bytes}};
  if (dry) {
    std::cout << report.dump() << "\n";
    return 0;
  }
  if (free_bytes < total + margin) {
    char msg[512];
    std::snprintf(msg, sizeof msg,
                  "%s: disk too small: the file needs %.2f GB (+2 GiB margin), %.2f GB free; use --depth %lld or another disk",
                  target.parent_path().c_str(), total / 1e9, free_bytes / 1e9,
                  static_cast<long long>(std::max<int64_t>(1, depth * static_cast<int64_t>(free_bytes > margin ? free_bytes - margin : 0) / static_cast<int64_t>(total))));
    throw InputError(msg);
  }

  const auto t0 = std::chrono::steady_clock::now();
  const std::string tmp = target.string() + ".partial";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  require(fd >= 0, tmp + ": cannot write");
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(static_cast<uint64_t>(h.size()) >> (8 * i));
  uint64_t written = 0, flushed = 0;
  try {
    write_all(fd, len, 8, tmp);
    write_all(fd, h.data(), h.size(), tmp);
    written = 8 + h.size();
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto& t = tensors[i];
      at::Tensor v = WeightSource::random_values(t.shape, t.kind, seed, i);
      if (!t.f32) v = v.to(at::kHalf);
      v = v.contiguous();
      write_all(fd, v.data_ptr(), static_cast<size_t>(t.bytes()), tmp);
      written += static_cast<uint64_t>(t.bytes());
      if (written - flushed > (1ull << 30) || i + 1 == tensors.size()) {
        require(::fdatasync(fd) == 0, tmp + ": write failed (disk full?)");
        ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        flushed = written;
      }
    }
  } catch (...) {
    ::close(fd);
    fs::remove(tmp);
    throw;
  }
  require(::close(fd) == 0, tmp + ": write failed");
  fs::rename(tmp, target);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  report["seconds"] = s;
  report["write_mb_per_s"] = total / 1e6 / s;
  std::cout << report.dump() << "\n";
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
