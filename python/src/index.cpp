// omnibind.Index: a persistent vector index directory (retrieval::VectorIndex: FAISS + SQLite catalog).
#include <ATen/ATen.h>

#include <cmath>
#include <filesystem>
#include <optional>

#include "omnibind/common/error.h"
#include "omnibind/retrieval/query.h"
#include "omnibind/retrieval/vector_index.h"
#include "py_common.h"

namespace omnibind::python {
namespace {

namespace fs = std::filesystem;
using retrieval::VectorIndex;

// Rows [n, dim] (or one vector [dim]) as contiguous float32, viewed without a copy when already so.
at::Tensor rows_of(py::array& a, int64_t dim, const std::string& what) {
  at::Tensor t = float_tensor_view(a, what);
  if (t.dim() == 1) t = t.unsqueeze(0);
  require(t.dim() == 2, what + ": expected [n, " + std::to_string(dim) + "] or [" + std::to_string(dim) + "], got " +
                            std::to_string(t.dim()) + " dimensions");
  require(t.size(1) == dim, what + ": vectors have width " + std::to_string(t.size(1)) + ", the index holds " +
                                std::to_string(dim));
  require(t.size(0) > 0, what + ": no vectors");
  return t.scalar_type() == at::kFloat && t.is_contiguous() ? t : t.to(at::kFloat).contiguous();
}

// A str (one value for every row) or a sequence of n values.
std::vector<std::string> per_row(const py::object& obj, size_t n, const std::string& what) {
  if (obj.is_none()) return std::vector<std::string>(n);
  if (py::isinstance<py::str>(obj)) return std::vector<std::string>(n, obj.cast<std::string>());
  auto v = string_list(obj, what, true);
  require(v.size() == n, what + " has " + std::to_string(v.size()) + " entries for " + std::to_string(n) + " vectors");
  return v;
}

// Item ids out of an int, a list of ints or an integer array.
std::vector<int64_t> id_list(const py::object& obj, const std::string& what) {
  py::array a = as_array(obj);
  if (a.size() == 0) return {};  // [] is float64 to numpy
  require(a.dtype().kind() == 'i' || a.dtype().kind() == 'u', what + " must be integer ids, got " + dtype_name(a));
  py::array_t<int64_t, py::array::c_style | py::array::forcecast> v(a.attr("ravel")());
  return std::vector<int64_t>(v.data(), v.data() + v.size());
}

py::dict item_dict(const retrieval::ItemRecord& r) {
  py::dict d;
  d["id"] = r.id;
  d["modality"] = r.modality;
  d["source"] = r.source;
  d["labels"] = r.labels;
  d["metadata"] = json_loads(r.metadata);
  return d;
}

// One query item of a composed query: a stored id (int) or a vector [dim] (any float array-like).
retrieval::QueryItem query_item(const py::handle& h, float weight, const std::string& what) {
  if (py::isinstance<py::int_>(h) || (py::hasattr(h, "__index__") && !py::isinstance<py::bool_>(h) &&
                                      !py::isinstance<py::array>(h))) {
    return retrieval::QueryItem::stored(py::module_::import("operator").attr("index")(h).cast<int64_t>(), weight);
  }
  if (py::isinstance<py::array>(h) && py::reinterpret_borrow<py::array>(h).ndim() == 0 &&
      (py::reinterpret_borrow<py::array>(h).dtype().kind() == 'i' || py::reinterpret_borrow<py::array>(h).dtype().kind() == 'u'))
    return retrieval::QueryItem::stored(h.attr("item")().cast<int64_t>(), weight);
  require(!py::isinstance<py::str>(h), what + ": a text needs a model: pass model.embed_texts([...])[0] as the vector");
  py::array a = as_array(h);
  at::Tensor t = float_tensor_view(a, what);
  require(t.dim() == 1, what + ": expected a stored id (int) or one vector [dim], got " + std::to_string(t.dim()) +
                            " dimensions");
  t = t.to(at::kFloat).contiguous();
  return retrieval::QueryItem::vec(std::vector<float>(t.data_ptr<float>(), t.data_ptr<float>() + t.numel()), weight);
}

// query=[item, (item, weight), ...] -> the items (weight 1 when not given).
std::vector<retrieval::QueryItem> query_items(const py::object& query) {
  require(py::isinstance<py::list>(query) || py::isinstance<py::tuple>(query),
          "Index.search: query must be a list of items: ids, vectors or (id or vector, weight) pairs");
  std::vector<retrieval::QueryItem> items;
  size_t i = 0;
  for (auto h : query) {
    const std::string what = "Index.search: query[" + std::to_string(i++) + "]";
    if (py::isinstance<py::tuple>(h) && py::len(h) == 2) {
      auto t = py::reinterpret_borrow<py::tuple>(h);
      require(py::isinstance<py::float_>(t[1]) || py::isinstance<py::int_>(t[1]) || py::hasattr(t[1], "__float__"),
              what + ": the weight must be a number, got " + std::string(py::str(py::type::of(t[1]).attr("__name__"))));
      const double w = t[1].cast<double>();
      require(std::isfinite(w), what + ": the weight must be finite");
      items.push_back(query_item(t[0], static_cast<float>(w), what));
    } else {
      items.push_back(query_item(h, 1.0f, what));
    }
  }
  require(!items.empty(), "Index.search: query is empty");
  return items;
}

class Index {
 public:
  Index(const std::string& path, std::optional<int64_t> dim, const std::string& type, bool readonly) {
    std::error_code ec;
    const bool exists = fs::exists(fs::path(path) / "catalog.sqlite", ec);
    if (!exists) {
      require(dim.has_value(), path + ": no index here; pass dim= to create one");
      require(!readonly, path + ": no index here (readonly=True cannot create one)");
      retrieval::CreateOptions o;
      o.dim = *dim;
      o.type = type;
      retrieval::VectorIndex::create(path, o);
    }
    index_ = std::shared_ptr<VectorIndex>(VectorIndex::open(path, readonly ? VectorIndex::Mode::ReadOnly
                                                                            : VectorIndex::Mode::ReadWrite));
    require(!dim || *dim == index_->dim(), path + ": the index holds " + std::to_string(index_->dim()) +
                                               "-d vectors, dim=" + std::to_string(*dim) + " was given");
  }

