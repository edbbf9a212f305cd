#include "omnibind/experts/uni3d/uni3d_config.h"

#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"

namespace omnibind::experts::uni3d {
namespace {

// The timm base model of each size, with the widths Uni3D pairs it with (pc_feat_dim).
Uni3dConfig timm_model(const std::string& pc_model) {
  Uni3dConfig c;
  c.pc_model = pc_model;
  auto eva02 = [&](const char* name, int64_t w, int64_t depth, int64_t heads, bool sub_ln) {
    c.name = name;
    c.width = w;
    c.depth = depth;
    c.heads = heads;
    c.mlp_hidden = static_cast<int64_t>(static_cast<double>(w) * (4.0 * 2.0 / 3.0));  // int(dim * mlp_ratio)
    c.mlp = sub_ln ? MlpKind::SwiGlu : MlpKind::Glu;
    c.qkv_fused = !sub_ln;
  };
  if (pc_model.rfind("eva_giant_patch14", 0) == 0) {
    c.name = "giant";
    c.width = 1408;
    c.depth = 40;
    c.heads = 16;
    c.mlp_hidden = static_cast<int64_t>(1408.0 * (6144.0 / 1408.0));
    c.mlp = MlpKind::Gelu;
    c.qkv_fused = true;
  } else if (pc_model.rfind("eva02_large_patch14", 0) == 0) {
    eva02("large", 1024, 24, 16, true);
  } else if (pc_model.rfind("eva02_base_patch14", 0) == 0) {
    eva02("base", 768, 12, 12, true);
  } else if (pc_model.rfind("eva02_small_patch14", 0) == 0) {
    eva02("small", 384, 12, 6, false);
  } else if (pc_model.rfind("eva02_tiny_patch14", 0) == 0) {
    eva02("tiny", 192, 12, 3, false);
  } else {
    throw InputError("unknown Uni3D pc_model '" + pc_model +
                     "' (expected eva_giant_patch14_*, eva02_{large,base}_patch14_*, eva02_{small,tiny}_patch14_*)");
  }
  return c;
}

}  // namespace

Uni3dConfig uni3d_preset(const std::string& size) {
  // Uni3D scripts/inference.sh: size -> timm model (pc_feat_dim = the model's width).
  if (size == "giant" || size.empty()) return timm_model("eva_giant_patch14_560");
  if (size == "large") return timm_model("eva02_large_patch14_448");
  if (size == "base") return timm_model("eva02_base_patch14_448");
  if (size == "small") return timm_model("eva02_small_patch14_224");
  if (size == "tiny") return timm_model("eva02_tiny_patch14_224");
  throw InputError("unknown Uni3D size '" + size + "' (expected giant, large, base, small or tiny)");
}

Uni3dConfig uni3d_config_from_json_file(const std::string& path) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file_bytes(path));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": not valid JSON (" + std::string(e.what()).substr(0, 120) + ")");
  }
  if (!j.is_object()) throw InputError(path + ": Uni3D config must be a JSON object");
  auto get_int = [&](const nlohmann::json& o, const char* key, int64_t& out) {
    if (!o.contains(key) || o[key].is_null()) return;
    if (!o[key].is_number_integer() || o[key].get<int64_t>() <= 0)
      throw InputError(path + ": '" + key + "' must be a positive integer");
    out = o[key].get<int64_t>();
  };
  const nlohmann::json& args = j.contains("uni3d_args") ? j["uni3d_args"] : j;
  if (!args.is_object()) throw InputError(path + ": 'uni3d_args' must be an object");
  Uni3dConfig c;
  if (args.contains("pc_model") && args["pc_model"].is_string()) c = timm_model(args["pc_model"].get<std::string>());
  else if (args.contains("size") && args["size"].is_string()) c = uni3d_preset(args["size"].get<std::string>());
  if (j.contains("preset") && j["preset"].is_string()) c.name = j["preset"].get<std::string>();
  // timm kwargs (fixture: timm_overrides; flat configs: width/depth/heads/mlp_hidden)
  if (j.contains("timm_overrides")) {
    const auto& t = j["timm_overrides"];
    if (!t.is_object()) throw InputError(path + ": 'timm_overrides' must be an object");
    int64_t w = c.width;
    get_int(t, "embed_dim", w);
    if (w != c.width) {
      // timm keeps mlp_ratio when the width changes.
      c.mlp_hidden = c.mlp == MlpKind::Gelu ? static_cast<int64_t>(static_cast<double>(w) * (6144.0 / 1408.0))
                                            : static_cast<int64_t>(static_cast<double>(w) * (4.0 * 2.0 / 3.0));
      c.width = w;
    }
    get_int(t, "depth", c.depth);
    get_int(t, "num_heads", c.heads);
  }
  // Uni3D args
  get_int(args, "pc_feat_dim", c.width);
  get_int(args, "embed_dim", c.embed_dim);
  get_int(args, "num_group", c.num_group);
  get_int(args, "group_size", c.group_size);
  get_int(args, "pc_encoder_dim", c.pc_encoder_dim);
  get_int(args, "npoints", c.npoints);
  get_int(args, "width", c.width);
  get_int(args, "depth", c.depth);
  get_int(args, "heads", c.heads);
  get_int(args, "mlp_hidden", c.mlp_hidden);
  if (c.width % c.heads != 0)
    throw InputError(path + ": width " + std::to_string(c.width) + " is not divisible by " + std::to_string(c.heads) + " heads");
  return c;
}

}  // namespace omnibind::experts::uni3d
