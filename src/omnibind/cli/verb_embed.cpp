// omnibind embed: files (or texts) -> one expert's unit-norm embeddings in a safetensors file:
// tensor "<KEY>" [N, d] float32 (KEY = the expert's short name, e.g. "IB") and __metadata__
// {"modality", "expert", "key", "dim", "paths": JSON list (row i <-> paths[i]; texts for --text)}.
// The file is a pool the "precomputed" expert serves. Any bad input: one line, exit 2, no file.
// With --model BUNDLE instead of --expert: unified embeddings, tensor "<modality>" [N, D] (what
// `index add` reads), metadata "expert" = the bundle's name and "model" = its path; --keep-experts
// (alias --save-experts) also writes every expert's "<modality>/<EXPERT>" [N, d] (the `fuse` input
// layout). The bundle builds only the experts the modality needs, and reading/preprocessing of the
// next batches overlaps encoding (pipeline/bundle_stream.h). Inputs of another modality than
// --modality (by magic bytes, else extension) are refused before anything is loaded.
// With --model --manifest FILES.txt --pool DIR: an embedding pool of every expert the bundle runs for the
// modality, sharded, resumable and split over ranks (training/pool_extraction.h, docs/SCALING.md).
#include <ATen/ATen.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "omnibind/cli/distributed_flags.h"
#include "omnibind/cli/verb.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/expert.h"
#include "omnibind/experts/input_files.h"
#include "omnibind/pipeline/bundle_stream.h"
#include "omnibind/pipeline/model_bundle.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "omnibind/training/pool_extraction.h"

namespace omnibind::cli {
namespace {
namespace fs = std::filesystem;
using experts::MediaInput;
using experts::Modality;

struct EmbedArgs {
  std::string expert, model, modality, out;
  experts::ExpertOptions options;
  std::vector<std::string> inputs, texts;
  int batch = 8;
  int prefetch = 2;
  bool progress = false;
  bool save_experts = false;
  bool precision_given = false;
  // --manifest/--pool: distributed extraction into an embedding pool (training/pool_extraction.h)
  std::string manifest, pool, pool_dtype = "f16";
  int64_t shard_items = 256;
  bool strict = false;
  distributed::LaunchOptions launch;
};

// INPUTS -> file paths: files as given, directories recursed (sorted), @list files one path a line.
void expand_input(Modality m, const std::string& arg, std::vector<std::string>& out) {
  std::error_code ec;
  if (!arg.empty() && arg[0] == '@') {
    std::string list = arg.substr(1);
    std::ifstream in(list);
    require(in.good(), list + ": cannot open the input list");
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.empty() || line[0] == '#') continue;
      require(fs::is_regular_file(line, ec), line + ": no such file (listed in " + list + ")");
      out.push_back(line);
    }
    return;
  }
  if (fs::is_directory(arg, ec)) {
    std::vector<std::string> found;
    for (auto it = fs::recursive_directory_iterator(arg, fs::directory_options::skip_permission_denied, ec);
         !ec && it != fs::recursive_directory_iterator(); it.increment(ec))
      if (it->is_regular_file(ec) && experts::has_modality_extension(m, it->path())) found.push_back(it->path().string());
    require(!ec, arg + ": cannot read the directory (" + ec.message() + ")");
    std::sort(found.begin(), found.end());
    out.insert(out.end(), found.begin(), found.end());
    return;
  }
  require(fs::is_regular_file(arg, ec), arg + ": no such file or directory");
  out.push_back(arg);
}

