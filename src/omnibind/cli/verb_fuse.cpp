// omnibind fuse: expert embeddings ("<modality>/<EXPERT>" -> [N, d]) -> unified embeddings
// ("<modality>" -> [N, D]) with an OmniBind projector/router checkpoint.
#include <ATen/ATen.h>

#include <cstdio>
#include <map>
#include <set>

#include "omnibind/binding/omnibind_model.h"
#include "omnibind/cli/verb.h"
#include "omnibind/common/error.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::cli {
namespace {

struct FuseOptions {
  std::string head, preset, config, in, out, precision = "fp32", select = "auto";
  std::vector<std::string> modalities;
  int64_t batch = 256;
  int threads = 0;
};

binding::BindingConfig choose_config(const FuseOptions& o) {
  require(o.preset.empty() || o.config.empty(), "give at most one of --preset and --config");
  if (!o.preset.empty()) return binding::preset_config(o.preset);
  if (!o.config.empty()) return binding::load_binding_config(o.config);
  return binding::binding_config_of_checkpoint(o.head);  // neither: the config `train` stored in the head
}

// Groups "<modality>/<EXPERT>" keys by modality.
std::map<std::string, std::map<std::string, at::Tensor>> group_inputs(const tensor_io::StateDict& sd) {
  std::map<std::string, std::map<std::string, at::Tensor>> out;
  for (auto& key : sd.names()) {
    auto slash = key.find('/');
    require(slash != std::string::npos && slash > 0 && slash + 1 < key.size(),
            sd.source() + ": key '" + key + "' is not '<modality>/<EXPERT>' (e.g. audio/WAVCAPS_PT)");
    std::string modality = key.substr(0, slash);
    binding::router_prefix(modality);  // validates the modality name
    out[modality][key.substr(slash + 1)] = tensor_io::to_tensor(sd.at(key));
  }
  return out;
}

int run_fuse(const FuseOptions& o) {
  require(o.batch > 0, "--batch must be positive");
  auto config = choose_config(o);
  auto precision = binding::parse_precision(o.precision);
  // fp32 GEMMs go to OpenBLAS, which runs its own thread pool; bf16 GEMMs go to oneDNN, which uses
  // libtorch's (OpenMP) threads - on this Debian build those default to 1, so give it every core.
  // Measured in docs/PERFORMANCE.md: bf16 2 threads 1.6-2x its 1-thread rate; fp32 is best at 1.
  if (o.threads > 0)
    tensor_io::set_compute_threads(o.threads);
  else if (precision == binding::Precision::BF16)
    tensor_io::set_compute_threads(0);  // every core
  auto weights = tensor_io::load_checkpoint(o.head, {o.select});
  auto model = binding::OmniBindModel::load(weights, config, precision);

  auto inputs = tensor_io::read_safetensors(o.in);
  require(!inputs.tensors.empty(), o.in + ": holds no tensors");
  auto grouped = group_inputs(inputs.tensors);

  std::vector<std::string> todo = o.modalities;
  if (todo.empty())
    for (auto& m : model.modalities())
      if (grouped.count(m)) todo.push_back(m);
  require(!todo.empty(), o.in + ": no '<modality>/<EXPERT>' inputs for any modality this model embeds");

  std::vector<std::pair<std::string, at::Tensor>> outputs;
  for (auto& m : todo) {
    require(grouped.count(m), o.in + ": no inputs for modality '" + m + "'");
    auto& in = grouped[m];
    // Validate everything once up front (names, widths, rows, NaN/Inf) so nothing runs on bad data.
    for (auto& name : model.required_inputs(m))
      require(in.count(name), o.in + ": missing expert embeddings '" + m + "/" + name + "'");
    const int64_t rows = in.at(model.required_inputs(m).front()).size(0);
    std::vector<at::Tensor> chunks;
    for (int64_t start = 0; start < std::max<int64_t>(rows, 1); start += o.batch) {
      std::map<std::string, at::Tensor> slice;
      for (auto& [name, t] : in) slice[name] = t.size(0) == rows ? t.narrow(0, start, std::min(o.batch, rows - start)) : t;
      try {
        chunks.push_back(model.embed(m, slice));
      } catch (const InputError& e) {
        std::string msg = e.what();
        // Row numbers inside a batch are relative: report them against the whole input.
        throw InputError(o.in + ": " + msg + (start > 0 ? " (in the batch starting at row " + std::to_string(start) + ")" : ""));
      }
    }
    outputs.emplace_back(m, at::cat(chunks, 0));
  }
  std::map<std::string, std::string> meta = {{"preset", model.config().name},
                                             {"precision", o.precision},
                                             {"unified_dim", std::to_string(model.unified_dim())},
                                             {"producer", "omnibind fuse"}};
  tensor_io::write_checkpoint(o.out, outputs, meta);  // .pt/.pth -> torch.save zip, else safetensors
  for (auto& [m, t] : outputs)
    std::fprintf(stderr, "fuse: %s: %lld x %lld\n", m.c_str(), static_cast<long long>(t.size(0)),
                 static_cast<long long>(t.size(1)));
  return 0;
}

VerbRun setup_fuse(CLI::App& app) {
  auto o = std::make_shared<FuseOptions>();
  app.add_option("--head", o->head, "Projector/router checkpoint (.pt, .pth or .safetensors)")->required();
  app.add_option("--preset", o->preset, "Official layout: base, large or full");
  app.add_option("--config", o->config, "Binding config JSON (custom bindings), instead of --preset");
  app.add_option("--in", o->in, "Expert embeddings: safetensors with '<modality>/<EXPERT>' -> [N, d]")->required();
  app.add_option("--out", o->out, "Output file: '<modality>' -> [N, D] unit rows; .pt/.pth writes a torch.save archive (loads with torch.load), anything else safetensors")->required();
  app.add_option("--modality", o->modalities, "Only these modalities (default: every modality in the input)")
      ->check(CLI::IsMember({"audio", "image", "point", "text"}));
  app.add_option("--batch", o->batch, "Rows per batch")->capture_default_str();
  app.add_option("--threads", o->threads, "Compute threads (default: all cores for bf16; OpenBLAS's own pool for fp32)");
  app.add_option("--precision", o->precision, "fp32 or bf16 (bf16 GEMMs, fp32 accumulation of the result)")
      ->capture_default_str();
  app.add_option("--select", o->select, "Sub-dict of the checkpoint holding the state dict ('auto', '' or a key)")
      ->capture_default_str();
  return [o] { return run_fuse(*o); };
}

REGISTER_VERB("fuse", "Expert embeddings -> unified OmniBind embeddings", setup_fuse);

}  // namespace
}  // namespace omnibind::cli
