// omnibind zoo train: one small "zoo" expert (experts/zoo/) trained CLIP-style from a paired listing
// (training/zoo/zoo_pairs_file.h) -> AT.safetensors, loadable with `omnibind embed --expert zoo
// --weights AT.safetensors`. Bad input: one line, exit 2, nothing written (checked before training;
// the file is written atomically at the end). Progress per epoch on stderr.

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <sstream>

#include "omnibind/cli/verb.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/zoo/zoo_config.h"
#include "omnibind/experts/zoo/zoo_expert.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "omnibind/training/zoo/zoo_pairs_file.h"
#include "omnibind/training/zoo/zoo_trainer.h"

namespace omnibind::cli {
namespace {
namespace ez = experts::zoo;
namespace tz = training::zoo;

struct ZooTrainArgs {
  std::string pairs, modalities, key, out, config;
  int64_t dim = 64, epochs = 10, batch = 64;
  double lr = 1e-3;
  uint64_t seed = 0;
  int threads = 0;
};

std::vector<std::string> split_modalities(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string m;
  while (std::getline(in, m, ',')) {
    require(!m.empty(), "--modalities: empty name in '" + s + "' (e.g. audio,text)");
    for (const auto& x : out) require(x != m, "--modalities: " + m + " listed twice");
    out.push_back(m);
  }
  require(out.size() >= 2, "--modalities needs at least 2 of audio, image, point, text (got '" + s + "')");
  return out;
}

int run_train(const ZooTrainArgs& a, bool dim_given) {
  require(a.dim > 0 && a.dim <= 4096, "--dim must be in 1..4096");
  require(a.epochs > 0, "--epochs must be positive");
  require(a.batch >= 2, "--batch must be at least 2 (contrastive batches need negatives)");
  require(std::isfinite(a.lr) && a.lr > 0, "--lr must be a positive number");
  require(a.threads >= 0, "--threads must be >= 0");
  require(!a.key.empty(), "--key must not be empty");
  const auto modalities = split_modalities(a.modalities);
  ez::ZooConfig config;
  if (!a.config.empty()) {
    config = ez::zoo_config_from_json(read_file_bytes(a.config), a.config);
    require(config.modalities() == ez::default_zoo_config(modalities, 8, "x").modalities(),
            a.config + ": its towers (" + [&] {
              std::string s;
              for (const auto& m : config.modalities()) s += (s.empty() ? "" : ",") + m;
              return s;
            }() + ") differ from --modalities " + a.modalities);
    if (dim_given) config.dim = a.dim;
  } else {
    config = ez::default_zoo_config(modalities, a.dim, a.key);  // InputError on unknown modalities
  }
  config.key = a.key;
  ez::validate_zoo_config(config, a.config.empty() ? "zoo config" : a.config);
  {
    const std::filesystem::path dir = std::filesystem::path(a.out).parent_path();
    std::error_code ec;
    require(dir.empty() || std::filesystem::is_directory(dir, ec), "--out: no such directory " + dir.string());
  }
  if (a.threads > 0) tensor_io::set_compute_threads(a.threads);

  const auto listing = tz::read_zoo_pairs(a.pairs, modalities);
  std::fprintf(stderr, "zoo train %s: %zu items (%s) from %s\n", a.key.c_str(), listing.items.size(), a.modalities.c_str(),
               a.pairs.c_str());
  const auto data = tz::load_zoo_pairs(listing, config, [](int64_t done, int64_t total) {
    std::fprintf(stderr, "  preprocessed %lld/%lld inputs\n", static_cast<long long>(done), static_cast<long long>(total));
  });
  tz::ZooTrainOptions o;
  o.epochs = a.epochs;
  o.batch = a.batch;
  o.lr = a.lr;
  o.seed = a.seed;
  o.threads = a.threads;
  double last_loss = 0;
  const auto weights = tz::train_zoo_expert(config, data, o, [&](const tz::ZooTrainProgress& p) {
    last_loss = p.loss;
    std::fprintf(stderr, "  epoch %lld/%lld  loss %.4f  temperature %.4f\n", static_cast<long long>(p.epoch),
                 static_cast<long long>(p.epochs), p.loss, p.temperature);
  });
  ez::write_zoo_file(a.out, config, weights,
                     {{"pairs", std::filesystem::path(a.pairs).filename().string()},
                      {"items", std::to_string(listing.items.size())},
                      {"epochs", std::to_string(a.epochs)},
                      {"seed", std::to_string(a.seed)}});
  std::printf("wrote %s: zoo expert %s (%s), dim %lld, %zu items, %lld epochs, final loss %.4f\n", a.out.c_str(),
              a.key.c_str(), a.modalities.c_str(), static_cast<long long>(config.dim), listing.items.size(),
              static_cast<long long>(a.epochs), last_loss);
  return 0;
}

VerbRun setup(CLI::App& sub) {
  sub.require_subcommand(1);
  auto a = std::make_shared<ZooTrainArgs>();
  auto* train = sub.add_subcommand("train", "Train one zoo expert CLIP-style from a paired JSONL listing");
  train->add_option("--pairs", a->pairs, "JSONL: {\"audio\":\"a.wav\",\"image\":\"b.png\",\"point\":\"c.ply\",\"text\":\"...\",\"group\":3} per line")
      ->required();
  train->add_option("--modalities", a->modalities, "The expert's modalities, comma-separated (e.g. audio,text)")->required();
  train->add_option("--key", a->key, "The embedding space's name (e.g. AT)")->required();
  train->add_option("--out", a->out, "Output .safetensors (written atomically)")->required();
  auto* dim = train->add_option("--dim", a->dim, "Embedding width")->capture_default_str();
  train->add_option("--epochs", a->epochs, "Training epochs")->capture_default_str();
  train->add_option("--batch", a->batch, "Items per contrastive batch")->capture_default_str();
  train->add_option("--lr", a->lr, "Adam learning rate")->capture_default_str();
  train->add_option("--seed", a->seed, "Seed (same data + seed + threads -> same bytes)")->capture_default_str();
  train->add_option("--threads", a->threads, "Compute threads (0 = libtorch default)")->capture_default_str();
  train->add_option("--config", a->config, "zoo.json: tower sizes (docs/reference/zoo_experts.md); --key/--dim override");
  return [a, train, dim]() -> int {
    if (train->parsed()) return run_train(*a, dim->count() > 0);
    return 2;
  };
}

}  // namespace

REGISTER_VERB("zoo", "Small experts trained from raw media: zoo train", setup);

}  // namespace omnibind::cli