  py::array_t<int64_t> add(const py::object& vectors, const py::object& metadata, const py::object& modality,
                           const py::object& sources, const py::object& labels, bool measure_recall) {
    py::array a = as_array(vectors);
    at::Tensor rows = rows_of(a, index_->dim(), "Index.add: vectors");
    const auto n = static_cast<size_t>(rows.size(0));
    require(!modality.is_none(), "Index.add: pass modality= (e.g. 'image'; a str or one per vector)");
    auto mods = per_row(modality, n, "Index.add: modality");
    auto srcs = per_row(sources, n, "Index.add: sources");
    std::vector<retrieval::ItemRecord> items(n);
    for (size_t i = 0; i < n; ++i) {
      items[i].modality = mods[i];
      items[i].source = srcs[i];
    }
    if (!metadata.is_none()) {
      require(py::isinstance<py::sequence>(metadata) && !py::isinstance<py::str>(metadata) && !py::isinstance<py::dict>(metadata),
              "Index.add: metadata must be a list of dicts, one per vector");
      auto seq = py::reinterpret_borrow<py::sequence>(metadata);
      require(seq.size() == n, "Index.add: metadata has " + std::to_string(seq.size()) + " entries for " +
                                   std::to_string(n) + " vectors");
      for (size_t i = 0; i < n; ++i) {
        const std::string what = "Index.add: metadata[" + std::to_string(i) + "]";
        if (seq[i].is_none()) continue;
        require(py::isinstance<py::dict>(seq[i]), what + " must be a dict");
        items[i].metadata = json_dumps(seq[i], what);
      }
    }
    if (!labels.is_none()) {
      require(py::isinstance<py::sequence>(labels) && !py::isinstance<py::str>(labels),
              "Index.add: labels must be a list (one list of str per vector)");
      auto seq = py::reinterpret_borrow<py::sequence>(labels);
      require(seq.size() == n, "Index.add: labels has " + std::to_string(seq.size()) + " entries for " +
                                   std::to_string(n) + " vectors");
      for (size_t i = 0; i < n; ++i) items[i].labels = string_list(seq[i], "Index.add: labels[" + std::to_string(i) + "]", false);
    }
    std::vector<int64_t> ids;
    {
      py::gil_scoped_release unlocked;
      ids = index_->add(items, rows.data_ptr<float>(), rows.size(0), measure_recall);
    }
    return py::array_t<int64_t>(static_cast<py::ssize_t>(ids.size()), ids.data());
  }

