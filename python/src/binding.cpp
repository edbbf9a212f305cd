// omnibind.Binding / omnibind.fuse (expert embeddings -> unified, like `omnibind fuse`), omnibind.evaluate
// (`omnibind eval`) and omnibind.train (`omnibind train`), over binding::OmniBindModel and the training /
// evaluation layers.
#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <optional>

#include "omnibind/binding/binding_config.h"
#include "omnibind/binding/omnibind_model.h"
#include "omnibind/common/error.h"
#include "omnibind/evaluation/evaluate_binding.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "omnibind/training/binding_trainer.h"
#include "omnibind/training/tuple_mining.h"
#include "py_common.h"

namespace omnibind::python {
namespace {

namespace fs = std::filesystem;

// None: the config in the head's metadata; a preset name; a JSON file; JSON text; a dict.
binding::BindingConfig resolve_config(const py::object& config, const std::string& head) {
  if (config.is_none()) {
    require(!head.empty(), "pass a binding config (a preset name, a JSON file, JSON text or a dict)");
    return binding::binding_config_of_checkpoint(head);
  }
  if (py::isinstance<py::dict>(config)) return binding::parse_binding_config(json_dumps(config, "config"), "config dict");
  auto s = string_list(config, "config", true);
  require(s.size() == 1, "config must be a preset name, a JSON file, JSON text or a dict");
  const std::string& c = s[0];
  for (auto& p : binding::preset_names())
    if (c == p) return binding::preset_config(c);
  if (c.find('{') != std::string::npos) return binding::parse_binding_config(c, "config text");
  std::error_code ec;
  std::string presets;
  for (auto& p : binding::preset_names()) presets += (presets.empty() ? "" : ", ") + p;
  require(fs::is_regular_file(c, ec), "config '" + c + "' is neither a preset (" + presets + ") nor a file");
  return binding::load_binding_config(c);
}

class Binding {
 public:
  Binding(const std::string& head, const py::object& config, const std::string& precision, const std::string& select,
          int threads) {
    auto cfg = resolve_config(config, head);
    auto p = binding::parse_precision(precision);
    py::gil_scoped_release unlocked;
    // As `omnibind fuse`: bf16 GEMMs run on libtorch's threads (1 by default on Debian): give them every core.
    if (threads > 0)
      tensor_io::set_compute_threads(threads);
    else if (p == binding::Precision::BF16)
      tensor_io::set_compute_threads(0);
    model_ = std::make_shared<const binding::OmniBindModel>(
        binding::OmniBindModel::load(tensor_io::load_checkpoint(head, {select}), std::move(cfg), p));
  }

  int64_t dim() const { return model_->unified_dim(); }
  std::vector<std::string> modalities() const { return model_->modalities(); }
  std::string name() const { return model_->config().name; }
  std::vector<std::string> required_inputs(const std::string& m) const {
    binding::router_prefix(m);
    return model_->required_inputs(m);
  }

