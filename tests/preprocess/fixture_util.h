// Reads expected tensors of the imagebind_mini fixture (shared by the preprocess parity tests).
#pragma once
#include <ATen/ATen.h>

#include <string>

#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace omnibind::preprocess::testfix {

inline std::string ib_path(const std::string& rel) { return testkit::shared_path("fixtures/imagebind_mini/" + rel); }

// Tensor `key` of fixture file `file` (a private copy).
inline at::Tensor expected(const std::string& file, const std::string& key) {
  const auto st = tensor_io::read_safetensors(ib_path(file));
  return tensor_io::to_tensor(st.tensors.at(key)).clone();
}

}  // namespace omnibind::preprocess::testfix
