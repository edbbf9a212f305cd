// Uni3D point-encoder configurations: the five released sizes (Uni3D scripts/inference.sh +
// timm v0.9.7 eva.py model defaults) and fixture/custom configs from JSON.
#pragma once
#include <cstdint>
#include <string>

namespace omnibind::experts::uni3d {

// How a block's MLP is built (timm EvaBlock):
//  Gelu   - EVA-01 Mlp: fc1 -> exact GELU -> fc2                                     (giant)
//  Glu    - EVA-02 GluMlp: fc1 (2H) -> silu(first half) * second half -> fc2        (tiny, small)
//  SwiGlu - EVA-02 SwiGLU with sub-LN: silu(fc1_g) * fc1_x -> LayerNorm(H) -> fc2   (base, large)
enum class MlpKind { Gelu, Glu, SwiGlu };

struct Uni3dConfig {
  std::string name = "giant";
  std::string pc_model = "eva_giant_patch14_560";  // the timm model name, for messages/docs
  // Transformer (timm Eva)
  int64_t width = 1408;       // pc_feat_dim = Eva embed_dim
  int64_t depth = 40;
  int64_t heads = 16;
  int64_t mlp_hidden = 6144;  // int(width * mlp_ratio); Glu's fc1 is 2x this
  MlpKind mlp = MlpKind::Gelu;
  bool qkv_fused = true;      // EVA-01 and EVA-02 tiny/small: one qkv + q_bias/v_bias; base/large: q/k/v_proj
  double ln_eps = 1e-6;       // timm LayerNorm
  // Point side (Uni3D args)
  int64_t embed_dim = 1024;   // trans2embed output (the shared CLIP space)
  int64_t num_group = 512;
  int64_t group_size = 64;
  int64_t pc_encoder_dim = 512;
  int64_t npoints = 10000;    // clouds with more points are subsampled to this many
  double bn_eps = 1e-5;       // BatchNorm1d in the group encoder
};

// "giant", "large", "base", "small", "tiny"; InputError listing them otherwise.
Uni3dConfig uni3d_preset(const std::string& size);

// A JSON config: either the fixture format ({"uni3d_args": {pc_model, pc_feat_dim, embed_dim,
// num_group, group_size, pc_encoder_dim, npoints}, "timm_overrides": {embed_dim, depth,
// num_heads}}) or a flat object with the Uni3dConfig field names. Starts from the preset named by
// pc_model (or `size`), then applies the overrides.
Uni3dConfig uni3d_config_from_json_file(const std::string& path);

}  // namespace omnibind::experts::uni3d
