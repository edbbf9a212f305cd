// Probe of the binding method (issue 16 items 3-4): one synthetic world, mined, trained and evaluated in
// process, printing class-level precision@1 per modality pair (both directions averaged) for the best single
// expert, uniform routing and learned routing, the tuples' purity per hop, and the router's validation verdict.
//   routing_probe [--world base|test] [--seed S] [--rows N] [--eval N] [--heads K] [--hidden H] [--threads T]
//                 [--epochs-proj E] [--epochs-router E] [--target text|image|mean] [--temperature X] [--lr X]
//                 [--router-lr X] [--no-decoupling] [--tseed S] [--router-validation F] [--router-uniform-weight X]
// Prints one JSON object.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "omnibind/evaluation/ablations.h"
#include "omnibind/evaluation/evaluate_binding.h"
#include "omnibind/evaluation/synthetic_world.h"
#include "omnibind/training/binding_trainer.h"
#include "omnibind/training/world_family.h"

using namespace omnibind;
using namespace omnibind::evaluation;

namespace {

at::Tensor unit(const at::Tensor& x) { return x / x.norm(2, -1, true).clamp_min(1e-12); }

// Class-level precision@1 of a -> b and b -> a (mean): the nearest gallery item has the query's class.
double class_p1(const at::Tensor& a, const at::Tensor& la, const at::Tensor& b, const at::Tensor& lb) {
  auto one = [](const at::Tensor& q, const at::Tensor& lq, const at::Tensor& g, const at::Tensor& lg) {
    at::Tensor nn = at::mm(unit(q), unit(g).t()).argmax(1);
    return lg.index_select(0, nn).eq(lq).to(at::kDouble).mean().item<double>();
  };
  return (one(a, la, b, lb) + one(b, lb, a, la)) / 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string world_kind = "base", target;
  uint64_t seed = 1, tseed = 1;
  int64_t rows = 3000, eval_rows = 1000, heads = 3, hidden = 128;
  int threads = 1;
  double spread = -1, good = -1, bad = -1, scale = 1;
  std::string family;
  int64_t index = 0;
  training::TrainOptions t;
  for (int i = 1; i < argc; ++i) {
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    std::string a = argv[i];
    if (a == "--world") world_kind = next();
    else if (a == "--seed") seed = std::stoull(next());
    else if (a == "--tseed") tseed = std::stoull(next());
    else if (a == "--rows") rows = std::stoll(next());
    else if (a == "--eval") eval_rows = std::stoll(next());
    else if (a == "--heads") heads = std::stoll(next());
    else if (a == "--hidden") hidden = std::stoll(next());
    else if (a == "--threads") threads = std::stoi(next());
    else if (a == "--epochs-proj") t.projector_epochs = std::stoi(next());
    else if (a == "--epochs-router") t.router_epochs = std::stoi(next());
    else if (a == "--target") target = next();
    else if (a == "--temperature") t.temperature = std::stod(next());
    else if (a == "--lr") t.projector_lr = std::stod(next());
    else if (a == "--router-lr") t.router_lr = std::stod(next());
    else if (a == "--batch") t.batch = std::stoll(next());
    else if (a == "--family") family = next();
    else if (a == "--index") index = std::stoll(next());
    else if (a == "--scale") scale = std::stod(next());
    else if (a == "--spread") spread = std::stod(next());
    else if (a == "--good-noise") good = std::stod(next());
    else if (a == "--bad-noise") bad = std::stod(next());
    else if (a == "--no-decoupling") t.decoupling = false;
    else if (a == "--router-validation") t.router_validation = std::stod(next());
    else if (a == "--min-gain") t.router_min_gain = std::stod(next());
    else {
      std::fprintf(stderr, "unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  at::set_num_threads(threads);
  SyntheticWorldOptions o;
  o.seed = seed;
  o.train_rows = rows;
  o.eval_tuples = eval_rows;
  if (spread >= 0) o.spread = spread;
  if (good >= 0) o.good_noise = good;
  if (bad >= 0) o.bad_noise = bad;
  if (world_kind == "base") {
    // OmniBind-Base-like (issue 16): 64-d image-text backbone, three audio-text spaces each reliable on a third
    // of 40 classes, an image-text space, a point-image-text space, an ImageBind-like audio-image-text space.
    o.classes = 40;
    o.latent_dim = 48;
    const int64_t third = o.classes / 3;
    o.experts = {{"AT1", {"audio", "text"}, 32, 0, third, 0},
                 {"AT2", {"audio", "text"}, 24, third, 2 * third, 0},
                 {"AT3", {"audio", "text"}, 40, 2 * third, -1, 0},
                 {"ITX", {"image", "text"}, 48, 0, o.classes / 2, 1},
                 {"U3D", {"point", "image", "text"}, 32, 0, -1, 2},
                 {"IB", {"audio", "image", "text"}, 48, o.classes / 4, 3 * o.classes / 4, 1},
                 {"CLIP", {"image", "text"}, 64, 0, -1, 1}};
    o.backbone = "CLIP";
  } else if (world_kind != "test") {
    std::fprintf(stderr, "--world base|test\n");
    return 2;
  }
  std::optional<SyntheticWorld> world;
  EvalSet family_eval;
  binding::BindingConfig cfg;
  std::string dir;
  if (!family.empty()) {
    auto spec = training::world_spec(training::parse_world_split(family), index);
    if (scale != 1) training::scale_world_rows(spec, scale);
    dir = (std::filesystem::temp_directory_path() / ("routing_probe_" + family + std::to_string(index) + "_" + std::to_string(::getpid()))).string();
    training::write_world(spec, dir);
    family_eval = load_eval_set(dir + "/eval");
    cfg = spec.config;
    cfg.heads_per_space = heads;
    cfg.projector_hidden = hidden;
  } else {
    world = make_synthetic_world(o);
    dir = (std::filesystem::temp_directory_path() / ("routing_probe_" + world_kind + "_" + std::to_string(seed) + "_" +
                                                     std::to_string(rows) + "_" + std::to_string(::getpid()))).string();
    write_synthetic_pools(*world, dir + "/train", dir + "/eval");
    cfg = world->binding_config(heads, hidden);
    if (world_kind == "base") cfg.backbone_in_output = false;
  }
  auto pool = training::EmbeddingPool::open(dir + "/train");
  t.seed = tseed;
  t.threads = threads;
  if (!target.empty()) t.uncovered_target = target;
  t.progress = [](const training::TrainProgress& p) {
    static std::string last;
    const std::string head = p.stage.substr(0, p.stage.find(" epoch"));
    if (head != last || p.stage.rfind("router", 0) == 0) std::fprintf(stderr, "%s loss %.4f\n", p.stage.c_str(), p.loss);
    last = head;
  };
  nlohmann::ordered_json out;
  auto t0 = std::chrono::steady_clock::now();
  nlohmann::json stats;
  auto tuples = training::mine_tuples(pool, {}, &stats);
  out["purity"] = stats["purity"];
  out["plan"] = stats["plan"];
  training::RouterValidationReport report;
  t.router_report = &report;
  auto model = train_model(pool, tuples, cfg, t);
  out["router_validation"] = {{"held_out", report.held_out}, {"uniform", report.uniform_score}, {"epochs", report.epoch_scores},
                              {"best_epoch", report.best_epoch}, {"best", report.best_score}, {"alpha", report.alpha},
                              {"final", report.final_score}};
  out["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();

  // Class-level precision@1 per pair.
  const EvalSet& ev = world ? world->eval : family_eval;
  std::vector<std::string> mods;
  for (auto& m : model.modalities())
    if (ev.modalities.count(m) && ev.modalities.at(m).label.defined()) mods.push_back(m);
  std::map<std::string, at::Tensor> learned, uniform;
  for (auto& m : mods) {
    learned[m] = embed_unified(model, m, ev.modalities.at(m).experts, Routing::Learned);
    uniform[m] = embed_unified(model, m, ev.modalities.at(m).experts, Routing::Uniform);
  }
  nlohmann::ordered_json pairs;
  double sum_l = 0, sum_u = 0;
  int n = 0;
  for (size_t i = 0; i < mods.size(); ++i)
    for (size_t j = i + 1; j < mods.size(); ++j) {
      const auto& A = ev.modalities.at(mods[i]);
      const auto& B = ev.modalities.at(mods[j]);
      double best = -1;
      std::string best_name;
      for (auto& [e, x] : A.experts)
        if (B.experts.count(e)) {
          double v = class_p1(x, A.label, B.experts.at(e), B.label);
          if (v > best) { best = v; best_name = e; }
        }
      const double l = class_p1(learned[mods[i]], A.label, learned[mods[j]], B.label);
      const double u = class_p1(uniform[mods[i]], A.label, uniform[mods[j]], B.label);
      sum_l += l;
      sum_u += u;
      ++n;
      pairs[mods[i] + "-" + mods[j]] = {{"single", best}, {"single_expert", best_name}, {"uniform", u}, {"learned", l}};
    }
  out["pairs"] = pairs;
  out["mean_uniform"] = sum_u / n;
  out["mean_learned"] = sum_l / n;
  out["learned_minus_uniform"] = (sum_l - sum_u) / n;
  std::printf("%s\n", out.dump(1).c_str());
  std::filesystem::remove_all(dir);
  return 0;
}