class Progress {
 public:
  Progress(size_t total, bool on) : total_(total), on_(on), start_(std::chrono::steady_clock::now()) {}
  void update(size_t done) {
    if (!on_) return;
    const int width = 30;
    int filled = total_ ? static_cast<int>(width * done / total_) : width;
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    std::fprintf(stderr, "\rembed [%s%s] %zu/%zu  %.1f items/s", std::string(filled, '#').c_str(),
                 std::string(width - filled, '.').c_str(), done, total_, s > 0 ? static_cast<double>(done) / s : 0.0);
    if (done == total_) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  size_t total_;
  bool on_;
  std::chrono::steady_clock::time_point start_;
};

// Every file must hold --modality's kind of media (when its bytes or extension say): one call, one modality.
void refuse_other_modalities(Modality m, const std::vector<std::string>& files) {
  for (const auto& f : files) {
    auto kind = pipeline::file_modality(f);
    if (!kind || *kind == m) continue;
    const std::string k(experts::modality_name(*kind)), want(experts::modality_name(m));
    throw InputError(f + ": is " + (k == "audio" || k == "image" ? "an " : "a ") + k + " file, not " + want +
                     " (--modality " + want + "); embed one modality per call");
  }
}

int run_bundle_embed(const EmbedArgs& a, Modality m, const std::vector<MediaInput>& items,
                     const std::vector<std::string>& sources, const std::vector<std::string>& files) {
  pipeline::BundleLoadOptions lo;
  lo.threads = a.options.threads;
  if (a.precision_given) lo.precision = a.options.precision;
  auto bundle = pipeline::ModelBundle::load(a.model, lo);
  require(bundle.covers(m), "model bundle " + a.model + " does not embed " + a.modality);
  refuse_other_modalities(m, files);  // before any expert is built
  Progress progress(items.size(), a.progress || isatty(2));
  // Texts given inline are named by their own content in messages; files by their path.
  std::vector<std::string> names(sources.size());
  for (size_t i = 0; i < items.size(); ++i)
    if (!(m == Modality::Text && items[i].path.empty() && i >= items.size() - a.texts.size())) names[i] = sources[i];
  pipeline::StreamOptions so;
  so.batch = static_cast<size_t>(a.batch);
  so.queue_depth = static_cast<size_t>(a.prefetch);
  so.keep_experts = a.save_experts;
  std::vector<at::Tensor> rows;
  std::map<std::string, std::vector<at::Tensor>> expert_rows;
  size_t done = 0;
  pipeline::embed_stream(bundle, m, items, names, so, [&](pipeline::StreamBatch&& b) {
    done += static_cast<size_t>(b.unified.size(0));
    rows.push_back(std::move(b.unified));
    for (auto& [n, t] : b.experts) expert_rows[n].push_back(std::move(t));
    progress.update(done);
  });
  at::Tensor emb = at::cat(rows, 0);
  nlohmann::json paths = sources;
  std::map<std::string, std::string> meta = {{"modality", a.modality},
                                             {"expert", bundle.name()},
                                             {"model", a.model},
                                             {"key", a.modality},
                                             {"dim", std::to_string(emb.size(1))},
                                             {"precision", bundle.precision()},
                                             {"paths", paths.dump()}};
  std::vector<std::pair<std::string, at::Tensor>> tensors = {{a.modality, emb}};
  for (auto& [n, ts] : expert_rows) tensors.emplace_back(a.modality + "/" + n, at::cat(ts, 0));
  tensor_io::write_tensors(a.out, tensors, meta);
  std::printf("wrote %s: %s [%lld, %lld] (%s, %s)\n", a.out.c_str(), a.modality.c_str(),
              static_cast<long long>(emb.size(0)), static_cast<long long>(emb.size(1)), bundle.name().c_str(),
              a.modality.c_str());
  return 0;
}

// --manifest FILES.txt --pool DIR: every rank (torchrun-style, docs/SCALING.md) embeds its shards.
int run_pool_extraction(const EmbedArgs& a, Modality m) {
  require(!a.model.empty(), "--pool needs --model BUNDLE (every expert the bundle runs for the modality is stored)");
  require(!a.manifest.empty(), "--pool needs --manifest FILES.txt (or a directory)");
  require(a.inputs.empty() && a.texts.empty(), "--pool takes its inputs from --manifest only");
  require(a.out.empty(), "--pool writes a pool directory; drop --out");
  require(a.pool_dtype == "f16" || a.pool_dtype == "f32", "--pool-dtype must be f16 or f32, got '" + a.pool_dtype + "'");
  require(a.batch > 0, "--batch must be positive");
  require(a.prefetch >= 0, "--prefetch must be 0 or more");
  auto inputs = training::read_extraction_list(a.manifest, m);
  if (a.options.threads > 0) tensor_io::set_compute_threads(a.options.threads);
  auto ctx = distributed::DistributedContext::connect(a.launch);
  pipeline::BundleLoadOptions lo;
  lo.threads = a.options.threads;
  if (a.precision_given) lo.precision = a.options.precision;
  auto bundle = pipeline::ModelBundle::load(a.model, lo);
  require(bundle.covers(m), "model bundle " + a.model + " does not embed " + a.modality);
  training::ExtractionOptions o;
  o.pool = a.pool;
  o.shard_items = a.shard_items;
  o.batch = static_cast<size_t>(a.batch);
  o.prefetch = static_cast<size_t>(a.prefetch);
  o.half = a.pool_dtype == "f16";
  o.strict = a.strict;
  auto s = training::extract_to_pool(bundle, m, inputs, o, ctx);
  if (ctx.is_root())
    std::printf("wrote %s: %s %lld rows in %lld shards (%zu inputs skipped, listed in %s)\n", a.pool.c_str(), a.modality.c_str(),
                static_cast<long long>(s.rows), static_cast<long long>(s.shards), s.skipped.size(), s.report.c_str());
  return 0;
}

int run_embed(const EmbedArgs& a) {
  Modality m = experts::parse_modality(a.modality);
  if (!a.pool.empty() || !a.manifest.empty()) {
    require(!a.pool.empty(), "--manifest needs --pool DIR");
    return run_pool_extraction(a, m);
  }
  require(!a.out.empty(), "--out is required (or --manifest FILES.txt --pool DIR)");
  require(a.expert.empty() != a.model.empty(), "pass exactly one of --expert NAME and --model BUNDLE");
  require(a.batch > 0, "--batch must be positive");
  require(a.prefetch >= 0, "--prefetch must be 0 or more");
  require(m == Modality::Text || a.texts.empty(), "--text is only for --modality text");

  // Gather every input first: a missing file fails before any model is loaded.
  std::vector<MediaInput> items;
  std::vector<std::string> sources;
  std::vector<std::string> files;
  for (const auto& arg : a.inputs) expand_input(m, arg, files);
  for (const auto& f : files) {
    items.push_back(experts::media_input_from_file(m, f));  // a text file is one text
    sources.push_back(f);
  }
  for (const auto& t : a.texts) {
    items.push_back(MediaInput::from_text(t));
    sources.push_back(t);
  }
  require(!items.empty(), "no inputs (give files, directories, @list.txt or --text)");

  if (a.options.threads > 0) tensor_io::set_compute_threads(a.options.threads);
  if (!a.model.empty()) return run_bundle_embed(a, m, items, sources, files);
  auto expert = experts::create_expert(a.expert, a.options);
  require(expert->covers(m), "expert '" + a.expert + "' does not embed " + a.modality);
  refuse_other_modalities(m, files);

  Progress progress(items.size(), a.progress || isatty(2));
  std::vector<at::Tensor> rows;
  for (size_t begin = 0; begin < items.size(); begin += static_cast<size_t>(a.batch)) {
    size_t end = std::min(items.size(), begin + static_cast<size_t>(a.batch));
    std::vector<at::Tensor> batch;
    for (size_t i = begin; i < end; ++i) {
      try {
        batch.push_back(expert->preprocess(m, items[i]));
      } catch (const InputError& e) {
        std::string msg = e.what();
        const std::string& name = m == Modality::Text && !items[i].text.empty() && items[i].path.empty() ? std::string()
                                                                                                          : sources[i];
        // Name the input once: most decoders already start their message with it.
        throw InputError(name.empty() || msg.rfind(name, 0) == 0 ? msg : name + ": " + msg);
      }
    }
    rows.push_back(expert->encode(m, at::stack(batch)).to(at::kFloat).contiguous());
    progress.update(end);
  }
  at::Tensor emb = at::cat(rows, 0);

  nlohmann::json paths = sources;
  std::map<std::string, std::string> meta = {{"modality", a.modality},
                                             {"expert", a.expert},
                                             {"key", expert->key()},
                                             {"dim", std::to_string(emb.size(1))},
                                             {"paths", paths.dump()}};
  tensor_io::write_tensors(a.out, {{expert->key(), emb}}, meta);
  std::printf("wrote %s: %s [%lld, %lld] (%s, %s)\n", a.out.c_str(), expert->key().c_str(),
              static_cast<long long>(emb.size(0)), static_cast<long long>(emb.size(1)), a.expert.c_str(),
              a.modality.c_str());
  return 0;
}

VerbRun setup(CLI::App& sub) {
  auto a = std::make_shared<EmbedArgs>();
  sub.add_option("--expert", a->expert, "Registered expert (imagebind, uni3d, precomputed, ...)");
  sub.add_option("--model", a->model, "A model bundle: embed into its unified space instead of one expert's");
  sub.add_flag("--keep-experts,--save-experts", a->save_experts,
               "With --model: also write each expert's <modality>/<EXPERT> rows (a training pool in the same pass)");
  sub.add_option("--weights", a->options.weights, "The expert's weights (.pth/.pt/.safetensors; a pool for precomputed)");
  sub.add_option("--config", a->options.config, "JSON config overriding the built-in size");
  sub.add_option("--size", a->options.size, "Built-in size (imagebind: huge)");
  sub.add_option("--precision", a->options.precision,
                 "fp32 | bf16 (| auto with --model; a bundle's default: its manifest's, else bf16 where the CPU has it)")
      ->capture_default_str()
      ->each([a](const std::string&) { a->precision_given = true; });
  sub.add_option("--bpe", a->options.bpe_vocab, "BPE vocabulary (bpe_simple_vocab_16e6.txt.gz) for text");
  sub.add_option("--vocab", a->options.vocab_files,
                 "Tokenizer file(s) of BERT/RoBERTa/SentencePiece text experts (repeatable: vocab.txt, vocab.json, "
                 "merges.txt, spiece.model)")
      ->allow_extra_args(false);  // one value per occurrence: never swallow the positional inputs
  sub.add_option("--crop-draws", a->options.crop_draws,
                 "clap: JSON of recorded random draws for clips over 10 s (fusion chunk starts, crop start)");
  sub.add_option("--image-crop", a->options.image_crop,
                 "eva_clip_18b: centre-crop rule, round (the reference, default) | floor (HF CLIPImageProcessor, what "
                 "OmniBind runs)");
  sub.add_option("--modality", a->modality, "image | audio | text | point")->required();
  sub.add_option("inputs", a->inputs, "Files, directories (recursed, sorted) or @list.txt");
  sub.add_option("--text", a->texts, "A text to embed (repeatable)")
      ->allow_extra_args(false);  // one value per occurrence: never swallow the positional inputs
  sub.add_option("--out", a->out, "Output .safetensors");
  sub.add_option("--manifest", a->manifest,
                 "With --model --pool: the inputs, a list (PATH[TAB LABEL[TAB SOURCE]] a line) or a directory (recursed)");
  sub.add_option("--pool", a->pool, "With --model --manifest: write an embedding pool directory (every expert, sharded, resumable, "
                                    "split over ranks)");
  sub.add_option("--shard-items", a->shard_items, "With --pool: inputs per shard (fixed: the pool never depends on the rank count)")
      ->capture_default_str();
  sub.add_option("--pool-dtype", a->pool_dtype, "With --pool: f16 | f32")->capture_default_str();
  sub.add_flag("--strict", a->strict, "With --pool: an input that fails to decode is fatal (default: reported and skipped)");
  a->launch.timeout_s = 600;  // a collective waits for one shard of the slowest rank (docs/SCALING.md)
  add_distributed_flags(sub, a->launch);
  sub.add_option("--batch", a->batch, "Inputs per encode call")->capture_default_str();
  sub.add_option("--threads", a->options.threads, "Compute threads (0 = libtorch default)");
  sub.add_option("--prefetch", a->prefetch,
                 "With --model: batches read and preprocessed ahead while one is encoded (0 = no overlap)")
      ->capture_default_str();
  sub.add_flag("--progress", a->progress, "Progress bar with items/s on stderr even when it is not a terminal");
  return [a] { return run_embed(*a); };
}

REGISTER_VERB("embed", "Embed files or texts with one expert into a safetensors pool", setup);

}  // namespace
}  // namespace omnibind::cli