  py::tuple search(const py::object& vectors, int64_t k, const py::object& ids, const py::object& query,
                   const py::object& where, const py::object& modality, const py::object& exclude, int nprobe) const {
    require(k > 0, "Index.search: k must be positive, got " + std::to_string(k));
    const int given = !vectors.is_none() + !ids.is_none() + !query.is_none();
    require(given == 1, "Index.search: pass exactly one of vectors, ids= (stored items) and query= (a composed query)");
    // Query rows [nq, dim]: the vectors as given, or each stored id's vector / the composed query
    // (retrieval::compose_query: normalize(sum w_i * normalize(v_i)), what `omnibind search --id/--add/--weight` runs).
    at::Tensor q;
    if (!vectors.is_none()) {
      py::array a = as_array(vectors);
      q = rows_of(a, index_->dim(), "Index.search: vectors");
    } else {
      std::vector<std::vector<retrieval::QueryItem>> queries;
      if (!ids.is_none()) {
        for (int64_t id : id_list(ids, "Index.search: ids")) queries.push_back({retrieval::QueryItem::stored(id)});
        require(!queries.empty(), "Index.search: ids is empty");
      } else {
        queries.push_back(query_items(query));
      }
      q = at::empty({static_cast<int64_t>(queries.size()), index_->dim()}, at::kFloat);
      py::gil_scoped_release unlocked;
      for (size_t i = 0; i < queries.size(); ++i) {
        std::vector<float> v = retrieval::compose_query(queries[i], *index_, nullptr);
        std::copy(v.begin(), v.end(), q.data_ptr<float>() + static_cast<int64_t>(i) * index_->dim());
      }
    }
    retrieval::Filter f;
    if (!modality.is_none()) f.modalities = string_list(modality, "Index.search: modality", false);
    if (!where.is_none()) {
      require(py::isinstance<py::dict>(where), "Index.search: where must be a dict {key: value}");
      for (auto [key, value] : py::reinterpret_borrow<py::dict>(where)) {
        require(py::isinstance<py::str>(key), "Index.search: where keys must be str");
        // Values that are not strings compare by their JSON text (retrieval::filter_accepts).
        std::string v = py::isinstance<py::str>(value) ? value.cast<std::string>()
                                                       : json_dumps(value, "Index.search: where['" + key.cast<std::string>() + "']");
        f.where.emplace_back(key.cast<std::string>(), v);
      }
    }
    if (!exclude.is_none()) f.exclude = id_list(exclude, "Index.search: exclude");
    const int64_t nq = q.size(0);
    std::vector<std::vector<retrieval::Hit>> hits(nq);
    {
      py::gil_scoped_release unlocked;
      for (int64_t i = 0; i < nq; ++i) hits[i] = index_->search(q.data_ptr<float>() + i * index_->dim(), k, f, nprobe);
    }
    py::array_t<int64_t> found({nq, k});
    py::array_t<float> scores({nq, k});
    auto I = found.mutable_unchecked<2>();
    auto S = scores.mutable_unchecked<2>();
    py::list items;
    for (int64_t i = 0; i < nq; ++i) {
      py::list row;
      for (int64_t j = 0; j < k; ++j) {
        const bool hit = j < static_cast<int64_t>(hits[i].size());
        I(i, j) = hit ? hits[i][j].id : -1;
        S(i, j) = hit ? hits[i][j].score : -std::numeric_limits<float>::infinity();
        if (hit) {
          auto rec = index_->item(hits[i][j].id);
          row.append(rec ? py::object(item_dict(*rec)) : py::object(py::none()));
        }
      }
      items.append(row);
    }
    return py::make_tuple(found, scores, items);
  }

