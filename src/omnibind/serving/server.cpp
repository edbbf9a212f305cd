#include "omnibind/serving/server.h"

#include <httplib.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/printable.h"
#include "omnibind/media/image.h"
#include "omnibind/retrieval/bundle_query_embedder.h"
#include "omnibind/retrieval/localisation.h"
#include "omnibind/serving/base64.h"
#include "omnibind/serving/embed_batcher.h"
#include "omnibind/serving/region_cache.h"
#include "omnibind/serving/request_error.h"
#include "omnibind/serving/request_items.h"

namespace omnibind::serving {

using json = nlohmann::json;
using retrieval::QueryItem;
using Clock = std::chrono::steady_clock;

struct Server::Impl {
  retrieval::VectorIndex& index;
  const retrieval::QueryEmbedder* embedder;
  ServerOptions opt;
  ItemRules rules;
  std::unique_ptr<EmbedBatcher> batcher;
  RegionCache regions;
  httplib::Server http;

  Impl(retrieval::VectorIndex& i, const retrieval::QueryEmbedder* e, ServerOptions o)
      : index(i), embedder(e), opt(std::move(o)), regions(opt.locate_cache) {
    rules.allow_paths = opt.allow_paths;
    rules.max_media_bytes = opt.max_body_bytes;
    if (embedder)
      batcher = std::make_unique<EmbedBatcher>(*embedder, opt.max_batch, std::chrono::microseconds(opt.batch_wait_us));
  }

  // ---- responses -------------------------------------------------------------------------------
  static void send_json(httplib::Response& res, int status, const json& j) {
    res.status = status;
    res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  }
  static void send_error(httplib::Response& res, int status, const std::string& message, const std::string& field) {
    // Messages may quote file bytes: printable_message keeps the reply valid one-line UTF-8 JSON.
    send_json(res, status, json{{"error", {{"message", printable_message(message)}, {"field", field.empty() ? json(nullptr) : json(field)}}}});
  }
  // Runs a handler; turns every exception into a JSON error (the server never dies on input).
  template <class F>
  void guard(httplib::Response& res, F&& fn) {
    try {
      fn();
    } catch (const RequestError& e) {
      send_error(res, e.status(), e.what(), e.field());
    } catch (const InputError& e) {
      send_error(res, 400, e.what(), "");
    } catch (const json::exception& e) {
      send_error(res, 400, std::string("malformed request: ") + e.what(), "");
    } catch (const std::bad_alloc&) {
      send_error(res, 413, "request too large to process", "");
    } catch (const std::exception& e) {
      std::string msg = e.what();
      send_error(res, 500, "internal error: " + msg.substr(0, msg.find('\n')), "");
    } catch (...) {
      send_error(res, 500, "internal error", "");
    }
  }

  const retrieval::QueryEmbedder& need_model(const std::string& field) const {
    if (!embedder) throw RequestError(field, "this server has no model loaded (start it with --model or --expert)", 503);
    return *embedder;
  }

