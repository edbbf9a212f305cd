#include "omnibind/pipeline/bundle_stream.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <fstream>
#include <mutex>
#include <thread>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/input_files.h"

namespace omnibind::pipeline {

namespace {

std::string lower_ext(const std::string& path) {
  auto dot = path.find_last_of('.');
  auto slash = path.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return "";
  std::string e = path.substr(dot);
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return std::tolower(c); });
  return e;
}

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::string label(const ModelBundle::ExpertRun& r) {
  std::string s;
  for (auto& n : r.names) s += (s.empty() ? "" : "+") + n;
  return s;
}

// Names the failing input once: most decoders already start their message with it.
InputError naming(const std::string& msg, const std::string& name) {
  return InputError(name.empty() || msg.rfind(name, 0) == 0 ? msg : name + ": " + msg);
}

std::string name_of(const std::vector<MediaInput>& inputs, const std::vector<std::string>& names, size_t i) {
  if (i < names.size()) return names[i];
  return inputs[i].path.empty() && inputs[i].bytes.empty() ? std::string() : inputs[i].describe();
}

// One batch, read and preprocessed for every expert run: items[r][k] is input begin+k for run r.
struct Prepared {
  size_t begin = 0, end = 0;
  std::vector<std::vector<at::Tensor>> items;
  double read_s = 0;
  std::vector<double> preprocess_s;
  std::exception_ptr error;
};

Prepared prepare(const std::vector<ModelBundle::ExpertRun>& runs, Modality m, const std::vector<MediaInput>& inputs,
                 const std::vector<std::string>& names, size_t begin, size_t end) {
  at::NoGradGuard no_grad;
  Prepared p;
  p.begin = begin;
  p.end = end;
  // Each file is read once; every expert decodes the same bytes (the path rides along as the name).
  auto t0 = Clock::now();
  std::vector<MediaInput> shared;
  shared.reserve(end - begin);
  const bool need_bytes = std::any_of(runs.begin(), runs.end(), [](auto& r) { return r.family != "precomputed"; });
  for (size_t i = begin; i < end; ++i) {
    const MediaInput& in = inputs[i];
    if (m == Modality::Text || in.path.empty() || !need_bytes) {
      shared.push_back(in);
      continue;
    }
    std::string bytes;
    try {
      bytes = read_file_bytes(in.path);
    } catch (const std::exception& e) {
      throw naming(e.what(), name_of(inputs, names, i));
    }
    // Safetensors clouds are mapped by path (the point reader has no bytes form for them).
    if (m == Modality::Point && (lower_ext(in.path) == ".safetensors" || (bytes.size() > 8 && bytes[8] == '{')))
      shared.push_back(in);
    else
      shared.push_back(MediaInput::from_bytes(std::move(bytes), in.path));
  }
  p.read_s = since(t0);
  p.items.resize(runs.size());
  p.preprocess_s.assign(runs.size(), 0.0);
  for (size_t r = 0; r < runs.size(); ++r) {
    auto t = Clock::now();
    const bool by_path = runs[r].family == "precomputed";  // pools are keyed by path, not content
    for (size_t i = begin; i < end; ++i) {
      try {
        p.items[r].push_back(runs[r].expert->preprocess(m, by_path ? inputs[i] : shared[i - begin]));
      } catch (const InputError& e) {
        throw naming(e.what(), name_of(inputs, names, i));
      }
    }
    p.preprocess_s[r] = since(t);
  }
  return p;
}

// Encodes a prepared batch and applies the heads; an encode failure is pinned on one input.
StreamBatch consume(const ModelBundle& bundle, const std::vector<ModelBundle::ExpertRun>& runs, Modality m,
                    const std::vector<MediaInput>& inputs, const std::vector<std::string>& names, Prepared& p,
                    const StreamOptions& o, StreamTimings& t) {
  at::NoGradGuard no_grad;
  std::map<std::string, at::Tensor> x;
  for (size_t r = 0; r < runs.size(); ++r) {
    auto t0 = Clock::now();
    at::Tensor y;
    try {
      y = encode_items(*runs[r].expert, m, p.items[r]);
    } catch (const InputError& e) {
      for (size_t k = 0; k < p.items[r].size(); ++k) {  // find and name the input that fails
        try {
          encode_items(*runs[r].expert, m, {p.items[r][k]});
        } catch (const InputError& one) {
          throw naming(one.what(), name_of(inputs, names, p.begin + k));
        }
      }
      throw;
    }
    t.encode_s[label(runs[r])] += since(t0);
    for (auto& n : runs[r].names) x[n] = y;
  }
  auto t1 = Clock::now();
  StreamBatch b;
  b.begin = p.begin;
  b.unified = bundle.model().embed(std::string(experts::modality_name(m)), x).to(at::kFloat).contiguous();
  t.heads_s += since(t1);
  if (o.keep_experts) b.experts = std::move(x);
  t.read_s += p.read_s;
  for (size_t r = 0; r < runs.size(); ++r) t.preprocess_s[label(runs[r])] += p.preprocess_s[r];
  t.items += p.end - p.begin;
  t.batches += 1;
  return b;
}

