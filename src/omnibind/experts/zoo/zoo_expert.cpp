#include "omnibind/experts/zoo/zoo_expert.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <filesystem>

#include "omnibind/common/error.h"
#include "omnibind/experts/zoo/zoo_inputs.h"
#include "omnibind/media/audio.h"
#include "omnibind/media/image.h"
#include "omnibind/media/point_cloud.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::experts::zoo {

ZooFile read_zoo_file(const std::string& path) {
  std::error_code ec;
  require(!path.empty(), "zoo: --weights is required (a .safetensors file written by `omnibind zoo train`)");
  require(std::filesystem::is_regular_file(path, ec), path + ": zoo expert file not found");
  require(tensor_io::looks_like_safetensors(path), path + ": not a safetensors file (zoo experts are .safetensors)");
  auto file = tensor_io::read_safetensors(path);
  auto it = file.metadata.find("zoo_config");
  require(it != file.metadata.end(), path + ": no __metadata__.zoo_config (not a zoo expert file)");
  ZooFile out;
  out.config = zoo_config_from_json(it->second, path);
  for (auto& name : file.tensors.names()) out.weights[name] = tensor_io::to_tensor(file.tensors.at(name));
  ZooModel::bind(out.config, out.weights, path);  // validates names and shapes
  return out;
}

void write_zoo_file(const std::string& path, const ZooConfig& config, const ZooWeights& weights,
                    const std::map<std::string, std::string>& extra_metadata) {
  ZooModel::bind(config, weights, path);  // refuse to write an inconsistent file
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (auto& [name, shape] : zoo_parameter_shapes(config))
    tensors.emplace_back(name, weights.at(name).detach().to(at::kFloat).contiguous());
  std::map<std::string, std::string> meta = extra_metadata;
  meta["format"] = "omnibind-zoo";
  meta["zoo_config"] = zoo_config_to_json(config);
  tensor_io::write_tensors(path, tensors, meta);
}

ZooExpert::ZooExpert(const ExpertOptions& options) {
  require(options.precision.empty() || options.precision == "fp32",
          "zoo experts run in fp32 (got --precision " + options.precision + ")");
  if (options.threads > 0) tensor_io::set_compute_threads(options.threads);
  ZooFile f = read_zoo_file(options.weights);
  weights_ = std::move(f.weights);
  model_ = ZooModel::bind(f.config, weights_, options.weights);
}

ZooExpert::ZooExpert(const ZooConfig& config, const ZooWeights& weights) {
  for (auto& [name, t] : weights) weights_[name] = t.detach().clone();
  model_ = ZooModel::bind(config, weights_, "zoo expert '" + config.key + "'");
}

std::vector<Modality> ZooExpert::modalities() const {
  std::vector<Modality> out;
  for (auto& m : model_.config.modalities()) out.push_back(parse_modality(m));
  return out;
}

at::Tensor ZooExpert::preprocess(Modality m, const MediaInput& input) const {
  const ZooConfig& c = model_.config;
  const std::string mname(modality_name(m));
  require(c.has(mname), "zoo expert '" + c.key + "' has no " + mname + " tower (it embeds " +
                            [&] {
                              std::string s;
                              for (auto& x : c.modalities()) s += (s.empty() ? "" : ", ") + x;
                              return s;
                            }() + ")");
  const std::string name = input.describe();
  switch (m) {
    case Modality::Text:
      return zoo_text_input(input.text, *c.text);
    case Modality::Audio: {
      media::Audio a = !input.path.empty() ? media::decode_audio_file(input.path)
                                           : media::decode_audio_bytes(input.bytes, name);
      return zoo_audio_input(a, *c.audio, name);
    }
    case Modality::Image: {
      media::Image im = !input.path.empty() ? media::decode_image_file(input.path)
                                            : media::decode_image_bytes(input.bytes, name);
      return zoo_image_input(im, *c.image, name);
    }
    case Modality::Point: {
      media::PointCloudReadOptions ro;
      ro.mesh_points = std::max<int64_t>(c.point->points, 1024);
      media::PointCloud pc;
      if (!input.path.empty()) pc = media::read_point_cloud_file(input.path, ro);
      else if (!input.bytes.empty()) pc = media::read_point_cloud_bytes(input.bytes, name, ro);
      else throw InputError(name + ": no point-cloud data given");
      return zoo_point_input(pc, *c.point, name);
    }
  }
  throw InputError("zoo: unknown modality");
}

at::Tensor ZooExpert::encode(Modality m, const at::Tensor& batch) const {
  const ZooConfig& c = model_.config;
  const std::string mname(modality_name(m));
  require(c.has(mname), "zoo expert '" + c.key + "' has no " + mname + " tower");
  std::vector<int64_t> item;
  if (m == Modality::Audio) item = {1, c.audio->frames, c.audio->mel_bins};
  if (m == Modality::Image) item = {c.image->channels_in, c.image->size, c.image->size};
  if (m == Modality::Point) item = {c.point->points, 3};
  if (m == Modality::Text) item = {c.text->max_tokens};
  bool ok = batch.dim() == static_cast<int64_t>(item.size()) + 1;
  for (size_t i = 0; ok && i < item.size(); ++i) ok = batch.size(static_cast<int64_t>(i) + 1) == item[i];
  ok = ok && (m == Modality::Text ? batch.scalar_type() == at::kLong : batch.scalar_type() == at::kFloat);
  require(ok, "zoo expert '" + c.key + "': encode(" + mname + ") expects the stacked output of preprocess");
  c10::InferenceMode guard;
  return model_.forward(mname, batch.contiguous());
}

void register_zoo_expert() {
  register_expert("zoo", "small experts trained by `omnibind zoo train` (audio log-mel CNN, image CNN, PointNet, "
                         "hashed n-gram text), any modality subset",
                  [](const ExpertOptions& o) { return std::make_unique<ZooExpert>(o); });
}

}  // namespace omnibind::experts::zoo
