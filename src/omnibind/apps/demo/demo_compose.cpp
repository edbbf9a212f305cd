#include "omnibind/apps/demo/demo_compose.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "omnibind/apps/report/svg_charts.h"
#include "omnibind/common/error.h"
#include "omnibind/retrieval/query.h"
#include "omnibind/retrieval/vector_index.h"

namespace omnibind::apps {
namespace fs = std::filesystem;

namespace {

const WorldItem* first_item(const std::vector<WorldItem>& items, const std::string& modality, int label) {
  for (const auto& item : items)
    if (item.modality == modality && item.label == label) return &item;
  return nullptr;
}

// Two classes that look alike but for their colour (same shape, most attributes shared), or -1s.
std::pair<int, int> colour_pair(const WorldSpec& world) {
  std::pair<int, int> best{-1, -1};
  int best_shared = -1;
  const int n = static_cast<int>(world.classes.size());
  for (int a = 0; a < n; ++a)
    for (int c = 0; c < n; ++c) {
      const auto &x = world.classes[a], &y = world.classes[c];
      if (a == c || x.colour == y.colour || x.shape2d != y.shape2d) continue;
      const int shared = (x.texture == y.texture) * 2;
      if (shared > best_shared) best_shared = shared, best = {a, c};
    }
  return best;
}

// Two classes that differ in pitch but share the most of the rest of their sound, or -1s.
std::pair<int, int> pitch_pair(const WorldSpec& world) {
  std::pair<int, int> best{-1, -1};
  int best_shared = -1;
  const int n = static_cast<int>(world.classes.size());
  for (int a = 0; a < n; ++a)
    for (int c = 0; c < n; ++c) {
      const auto &x = world.classes[a], &y = world.classes[c];
      if (a == c || x.pitch == y.pitch) continue;
      const int shared = (x.timbre == y.timbre) + (x.rhythm == y.rhythm) + (x.contour == y.contour);
      if (shared > best_shared) best_shared = shared, best = {a, c};
    }
  return best;
}

std::string fixed(double v, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace

std::vector<ComposeExample> compose_examples(const fs::path& index_dir, const pipeline::ModelBundle& bundle,
                                             const WorldSpec& world, const std::vector<WorldItem>& items, int k) {
  auto index = retrieval::VectorIndex::open(index_dir.string(), retrieval::VectorIndex::Mode::ReadOnly);
  // Index records -> world items (by modality and source: the file, or the caption).
  std::map<std::pair<std::string, std::string>, const WorldItem*> by_source;
  for (const auto& item : items) by_source.emplace(std::pair{item.modality, item.modality == "text" ? item.text : item.path}, &item);
  std::map<int64_t, const WorldItem*> by_id;
  std::map<const WorldItem*, int64_t> id_of;
  index->for_each([&](const retrieval::ItemRecord& r, const float*) {
    auto it = by_source.find({r.modality, r.source});
    if (it == by_source.end()) return;
    by_id[r.id] = it->second;
    id_of.emplace(it->second, r.id);
  }, false);

  const int n = static_cast<int>(world.classes.size());
  auto name = [&](int c) { return world.classes[c].name; };
  std::vector<ComposeExample> out;
  auto add = [&](std::string title, std::string expectation, std::vector<ComposePart> parts, std::string gallery,
                 std::vector<int> right_labels, bool need_every_label) {
    for (const auto& p : parts)
      if (!p.item && p.text.empty()) return;  // the world lacks an item this example needs
    ComposeExample e;
    e.title = std::move(title);
    e.expectation = std::move(expectation);
    e.parts = std::move(parts);
    e.gallery = std::move(gallery);
    e.right_labels = std::move(right_labels);
    e.need_every_label = need_every_label;
    out.push_back(std::move(e));
  };
  if (n >= 2) {
    const int a = 6 % n, b = (a + 1) % n;
    add("a picture of a " + name(a) + " + the sound of a " + name(b) + " -> everything",
         "both things: items of " + name(a) + " and of " + name(b),
         {{first_item(items, "image", a), "", 1}, {first_item(items, "audio", b), "", 1}}, "", {a, b}, true);
  }
  if (n >= 2) {
    const int a = 6 % n, b = (a + 1) % n;
    add("a picture of a " + name(a) + " + the sound of a " + name(b) + " \u2212 \"a " + name(a) + "\" -> everything",
        "items of " + name(b) + " only (the words take the " + name(a) + " out again)",
        {{first_item(items, "image", a), "", 1}, {first_item(items, "audio", b), "", 1}, {nullptr, "a " + name(a), -1}}, "",
        {b}, false);
  }
  // Attribute edits: a thing's item minus the words for one attribute plus the words for another. The
  // item alone outweighs two short texts, so each edit is shown at a few weights w of the texts.
  auto weight_label = [](float w) { return w == 1 ? std::string() : fixed(w, 0) + " \u00d7 "; };
  if (auto [a, c] = colour_pair(world); a >= 0) {
    const auto &x = world.classes[a], &y = world.classes[c];
    const std::string from = "a " + colour_names()[x.colour] + " " + shape2d_names()[x.shape2d];
    const std::string to = "a " + colour_names()[y.colour] + " " + shape2d_names()[y.shape2d];
    for (float w : {1.f, 2.f, 4.f})
      add("a picture of a " + name(a) + " \u2212 " + weight_label(w) + "\"" + from + "\" + " + weight_label(w) + "\"" + to +
              "\" -> pictures",
          "pictures of " + name(c) + " (" + to + ": " + name(a) + " with " + name(c) + "'s colour)",
          {{first_item(items, "image", a), "", 1}, {nullptr, from, -w}, {nullptr, to, w}}, "image", {c}, false);
  }
  if (auto [a, c] = pitch_pair(world); a >= 0) {
    const auto &x = world.classes[a], &y = world.classes[c];
    const std::string from = "a " + pitch_names()[x.pitch] + " sound", to = "a " + pitch_names()[y.pitch] + " sound";
    for (float w : {1.f, 2.f, 4.f})
      add("the sound of a " + name(a) + " \u2212 " + weight_label(w) + "\"" + from + "\" + " + weight_label(w) + "\"" + to +
              "\" -> sounds",
          "sounds of " + name(c) + " (" + pitch_names()[y.pitch] + ", " + timbre_names()[y.timbre] + ", " +
              rhythm_names()[y.rhythm] + ")",
          {{first_item(items, "audio", a), "", 1}, {nullptr, from, -w}, {nullptr, to, w}}, "audio", {c}, false);
  }
  if (n >= 1) {
    const int a = 8 % n;
    add("a picture + a sound + a 3D shape of a " + name(a) + " -> captions",
         "captions about a " + name(a) + " (three modalities agreeing)",
         {{first_item(items, "image", a), "", 1}, {first_item(items, "audio", a), "", 1}, {first_item(items, "point", a), "", 1}},
         "text", {a}, false);
  }

  for (auto& e : out) {
    std::vector<std::vector<float>> vectors;
    std::vector<float> weights;
    retrieval::Filter filter;
    if (!e.gallery.empty()) filter.modalities = {e.gallery};
    for (const auto& p : e.parts) {
      const experts::Modality m = p.item ? experts::parse_modality(p.item->modality) : experts::Modality::Text;
      const auto input = p.item ? (p.item->modality == "text" ? experts::MediaInput::from_text(p.item->text)
                                                              : experts::MediaInput::from_path(p.item->path))
                                : experts::MediaInput::from_text(p.text);
      at::Tensor v = bundle.embed(m, {input})[0].to(at::kFloat).contiguous();
      vectors.emplace_back(v.data_ptr<float>(), v.data_ptr<float>() + v.numel());
      weights.push_back(p.weight);
      if (p.item && id_of.count(p.item)) filter.exclude.push_back(id_of.at(p.item));
    }
    const auto q = retrieval::combine(vectors, weights);
    for (const auto& hit : index->search(q.data(), k, filter)) {
      auto it = by_id.find(hit.id);
      if (it == by_id.end()) continue;
      e.hits.push_back({it->second, hit.score});
      for (int l : e.right_labels) e.right += it->second->label == l;
    }
    e.covered = true;
    for (int l : e.right_labels) {
      bool seen = false;
      for (const auto& h : e.hits) seen = seen || h.item->label == l;
      e.covered = e.covered && seen;
    }
  }
  return out;
}

std::string compose_section(const std::vector<ComposeExample>& examples, const WorldSpec& world,
                            const std::function<std::string(const WorldItem&)>& preview) {
  std::ostringstream h;
  h << "<h2>Composable queries</h2><p>Queries that add and subtract embeddings of several modalities: each item is "
       "embedded through the bundle and normalised, the items are summed with their weights (&minus; subtracts) and the "
       "sum is normalised again &mdash; what <code>/v1/search</code>, <code>/v1/locate</code> and "
       "<code>/v1/embeddings</code> do with <code>{\"compose\": [...]}</code>, and the web page's + / &minus; query "
       "builder. Answered from the demo's index (the query items themselves excluded); a tick marks a right answer. "
       "Attribute edits (an item &minus; the words for one attribute + the words for another) are shown at several "
       "weights of the words: one item outweighs two short texts.</p>"
       "<table><tr><th>query</th><th>a right answer is</th><th>right in top "
    << (examples.empty() ? 0 : examples[0].hits.size()) << "</th></tr>";
  for (const auto& e : examples)
    h << "<tr><td>" << escape_html(e.title) << "</td><td>" << escape_html(e.expectation) << "</td><td>" << e.right << " / "
      << e.hits.size() << (e.need_every_label ? (e.covered ? " (both)" : " (not both)") : "") << "</td></tr>";
  h << "</table>";
  for (const auto& e : examples) {
    h << "<div class=query><h3>" << escape_html(e.title) << "</h3><div class=row><div class=card><div>query</div>";
    for (size_t i = 0; i < e.parts.size(); ++i) {
      const auto& p = e.parts[i];
      h << "<div>" << (p.weight < 0 ? "&minus;" : i ? "+" : "")
        << (std::abs(p.weight) != 1 ? " " + fixed(std::abs(p.weight), 2) + " &times;" : "") << "</div>";
      h << (p.item ? preview(*p.item) : "<span class=caption>&ldquo;" + escape_html(p.text) + "&rdquo;</span>");
    }
    h << "</div>";
    for (const auto& hit : e.hits) {
      bool right = false;
      for (int l : e.right_labels) right = right || hit.item->label == l;
      h << "<div class='card " << (right ? "right" : "wrong") << "'><div>" << (right ? "&#10003; " : "&#10007; ")
        << escape_html(world.classes[hit.item->label].name) << " &middot; " << hit.item->modality << " &middot; "
        << fixed(hit.score, 3) << "</div>" << preview(*hit.item) << "</div>";
    }
    h << "</div></div>";
  }
  return h.str();
}

}  // namespace omnibind::apps