// The worker thread and its bounded queue; the destructor stops and joins it (also on exceptions).
class Prefetcher {
 public:
  Prefetcher(size_t depth, size_t n_batches, std::function<Prepared(size_t)> make)
      : depth_(depth), n_(n_batches), make_(std::move(make)), thread_([this] { run(); }) {}
  ~Prefetcher() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }
  Prepared next() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !queue_.empty(); });
    Prepared p = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    cv_.notify_all();
    if (p.error) std::rethrow_exception(p.error);
    return p;
  }

 private:
  void run() {
    for (size_t k = 0; k < n_; ++k) {
      Prepared p;
      try {
        p = make_(k);
      } catch (...) {
        p.error = std::current_exception();
      }
      const bool failed = static_cast<bool>(p.error);
      {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return queue_.size() < depth_ || stop_; });
        if (stop_) return;
        queue_.push_back(std::move(p));
      }
      cv_.notify_all();
      if (failed) return;
    }
  }

  size_t depth_, n_;
  std::function<Prepared(size_t)> make_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Prepared> queue_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the members it uses exist
};

}  // namespace

StreamTimings embed_stream(const ModelBundle& bundle, Modality m, const std::vector<MediaInput>& inputs,
                           const std::vector<std::string>& names, const StreamOptions& o, const StreamSink& sink) {
  require(o.batch > 0, "batch size must be positive");
  require(names.empty() || names.size() == inputs.size(), "embed_stream: names must match inputs");
  require(!inputs.empty(), "nothing to embed");
  auto t0 = Clock::now();
  StreamTimings t;
  const auto runs = bundle.experts_for(m);  // builds what m needs (lazy loading)
  for (auto& r : runs) {
    t.preprocess_s[label(r)] = 0;
    t.encode_s[label(r)] = 0;
  }
  const size_t n_batches = (inputs.size() + o.batch - 1) / o.batch;
  auto make = [&](size_t k) {
    const size_t begin = k * o.batch;
    return prepare(runs, m, inputs, names, begin, std::min(inputs.size(), begin + o.batch));
  };
  if (o.queue_depth == 0) {
    for (size_t k = 0; k < n_batches; ++k) {
      Prepared p = make(k);
      sink(consume(bundle, runs, m, inputs, names, p, o, t));
    }
  } else {
    Prefetcher worker(o.queue_depth, n_batches, make);
    for (size_t k = 0; k < n_batches; ++k) {
      auto tw = Clock::now();
      Prepared p = worker.next();
      t.wait_s += since(tw);
      sink(consume(bundle, runs, m, inputs, names, p, o, t));
    }
  }
  t.wall_s = since(t0);
  return t;
}

StreamResult embed_all(const ModelBundle& bundle, Modality m, const std::vector<MediaInput>& inputs,
                       const std::vector<std::string>& names, const StreamOptions& o) {
  std::vector<at::Tensor> rows;
  std::map<std::string, std::vector<at::Tensor>> expert_rows;
  StreamResult r;
  r.timings = embed_stream(bundle, m, inputs, names, o, [&](StreamBatch&& b) {
    rows.push_back(std::move(b.unified));
    for (auto& [n, x] : b.experts) expert_rows[n].push_back(std::move(x));
  });
  r.unified = at::cat(rows, 0);
  for (auto& [n, xs] : expert_rows) r.experts[n] = at::cat(xs, 0);
  return r;
}

namespace {

bool starts(const std::string& s, const char* magic, size_t n, size_t at = 0) {
  return s.size() >= at + n && std::memcmp(s.data() + at, magic, n) == 0;
}

}  // namespace

std::optional<Modality> media_modality(const std::string& h, const std::string& path) {
  const auto* u = reinterpret_cast<const unsigned char*>(h.data());
  // Images
  if (starts(h, "\xFF\xD8\xFF", 3) || starts(h, "\x89PNG\r\n\x1a\n", 8) || starts(h, "GIF87a", 6) || starts(h, "GIF89a", 6) ||
      (starts(h, "RIFF", 4) && starts(h, "WEBP", 4, 8)) || starts(h, "II*\0", 4) || starts(h, "MM\0*", 4))
    return Modality::Image;
  if (starts(h, "BM", 2) && h.size() >= 14 && u[6] == 0 && u[7] == 0 && u[8] == 0 && u[9] == 0) return Modality::Image;
  // Audio
  if ((starts(h, "RIFF", 4) && starts(h, "WAVE", 4, 8)) || starts(h, "fLaC", 4) || starts(h, "OggS", 4) ||
      starts(h, "ID3", 3) || (starts(h, "FORM", 4) && (starts(h, "AIFF", 4, 8) || starts(h, "AIFC", 4, 8))) ||
      (h.size() >= 2 && u[0] == 0xFF && (u[1] & 0xE6) == 0xE2))  // MPEG audio frame sync (layer I-III)
    return Modality::Audio;
  // Point clouds / meshes
  if (starts(h, "ply\n", 4) || starts(h, "ply\r", 4) || starts(h, "\x93NUMPY", 6) || starts(h, "# .PCD", 6) ||
      starts(h, "VERSION .", 9) || starts(h, "VERSION 0", 9))
    return Modality::Point;
  // Else the extension (the table `embed` recurses directories with); a .safetensors file may be a
  // point cloud or a precomputed pool of any modality, so it says nothing.
  if (lower_ext(path) == ".safetensors") return std::nullopt;
  return experts::modality_of_extension(path);
}

std::optional<Modality> file_modality(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  std::string head(64, '\0');
  f.read(head.data(), static_cast<std::streamsize>(head.size()));
  head.resize(static_cast<size_t>(f.gcount()));
  return media_modality(head, path);
}

}  // namespace omnibind::pipeline