  size_t remove(const py::object& ids) {
    std::vector<int64_t> v = id_list(ids, "Index.remove: ids");
    py::gil_scoped_release unlocked;
    return index_->remove(v);
  }

  py::object item(int64_t id) const {
    auto rec = index_->item(id);
    return rec ? py::object(item_dict(*rec)) : py::object(py::none());
  }

  py::object vector(int64_t id) const {
    std::vector<float> v;
    if (!index_->vector(id, v)) return py::none();
    return py::array_t<float>(static_cast<py::ssize_t>(v.size()), v.data());
  }

  py::object info() const { return json_loads(retrieval::info_to_json(index_->info()).dump()); }
  int64_t dim() const { return index_->dim(); }
  int64_t size() const { return index_->size(); }
  const std::string& path() const { return index_->dir(); }

 private:
  std::shared_ptr<VectorIndex> index_;
};

}  // namespace

void register_index(py::module_& m) {
  py::class_<Index>(m, "Index", R"doc(A persistent vector index directory (FAISS + SQLite catalog; `omnibind index`).

Index(path, dim=None, type="Flat", readonly=False)
  Opens the index at `path`; creates it when absent and dim is given (type: a FAISS factory string such as
  "Flat", "HNSW32", "IVF256,Flat"). Inner product on L2-normalised vectors. One writer per directory.)doc")
      .def(py::init<const std::string&, std::optional<int64_t>, const std::string&, bool>(), py::arg("path"),
           py::arg("dim") = py::none(), py::arg("type") = "Flat", py::arg("readonly") = false)
      .def_property_readonly("dim", &Index::dim)
      .def_property_readonly("path", &Index::path)
      .def("__len__", &Index::size)
      .def("add", &Index::add, py::arg("vectors"), py::arg("metadata") = py::none(), py::kw_only(),
           py::arg("modality") = py::none(), py::arg("sources") = py::none(), py::arg("labels") = py::none(),
           py::arg("measure_recall") = true,
           "vectors [n, dim] (normalised here); metadata: a list of n dicts (JSON); modality: str or n str. "
           "Returns the new ids (int64 [n]); atomic: on any error nothing is added.")
      .def("search", &Index::search, py::arg("vectors") = py::none(), py::arg("k") = 10, py::kw_only(),
           py::arg("ids") = py::none(), py::arg("query") = py::none(), py::arg("where") = py::none(),
           py::arg("modality") = py::none(), py::arg("exclude") = py::none(), py::arg("nprobe") = 0,
           "vectors [nq, dim] or [dim]; or ids=[...] (stored items, one query each); or query=[id or vector or (id or "
           "vector, weight), ...] (one query: normalize(sum w * normalize(v)), negative weights subtract) -> (ids int64 [nq, k] (-1 past the last hit), scores float32 [nq, k] (-inf "
           "there), items: nq lists of {id, modality, source, labels, metadata}). where: {key: value} on the metadata "
           "(key 'label' matches labels); modality: str or list of str.")
      .def("remove", &Index::remove, py::arg("ids"), "Number of items removed (unknown ids are ignored)")
      .def("item", &Index::item, py::arg("id"))
      .def("vector", &Index::vector, py::arg("id"), "The stored (normalised) vector, float32 [dim], or None")
      .def("info", &Index::info)
      .def("__repr__", [](const Index& x) {
        return "omnibind.Index('" + x.path() + "', dim=" + std::to_string(x.dim()) + ", size=" + std::to_string(x.size()) + ")";
      });
}

}  // namespace omnibind::python
