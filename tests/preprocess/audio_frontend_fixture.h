// Fixture access shared by the WavCaps / CLAP audio front-end parity tests (wavcaps_mini, clap_mini).
#pragma once
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

namespace omnibind::preprocess::audiofix {

// A fixture folder under ../shared/fixtures (e.g. "wavcaps_mini", "clap_mini/fusion").
class Fixture {
 public:
  explicit Fixture(std::string folder) : dir_(testkit::shared_path("fixtures/" + folder + "/")) {}
  std::string path(const std::string& rel) const { return dir_ + rel; }

  nlohmann::json json(const std::string& file) const {
    std::ifstream in(path(file));
    std::stringstream ss;
    ss << in.rdbuf();
    return nlohmann::json::parse(ss.str());
  }
  bool has(const std::string& file, const std::string& key) { return file_of(file).tensors.contains(key); }
  // A private copy of tensor `key` of safetensors file `file`.
  at::Tensor tensor(const std::string& file, const std::string& key) {
    return tensor_io::to_tensor(file_of(file).tensors.at(key)).clone();
  }

 private:
  const tensor_io::SafetensorsFile& file_of(const std::string& file) {
    auto it = files_.find(file);
    if (it == files_.end()) it = files_.emplace(file, tensor_io::read_safetensors(path(file))).first;
    return it->second;
  }
  std::string dir_;
  std::map<std::string, tensor_io::SafetensorsFile> files_;
};

inline at::Tensor vec(const std::vector<float>& v) {
  return at::from_blob(const_cast<float*>(v.data()), {static_cast<int64_t>(v.size())}, at::kFloat).clone();
}
inline at::Tensor vec16(const std::vector<int16_t>& v) {
  return at::from_blob(const_cast<int16_t*>(v.data()), {static_cast<int64_t>(v.size())}, at::kShort).clone();
}
inline double max_abs(const at::Tensor& a, const at::Tensor& b) {
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace omnibind::preprocess::audiofix