  // Embeds media/text items through the batcher, within the request's deadline.
  std::vector<std::vector<float>> embed_all(const std::vector<QueryItem>& items, const std::vector<std::string>& fields,
                                            Clock::time_point deadline) {
    const auto& model = need_model(fields.empty() ? "" : fields[0]);
    std::vector<std::future<std::vector<float>>> futs;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!model.covers(items[i].modality))
        throw RequestError(fields[i], fields[i] + ": the model '" + model.name() + "' does not embed " +
                                          std::string(experts::modality_name(items[i].modality)));
      futs.push_back(batcher->submit(items[i].modality, items[i].media));
    }
    std::vector<std::vector<float>> out;
    for (size_t i = 0; i < futs.size(); ++i) {
      if (futs[i].wait_until(deadline) != std::future_status::ready)
        throw RequestError("", "request timed out after " + std::to_string(opt.timeout_s) + " s", 503);
      try {
        out.push_back(futs[i].get());
      } catch (const InputError& e) {
        throw RequestError(fields[i], fields[i] + ": " + e.what());
      }
    }
    return out;
  }

  Clock::time_point deadline() const {
    return Clock::now() + std::chrono::milliseconds(static_cast<int64_t>(opt.timeout_s * 1000));
  }

  json record_json(const retrieval::ItemRecord& r) const {
    json meta = json::parse(r.metadata, nullptr, false);
    if (meta.is_discarded()) meta = json::object();
    json j{{"id", r.id}, {"modality", r.modality}, {"source", r.source}, {"labels", r.labels}, {"metadata", meta}};
    j["media_url"] = path_allowed(r.source, opt.allow_paths) ? json("/v1/items/" + std::to_string(r.id) + "/media") : json(nullptr);
    return j;
  }

  json model_json() const {
    if (!embedder) return nullptr;
    json mods = json::array();
    for (auto m : embedder->modalities()) mods.push_back(std::string(experts::modality_name(m)));
    return json{{"name", embedder->name()}, {"dim", embedder->dim()}, {"modalities", mods}};
  }

  // ---- POST /v1/embeddings ---------------------------------------------------------------------
  void embeddings(const httplib::Request& req, httplib::Response& res) {
    auto end = deadline();
    json j = parse_body(req.body);
    if (!j.contains("input")) throw RequestError("input", "input is missing");
    const json& input = j["input"];
    std::string format = "float";
    if (j.contains("encoding_format")) {
      format = get_string(j["encoding_format"], "encoding_format");
      if (format != "float" && format != "base64")
        throw RequestError("encoding_format", "encoding_format must be \"float\" or \"base64\"");
    }
    if (j.contains("model") && !j["model"].is_string() && !j["model"].is_null())
      throw RequestError("model", "model must be a string");
    // Every output is one input item, or one {"compose": [...]} whose items are summed with their
    // weights and renormalised. `groups[o]` = [first, last) of output o's items.
    std::vector<QueryItem> items;
    std::vector<std::string> fields;
    std::vector<std::pair<size_t, size_t>> groups;
    bool composed = false;
    auto take = [&](const json& x, const std::string& f) {
      const size_t first = items.size();
      if (is_composition(x)) {
        append_query_items(x, f, rules, index.dim(), 1.f, opt.max_items, items, fields);
        composed = true;
      } else {
        if (x.is_number() || x.is_array()) throw RequestError(f, f + ": token arrays are not supported, send text");
        if (items.size() >= opt.max_items) throw RequestError(f, "too many input items", 413);
        items.push_back(parse_media_item(x, f, rules));
        fields.push_back(f);
      }
      groups.emplace_back(first, items.size());
    };
    if (input.is_string()) {
      take(input, "input");
    } else if (input.is_array()) {
      require_array(input, "input", opt.max_items);
      if (input.empty()) throw RequestError("input", "input is an empty array");
      for (size_t i = 0; i < input.size(); ++i) take(input[i], "input[" + std::to_string(i) + "]");
    } else if (is_composition(input)) {
      take(input, "input");
    } else {
      throw RequestError("input", "input must be a string, a {\"compose\"} or an array of strings/media items/compositions");
    }
    const auto& model = need_model("input");
    if (j.contains("dimensions") && !(j["dimensions"].is_number_integer() && j["dimensions"].get<int64_t>() == model.dim()))
      throw RequestError("dimensions", "dimensions must be " + std::to_string(model.dim()) + " (the model's size) or absent");
    std::vector<std::vector<float>> vecs;
    if (!composed) {
      vecs = embed_all(items, fields, end);
    } else {
      auto parts = item_vectors(items, fields, end);
      for (size_t o = 0; o < groups.size(); ++o) {
        const std::string f = input.is_array() ? "input[" + std::to_string(o) + "]" : "input";
        vecs.push_back(combine_items(parts, items, groups[o].first, groups[o].second, f));
      }
    }
    int64_t tokens = 0;
    for (const auto& it : items)
      if (it.kind == QueryItem::Kind::Media && it.modality == experts::Modality::Text) {
        std::istringstream ss(it.media.text);
        std::string w;
        while (ss >> w) ++tokens;
      }
    json data = json::array();
    for (size_t i = 0; i < vecs.size(); ++i) {
      json e{{"object", "embedding"}, {"index", i}};
      if (format == "base64")
        e["embedding"] = base64_encode(std::string_view(reinterpret_cast<const char*>(vecs[i].data()), vecs[i].size() * 4));
      else
        e["embedding"] = vecs[i];
      data.push_back(std::move(e));
    }
    send_json(res, 200, json{{"object", "list"}, {"data", data}, {"model", model.name()},
                             {"usage", {{"prompt_tokens", tokens}, {"total_tokens", tokens}}}});
  }

  // ---- POST /v1/search -------------------------------------------------------------------------
  retrieval::Filter parse_filter(const json& j) {
    retrieval::Filter f;
    if (j.contains("modality") && !j["modality"].is_null()) {
      const json& m = j["modality"];
      std::vector<json> list = m.is_array() ? std::vector<json>(m.begin(), m.end()) : std::vector<json>{m};
      if (list.size() > 8) throw RequestError("modality", "modality lists at most 4 modalities");
      for (auto& x : list) {
        std::string s = get_string(x, "modality");
        try {
          experts::parse_modality(s);
        } catch (const InputError& e) {
          throw RequestError("modality", e.what());
        }
        f.modalities.push_back(s);
      }
    }
    if (j.contains("where") && !j["where"].is_null()) {
      const json& w = j["where"];
      if (!w.is_object()) throw RequestError("where", "where must be an object {\"key\": value}");
      if (w.size() > 64) throw RequestError("where", "where has too many keys");
      for (auto& [k, v] : w.items()) {
        if (v.is_object() || v.is_array() || v.is_null())
          throw RequestError("where." + k, "where." + k + " must be a string, number or boolean");
        f.where.emplace_back(k, v.is_string() ? v.get<std::string>() : v.dump());
      }
    }
    return f;
  }

  // Each item's vector: stored ids from the index, raw vectors as given, media/text through the model
  // (batched, within the deadline). RequestError naming the item's field.
  std::vector<std::vector<float>> item_vectors(const std::vector<QueryItem>& items, const std::vector<std::string>& fields,
                                               Clock::time_point end) {
    std::vector<QueryItem> media;
    std::vector<std::string> media_fields;
    std::vector<std::vector<float>> vectors(items.size());
    for (size_t i = 0; i < items.size(); ++i) {
      if (items[i].kind == QueryItem::Kind::Media) {
        media.push_back(items[i]);
        media_fields.push_back(fields[i]);
      } else if (items[i].kind == QueryItem::Kind::Id) {
        if (!index.vector(items[i].id, vectors[i]))
          throw RequestError(fields[i] + ".id", "no item with id " + std::to_string(items[i].id), 404);
      } else {
        vectors[i] = items[i].vector;
      }
    }
    if (!media.empty()) {
      auto embedded = embed_all(media, media_fields, end);
      size_t m = 0;
      for (size_t i = 0; i < items.size(); ++i)
        if (items[i].kind == QueryItem::Kind::Media) {
          if (static_cast<int64_t>(embedded[m].size()) != index.dim())
            throw RequestError(fields[i], "the model's embeddings have " + std::to_string(embedded[m].size()) +
                                              " dims, the index has " + std::to_string(index.dim()), 409);
          vectors[i] = std::move(embedded[m++]);
        }
    }
    return vectors;
  }

  // normalize(sum w_i normalize(v_i)); RequestError on `field` when the sum vanishes.
  static std::vector<float> combine_items(const std::vector<std::vector<float>>& vectors, const std::vector<QueryItem>& items,
                                          size_t begin, size_t end, const std::string& field) {
    std::vector<std::vector<float>> vs(vectors.begin() + static_cast<std::ptrdiff_t>(begin),
                                       vectors.begin() + static_cast<std::ptrdiff_t>(end));
    std::vector<float> weights;
    for (size_t i = begin; i < end; ++i) weights.push_back(items[i].weight);
    try {
      return retrieval::combine(vs, weights);
    } catch (const InputError& e) {
      throw RequestError(field, field + ": " + e.what());
    }
  }

  // The query of a search/locate request: "query", "add" and "sub" (each an item, an array or a
  // {"compose"}), summed with their weights ("sub" negated) and normalised.
  std::vector<float> resolve_query(const json& j, Clock::time_point end) {
    std::vector<QueryItem> items;
    std::vector<std::string> fields;
    if (j.contains("query")) append_query_items(j["query"], "query", rules, index.dim(), 1.f, opt.max_items, items, fields);
    if (j.contains("add")) append_query_items(j["add"], "add", rules, index.dim(), 1.f, opt.max_items, items, fields);
    if (j.contains("sub")) append_query_items(j["sub"], "sub", rules, index.dim(), -1.f, opt.max_items, items, fields);
    if (items.empty()) throw RequestError("query", "query is missing (text, media item, {\"id\"}, {\"vector\"} or {\"compose\"})");
    auto vectors = item_vectors(items, fields, end);
    return combine_items(vectors, items, 0, items.size(), "query");
  }

  void search(const httplib::Request& req, httplib::Response& res) {
    auto t0 = Clock::now();
    json j = parse_body(req.body);
    int64_t k = j.contains("k") ? get_int(j["k"], "k", 1, opt.max_k) : 10;
    int nprobe = j.contains("nprobe") ? static_cast<int>(get_int(j["nprobe"], "nprobe", 1, 1 << 16)) : 0;
    auto filter = parse_filter(j);
    auto q = resolve_query(j, deadline());
    auto hits = retrieval::search_index(index, q, k, filter, nprobe);
    json results = json::array();
    for (auto& h : hits) {
      json r = record_json(h.record);
      r["score"] = h.score;
      results.push_back(std::move(r));
    }
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    send_json(res, 200, json{{"results", results}, {"took_ms", ms}});
  }


  // ---- POST /v1/locate -------------------------------------------------------------------------
  // {"image": IMAGE, "query"/"add"/"sub": items as in /v1/search, "k": boxes, "scales": [fractions],
  //  "stride": fraction, "heat_cells": n, "heat": "density"|"mean_cosine"}
  //  -> retrieval::locate_json + {"cached", "took_ms", "model"}.
  // IMAGE: {"type": "image", "data": BASE64} (type may be left out), {"path"} under --allow-paths, or
  // {"id": N}: an indexed item whose source file the server may read.
  struct Picture {
    std::string bytes, name;
  };
  Picture read_picture(const json& j) {
    const std::string field = "image";
    if (j.is_object() && j.contains("id")) {
      const int64_t id = get_int(j["id"], "image.id", 0, INT64_MAX);
      auto rec = index.item(id);
      if (!rec) throw RequestError("image.id", "no item with id " + std::to_string(id), 404);
      if (rec->modality != "image") throw RequestError("image.id", "item " + std::to_string(id) + " is " + rec->modality + ", not an image");
      if (!path_allowed(rec->source, opt.allow_paths) || !std::filesystem::is_regular_file(rec->source))
        throw RequestError("image.id", "item " + std::to_string(id) + " has no source file the server may read (see --allow-paths)", 403);
      return {read_file_bytes(rec->source), rec->source};
    }
    if (!j.is_object()) throw RequestError(field, "image must be an object {\"data\": BASE64} / {\"path\"} / {\"id\"}");
    json item = j;
    if (!item.contains("type")) item["type"] = "image";
    QueryItem q = parse_media_item(item, field, rules);
    if (q.modality != experts::Modality::Image)
      throw RequestError("image.type", "image.type must be \"image\" (the picture to search in)");
    if (!q.media.path.empty()) return {read_file_bytes(q.media.path), q.media.path};
    return {std::move(q.media.bytes), q.media.name_hint.empty() ? "image" : q.media.name_hint};
  }

  retrieval::RegionGrid parse_grid(const json& j) {
    retrieval::RegionGrid g;
    if (j.contains("scales")) {
      const json& s = require_array(j["scales"], "scales", 12);
      if (s.empty()) throw RequestError("scales", "scales is an empty array");
      g.scales.clear();
      for (size_t i = 0; i < s.size(); ++i) {
        const std::string f = "scales[" + std::to_string(i) + "]";
        if (!s[i].is_number()) throw RequestError(f, f + " must be a number in (0, 1]");
        const double v = s[i].get<double>();
        if (!(v > 0 && v <= 1)) throw RequestError(f, f + " must be in (0, 1] (a fraction of the picture's shorter side)");
        g.scales.push_back(v);
      }
    }
    if (j.contains("stride")) {
      if (!j["stride"].is_number()) throw RequestError("stride", "stride must be a number in (0, 1]");
      g.stride = j["stride"].get<double>();
      if (!(g.stride > 0 && g.stride <= 1)) throw RequestError("stride", "stride must be in (0, 1] (a fraction of the window side)");
    }
    if (j.contains("heat_cells")) g.heat_cells = static_cast<int>(get_int(j["heat_cells"], "heat_cells", 2, 256));
    try {
      retrieval::validate_grid(g);
    } catch (const InputError& e) {
      throw RequestError("scales", e.what());
    }
    return g;
  }

  const pipeline::ModelBundle& need_bundle(const std::string& field) const {
    const auto& model = need_model(field);
    const auto* b = dynamic_cast<const retrieval::BundleQueryEmbedder*>(&model);
    if (!b) throw RequestError(field, "locating needs a model bundle (start the server with --model BUNDLE); '" + model.name() + "' is a single expert", 503);
    if (!b->covers(experts::Modality::Image))
      throw RequestError(field, "the model '" + model.name() + "' has no image pathway to look at pictures with", 503);
    return b->bundle();
  }

  void locate(const httplib::Request& req, httplib::Response& res) {
    const auto t0 = Clock::now();
    const auto end = deadline();
    json j = parse_body(req.body);
    if (!j.contains("image")) throw RequestError("image", "image is missing (the picture to search in: {\"data\": BASE64} or {\"id\"})");
    const auto& bundle = need_bundle("image");
    retrieval::LocateOptions lo;
    if (j.contains("k")) lo.top_k = static_cast<int>(get_int(j["k"], "k", 1, 100));
    if (j.contains("heat")) {
      const std::string h = get_string(j["heat"], "heat");
      if (h == "density") lo.heat = retrieval::HeatMethod::Density;
      else if (h == "mean_cosine") lo.heat = retrieval::HeatMethod::MeanCosine;
      else throw RequestError("heat", "heat must be \"density\" (default) or \"mean_cosine\"");
    }
    auto grid = parse_grid(j);
    Picture pic = read_picture(j["image"]);
    auto q = resolve_query(j, end);  // before the region pass: a bad query fails fast
    std::ostringstream key;
    key << content_key(pic.bytes) << "|s";
    for (double s : grid.scales) key << s << ",";
    key << "|" << grid.stride << "|" << grid.heat_cells;
    bool cached = false;
    auto entry = regions.get(key.str(), [&] {
      media::Image image;
      try {
        image = media::decode_image_bytes(pic.bytes, pic.name);
      } catch (const InputError& e) {
        throw RequestError("image", std::string("image: ") + e.what());
      }
      retrieval::EmbedRegionsOptions eo;
      eo.keep_spaces = false;
      eo.progress = [&](int64_t, int64_t) {
        if (Clock::now() > end)
          throw RequestError("", "request timed out after " + std::to_string(opt.timeout_s) + " s while embedding the picture's regions (use fewer scales or a larger stride)", 503);
      };
      try {
        return retrieval::embed_regions(bundle, image, grid, eo);
      } catch (const RequestError&) {
        throw;
      } catch (const InputError& e) {
        throw RequestError("image", std::string("image: ") + e.what());
      }
    }, &cached);
    retrieval::LocateResult r;
    try {
      r = retrieval::locate(*entry, q, lo);
    } catch (const InputError& e) {
      throw RequestError("query", std::string("query: ") + e.what());
    }
    json out = retrieval::locate_json(r);
    out["cached"] = cached;
    out["model"] = bundle.name();
    out["took_ms"] = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    send_json(res, 200, out);
  }

  // ---- items -----------------------------------------------------------------------------------
  void add_items(const httplib::Request& req, httplib::Response& res) {
    json j = parse_body(req.body);
    if (!j.contains("items")) throw RequestError("items", "items is missing");
    const json& list = require_array(j["items"], "items", opt.max_items);
    if (list.empty()) throw RequestError("items", "items is an empty array");
    std::vector<retrieval::ItemRecord> recs(list.size());
    std::vector<std::vector<float>> vectors(list.size());
    std::vector<QueryItem> media;
    std::vector<std::string> media_fields;
    std::vector<size_t> media_pos;
    for (size_t i = 0; i < list.size(); ++i) {
      const std::string f = "items[" + std::to_string(i) + "]";
      const json& it = list[i];
      if (!it.is_object()) throw RequestError(f, f + " must be an object");
      auto& r = recs[i];
      if (it.contains("source")) r.source = get_string(it["source"], f + ".source");
      if (it.contains("labels")) {
        const json& l = it["labels"];
        if (l.is_string()) r.labels = {l.get<std::string>()};
        else {
          require_array(l, f + ".labels", 1024);
          for (auto& x : l) r.labels.push_back(get_string(x, f + ".labels[]"));
        }
      }
      if (it.contains("metadata")) {
        if (!it["metadata"].is_object()) throw RequestError(f + ".metadata", f + ".metadata must be an object");
        r.metadata = it["metadata"].dump();
      }
      if (it.contains("vector")) {
        vectors[i] = get_vector(it["vector"], f + ".vector", index.dim());
        if (!it.contains("modality")) throw RequestError(f + ".modality", f + ".modality is missing (audio, image, text, point)");
        r.modality = get_string(it["modality"], f + ".modality");
        try {
          experts::parse_modality(r.modality);
        } catch (const InputError& e) {
          throw RequestError(f + ".modality", e.what());
        }
      } else {
        media.push_back(parse_media_item(it, f, rules));
        media_fields.push_back(f);
        media_pos.push_back(i);
        r.modality = std::string(experts::modality_name(media.back().modality));
        if (r.source.empty() && !media.back().media.path.empty()) r.source = media.back().media.path;
      }
    }
    if (!media.empty()) {
      auto embedded = embed_all(media, media_fields, deadline());
      for (size_t m = 0; m < media.size(); ++m) {
        if (static_cast<int64_t>(embedded[m].size()) != index.dim())
          throw RequestError(media_fields[m], "the model's embeddings do not match the index's dim", 409);
        vectors[media_pos[m]] = std::move(embedded[m]);
      }
    }
    std::vector<float> rows;
    rows.reserve(list.size() * index.dim());
    for (auto& v : vectors) rows.insert(rows.end(), v.begin(), v.end());
    std::vector<int64_t> ids;
    try {
      ids = index.add(recs, rows.data(), static_cast<int64_t>(recs.size()), false);
    } catch (const InputError& e) {
      throw RequestError("items", e.what());
    }
    send_json(res, 200, json{{"ids", ids}, {"count", index.size()}});
  }

  static int64_t id_from(const httplib::Request& req) {
    try {
      return std::stoll(req.matches[1].str());
    } catch (...) {
      throw RequestError("id", "id must be a non-negative integer", 404);
    }
  }

  void get_media(const httplib::Request& req, httplib::Response& res) {
    auto rec = index.item(id_from(req));
    if (!rec) throw RequestError("id", "no item with id " + req.matches[1].str(), 404);
    if (!path_allowed(rec->source, opt.allow_paths) || !std::filesystem::is_regular_file(rec->source))
      throw RequestError("id", "item " + req.matches[1].str() + " has no source file the server may serve", 404);
    std::string ext = std::filesystem::path(rec->source).extension().string();
    for (auto& c : ext) c = static_cast<char>(std::tolower(c));
    std::string type = ext == ".wav" ? "audio/wav" : ext == ".flac" ? "audio/flac" : ext == ".ogg" ? "audio/ogg"
                     : ext == ".mp3" ? "audio/mpeg" : ext == ".jpg" || ext == ".jpeg" ? "image/jpeg"
                     : ext == ".png" ? "image/png" : ext == ".webp" ? "image/webp" : "application/octet-stream";
    res.set_content(read_file_bytes(rec->source), type);
  }

  // ---- Weaviate multi2vec-bind -------------------------------------------------------------------
  void vectorize(const httplib::Request& req, httplib::Response& res) {
    json j = parse_body(req.body);
    struct Field { const char* in; const char* out; int modality; };  // -1: not an OmniBind modality
    const Field fields[] = {{"texts", "textVectors", int(experts::Modality::Text)},
                            {"images", "imageVectors", int(experts::Modality::Image)},
                            {"audio", "audioVectors", int(experts::Modality::Audio)},
                            {"video", "videoVectors", -1},
                            {"imu", "imuVectors", -1},
                            {"thermal", "thermalVectors", -1},
                            {"depth", "depthVectors", -1},
                            {"points", "pointVectors", int(experts::Modality::Point)}};
    json out = json::object();
    std::vector<QueryItem> items;
    std::vector<std::string> names;
    std::vector<const char*> outs;
    size_t total = 0;
    for (auto& f : fields) {
      out[f.out] = json::array();
      if (!j.contains(f.in) || j[f.in].is_null()) continue;
      const json& list = require_array(j[f.in], f.in, opt.max_items);
      total += list.size();
      if (total > opt.max_items) throw RequestError(f.in, "too many items in one request", 413);
      if (list.empty()) continue;
      if (f.modality < 0)
        throw RequestError(f.in, std::string(f.in) + " is not supported: OmniBind embeds texts, images, audio and points");
      for (size_t i = 0; i < list.size(); ++i) {
        std::string name = std::string(f.in) + "[" + std::to_string(i) + "]";
        std::string s = get_string(list[i], name);
        if (f.modality == int(experts::Modality::Text)) {
          items.push_back(QueryItem::text(s));
        } else {
          auto bytes = base64_decode(s);
          if (!bytes || bytes->empty()) throw RequestError(name, name + " is not valid base64");
          items.push_back(QueryItem::media_item(static_cast<experts::Modality>(f.modality),
                                                experts::MediaInput::from_bytes(std::move(*bytes))));
        }
        names.push_back(name);
        outs.push_back(f.out);
      }
    }
    if (!items.empty()) {
      auto vecs = embed_all(items, names, deadline());
      for (size_t i = 0; i < vecs.size(); ++i) out[outs[i]].push_back(std::move(vecs[i]));
    }
    send_json(res, 200, out);
  }
};

