#include "omnibind/apps/demo/demo_report.h"

#include <ATen/ATen.h>

#include <cstdio>
#include <sstream>

#include "omnibind/apps/report/embedding_map.h"
#include "omnibind/apps/report/svg_charts.h"
#include "omnibind/apps/report/thumbnails.h"
#include "omnibind/evaluation/evaluate_binding.h"
#include "omnibind/media/audio.h"
#include "omnibind/media/image.h"
#include "omnibind/media/point_cloud.h"

namespace omnibind::apps {
namespace {

std::string fixed(double v, int decimals = 1) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string world_section(const WorldSpec& world) {
  std::ostringstream h;
  h << "<h2>The world</h2><p>" << world.classes.size()
    << " classes of things; each has a look, a sound, a 3D form and a name. Captions describe one of the three.</p>"
       "<table><tr><th>class</th><th>look</th><th>sound</th><th>3D form</th></tr>";
  for (const auto& c : world.classes)
    h << "<tr><td>" << escape_html(c.name) << "</td><td>" << colour_names()[c.colour] << ' ' << texture_names()[c.texture]
      << ' ' << shape2d_names()[c.shape2d] << "</td><td>" << pitch_names()[c.pitch] << ", " << contour_names()[c.contour]
      << ", " << timbre_names()[c.timbre] << ", " << rhythm_names()[c.rhythm] << "</td><td>"
      << proportion_names()[c.proportion] << ' ' << form_names()[c.form] << "</td></tr>";
  h << "</table>";
  return h.str();
}

std::string experts_section(const std::vector<DemoSpace>& spaces, const WorldSpec& world) {
  static const char* kCaption[] = {"sound", "look", "shape"};
  std::ostringstream h;
  h << "<h2>The expert spaces</h2><p>Small encoders trained here on paired data, each imperfect in its own way. "
       "The first is the backbone the others are bound into.</p><table><tr><th>space</th><th>plays the role of</th>"
       "<th>modalities</th><th>captions learned from</th><th>classes seen well</th><th>dim</th></tr>";
  for (const auto& s : spaces) {
    const auto& e = s.expert;
    h << "<tr><td><b>" << e.key << "</b></td><td>" << escape_html(e.like) << "</td><td>";
    for (size_t i = 0; i < e.modalities.size(); ++i) h << (i ? ", " : "") << e.modalities[i];
    h << "</td><td>";
    for (size_t i = 0; i < e.captions.size(); ++i) h << (i ? ", " : "") << kCaption[static_cast<int>(e.captions[i])];
    h << "</td><td>";
    if (e.strong_classes.size() == world.classes.size()) {
      h << "all";
    } else {
      for (size_t i = 0; i < e.strong_classes.size(); ++i) h << (i ? ", " : "") << escape_html(world.classes[e.strong_classes[i]].name);
      h << " (others: " << static_cast<int>(e.weak_share * 100) << "% of the data)";
    }
    h << "</td><td>" << e.config.dim << "</td></tr>";
  }
  h << "</table>";
  return h.str();
}

std::string table_section(const evaluation::EvalTable& t) {
  std::ostringstream h;
  h << "<h2>Evaluation (held-out items)</h2><p>Zero-shot top-1 accuracy (%) against the class prompts, and mean of "
       "R@1/5/10 (%) for retrieval between the members of held-out true tuples. A single expert covers only its own "
       "modalities (blank cells). <i>Composite</i> = mean over all columns, blanks as 0.</p><div class=scroll><table>"
       "<tr><th>representation</th>";
  for (const auto& task : t.tasks) h << "<th>" << escape_html(task.key()) << "</th>";
  h << "<th>composite</th></tr>";
  std::vector<double> best(t.tasks.size(), -1);
  for (const auto& row : t.rows)
    for (size_t i = 0; i < t.tasks.size(); ++i)
      if (row.covers(t.tasks[i])) best[i] = std::max(best[i], row.headline(t.tasks[i]));
  for (const auto& row : t.rows) {
    h << "<tr class='" << row.kind << "'><td>" << escape_html(row.name) << "</td>";
    for (size_t i = 0; i < t.tasks.size(); ++i) {
      if (!row.covers(t.tasks[i])) {
        h << "<td></td>";
        continue;
      }
      const double v = row.headline(t.tasks[i]);
      h << "<td" << (v >= best[i] - 1e-9 ? " class=best" : "") << ">" << fixed(100 * v) << "</td>";
    }
    h << "<td><b>" << fixed(100 * t.composite(row)) << "</b></td></tr>";
  }
  h << "</table></div>";
  for (const auto& note : t.notes) h << "<p class=note>" << escape_html(note) << "</p>";
  return h.str();
}

std::string maps_section(const evaluation::EvalSet& eval, const binding::OmniBindModel& model,
                         const std::vector<std::string>& class_names) {
  std::ostringstream h;
  h << "<h2>The unified space</h2><p>2-D PCA of the learned-routing embeddings of held-out items, coloured by class. "
       "The last map puts every modality in one picture: a class forms one cluster when its sounds, pictures, shapes and "
       "captions landed together.</p><div class=row>";
  std::vector<at::Tensor> all;
  std::vector<int> all_labels;
  for (const auto& [m, items] : eval.modalities) {
    at::Tensor u = evaluation::embed_unified(model, m, items.experts, evaluation::Routing::Learned);
    std::vector<int> labels(static_cast<size_t>(u.size(0)), -1);
    if (items.label.defined())
      for (int64_t i = 0; i < u.size(0); ++i) labels[static_cast<size_t>(i)] = static_cast<int>(items.label[i].item<int64_t>());
    h << svg_scatter(pca_map(u, labels), class_names, m, 300, 300);
    all.push_back(u);
    all_labels.insert(all_labels.end(), labels.begin(), labels.end());
  }
  if (all.size() > 1) h << svg_scatter(pca_map(at::cat(all), all_labels), class_names, "all modalities together", 300, 300);
  h << "</div>";
  return h.str();
}

std::string routers_section(const evaluation::EvalSet& eval, const binding::OmniBindModel& model) {
  static const char* kFamily[] = {"captions about sounds", "captions about looks", "captions about 3D shapes"};
  std::ostringstream h;
  h << "<h2>Router weights</h2><p>Mean routing weight of each space's slot over held-out items. The text router should "
       "give captions about sounds to the spaces that know sounds, and so on.</p><div class=row>";
  for (const auto& [m, items] : eval.modalities) {
    const auto slots = model.config().slots(m);
    if (slots.empty()) continue;
    at::Tensor w = model.routing_weights(m, items.experts).to(at::kDouble);
    auto bars = [&](const at::Tensor& rows, const std::string& title) {
      if (rows.size(0) == 0) return;
      at::Tensor mean = rows.mean(0);
      std::vector<double> values;
      for (int64_t s = 0; s < mean.size(0); ++s) values.push_back(mean[s].item<double>());
      h << svg_bars(slots, values, title, 300);
    };
    if (m == "text" && items.source.defined()) {
      for (int64_t f = 0; f < 3; ++f) bars(w.index({items.source.eq(f)}), "text: " + std::string(kFamily[f]));
    } else {
      bars(w, m);
    }
  }
  h << "</div>";
  return h.str();
}

std::string preview(const WorldItem& item) {
  if (item.modality == "image") return "<img src='" + image_data_uri(media::decode_image_file(item.path)) + "' width=64 height=64>";
  if (item.modality == "audio") return "<audio controls src='" + audio_data_uri(media::decode_audio_file(item.path)) + "'></audio>";
  if (item.modality == "point") return svg_point_cloud(media::read_point_cloud_file(item.path), 80);
  return "<span class=caption>&ldquo;" + escape_html(item.text) + "&rdquo;</span>";
}

std::string queries_section(const std::vector<DemoQuery>& queries, const WorldSpec& world) {
  std::ostringstream h;
  h << "<h2>Any-to-any search</h2><p>Queries answered from the index the demo built (held-out items embedded through "
       "the model bundle from their files). A tick marks a result of the query's class.</p>";
  for (const auto& q : queries) {
    h << "<div class=query><h3>" << escape_html(q.title) << "</h3><div class=row><div class=card><div>query</div>";
    for (size_t i = 0; i < q.add.size(); ++i) h << (i ? "<div>+</div>" : "") << preview(*q.add[i]);
    if (q.sub) h << "<div>&minus;</div>" << preview(*q.sub);
    h << "</div>";
    for (const auto& hit : q.hits) {
      const bool right = hit.item->label == q.expected_label;
      h << "<div class='card " << (right ? "right" : "wrong") << "'><div>" << (right ? "&#10003; " : "&#10007; ")
        << escape_html(world.classes[hit.item->label].name) << " &middot; " << hit.item->modality << " &middot; "
        << fixed(hit.score, 3) << "</div>" << preview(*hit.item) << "</div>";
    }
    h << "</div></div>";
  }
  return h.str();
}

}  // namespace

std::string render_demo_report(const DemoReport& r) {
  std::vector<std::string> class_names;
  for (const auto& c : r.world->classes) class_names.push_back(c.name);
  std::ostringstream h;
  h << "<!doctype html><html><head><meta charset=utf-8><title>OmniBind demo report</title><style>"
       "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}"
       "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
       "td:first-child,th:first-child{text-align:left}tr.learned{background:#eef6ee}tr.uniform{background:#f4f4fb}"
       "td.best{font-weight:bold;color:#064}.scroll{overflow-x:auto}.row{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}"
       ".card{border:1px solid #ddd;border-radius:6px;padding:6px;font-size:12px;min-width:90px}.card.right{border-color:#4a4}"
       ".card.wrong{border-color:#c66}.caption{font-style:italic}.note{font-size:12px;color:#555}audio{width:180px}"
       "</style></head><body><h1>OmniBind, in miniature</h1><p>Four small expert spaces were trained on a generated world, "
       "then bound into one space by OmniBind's method (pseudo tuples mined from <b>unpaired</b> pools, projector heads, "
       "routers) and evaluated on held-out items. Sounds and 3D shapes were never seen together by any expert.</p>";
  if (!r.command.empty()) h << "<p>Reproduce: <code>" << escape_html(r.command) << "</code></p>";
  h << world_section(*r.world) << experts_section(*r.spaces, *r.world) << table_section(*r.table)
    << maps_section(*r.eval, *r.model, class_names) << routers_section(*r.eval, *r.model)
    << queries_section(*r.queries, *r.world);
  if (r.compositions) h << compose_section(*r.compositions, *r.world, preview);
  h << r.localisation_html;
  h << "<h2>Timings</h2><table>";
  double total = 0;
  for (const auto& [stage, s] : r.timings) {
    h << "<tr><td>" << escape_html(stage) << "</td><td>" << fixed(s) << " s</td></tr>";
    total += s;
  }
  h << "<tr><th>total</th><th>" << fixed(total) << " s</th></tr></table></body></html>\n";
  return h.str();
}

}  // namespace omnibind::apps
