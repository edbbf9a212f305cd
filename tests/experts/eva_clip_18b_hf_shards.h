// Test helper: the eva_clip_18b_mini fixture's weights in the Hugging Face hub layout of
// BAAI/EVA-CLIP-18B (docs/reference/eva_clip_18b.md, "Weights"), as safetensors shards with an index.
#pragma once
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::testkit {

// An EVA-CLIP-18B state dict in the official layout (`weights`, e.g. the eva_clip_18b_mini fixture's)
// written under the hub port's names (docs/reference/eva_clip_18b.md), split into
// `shards` safetensors files with a model.safetensors.index.json, in `dir`.
inline void write_eva18b_hf_shards(const std::string& weights, int64_t W, int64_t Wt, const std::string& dir, int shards) {
  std::vector<std::pair<std::string, at::Tensor>> hf;
  const tensor_io::SafetensorsFile src = tensor_io::read_safetensors(weights);
  for (const auto& n : src.tensors.names()) {
    const at::Tensor t = tensor_io::to_tensor(src.tensors.at(n));
    auto put = [&](const std::string& name, const at::Tensor& x) { hf.emplace_back(name, x.contiguous()); };
    const std::string vb = "visual.blocks.", tb = "text.transformer.resblocks.";
    if (n == "logit_scale") put(n, t);
    else if (n == "visual.cls_token") put("vision_model.embeddings.class_embedding", t.reshape({W}));
    else if (n == "visual.pos_embed") put("vision_model.embeddings.position_embedding.weight", t[0]);
    else if (n.rfind("visual.patch_embed.proj.", 0) == 0)
      put("vision_model.embeddings.patch_embedding." + n.substr(24), t);
    else if (n.rfind(vb, 0) == 0) {
      const std::string rest = n.substr(vb.size());
      const std::string i = rest.substr(0, rest.find('.')), k = rest.substr(rest.find('.') + 1);
      const std::string p = "vision_model.encoder.layers." + i + ".";
      if (k == "attn.qkv.weight") {
        put(p + "self_attn.q_proj.weight", t.narrow(0, 0, W));
        put(p + "self_attn.k_proj.weight", t.narrow(0, W, W));
        put(p + "self_attn.v_proj.weight", t.narrow(0, 2 * W, W));
      } else if (k.rfind("attn.proj.", 0) == 0) put(p + "self_attn.out_proj." + k.substr(10), t);
      else if (k == "norm1.weight") put(p + "layer_norm1.weight", t);
      else if (k == "norm2.weight") put(p + "layer_norm2.weight", t);
      else put(p + k, t);  // mlp.fc1 / mlp.fc2
    } else if (n == "visual.norm.weight") put("vision_model.post_layernorm.weight", t);
    else if (n == "visual.head.weight") put("visual_projection.weight", t);
    else if (n == "text.token_embedding.weight") put("text_model.embeddings.token_embedding.weight", t);
    else if (n == "text.positional_embedding") put("text_model.embeddings.position_embedding.weight", t);
    else if (n == "text.text_projection") put("text_projection.weight", t.t());
    else if (n.rfind("text.ln_final.", 0) == 0) put("text_model.final_layer_norm." + n.substr(14), t);
    else if (n.rfind(tb, 0) == 0) {
      const std::string rest = n.substr(tb.size());
      const std::string i = rest.substr(0, rest.find('.')), k = rest.substr(rest.find('.') + 1);
      const std::string p = "text_model.encoder.layers." + i + ".";
      if (k == "attn.in_proj_weight" || k == "attn.in_proj_bias") {
        const char* qkv[3] = {"q_proj", "k_proj", "v_proj"};
        for (int j = 0; j < 3; ++j)
          put(p + "self_attn." + qkv[j] + (k == "attn.in_proj_weight" ? ".weight" : ".bias"), t.narrow(0, j * Wt, Wt));
      } else if (k.rfind("attn.out_proj.", 0) == 0) put(p + "self_attn.out_proj." + k.substr(14), t);
      else if (k.rfind("ln_1.", 0) == 0) put(p + "layer_norm1." + k.substr(5), t);
      else if (k.rfind("ln_2.", 0) == 0) put(p + "layer_norm2." + k.substr(5), t);
      else if (k.rfind("mlp.c_fc.", 0) == 0) put(p + "mlp.fc1." + k.substr(9), t);
      else if (k.rfind("mlp.c_proj.", 0) == 0) put(p + "mlp.fc2." + k.substr(11), t);
      else ADD_FAILURE() << "unmapped " << n;
    } else {
      ADD_FAILURE() << "unmapped " << n;
    }
  }
  nlohmann::json map;
  const size_t per = (hf.size() + shards - 1) / shards;
  for (int s = 0; s < shards; ++s) {
    char name[64];
    std::snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", s + 1, shards);
    std::vector<std::pair<std::string, at::Tensor>> part(hf.begin() + std::min(hf.size(), s * per),
                                                         hf.begin() + std::min(hf.size(), (s + 1) * per));
    for (auto& [n, t] : part) map[n] = name;
    tensor_io::write_tensors(dir + "/" + name, part);
  }
  std::ofstream(dir + "/model.safetensors.index.json") << nlohmann::json{{"metadata", {{"total_size", 0}}}, {"weight_map", map}}.dump(1);
}


}  // namespace omnibind::testkit
