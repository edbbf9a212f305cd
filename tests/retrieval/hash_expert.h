// A tiny deterministic expert for plumbing tests, registered only in test binaries: text -> hashed
// bag of words, media bytes -> hashed byte 3-grams, each L2-normalised. Texts sharing words (and files
// sharing bytes) land close, so retrieval through it is meaningful without real weights.
#pragma once
#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "omnibind/common/error.h"
#include "omnibind/experts/expert.h"

namespace omnibind::testkit {

class HashExpert : public experts::Expert {
 public:
  static constexpr int64_t kDim = 64;
  const std::string& name() const override { return name_; }
  std::vector<experts::Modality> modalities() const override {
    using M = experts::Modality;
    return {M::Text, M::Audio, M::Image, M::Point};
  }
  int64_t dim() const override { return kDim; }

  at::Tensor preprocess(experts::Modality m, const experts::MediaInput& in) const override {
    at::Tensor f = at::zeros({kDim}, at::kFloat);
    float* p = f.data_ptr<float>();
    if (m == experts::Modality::Text) {
      std::stringstream ss(in.text);
      std::string w;
      while (ss >> w) {
        std::string clean;
        for (char c : w)
          if (std::isalnum(static_cast<unsigned char>(c))) clean += static_cast<char>(std::tolower(c));
        if (clean.empty() || clean == "a" || clean == "of" || clean == "the" || clean == "photo") continue;
        p[fnv(clean) % kDim] += 1.0f;
      }
    } else {
      std::string bytes = in.bytes;
      if (bytes.empty() && !in.path.empty()) {
        std::ifstream f(in.path, std::ios::binary);
        if (!f) throw InputError("cannot open " + in.path);
        bytes.assign(std::istreambuf_iterator<char>(f), {});
      }
      if (bytes.size() < 3) throw InputError(in.describe() + ": not a decodable media file (too short)");
      for (size_t i = 0; i + 2 < bytes.size(); ++i) p[fnv(bytes.substr(i, 3)) % kDim] += 1.0f;
    }
    p[kDim - 1] += 1e-3f;  // never all zeros
    return f;
  }

  at::Tensor encode(experts::Modality, const at::Tensor& batch) const override {
    return batch / batch.norm(2, {1}, true);
  }

  static uint64_t fnv(const std::string& s) {
    uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
  }
  static void register_once() {
    static bool done = [] {
      experts::register_expert("test-hash", "hashing expert for tests",
                               [](const experts::ExpertOptions&) { return std::make_unique<HashExpert>(); });
      return true;
    }();
    (void)done;
  }

 private:
  std::string name_ = "test-hash";
};

}  // namespace omnibind::testkit
