#include "omnibind/experts/checkpoint_family.h"

#include "omnibind/experts/audio_text/audio_text_checkpoint.h"
#include "omnibind/experts/eva_clip/eva_clip_checkpoint.h"
#include "omnibind/experts/open_clip/open_clip_config.h"
#include "omnibind/experts/siglip/siglip_expert.h"

namespace omnibind::experts {

namespace {

bool has_prefix(const tensor_io::StateDict& sd, const std::vector<std::string>& prefixes) {
  for (auto& n : sd.names())
    for (auto& p : prefixes)
      if (n.rfind(p, 0) == 0) return true;
  return false;
}

}  // namespace

std::string family_phrase(const std::string& family, const std::string& size) {
  if (family == "wavcaps") return "a WavCaps HTSAT-BERT";
  if (family == "clap") return size == "fusion" ? "a LAION-CLAP fusion" : size == "base" ? "a LAION-CLAP (no fusion)" : "a LAION-CLAP";
  if (family == "eva_clip") return "an EVA-CLIP";
  if (family == "eva_clip_18b") return "an EVA-CLIP-18B";
  if (family == "open_clip") return "an open_clip CLIP";
  if (family == "siglip") return size.empty() ? "a SigLIP" : "a SigLIP " + size;
  if (family == "uni3d") return "a Uni3D";
  if (family == "imagebind") return "an ImageBind";
  if (family == "omnibind-heads") return "an OmniBind heads/routers";
  return "a " + family;
}

CheckpointFamily detect_checkpoint_family(const tensor_io::StateDict& sd) {
  CheckpointFamily f;
  auto done = [&](std::string family, std::string size, std::string description) {
    f.family = std::move(family);
    f.size = std::move(size);
    f.phrase = family_phrase(f.family, f.size);
    f.description = description.empty() ? f.phrase + " checkpoint (expert " + f.family + ")" : std::move(description);
    return f;
  };
  const auto at = audio_text::detect_family(sd);
  if (at.family == audio_text::Family::WavCaps) return done("wavcaps", "", "");
  if (at.family == audio_text::Family::ClapFusion) return done("clap", "fusion", "");
  if (at.family == audio_text::Family::ClapPlain) return done("clap", "base", "");
  if (const auto s = describe_siglip_checkpoint(sd); !s.empty()) {
    std::string size;
    for (const char* known : {"large16", "so400m14"})
      if (s.find(std::string("--size ") + known) != std::string::npos) size = known;
    return done("siglip", size, s);
  }
  if (const auto eva = eva_clip::describe_checkpoint(sd)) return done(eva_clip::checkpoint_expert(sd), "", *eva);
  if (const auto oc = open_clip::describe_checkpoint(sd)) return done("open_clip", "", *oc + " (expert open_clip)");
  if (sd.contains("point_encoder.cls_token") || sd.contains("module.point_encoder.cls_token"))
    return done("uni3d", "", "");
  if (has_prefix(sd, {"modality_trunks.", "module.modality_trunks."})) return done("imagebind", "", "");
  if (has_prefix(sd, {"projs.", "ib_projs.", "A_enc_router.", "V_enc_router.", "P_enc_router.", "T_enc_router.", "space.", "router."}))
    return done("omnibind-heads", "", "");
  return f;
}

std::vector<std::string> family_modalities(const std::string& family) {
  if (family == "wavcaps" || family == "clap") return {"audio", "text"};
  if (family == "eva_clip" || family == "eva_clip_18b" || family == "open_clip" || family == "siglip") return {"image", "text"};
  if (family == "uni3d") return {"point"};
  if (family == "imagebind") return {"audio", "image", "text"};
  return {};
}

}  // namespace omnibind::experts
