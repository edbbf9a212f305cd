// Test helpers shared by the image-text parity tests on the CLIP-style fixtures (eva02_clip_mini,
// eva_clip_18b_mini): the fixture's inputs.json, tensors of its expected files, and the issue's
// comparisons (every row cosine >= 0.99999 and max abs <= 1e-4; intermediates within a relative bar).
#pragma once
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::testkit::clipfx {

inline at::Tensor get(const tensor_io::SafetensorsFile& f, const std::string& key) {
  return tensor_io::to_tensor(f.tensors.at(key)).clone();
}

inline double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}
// max |a - b| / max |b|
inline double max_rel(const at::Tensor& a, const at::Tensor& b) {
  return max_abs(a, b) / b.to(at::kDouble).abs().max().item<double>();
}
// Row-wise cosine similarity, [N].
inline at::Tensor cosines(const at::Tensor& a, const at::Tensor& b) {
  auto a64 = a.to(at::kDouble).reshape({-1, a.size(-1)}), b64 = b.to(at::kDouble).reshape({-1, b.size(-1)});
  return (a64 * b64).sum(-1) / (a64.norm(2, {-1}) * b64.norm(2, {-1}));
}

// A fixture's inputs.json: images (file under <dir>/inputs/, name = file stem) and texts, in order.
struct FixtureInputs {
  nlohmann::json json;
  std::vector<std::string> image_names, image_files, text_names, texts;
  explicit FixtureInputs(const std::string& dir) {
    std::ifstream in(dir + "/inputs.json");
    json = nlohmann::json::parse(in);
    for (const auto& im : json.at("images")) {
      std::string file = im.at("file").get<std::string>();
      image_files.push_back(dir + "/inputs/" + file);
      image_names.push_back(file.substr(0, file.rfind('.')));
    }
    for (const auto& t : json.at("texts")) {
      text_names.push_back(t.at("name").get<std::string>());
      texts.push_back(t.at("text").get<std::string>());
    }
  }
};

// Every row: cosine >= 0.99999 and max abs <= 1e-4 (the issues' bar for embeddings); prints the worst.
inline void expect_embeddings_match(const at::Tensor& got, const at::Tensor& want, const std::vector<std::string>& names,
                                    const char* what) {
  ASSERT_EQ(got.sizes(), want.sizes());
  auto cos = cosines(got, want);
  double worst_cos = 1, worst_abs = 0;
  for (int64_t i = 0; i < got.size(0); ++i) {
    const double c = cos[i].item<double>(), d = max_abs(got[i], want[i]);
    EXPECT_GE(c, 0.99999) << what << " " << names[i];
    EXPECT_LE(d, 1e-4) << what << " " << names[i];
    worst_cos = std::min(worst_cos, c);
    worst_abs = std::max(worst_abs, d);
  }
  std::printf("%s: min cosine %.9f, max abs %.3g over %lld rows\n", what, worst_cos, worst_abs,
              static_cast<long long>(got.size(0)));
}

// Each (name, tensor) against `expected`'s "<prefix><name>" within max_rel <= `tol`; prints each.
inline void expect_stages_match(const std::vector<std::pair<std::string, at::Tensor>>& stages,
                                const tensor_io::SafetensorsFile& expected, const std::string& prefix, double tol = 1e-5) {
  for (const auto& [name, t] : stages) {
    const double r = max_rel(t, get(expected, prefix + name));
    std::printf("%-22s max rel %.3g\n", (prefix + name).c_str(), r);
    EXPECT_LE(r, tol) << prefix << name;
  }
}

}  // namespace omnibind::testkit::clipfx