  // {"<modality>/<EXPERT>": [N, d]} -> {"<modality>": [N, D]}, `batch` rows per model call.
  py::dict fuse(const py::dict& inputs, int64_t batch, bool routing) const {
    require(batch > 0, "batch_size must be positive, got " + std::to_string(batch));
    require(py::len(inputs) > 0, "fuse: no inputs (give {'<modality>/<EXPERT>': array [N, d], ...})");
    std::map<std::string, std::map<std::string, at::Tensor>> grouped;
    std::vector<py::array> keep;  // the arrays the tensors view
    keep.reserve(py::len(inputs));
    for (auto [k, v] : inputs) {
      require(py::isinstance<py::str>(k), "fuse: input keys must be str '<modality>/<EXPERT>'");
      const std::string key = k.cast<std::string>();
      const auto slash = key.find('/');
      require(slash != std::string::npos && slash > 0 && slash + 1 < key.size(),
              "fuse: key '" + key + "' is not '<modality>/<EXPERT>' (e.g. audio/WAVCAPS_PT)");
      const std::string modality = key.substr(0, slash);
      binding::router_prefix(modality);  // validates the modality name
      keep.push_back(as_array(v));
      grouped[modality][key.substr(slash + 1)] = float_tensor_view(keep.back(), "fuse: '" + key + "'");
    }
    std::map<std::string, at::Tensor> out, weights;
    {
      py::gil_scoped_release unlocked;
      at::NoGradGuard no_grad;
      for (auto& [m, in] : grouped) {
        const auto have = model_->modalities();
        std::string list;
        for (auto& x : have) list += (list.empty() ? "" : ", ") + x;
        require(std::find(have.begin(), have.end(), m) != have.end(),
                "fuse: this binding has no " + m + " path (modalities: " + list + ")");
        auto req = model_->required_inputs(m);
        for (auto& name : req) require(in.count(name), "fuse: missing expert embeddings '" + m + "/" + name + "'");
        const int64_t rows = in.at(req.front()).size(0);
        std::vector<at::Tensor> chunks, wchunks;
        for (int64_t start = 0; start < std::max<int64_t>(rows, 1); start += batch) {
          std::map<std::string, at::Tensor> slice;
          for (auto& [name, t] : in)
            slice[name] = t.dim() >= 1 && t.size(0) == rows ? t.narrow(0, start, std::min(batch, rows - start)) : t;
          try {
            chunks.push_back(model_->embed(m, slice).to(at::kFloat).contiguous());
            if (routing) wchunks.push_back(model_->routing_weights(m, slice).to(at::kFloat).contiguous());
          } catch (const InputError& e) {
            std::string msg = e.what();
            throw InputError("fuse: " + msg + (start > 0 ? " (in the batch starting at row " + std::to_string(start) + ")" : ""));
          }
        }
        out[m] = at::cat(chunks, 0);
        if (routing) weights[m] = at::cat(wchunks, 0);
      }
    }
    py::dict result;
    for (auto& [m, t] : out) result[py::str(m)] = to_numpy(t);
    if (routing)
      for (auto& [m, t] : weights) result[py::str(m + "/routing_weights")] = to_numpy(t);
    return result;
  }