Server::Server(retrieval::VectorIndex& index, const retrieval::QueryEmbedder* embedder, ServerOptions options)
    : impl_(std::make_unique<Impl>(index, embedder, std::move(options))) {
  routes();
}

Server::~Server() { stop(); }

void Server::routes() {
  auto& http = impl_->http;
  Impl* I = impl_.get();
  const auto& opt = I->opt;
  http.new_task_queue = [n = std::max(1, opt.threads)] { return new httplib::ThreadPool(static_cast<size_t>(n)); };
  http.set_payload_max_length(opt.max_body_bytes);
  const auto secs = static_cast<time_t>(std::max(1.0, opt.timeout_s));
  http.set_read_timeout(secs, 0);
  http.set_write_timeout(secs, 0);

  // Responses httplib makes itself (unknown route, body too large, bad request line) get JSON too.
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    std::string msg = res.status == 404   ? "no such endpoint"
                      : res.status == 413 ? "request body is larger than the server's limit (--max-body-mb)"
                      : res.status == 405 ? "method not allowed"
                                          : "request failed with HTTP status " + std::to_string(res.status);
    Impl::send_error(res, res.status, msg, "");
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
    Impl::send_error(res, 500, "internal error", "");
  });
  if (!opt.api_key.empty()) {
    http.set_pre_routing_handler([key = opt.api_key](const httplib::Request& req, httplib::Response& res) {
      static const char* open_paths[] = {"/", "/health", "/.well-known/live", "/.well-known/ready"};
      for (auto* p : open_paths)
        if (req.path == p) return httplib::Server::HandlerResponse::Unhandled;
      const std::string want = "Bearer " + key;
      const std::string got = req.get_header_value("Authorization");
      unsigned diff = got.size() ^ want.size();
      for (size_t i = 0; i < std::min(got.size(), want.size()); ++i) diff |= unsigned(got[i] ^ want[i]);
      if (diff == 0) return httplib::Server::HandlerResponse::Unhandled;
      Impl::send_error(res, 401, "missing or wrong API key (send Authorization: Bearer KEY)", "Authorization");
      return httplib::Server::HandlerResponse::Handled;
    });
  }

  http.Post("/v1/embeddings", [I](const auto& req, auto& res) { I->guard(res, [&] { I->embeddings(req, res); }); });
  http.Post("/v1/search", [I](const auto& req, auto& res) { I->guard(res, [&] { I->search(req, res); }); });
  http.Post("/v1/locate", [I](const auto& req, auto& res) { I->guard(res, [&] { I->locate(req, res); }); });
  http.Post("/v1/items", [I](const auto& req, auto& res) { I->guard(res, [&] { I->add_items(req, res); }); });
  http.Get(R"(/v1/items/(\d+))", [I](const auto& req, auto& res) {
    I->guard(res, [&] {
      auto rec = I->index.item(Impl::id_from(req));
      if (!rec) throw RequestError("id", "no item with id " + req.matches[1].str(), 404);
      Impl::send_json(res, 200, I->record_json(*rec));
    });
  });
  http.Delete(R"(/v1/items/(\d+))", [I](const auto& req, auto& res) {
    I->guard(res, [&] {
      size_t n = I->index.remove({Impl::id_from(req)});
      if (n == 0) throw RequestError("id", "no item with id " + req.matches[1].str(), 404);
      Impl::send_json(res, 200, json{{"removed", n}, {"count", I->index.size()}});
    });
  });
  http.Get(R"(/v1/items/(\d+)/media)", [I](const auto& req, auto& res) { I->guard(res, [&] { I->get_media(req, res); }); });
  http.Get("/v1/info", [I](const auto&, auto& res) {
    I->guard(res, [&] { Impl::send_json(res, 200, json{{"index", retrieval::info_to_json(I->index.info())}, {"model", I->model_json()}}); });
  });
  http.Post("/vectorize", [I](const auto& req, auto& res) { I->guard(res, [&] { I->vectorize(req, res); }); });
  http.Get("/meta", [I](const auto&, auto& res) {
    I->guard(res, [&] { Impl::send_json(res, 200, json{{"model", I->model_json()}, {"index", retrieval::info_to_json(I->index.info())}}); });
  });
  http.Get("/.well-known/live", [](const auto&, auto& res) { res.status = 204; });
  http.Get("/.well-known/ready", [](const auto&, auto& res) { res.status = 204; });
  http.Get("/health", [I](const auto&, auto& res) {
    I->guard(res, [&] {
      Impl::send_json(res, 200, json{{"status", "ok"}, {"items", I->index.size()}, {"dim", I->index.dim()}, {"model", I->model_json()}});
    });
  });
  http.Get("/", [I](const auto&, auto& res) {
    I->guard(res, [&] {
      if (!I->opt.web_dir.empty()) res.set_content(read_file_bytes(I->opt.web_dir + "/index.html"), "text/html; charset=utf-8");
      else res.set_content(web_page(), "text/html; charset=utf-8");
    });
  });
}

int Server::bind() {
  auto& http = impl_->http;
  const auto& opt = impl_->opt;
  if (opt.port == 0) {
    port_ = http.bind_to_any_port(opt.host);
  } else {
    port_ = http.bind_to_port(opt.host, opt.port) ? opt.port : -1;
  }
  require(port_ > 0, "cannot listen on " + opt.host + ":" + std::to_string(opt.port) + " (in use or not a local address)");
  return port_;
}

void Server::run() { impl_->http.listen_after_bind(); }

void Server::stop() {
  if (impl_ && impl_->http.is_running()) impl_->http.stop();
}

}  // namespace omnibind::serving
