// Comparison helpers shared by the WavCaps / CLAP / BERT parity tests.
#pragma once
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <string>

#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::audio_text_testing {

inline at::Tensor fixture(const tensor_io::SafetensorsFile& f, const std::string& key) {
  return tensor_io::to_tensor(f.tensors.at(key));
}

// Smallest row-wise cosine similarity between a and b (rows = last dimension).
inline double min_cosine(const at::Tensor& a, const at::Tensor& b) {
  auto a64 = a.to(at::kDouble).reshape({-1, a.size(-1)}), b64 = b.to(at::kDouble).reshape({-1, b.size(-1)});
  auto cos = (a64 * b64).sum(-1) / (a64.norm(2, {-1}) * b64.norm(2, {-1})).clamp_min(1e-300);
  return cos.min().item<double>();
}
inline double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}
// max |a - b| / max |b|
inline double max_rel(const at::Tensor& a, const at::Tensor& b) {
  return max_abs(a, b) / b.to(at::kDouble).abs().max().item<double>();
}

// The bar for embeddings: every row cosine >= 0.99999 and max abs <= 1e-4.
inline void expect_embeddings_match(const at::Tensor& got, const at::Tensor& want, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double c = min_cosine(got, want), m = max_abs(got, want);
  std::printf("%-44s min cosine %.9f  max abs %.3g\n", what.c_str(), c, m);
  EXPECT_GE(c, 0.99999) << what;
  EXPECT_LE(m, 1e-4) << what;
}

// Intermediate activations: max abs difference relative to the largest reference value.
inline void expect_close_rel(const at::Tensor& got, const at::Tensor& want, double tol, const std::string& what) {
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  const double r = max_rel(got, want);
  std::printf("%-44s max rel %.3g\n", what.c_str(), r);
  EXPECT_LE(r, tol) << what;
}

}  // namespace omnibind::audio_text_testing
