// omnibind search INDEX: by stored id, embedding file, text or media (through a model), composed with
// weights (--add/--sub/--weight), filtered (--modality, --where), or zero-shot classification.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "omnibind/cli/embedder_options.h"
#include "omnibind/cli/verb.h"
#include "omnibind/common/error.h"
#include "omnibind/retrieval/embedding_file.h"
#include "omnibind/retrieval/query.h"

namespace omnibind::cli {
namespace {

using namespace retrieval;

// FILE[#KEY][:ROW] -> one row of an embeddings file.
std::vector<float> vector_from_file(const std::string& spec) {
  std::string path = spec, key;
  int64_t row = 0;
  auto colon = path.rfind(':');
  if (colon != std::string::npos && colon + 1 < path.size() &&
      path.find_first_not_of("0123456789", colon + 1) == std::string::npos) {
    row = std::stoll(path.substr(colon + 1));
    path = path.substr(0, colon);
  }
  auto hash = path.rfind('#');
  if (hash != std::string::npos) {
    key = path.substr(hash + 1);
    path = path.substr(0, hash);
  }
  auto set = read_embedding_file(path, {"text", key});  // modality is irrelevant for a query vector
  require(row < static_cast<int64_t>(set.items.size()),
          spec + ": row " + std::to_string(row) + " out of range (" + std::to_string(set.items.size()) + " rows)");
  return std::vector<float>(set.rows.begin() + row * set.dim, set.rows.begin() + (row + 1) * set.dim);
}

// KIND:VALUE with KIND in id, vector, text, audio, image, point.
QueryItem parse_item(const std::string& s, const std::string& flag) {
  auto c = s.find(':');
  require(c != std::string::npos, flag + " '" + s + "': expected KIND:VALUE with KIND id, vector, text, audio, image or point");
  std::string kind = s.substr(0, c), value = s.substr(c + 1);
  require(!value.empty(), flag + " '" + s + "': empty value");
  if (kind == "id") {
    require(value.find_first_not_of("0123456789") == std::string::npos, flag + " '" + s + "': id must be a number");
    return QueryItem::stored(std::stoll(value));
  }
  if (kind == "vector") return QueryItem::vec(vector_from_file(value));
  if (kind == "text") return QueryItem::text(value);
  auto m = experts::parse_modality(kind);
  return QueryItem::media_item(m, experts::MediaInput::from_path(value));
}

VerbRun setup(CLI::App& sub) {
  struct Opts {
    std::string dir, text, audio, image, point, vector, classify;
    std::vector<int64_t> ids;
    std::vector<std::string> adds, subs, modalities, wheres, templates;
    std::vector<float> weights;
    int64_t k = 10;
    int nprobe = 0;
    bool json = false;
    EmbedderSpec model;
  };
  auto o = std::make_shared<Opts>();
  sub.add_option("index", o->dir, "Index directory")->required();
  sub.add_option("--id", o->ids, "Query by stored item id (repeatable)")
      ->allow_extra_args(false);  // one value per occurrence: never swallow the positional inputs
  sub.add_option("--vector", o->vector, "Query by an embedding: FILE.safetensors[#KEY][:ROW]");
  sub.add_option("--text", o->text, "Query by text (needs --model/--expert)");
  sub.add_option("--audio", o->audio, "Query by an audio file (needs a model)");
  sub.add_option("--image", o->image, "Query by an image file (needs a model)");
  sub.add_option("--point", o->point, "Query by a point cloud file (needs a model)");
  sub.add_option("--add", o->adds, "Add a query item KIND:VALUE (id:7, text:rain, audio:x.wav, vector:f.safetensors)");
  sub.add_option("--sub", o->subs, "Subtract a query item KIND:VALUE");
  sub.add_option("--weight", o->weights,
                 "Weights, one per item in order: --id.., --vector, --text, --audio, --image, --point, --add.., --sub..")
      ->delimiter(',');
  sub.add_option("-k,--k", o->k, "Results to return (default 10)");
  sub.add_option("--modality", o->modalities, "Only items of these modalities (repeatable)")
      ->allow_extra_args(false);  // one value per occurrence: never swallow the positional inputs
  sub.add_option("--where", o->wheres, "Only items whose metadata KEY equals VALUE: KEY=VALUE (label=dog matches labels)");
  sub.add_option("--nprobe", o->nprobe, "IVF lists to visit (default: the index's)");
  sub.add_option("--classify", o->classify, "Zero-shot classify the (filtered) items against these class names: \"dog,cat,car\"");
  sub.add_option("--template", o->templates, "Prompt template for --classify, {} = class name (repeatable; averaged)")
      ->allow_extra_args(false);  // one value per occurrence: never swallow the positional inputs
  sub.add_flag("--json", o->json, "JSON lines output");
  add_embedder_options(sub, o->model);

  return [o]() -> int {
    require(o->k >= 1 && o->k <= 100000, "--k must be in 1..100000");
    auto index = VectorIndex::open(o->dir, VectorIndex::Mode::ReadOnly);
    Filter filter;
    for (auto& m : o->modalities) filter.modalities.push_back(std::string(experts::modality_name(experts::parse_modality(m))));
    for (auto& w : o->wheres) {
      auto eq = w.find('=');
      require(eq != std::string::npos && eq > 0, "--where '" + w + "': expected KEY=VALUE");
      filter.where.emplace_back(w.substr(0, eq), w.substr(eq + 1));
    }
    std::unique_ptr<QueryEmbedder> embedder;
    if (!o->model.empty()) embedder = make_query_embedder(o->model);

    if (!o->classify.empty()) {
      require(embedder != nullptr, "--classify needs a model (--model or --expert)");
      auto classes = split_list(o->classify);
      auto out = classify_items(*index, *embedder, classes, o->templates, filter);
      int64_t labelled = 0, correct = 0;
      for (auto& c : out) {
        if (!c.labels.empty()) {
          ++labelled;
          correct += std::find(c.labels.begin(), c.labels.end(), c.top_class) != c.labels.end();
        }
        if (o->json) {
          nlohmann::json j{{"id", c.id}, {"modality", c.modality}, {"source", c.source}, {"class", c.top_class},
                           {"score", c.score}, {"labels", c.labels}};
          nlohmann::json scores = nlohmann::json::object();
          for (size_t i = 0; i < classes.size(); ++i) scores[classes[i]] = c.class_scores[i];
          j["scores"] = scores;
          std::cout << j.dump() << "\n";
        } else {
          std::printf("%8lld  %-6s  %-16s %.4f  %s\n", static_cast<long long>(c.id), c.modality.c_str(),
                      c.top_class.c_str(), c.score, c.source.c_str());
        }
      }
      if (!o->json && labelled > 0)
        std::printf("accuracy against stored labels: %.4f (%lld/%lld)\n", double(correct) / labelled,
                    static_cast<long long>(correct), static_cast<long long>(labelled));
      return 0;
    }

    std::vector<QueryItem> items;
    for (auto id : o->ids) items.push_back(QueryItem::stored(id));
    if (!o->vector.empty()) items.push_back(QueryItem::vec(vector_from_file(o->vector)));
    if (!o->text.empty()) items.push_back(QueryItem::text(o->text));
    if (!o->audio.empty()) items.push_back(QueryItem::media_item(experts::Modality::Audio, experts::MediaInput::from_path(o->audio)));
    if (!o->image.empty()) items.push_back(QueryItem::media_item(experts::Modality::Image, experts::MediaInput::from_path(o->image)));
    if (!o->point.empty()) items.push_back(QueryItem::media_item(experts::Modality::Point, experts::MediaInput::from_path(o->point)));
    for (auto& a : o->adds) items.push_back(parse_item(a, "--add"));
    size_t first_sub = items.size();
    for (auto& s : o->subs) items.push_back(parse_item(s, "--sub"));
    require(!items.empty(), "no query: give --id, --vector, --text, --audio, --image, --point, --add or --classify");
    require(o->weights.empty() || o->weights.size() == items.size(),
            "--weight: " + std::to_string(o->weights.size()) + " weights for " + std::to_string(items.size()) + " query items");
    for (size_t i = 0; i < items.size(); ++i) {
      if (!o->weights.empty()) items[i].weight = o->weights[i];
      if (i >= first_sub) items[i].weight = -items[i].weight;
    }
    auto q = compose_query(items, *index, embedder.get());
    auto results = search_index(*index, q, o->k, filter, o->nprobe);
    int rank = 0;
    if (!o->json) std::printf("%4s  %8s  %8s  %-6s  %-20s  %s\n", "rank", "id", "score", "modal", "labels", "source");
    for (auto& r : results) {
      ++rank;
      if (o->json) {
        nlohmann::json j{{"rank", rank}, {"id", r.id}, {"score", r.score}, {"modality", r.record.modality},
                         {"source", r.record.source}, {"labels", r.record.labels},
                         {"metadata", nlohmann::json::parse(r.record.metadata, nullptr, false)}};
        std::cout << j.dump() << "\n";
      } else {
        std::string labels;
        for (auto& l : r.record.labels) labels += (labels.empty() ? "" : ",") + l;
        std::printf("%4d  %8lld  %8.4f  %-6s  %-20s  %s\n", rank, static_cast<long long>(r.id), r.score,
                    r.record.modality.c_str(), labels.c_str(), r.record.source.c_str());
      }
    }
    return 0;
  };
}

}  // namespace

REGISTER_VERB("search", "Search an index by id, embedding, text or media; compose, filter, classify", setup);

}  // namespace omnibind::cli
