// Recognising the two audio-text checkpoint families OmniBind binds, from their state-dict keys:
//  - WavCaps HTSAT-BERT (`{'model': sd, 'optimizer', 'config', 'epoch'}`; keys
//    "audio_encoder.audio_enc.*", "text_encoder.text_encoder.*", "audio_proj.*", "text_proj.*", "temp"),
//  - LAION-CLAP (`{'state_dict': {'module.' + key}, 'epoch', 'name'}`; keys "audio_branch.*",
//    "text_branch.*", "audio_projection.*", "text_projection.*", "audio_transform.*",
//    "text_transform.*", "logit_scale_a/t"); fusion (CLAP_G) when the patch embedding has
//    `mel_conv2d`, else HTSAT-base/-tiny without fusion (CLAP_M is HTSAT-base).
// Used by the wavcaps/clap experts (to refuse the other family with a clear message) and by
// `omnibind inspect`.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "omnibind/common/error.h"
#include "omnibind/tensor_io/raw_tensor.h"

namespace omnibind::experts {
class WeightSource;
}  // namespace omnibind::experts

namespace omnibind::experts::audio_text {

enum class Family { None, WavCaps, ClapFusion, ClapPlain };

struct Detected {
  Family family = Family::None;
  std::string prefix;  // "" or "module." (DDP), to pass to WeightSource
};

// From the keys alone (no tensor is read).
Detected detect_family(const tensor_io::StateDict& sd);

// "WavCaps HTSAT-BERT", "LAION-CLAP fusion (HTSAT-tiny + AFF)", "LAION-CLAP (no fusion)", "".
std::string family_name(Family f);

// What `omnibind inspect` prints for such a checkpoint: family, OmniBind expert keys, the widths
// read from the tensor shapes (HTSAT embed_dim, depths, heads per stage, num_features; text hidden,
// layers, vocab; projection width) and whether they are the released sizes. Empty object when the
// checkpoint is neither family.
nlohmann::ordered_json describe(const tensor_io::StateDict& sd);

// Throws InputError "<file>: this is a <other family> checkpoint, not a <wanted> one (use --expert X)"
// when `sd` is the other family, or "<file>: not a <wanted> checkpoint (no '<key>' tensor)" when it
// is neither. Returns the detection otherwise.
Detected require_family(const tensor_io::StateDict& sd, bool want_wavcaps);

// Tensors a checkpoint must hold although the embedding does not compute them (unused classifier
// heads, loss temperatures): the reference's strict load_state_dict refuses a file without them.
// Throws WeightSource's "<file>: missing tensor '<prefix + name>' ..." for the first one absent.
// No-op for random weights.
void require_present(const WeightSource& w, const std::vector<std::string>& names);

// Runs `load`; when it throws an InputError, no --config was given and the checkpoint's widths are
// not the released ones, the message gains "(the checkpoint has custom widths: pass its --config
// JSON)".
template <class F>
auto with_config_hint(const tensor_io::StateDict& sd, const std::string& config_path, F&& load) -> decltype(load()) {
  try {
    return load();
  } catch (const InputError& e) {
    const auto d = describe(sd);
    if (!config_path.empty() || d.empty() || d.value("sizes", "").rfind("custom", 0) != 0) throw;
    throw InputError(std::string(e.what()) + " (the checkpoint has custom widths: pass its --config JSON)");
  }
}

// `ignored` names for WeightSource::require_all_used (which wants full names) of a source whose
// prefix is "" or "module.": every name twice, bare and with "module.".
std::vector<std::string> with_ddp_prefix(const std::vector<std::string>& names);

}  // namespace omnibind::experts::audio_text
