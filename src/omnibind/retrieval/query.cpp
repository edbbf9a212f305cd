#include "omnibind/retrieval/query.h"

#include <cmath>
#include <sstream>

#include "omnibind/common/error.h"

namespace omnibind::retrieval {

std::string QueryItem::describe() const {
  switch (kind) {
    case Kind::Id: return "id " + std::to_string(id);
    case Kind::Vector: return "vector";
    case Kind::Media:
      return modality == Modality::Text ? "text '" + media.text + "'"
                                        : std::string(experts::modality_name(modality)) + " " + media.describe();
  }
  return "?";
}

std::vector<float> combine(const std::vector<std::vector<float>>& vectors, const std::vector<float>& weights) {
  require(!vectors.empty(), "the query has no items");
  require(vectors.size() == weights.size(), "internal: one weight per query item");
  const size_t dim = vectors[0].size();
  std::vector<double> sum(dim, 0.0);
  for (size_t i = 0; i < vectors.size(); ++i) {
    const auto& v = vectors[i];
    require(v.size() == dim, "query item " + std::to_string(i) + " has " + std::to_string(v.size()) +
                                 " dims, item 0 has " + std::to_string(dim));
    require(std::isfinite(weights[i]), "query item " + std::to_string(i) + " has a non-finite weight");
    double n = 0;
    for (float x : v) n += double(x) * x;
    require(n > 1e-24 && std::isfinite(n), "query item " + std::to_string(i) + " is a zero or non-finite vector");
    const double scale = weights[i] / std::sqrt(n);
    for (size_t j = 0; j < dim; ++j) sum[j] += scale * v[j];
  }
  double n = 0;
  for (double x : sum) n += x * x;
  require(n > 1e-12, "the weighted sum of the query items is zero (they cancel out)");
  std::vector<float> out(dim);
  const double inv = 1.0 / std::sqrt(n);
  for (size_t j = 0; j < dim; ++j) out[j] = static_cast<float>(sum[j] * inv);
  return out;
}

std::vector<float> compose_items(const std::vector<QueryItem>& items, const QuerySources& sources) {
  require(!items.empty(), sources.no_items);
  std::vector<std::vector<float>> vectors;
  std::vector<float> weights;
  for (const auto& it : items) {
    std::vector<float> v;
    switch (it.kind) {
      case QueryItem::Kind::Id:
        if (!sources.stored) throw InputError("query " + it.describe() + ": " + sources.no_ids);
        v = sources.stored(it.id);
        break;
      case QueryItem::Kind::Vector:
        v = it.vector;
        break;
      case QueryItem::Kind::Media: {
        const QueryEmbedder* embedder = sources.embedder;
        require(embedder != nullptr, "query " + it.describe() + " needs a model (start with --model or --expert)");
        require(embedder->covers(it.modality), "the model '" + embedder->name() + "' does not embed " +
                                                   std::string(experts::modality_name(it.modality)));
        v = embedder->embed(it.modality, it.media);
        break;
      }
    }
    require(static_cast<int64_t>(v.size()) == sources.dim, "query " + it.describe() + " has " + std::to_string(v.size()) +
                                                               " dims, " + sources.dim_owner + " has " +
                                                               std::to_string(sources.dim));
    vectors.push_back(std::move(v));
    weights.push_back(it.weight);
  }
  return combine(vectors, weights);
}

std::vector<float> compose_query(const std::vector<QueryItem>& items, const VectorIndex& index,
                                 const QueryEmbedder* embedder) {
  QuerySources sources;
  sources.dim = index.dim();
  sources.dim_owner = "the index";
  sources.embedder = embedder;
  sources.stored = [&index](int64_t id) {
    std::vector<float> v;
    require(index.vector(id, v), "no item with id " + std::to_string(id) + " in " + index.dir());
    return v;
  };
  sources.no_items = "no query: give a stored id, a vector, text or media";
  return compose_items(items, sources);
}

std::vector<SearchResult> search_index(const VectorIndex& index, const std::vector<float>& query, int64_t k,
                                       const Filter& filter, int nprobe) {
  require(static_cast<int64_t>(query.size()) == index.dim(), "query has " + std::to_string(query.size()) +
                                                                 " dims, the index has " + std::to_string(index.dim()));
  std::vector<SearchResult> out;
  for (const Hit& h : index.search(query.data(), k, filter, nprobe)) {
    auto rec = index.item(h.id);
    if (!rec) continue;  // removed between search and lookup
    out.push_back({h.id, h.score, std::move(*rec)});
  }
  return out;
}

std::vector<Classification> classify_items(const VectorIndex& index, const QueryEmbedder& embedder,
                                           const std::vector<std::string>& classes,
                                           const std::vector<std::string>& templates, const Filter& filter) {
  require(!classes.empty(), "--classify needs at least one class name");
  require(embedder.covers(Modality::Text), "the model '" + embedder.name() + "' does not embed text");
  std::vector<std::string> tmpls = templates.empty() ? std::vector<std::string>{"{}"} : templates;
  // One unit prompt embedding per class (templates averaged).
  std::vector<std::vector<float>> class_vecs;
  for (const auto& c : classes) {
    std::vector<MediaInput> prompts;
    for (const auto& t : tmpls) prompts.push_back(MediaInput::from_text(fill_template(t, c)));
    auto embs = embedder.embed_batch(Modality::Text, prompts);
    require(static_cast<int64_t>(embs.at(0).size()) == index.dim(),
            "the model's text embeddings have " + std::to_string(embs.at(0).size()) + " dims, the index has " +
                std::to_string(index.dim()));
    class_vecs.push_back(combine(embs, std::vector<float>(embs.size(), 1.0f)));
  }
  std::vector<Classification> out;
  index.for_each([&](const ItemRecord& r, const float* v) {
    auto meta = nlohmann::json::parse(r.metadata, nullptr, false);
    if (!filter_accepts(filter, r.id, r.modality, r.labels, meta)) return;
    Classification c;
    c.id = r.id;
    c.modality = r.modality;
    c.source = r.source;
    c.labels = r.labels;
    c.score = -2;
    for (size_t k = 0; k < class_vecs.size(); ++k) {
      double s = 0;
      for (int64_t j = 0; j < index.dim(); ++j) s += double(v[j]) * class_vecs[k][j];
      c.class_scores.push_back(static_cast<float>(s));
      if (s > c.score) {
        c.score = static_cast<float>(s);
        c.top_class = classes[k];
      }
    }
    out.push_back(std::move(c));
  }, true);
  return out;
}

std::vector<std::string> split_list(const std::string& csv) {
  std::vector<std::string> out;
  std::stringstream ss(csv);
  std::string part;
  while (std::getline(ss, part, ',')) {
    auto b = part.find_first_not_of(" \t");
    auto e = part.find_last_not_of(" \t");
    if (b != std::string::npos) out.push_back(part.substr(b, e - b + 1));
  }
  return out;
}

std::string fill_template(const std::string& tmpl, const std::string& cls) {
  auto pos = tmpl.find("{}");
  if (pos == std::string::npos) return tmpl + " " + cls;
  return tmpl.substr(0, pos) + cls + tmpl.substr(pos + 2);
}

}  // namespace omnibind::retrieval
