#include "omnibind/experts/zoo/zoo_model.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

#include "omnibind/common/error.h"

namespace omnibind::experts::zoo {
namespace {

std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

// Flattened width after the conv stack: channels[-1] * (h >> n) * (w >> n).
int64_t conv_out_features(const std::vector<int64_t>& channels, int64_t h, int64_t w) {
  const size_t n = channels.size();
  return channels.back() * (h >> n) * (w >> n);
}

void add_linear(std::vector<std::pair<std::string, std::vector<int64_t>>>& out, const std::string& name, int64_t in,
                int64_t o) {
  out.push_back({name + ".weight", {o, in}});
  out.push_back({name + ".bias", {o}});
}

void add_convs(std::vector<std::pair<std::string, std::vector<int64_t>>>& out, const std::string& tower, int64_t in,
               const std::vector<int64_t>& channels) {
  for (size_t i = 0; i < channels.size(); ++i) {
    out.push_back({tower + ".conv." + std::to_string(i) + ".weight", {channels[i], i ? channels[i - 1] : in, 3, 3}});
    out.push_back({tower + ".conv." + std::to_string(i) + ".bias", {channels[i]}});
  }
}

ZooLinear take_linear(const ZooWeights& w, const std::string& name) {
  return ZooLinear{w.at(name + ".weight"), w.at(name + ".bias")};
}

}  // namespace

at::Tensor ZooLinear::forward(const at::Tensor& x) const { return at::linear(x, weight, bias); }

at::Tensor ZooConvTower::forward(const at::Tensor& x) const {
  at::Tensor h = x;
  for (auto& c : convs) h = at::max_pool2d(at::relu(at::conv2d(h, c.weight, c.bias, 1, 1)), 2);
  h = h.flatten(1);
  return fc2.forward(at::relu(fc1.forward(h)));
}

at::Tensor ZooPointTower::forward(const at::Tensor& x) const {
  at::Tensor h = x;
  for (auto& l : mlp) h = at::relu(l.forward(h));
  h = std::get<0>(h.max(1));  // [B, width]
  return fc2.forward(at::relu(fc1.forward(h)));
}

at::Tensor ZooTextTower::forward(const at::Tensor& ids) const {
  at::Tensor mask = ids.gt(0).to(embedding.scalar_type()).unsqueeze(-1);  // [B, L, 1]
  at::Tensor e = at::embedding(embedding, ids) * mask;                     // [B, L, width]
  at::Tensor mean = e.sum(1) / mask.sum(1).clamp_min(1.0);
  return fc2.forward(at::relu(fc1.forward(mean)));
}

std::vector<std::pair<std::string, std::vector<int64_t>>> zoo_parameter_shapes(const ZooConfig& c) {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  if (c.audio) {
    auto& a = *c.audio;
    add_convs(out, "audio", 1, a.channels);
    add_linear(out, "audio.fc1", conv_out_features(a.channels, a.frames, a.mel_bins), a.hidden);
    add_linear(out, "audio.fc2", a.hidden, c.dim);
  }
  if (c.image) {
    auto& i = *c.image;
    add_convs(out, "image", i.channels_in, i.channels);
    add_linear(out, "image.fc1", conv_out_features(i.channels, i.size, i.size), i.hidden);
    add_linear(out, "image.fc2", i.hidden, c.dim);
  }
  if (c.point) {
    auto& p = *c.point;
    for (size_t i = 0; i < p.widths.size(); ++i)
      add_linear(out, "point.mlp." + std::to_string(i), i ? p.widths[i - 1] : 3, p.widths[i]);
    add_linear(out, "point.fc1", p.widths.back(), p.hidden);
    add_linear(out, "point.fc2", p.hidden, c.dim);
  }
  if (c.text) {
    auto& t = *c.text;
    out.push_back({"text.embedding.weight", {t.buckets + 1, t.width}});
    add_linear(out, "text.fc1", t.width, t.hidden);
    add_linear(out, "text.fc2", t.hidden, c.dim);
  }
  out.push_back({"logit_scale", {}});
  return out;
}

ZooWeights init_zoo_weights(const ZooConfig& config, uint64_t seed) {
  validate_zoo_config(config, "zoo config");
  at::Generator gen = at::detail::createCPUGenerator(seed);
  ZooWeights w;
  for (auto& [name, shape] : zoo_parameter_shapes(config)) {
    at::Tensor t;
    if (name == "logit_scale") {
      t = at::full({}, std::log(1.0 / 0.07), at::kFloat);
    } else if (name.size() > 5 && name.compare(name.size() - 5, 5, ".bias") == 0) {
      t = at::zeros(shape, at::kFloat);
    } else if (name == "text.embedding.weight") {
      t = at::empty(shape, at::kFloat);
      t.normal_(0.0, 0.5, gen);
      t[0].zero_();
    } else {
      int64_t fan_in = 1;
      for (size_t i = 1; i < shape.size(); ++i) fan_in *= shape[i];
      t = at::empty(shape, at::kFloat);
      t.normal_(0.0, std::sqrt(2.0 / static_cast<double>(fan_in)), gen);
    }
    w[name] = t;
  }
  return w;
}

ZooModel ZooModel::bind(const ZooConfig& config, const ZooWeights& weights, const std::string& source) {
  validate_zoo_config(config, source);
  for (auto& [name, shape] : zoo_parameter_shapes(config)) {
    auto it = weights.find(name);
    require(it != weights.end(), source + ": missing tensor '" + name + "' (expected " + shape_str(shape) + ")");
    require(it->second.sizes() == at::IntArrayRef(shape),
            source + ": tensor '" + name + "' has shape " + shape_str(it->second.sizes()) + ", expected " + shape_str(shape));
    require(it->second.scalar_type() == at::kFloat, source + ": tensor '" + name + "' must be F32");
  }
  ZooModel m;
  m.config = config;
  m.logit_scale = weights.at("logit_scale");
  auto conv_tower = [&](const std::string& tower, size_t n) {
    ZooConvTower t;
    for (size_t i = 0; i < n; ++i) t.convs.push_back(take_linear(weights, tower + ".conv." + std::to_string(i)));
    t.fc1 = take_linear(weights, tower + ".fc1");
    t.fc2 = take_linear(weights, tower + ".fc2");
    return t;
  };
  if (config.audio) m.audio = conv_tower("audio", config.audio->channels.size());
  if (config.image) m.image = conv_tower("image", config.image->channels.size());
  if (config.point) {
    ZooPointTower t;
    for (size_t i = 0; i < config.point->widths.size(); ++i)
      t.mlp.push_back(take_linear(weights, "point.mlp." + std::to_string(i)));
    t.fc1 = take_linear(weights, "point.fc1");
    t.fc2 = take_linear(weights, "point.fc2");
    m.point = t;
  }
  if (config.text) {
    ZooTextTower t;
    t.embedding = weights.at("text.embedding.weight");
    t.fc1 = take_linear(weights, "text.fc1");
    t.fc2 = take_linear(weights, "text.fc2");
    m.text = t;
  }
  return m;
}

at::Tensor ZooModel::forward(const std::string& modality, const at::Tensor& batch) const {
  at::Tensor out;
  if (modality == "audio" && audio) out = audio->forward(batch);
  else if (modality == "image" && image) out = image->forward(batch);
  else if (modality == "point" && point) out = point->forward(batch);
  else if (modality == "text" && text) out = text->forward(batch);
  else throw InputError("zoo expert '" + config.key + "' has no " + modality + " tower");
  return out / out.norm(2, -1, true).clamp_min(1e-12);
}

}  // namespace omnibind::experts::zoo
