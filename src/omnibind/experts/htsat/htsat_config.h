// HTSAT (HTS-AT Swin audio transformer) configurations: the towers of WavCaps HTSAT-BERT and of
// LAION-CLAP (HTSAT-tiny with or without AFF-2D fusion, HTSAT-base), the released presets, and
// configs read from the fixtures' config.json format.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace omnibind::experts::htsat {

struct HtsatConfig {
  std::string name = "wavcaps";          // preset name, for messages
  int64_t embed_dim = 96;                // patch embedding width; stage i has embed_dim * 2^i
  std::vector<int64_t> depths = {2, 2, 6, 2};
  std::vector<int64_t> heads = {4, 8, 16, 32};
  int64_t window = 8;                    // window_size
  int64_t patch = 4;                     // patch_size (kernel of patch_embed.proj)
  int64_t patch_stride = 4;              // patch_stride (both axes)
  int64_t spec_size = 256;               // the square image the mel is folded into
  int64_t mel_bins = 64;                 // n_mels (WavCaps audio_args) / audio_cfg.mel_bins (CLAP)
  int64_t frames = 1001;                 // mel frames of a 10 s clip (input time axis; <= spec_size * freq_ratio)
  double mlp_ratio = 4.0;
  bool fusion = false;                   // CLAP fusion_type 'aff_2d': input [B, 4, T, F] + longer flags
  int64_t aff_r = 4;                     // AFF channel reduction (inter = embed_dim / r)
  int64_t num_classes = 527;             // sizes tscam_conv/head only (not computed; informative)
  int64_t proj_dim = 1024;               // width of the projection MLP after the tower (WavCaps
                                         // embed_size 1024, CLAP joint_embed_shape 512); not used by HtsatModel
  double ln_eps = 1e-5;                  // every LayerNorm in HTSAT (torch default)
  double bn_eps = 1e-5;                  // bn0 and the AFF BatchNorms

  int64_t num_layers() const { return static_cast<int64_t>(depths.size()); }
  int64_t num_features() const { return embed_dim << (num_layers() - 1); }  // embed_dim * 2^(L-1)
  int64_t freq_ratio() const { return spec_size / mel_bins; }              // 4
  int64_t grid() const { return spec_size / patch_stride; }                // 64 tokens per side after patch_embed
  int64_t in_channels() const { return fusion ? 4 : 1; }                   // channels of the forward input
  // Throws InputError (naming `source`) when the fields are inconsistent (heads not dividing the
  // widths, grid not divisible by the window at some stage, mel_bins not dividing spec_size, ...).
  void validate(const std::string& source) const;
};

// Released towers:
//   "wavcaps"     WavCaps HTSAT (AudioEncoder): 96, [2,2,6,2], [4,8,16,32], no fusion, proj 1024
//   "clap-tiny"   CLAP HTSAT-tiny (CLAP_G when fused): 96, [2,2,6,2], [4,8,16,32], proj 512
//   "clap-fusion" = clap-tiny with aff_2d fusion (OmniBind's CLAP_G)
//   "clap-base"   CLAP HTSAT-base (CLAP_M): 128, [2,2,12,2], [4,8,16,32], no fusion, proj 512
// InputError listing them otherwise.
HtsatConfig htsat_preset(const std::string& name);

// A JSON config text (`source` names it in errors), any of:
//  - the wavcaps_mini config.json: "htsat_kwargs_effective" {embed_dim, depths, num_heads,
//    window_size, spec_size, patch_size, patch_stride, num_classes}, "inference_yaml".audio_args.n_mels,
//    "embed_size" (or inference_yaml.embed_size);
//  - the clap_mini config.json: "amodel" (HTSAT-tiny / HTSAT-base) picks the preset, then
//    "htsat_overrides" {embed_dim, depths, num_heads}, "htsat_fixed", "model_cfg" {audio_cfg
//    {mel_bins, class_num, model_name}, joint_embed_shape, enable_fusion, fusion_type};
//  - a flat object with the HtsatConfig field names (plus optional "preset").
// Starts from the matching preset and applies what the file gives; validates.
HtsatConfig htsat_config_from_json(const std::string& text, const std::string& source);
HtsatConfig htsat_config_from_json_file(const std::string& path);

}  // namespace omnibind::experts::htsat