 private:
  std::shared_ptr<const binding::OmniBindModel> model_;
};

py::object evaluate(const std::string& pools, const std::string& head, const py::object& config,
                    const std::string& precision, int64_t batch, bool single_experts) {
  require(batch > 0, "batch_size must be positive");
  auto cfg = resolve_config(config, head);
  auto p = binding::parse_precision(precision);
  std::string json;
  {
    py::gil_scoped_release unlocked;
    auto set = evaluation::load_eval_set(pools);
    auto model = binding::OmniBindModel::load(tensor_io::load_checkpoint(head), std::move(cfg), p);
    evaluation::EvalOptions o;
    o.single_experts = single_experts;
    o.batch = batch;
    auto table = evaluation::evaluate_binding(set, model, o);
    table.title = "omnibind eval: " + pools;
    json = table.to_json();
  }
  return json_loads(json);
}

// As `omnibind train`: mine tuples (or read --pairs), train heads then routers, write `out` with the config.
py::dict train(const std::string& pools, const py::object& config, const std::string& out, const py::object& pairs,
               uint64_t seed, int threads, int epochs_proj, int epochs_router, int64_t batch, double lr, double router_lr,
               double temperature, bool decoupling, bool resume, const py::object& progress) {
  const std::string ext = fs::path(out).extension().string();
  require(ext == ".safetensors" || ext == ".pt" || ext == ".pth", "out " + out + ": use a .safetensors, .pt or .pth file name");
  require(fs::is_directory(fs::absolute(out).parent_path()), "out " + out + ": the directory does not exist");
  require(batch > 0, "batch_size must be positive");
  auto cfg = resolve_config(config, "");
  training::TrainOptions o;
  o.seed = seed;
  o.threads = threads;
  o.projector_epochs = epochs_proj;
  o.router_epochs = epochs_router;
  o.batch = batch;
  o.projector_lr = lr;
  o.router_lr = router_lr;
  o.temperature = temperature;
  o.decoupling = decoupling;
  o.resume = resume;
  o.state_file = out + ".train-state.safetensors";
  if (!progress.is_none())
    o.progress = [&progress](const training::TrainProgress& p) {
      py::gil_scoped_acquire locked;
      progress(p.stage, p.fraction, p.loss);
    };
  const std::string pairs_path = pairs.is_none() ? std::string() : string_list(pairs, "pairs", true).at(0);
  int64_t tuple_count = 0, tensors = 0;
  {
    py::gil_scoped_release unlocked;
    // `threads` covers the whole call, mining included (train_binding sets the same count for training): the
    // mined tuples depend on the thread count of the similarity GEMMs.
    tensor_io::set_compute_threads(threads);
    auto pool = training::EmbeddingPool::open(pools);
    training::check_pool_against_config(pool, cfg);
    training::TupleSet tuples;
    if (!pairs_path.empty()) {
      tuples = training::load_tuples(pairs_path);
    } else {
      training::MiningOptions m;
      m.seed = seed;
      tuples = training::mine_tuples(pool, m);
    }
    for (int m = 0; m < 4; ++m)
      if (tuples.index.select(1, m).select(1, 0).max().item<int64_t>() >= pool.rows(training::tuple_modalities()[m]))
        throw InputError("pairs " + pairs_path + ": tuples point past the rows of " + pools + " (mined from another pool?)");
    auto state = training::train_binding(pool, tuples, cfg, o);
    training::write_binding_checkpoint(out, state, cfg);
    std::error_code ec;
    fs::remove(o.state_file, ec);
    tuple_count = static_cast<int64_t>(tuples.size());
    tensors = static_cast<int64_t>(state.size());
  }
  py::dict r;
  r["out"] = out;
  r["tuples"] = tuple_count;
  r["tensors"] = tensors;
  r["binding"] = cfg.name;
  return r;
}

}  // namespace

void register_binding(py::module_& m) {
  py::class_<Binding>(m, "Binding", R"doc(OmniBind projector heads + routers (no experts): expert embeddings -> unified.

Binding(head, config=None, precision="fp32", select="auto", threads=0)
  head: the heads/routers checkpoint (official layout; .pt/.pth/.safetensors); config: None (the head's
  binding_config metadata, as `omnibind train` writes it to .safetensors and .pt), a preset ("base", "large", "full"), a binding-config JSON file, JSON text or a dict.)doc")
      .def(py::init<const std::string&, const py::object&, const std::string&, const std::string&, int>(), py::arg("head"),
           py::arg("config") = py::none(), py::arg("precision") = "fp32", py::arg("select") = "auto", py::arg("threads") = 0)
      .def_property_readonly("dim", &Binding::dim)
      .def_property_readonly("modalities", &Binding::modalities)
      .def_property_readonly("name", &Binding::name)
      .def("experts", &Binding::required_inputs, py::arg("modality"))
      .def("fuse", &Binding::fuse, py::arg("inputs"), py::kw_only(), py::arg("batch_size") = 256,
           py::arg("routing_weights") = false,
           "{'<modality>/<EXPERT>': float [N, d]} -> {'<modality>': float32 [N, D]} (plus '<modality>/routing_weights' "
           "[N, S] when routing_weights=True). Arrays are read in place (no copy) when their strides allow.");
  m.def(
      "fuse",
      [](const std::string& head, const py::object& config, const py::dict& inputs, int64_t batch, int threads,
         const std::string& precision, const std::string& select) {
        return Binding(head, config, precision, select, threads).fuse(inputs, batch, false);
      },
      py::arg("head"), py::arg("config"), py::arg("inputs"), py::kw_only(), py::arg("batch_size") = 256,
      py::arg("threads") = 0, py::arg("precision") = "fp32", py::arg("select") = "auto",
      "omnibind.fuse(head, preset_or_config, {'audio/WAVCAPS_PT': array, ...}) -> {'audio': [N, D], ...}; "
      "`omnibind fuse` in one call (use Binding to keep the heads loaded).");
  m.def("evaluate", &evaluate, py::arg("pools"), py::arg("head"), py::arg("config") = py::none(), py::kw_only(),
        py::arg("precision") = "fp32", py::arg("batch_size") = 4096, py::arg("single_experts") = true,
        "`omnibind eval`: the evaluation table of a binding on an evaluation pool, as a dict (the --json content).");
  m.def("train", &train, py::arg("pools"), py::arg("config"), py::arg("out"), py::kw_only(), py::arg("pairs") = py::none(),
        py::arg("seed") = 0, py::arg("threads") = 0, py::arg("epochs_proj") = 8, py::arg("epochs_router") = 8,
        py::arg("batch_size") = 256, py::arg("lr") = 1e-3, py::arg("router_lr") = 1e-3, py::arg("temperature") = 0.05,
        py::arg("decoupling") = true, py::arg("resume") = false, py::arg("progress") = py::none(),
        "`omnibind train`: heads and routers from unpaired pools, written to `out` with the config in its metadata. "
        "progress(stage, fraction, loss) is called from the training thread. Returns {out, tuples, tensors, binding}.");
}

}  // namespace omnibind::python
