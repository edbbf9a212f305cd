// omnibind.Model: a model bundle (pipeline::ModelBundle) from Python: files, texts and decoded arrays in,
// unified embeddings out. Arrays reach the experts through the same decoders as files: each item is encoded
// in memory without loss (audio: WAV of the array's own sample type; images: PNG; point clouds: .npy), so
// an array and the file holding the same samples give the same floats.
#include <ATen/ATen.h>

#include <filesystem>
#include <map>
#include <optional>

#include "omnibind/common/error.h"
#include "omnibind/experts/input_files.h"
#include "omnibind/media/media_encode.h"
#include "omnibind/pipeline/bundle_convert.h"
#include "omnibind/pipeline/bundle_stream.h"
#include "omnibind/pipeline/model_bundle.h"
#include "omnibind/pipeline/release_files.h"
#include "omnibind/tensor_io/compute_threads.h"
#include "py_common.h"

namespace omnibind::python {
namespace {

namespace fs = std::filesystem;
using experts::MediaInput;
using experts::Modality;

std::string type_name(const py::handle& h) { return py::str(py::type::of(h).attr("__name__")); }

std::string shape_text(const py::array& a) {
  std::string s = "[";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
  return s + "]";
}

// Copies an array with any strides into C order (elements of `item` bytes).
std::string c_order_bytes(const py::array& a) {
  py::array c = py::module_::import("numpy").attr("ascontiguousarray")(a);
  return std::string(static_cast<const char*>(c.data()), static_cast<size_t>(c.nbytes()));
}

// (samples, sample_rate): samples [T] or [C, T] (channels first, as torchaudio), int16 / float32 / float64.
MediaInput audio_item(const py::handle& obj, const std::string& name) {
  require(py::isinstance<py::tuple>(obj) && py::len(obj) == 2,
          name + ": expected a tuple (samples, sample_rate), got " + type_name(obj));
  auto t = py::reinterpret_borrow<py::tuple>(obj);
  require(py::isinstance<py::int_>(t[1]) || py::hasattr(t[1], "__index__"),
          name + ": the sample rate must be an int, got " + type_name(t[1]));
  const long long rate = py::module_::import("operator").attr("index")(t[1]).cast<long long>();
  require(rate > 0 && rate <= 1000000, name + ": sample rate " + std::to_string(rate) + " Hz is outside 1..1000000");
  py::array a = as_array(t[0]);
  const std::string dt = dtype_name(a);
  media::WavSample type;
  if (dt == "int16") type = media::WavSample::Int16;
  else if (dt == "float32") type = media::WavSample::Float32;
  else if (dt == "float64") type = media::WavSample::Float64;
  else
    throw InputError(name + ": audio samples of dtype " + dt +
                     " are not accepted: pass float32 (or float64) samples in [-1, 1], or int16 PCM");
  require(a.ndim() == 1 || a.ndim() == 2,
          name + ": audio must be [samples] or [channels, samples], got shape " + shape_text(a));
  const int64_t channels = a.ndim() == 1 ? 1 : a.shape(0);
  const int64_t frames = a.ndim() == 1 ? a.shape(0) : a.shape(1);
  require(channels >= 1 && channels <= 64,
          name + ": audio of shape " + shape_text(a) + " has " + std::to_string(channels) +
              " channels; expected [samples] or [channels, samples] with 1..64 channels (transpose [samples, channels] "
              "arrays with .T)");
  require(frames > 0, name + ": audio has no samples (shape " + shape_text(a) + ")");
  // WAV is interleaved [frames][channels]: the transpose of [channels, frames].
  py::array inter = a.ndim() == 1 ? a : py::array(a.attr("T"));
  std::string bytes = c_order_bytes(inter);
  try {
    return MediaInput::from_bytes(
        media::encode_wav_samples(bytes.data(), type, static_cast<int>(channels), frames, static_cast<int>(rate)), name);
  } catch (const InputError& e) {
    throw InputError(name + ": " + e.what());
  }
}

// [H, W, 3] uint8 RGB.
MediaInput image_item(const py::handle& obj, const std::string& name) {
  py::array a = as_array(obj);
  require(dtype_name(a) == "uint8",
          name + ": images must be uint8 RGB [height, width, 3], got dtype " + dtype_name(a) +
              " (convert floats in [0, 1] with (x * 255).round().astype(np.uint8))");
  require(a.ndim() == 3 && a.shape(2) == 3 && a.shape(0) > 0 && a.shape(1) > 0,
          name + ": images must be uint8 RGB [height, width, 3], got shape " + shape_text(a));
  require(a.shape(0) <= 65535 && a.shape(1) <= 65535, name + ": image of shape " + shape_text(a) + " is too large");
  media::Image img;
  img.height = static_cast<int>(a.shape(0));
  img.width = static_cast<int>(a.shape(1));
  std::string bytes = c_order_bytes(a);
  img.rgb.assign(bytes.begin(), bytes.end());
  return MediaInput::from_bytes(media::encode_png(img), name);
}

// [N, 3] xyz or [N, 6] xyz + rgb, float16/32/64.
MediaInput point_item(const py::handle& obj, const std::string& name) {
  py::array a = as_array(obj);
  const std::string dt = dtype_name(a);
  require(dt == "float16" || dt == "float32" || dt == "float64",
          name + ": point clouds must be float arrays [N, 3] or [N, 6], got dtype " + dt);
  require(a.ndim() == 2 && (a.shape(1) == 3 || a.shape(1) == 6) && a.shape(0) > 0,
          name + ": point clouds must be [N, 3] (xyz) or [N, 6] (xyz rgb) with N > 0, got shape " + shape_text(a));
  py::array le = a.dtype().attr("isnative").cast<bool>() ? a : py::array(a.attr("astype")(a.dtype().attr("newbyteorder")("=")));
  std::string bytes = c_order_bytes(le);
  return MediaInput::from_bytes(
      media::encode_npy_floats(bytes.data(), static_cast<int>(a.itemsize()), a.shape(0), a.shape(1)), name);
}

// One item, a list of items, or (image/point) a stacked array with a leading batch dimension.
std::vector<py::object> split_items(const py::handle& obj, Modality m) {
  std::vector<py::object> out;
  if (m == Modality::Audio) {
    if (py::isinstance<py::tuple>(obj) && py::len(obj) == 2 && !py::isinstance<py::tuple>(py::reinterpret_borrow<py::tuple>(obj)[0])) {
      out.push_back(py::reinterpret_borrow<py::object>(obj));
      return out;
    }
  } else if (py::isinstance<py::array>(obj)) {
    auto a = py::reinterpret_borrow<py::array>(obj);
    const py::ssize_t single = m == Modality::Image ? 3 : 2;
    if (a.ndim() == single + 1) {
      for (py::ssize_t i = 0; i < a.shape(0); ++i) out.push_back(a[py::int_(i)]);
      return out;
    }
    out.push_back(a);
    return out;
  }
  require(py::isinstance<py::list>(obj) || py::isinstance<py::tuple>(obj),
          std::string(experts::modality_name(m)) + ": expected " +
              (m == Modality::Audio ? "(samples, sample_rate) or a list of them"
                                    : "an array or a list of arrays") + ", got " + type_name(obj));
  for (const auto& h : obj) out.push_back(py::reinterpret_borrow<py::object>(h));
  return out;
}

// progress=None: nothing; a callable: progress(done, total) after each batch; True: a tqdm bar when tqdm is
// installed, else a "\rembed done/total" line on stderr as `omnibind embed --progress` prints.
class Progress {
 public:
  Progress(const py::object& spec, size_t total) : total_(total) {
    if (spec.is_none() || (py::isinstance<py::bool_>(spec) && !spec.cast<bool>())) return;
    if (py::isinstance<py::bool_>(spec)) {
      try {
        bar_ = py::module_::import("tqdm").attr("tqdm")(py::arg("total") = total, py::arg("unit") = "item",
                                                        py::arg("desc") = "embed");
      } catch (py::error_already_set&) {
        text_ = true;
      }
      return;
    }
    require(PyCallable_Check(spec.ptr()), "progress must be None, True or a callable progress(done, total)");
    fn_ = spec;
  }
  ~Progress() {
    if (bar_) {
      try {
        bar_.attr("close")();
      } catch (py::error_already_set&) {
      }
    }
  }
  bool active() const { return fn_ || bar_ || text_; }
  void update(size_t done, size_t step) {
    if (fn_) fn_(done, total_);
    if (bar_) bar_.attr("update")(step);
    if (text_) {
      py::print(py::str("\rembed {}/{}").format(done, total_), py::arg("end") = done == total_ ? "\n" : "",
                py::arg("file") = py::module_::import("sys").attr("stderr"), py::arg("flush") = true);
    }
  }

 private:
  size_t total_;
  py::object fn_, bar_;
  bool text_ = false;
};

std::string fspath(const py::handle& h, const std::string& what) {
  require(py::isinstance<py::str>(h) || py::hasattr(h, "__fspath__"), what + " must be a str or os.PathLike, got " + type_name(h));
  return py::str(py::module_::import("os").attr("fspath")(h)).cast<std::string>();
}

// `omnibind convert --preset P --from DIR [--file NAME=PATH]... [--config C] --out OUT`: the folder of released
// files -> a bundle at `out` (pipeline::plan_release_convert + convert_to_bundle, as verb_convert runs them).
// Missing files: one InputError listing them all, with `.missing` = one line per file (what the CLI prints).
void convert_release(const std::string& preset, const py::object& from_dir, const py::object& out, const py::object& files,
                     const py::object& config, const std::string& layout, const std::string& precision,
                     const std::string& expert_files, bool overwrite, bool check, bool sha256) {
  pipeline::ReleaseRequest r;
  r.preset = preset;
  r.from = fspath(from_dir, "from_dir");
  const std::string out_dir = fspath(out, "out");
  if (!config.is_none()) r.config = fspath(config, "config");
  if (!files.is_none()) {
    require(py::isinstance<py::dict>(files), "files must be a dict {NAME: PATH} (release file names such as 'heads', "
                                             "'WAVCAPS_PT', 'bpe', or 'SPACE.config')");
    for (auto [k, v] : py::reinterpret_borrow<py::dict>(files)) {
      require(py::isinstance<py::str>(k), "files: keys must be str release file names");
      const std::string name = k.cast<std::string>();
      r.files[name] = fspath(v, "files['" + name + "']");  // names are checked by the plan, as --file's
    }
  }
  require(expert_files == "reference" || expert_files == "link" || expert_files == "copy" || expert_files == "auto",
          "expert_files must be 'reference', 'link', 'copy' or 'auto', got '" + expert_files + "'");
  std::vector<std::string> missing;
  std::string message;
  {
    py::gil_scoped_release unlocked;
    try {
      pipeline::ConvertOptions o = pipeline::plan_release_convert(r);
      o.layout = layout;
      o.precision = precision;
      o.overwrite = overwrite;
      o.expert_files = expert_files;
      o.check = check;
      o.record_sha256 = sha256;
      pipeline::convert_to_bundle(out_dir, o);
    } catch (const pipeline::MissingReleaseFiles& e) {
      missing = e.lines;
      message = std::to_string(e.lines.size()) + " file(s) missing under " + r.from + "; nothing written: ";
      for (size_t i = 0; i < e.lines.size(); ++i) message += (i ? "; " : "") + e.lines[i];
    }
  }
  if (!missing.empty()) {
    py::object cls = py::module_::import("omnibind").attr("InputError");
    py::object exc = cls(message);
    exc.attr("missing") = missing;
    PyErr_SetObject(cls.ptr(), exc.ptr());
    throw py::error_already_set();
  }
}

class Model {
 public:
  Model(const std::string& path, const std::optional<std::string>& precision, int threads) : path_(path) {
    pipeline::BundleLoadOptions lo;
    lo.threads = threads;
    if (precision) lo.precision = *precision;
    py::gil_scoped_release unlocked;
    if (threads > 0) tensor_io::set_compute_threads(threads);
    bundle_ = std::make_shared<const pipeline::ModelBundle>(pipeline::ModelBundle::load(path, lo));
  }

  std::vector<std::string> modalities() const {
    std::vector<std::string> out;
    for (auto m : bundle_->modalities()) out.emplace_back(experts::modality_name(m));
    return out;
  }
  int64_t dim() const { return bundle_->dim(); }
  std::string name() const { return bundle_->name(); }
  const std::string& path() const { return path_; }
  std::vector<std::string> experts_of(const std::string& modality) const {
    experts::parse_modality(modality);
    return bundle_->model().required_inputs(modality);
  }
  std::vector<std::string> slots(const std::string& modality) const {
    experts::parse_modality(modality);
    return bundle_->model().config().slots(modality);
  }

  py::object embed_files(const py::object& paths, const std::optional<std::string>& modality, int64_t batch,
                         int64_t prefetch, bool return_experts, const py::object& progress) const {
    auto files = string_list(paths, "paths", true);
    require(!files.empty(), "embed_files: the list of paths is empty");
    for (const auto& f : files) {
      std::error_code ec;
      require(!fs::is_directory(f, ec), f + ": is a directory; pass the files in it (e.g. sorted(glob.glob(...)))");
      require(fs::is_regular_file(f, ec), f + ": no such file");
    }
    // What a file holds: its magic bytes, else its extension (pipeline::file_modality, what `omnibind embed`
    // checks), else the extension table `embed` recurses directories with (.safetensors = a point cloud).
    auto kind_of = [](const std::string& f) {
      auto k = pipeline::file_modality(f);
      return k ? k : experts::modality_of_extension(f);
    };
    std::optional<Modality> m;
    if (modality) {
      m = experts::parse_modality(*modality);
      const std::string want(experts::modality_name(*m));
      for (const auto& f : files) {  // one call, one modality (as `embed --modality`)
        auto k = pipeline::file_modality(f);
        if (!k || *k == *m) continue;
        const std::string got(experts::modality_name(*k));
        throw InputError(f + ": is " + (got == "audio" || got == "image" ? "an " : "a ") + got + " file, not " + want +
                         " (modality='" + want + "'); embed one modality per call");
      }
    } else {
      for (const auto& f : files) {
        auto guess = kind_of(f);
        require(guess.has_value(), f + ": cannot tell the modality from the contents or extension; pass "
                                       "modality='audio', 'image', 'point' or 'text'");
        require(!m || *m == *guess, "embed_files: the paths mix " + std::string(experts::modality_name(*m)) + " and " +
                                        std::string(experts::modality_name(*guess)) +
                                        " files (" + f + "); embed one modality per call");
        m = guess;
      }
    }
    std::vector<MediaInput> items;
    for (const auto& f : files) items.push_back(experts::media_input_from_file(*m, f));
    return run(*m, items, files, batch, prefetch, return_experts, progress);
  }

  py::object embed_texts(const py::object& texts, int64_t batch, int64_t prefetch, bool return_experts, const py::object& progress) const {
    auto list = string_list(texts, "texts", false);
    require(!list.empty(), "embed_texts: the list of texts is empty");
    std::vector<MediaInput> items;
    for (auto& t : list) items.push_back(MediaInput::from_text(t));
    return run(Modality::Text, items, std::vector<std::string>(items.size()), batch, prefetch, return_experts, progress);
  }

  py::object embed(const py::object& audio, const py::object& image, const py::object& point, const py::object& text,
                   int64_t batch, int64_t prefetch, bool return_experts, const py::object& progress) const {
    const int given = !audio.is_none() + !image.is_none() + !point.is_none() + !text.is_none();
    require(given == 1, "embed: pass exactly one of audio=, image=, point=, text= (one modality per call)");
    if (!text.is_none()) return embed_texts(text, batch, prefetch, return_experts, progress);
    const Modality m = !audio.is_none() ? Modality::Audio : !image.is_none() ? Modality::Image : Modality::Point;
    const py::object& obj = !audio.is_none() ? audio : !image.is_none() ? image : point;
    const std::string mname(experts::modality_name(m));
    auto objs = split_items(obj, m);
    require(!objs.empty(), "embed: the list of " + mname + " items is empty");
    std::vector<MediaInput> items;
    std::vector<std::string> names;
    for (size_t i = 0; i < objs.size(); ++i) {
      names.push_back(mname + "[" + std::to_string(i) + "]");
      items.push_back(m == Modality::Audio   ? audio_item(objs[i], names.back())
                      : m == Modality::Image ? image_item(objs[i], names.back())
                                             : point_item(objs[i], names.back()));
    }
    return run(m, items, names, batch, prefetch, return_experts, progress);
  }

 private:
  // What `omnibind embed --model` runs: pipeline::embed_stream (files read and preprocessed on a worker thread,
  // `prefetch` batches ahead, while this thread encodes and applies the heads and routers).
  py::object run(Modality m, const std::vector<MediaInput>& items, const std::vector<std::string>& names, int64_t batch,
                 int64_t prefetch, bool return_experts, const py::object& progress) const {
    require(batch > 0, "batch_size must be positive, got " + std::to_string(batch));
    require(prefetch >= 0, "prefetch must be 0 or more, got " + std::to_string(prefetch));
    require(bundle_->covers(m), "model bundle " + path_ + " does not embed " + std::string(experts::modality_name(m)) +
                                    " (it embeds " + [&] {
                                      std::string s;
                                      for (auto& x : modalities()) s += (s.empty() ? "" : ", ") + x;
                                      return s;
                                    }() + ")");
    const std::string mname(experts::modality_name(m));
    pipeline::StreamOptions so;
    so.batch = static_cast<size_t>(batch);
    so.queue_depth = static_cast<size_t>(prefetch);
    so.keep_experts = return_experts;
    std::vector<at::Tensor> rows, weights;
    std::map<std::string, std::vector<at::Tensor>> expert_rows;
    Progress bar(progress, items.size());
    const bool report = bar.active();
    size_t done = 0;
    {
      py::gil_scoped_release unlocked;
      pipeline::embed_stream(*bundle_, m, items, names, so, [&](pipeline::StreamBatch&& b) {
        const auto n = static_cast<size_t>(b.unified.size(0));
        rows.push_back(std::move(b.unified));
        if (return_experts) {  // the routers over the batch's expert rows, as the heads saw them
          at::NoGradGuard no_grad;
          weights.push_back(bundle_->model().routing_weights(mname, b.experts).to(at::kFloat).contiguous());
          for (auto& [name, t] : b.experts) expert_rows[name].push_back(std::move(t));
        }
        done += n;
        if (report) {
          py::gil_scoped_acquire locked;
          bar.update(done, n);
        }
      });
    }
    py::array_t<float> emb = to_numpy(at::cat(rows, 0));
    if (!return_experts) return emb;
    py::dict experts_out;
    for (auto& [n, ts] : expert_rows) experts_out[py::str(n)] = to_numpy(at::cat(ts, 0));
    py::dict info;
    info["experts"] = experts_out;
    info["routing_weights"] = to_numpy(at::cat(weights, 0));
    info["slots"] = bundle_->model().config().slots(mname);
    return py::make_tuple(emb, info);
  }

  std::string path_;
  std::shared_ptr<const pipeline::ModelBundle> bundle_;
};

}  // namespace

void register_model(py::module_& m) {
  py::class_<Model>(m, "Model", R"doc(A model bundle (docs/BUNDLE.md): media and text -> OmniBind's unified space.

Model(path, precision=None, threads=0)
  path: the bundle directory (bundle.json); precision: None (the manifest's), "fp32" or "bf16";
  threads: compute threads (0 = libtorch's default; sets the process-wide pools like --threads).
Every method returns float32 arrays [n, dim] of unit rows; return_experts=True returns
(embeddings, {"experts": {name: [n, d]}, "routing_weights": [n, S], "slots": [S names]}).
Thread-safe: the GIL is released while the model computes.)doc")
      .def(py::init<const std::string&, const std::optional<std::string>&, int>(), py::arg("path"),
           py::arg("precision") = py::none(), py::arg("threads") = 0)
      .def_static(
          "from_preset",
          [](const std::string& preset, const py::object& from_dir, const py::object& out, const py::object& files,
             const py::object& config, const std::optional<std::string>& precision, int threads, const std::string& layout,
             const std::string& expert_files, bool overwrite, bool check, bool sha256) {
            convert_release(preset, from_dir, out, files, config, layout, precision.value_or("auto"), expert_files,
                            overwrite, check, sha256);
            return Model(fspath(out, "out"), std::nullopt, threads);
          },
          py::arg("preset"), py::kw_only(), py::arg("from_dir"), py::arg("out"), py::arg("files") = py::none(),
          py::arg("config") = py::none(), py::arg("precision") = py::none(), py::arg("threads") = 0,
          py::arg("layout") = "folded", py::arg("expert_files") = "reference", py::arg("overwrite") = false,
          py::arg("check") = true, py::arg("sha256") = true,
          R"doc(`omnibind convert --preset PRESET --from FROM_DIR [--file NAME=PATH]... --out OUT`, then Model(OUT).

preset: "base" | "large"; from_dir: the folder of released files (OmniBind README layout and/or a Hugging Face
cache); files: {NAME: PATH} overrides ('heads', 'WAVCAPS_PT', 'bpe', ..., 'SPACE.config'); config: a binding JSON
replacing the preset's (same spaces, other widths); precision: recorded in the bundle (None = auto);
expert_files: 'reference' (absolute paths, the CLI's default with --from), 'link', 'copy' or 'auto'.
Missing files raise InputError listing them all (its .missing attribute: one line per file); nothing is written.)doc")
      .def_property_readonly("modalities", &Model::modalities, "Modalities embed() accepts")
      .def_property_readonly("dim", &Model::dim, "Width of the unified space")
      .def_property_readonly("name", &Model::name, "\"omnibind:<binding name>\"")
      .def_property_readonly("path", &Model::path)
      .def("experts", &Model::experts_of, py::arg("modality"), "Expert spaces a modality's embedding needs")
      .def("slots", &Model::slots, py::arg("modality"), "Names of the routing weights' columns for a modality")
      .def("embed_files", &Model::embed_files, py::arg("paths"), py::arg("modality") = py::none(), py::kw_only(),
           py::arg("batch_size") = 8, py::arg("prefetch") = 2, py::arg("return_experts") = false, py::arg("progress") = py::none(),
           "Files of one modality (guessed from the contents/extensions when None; a .txt file is one text)")
      .def("embed_texts", &Model::embed_texts, py::arg("texts"), py::kw_only(), py::arg("batch_size") = 8,
           py::arg("prefetch") = 2, py::arg("return_experts") = false, py::arg("progress") = py::none())
      .def("embed", &Model::embed, py::kw_only(), py::arg("audio") = py::none(), py::arg("image") = py::none(),
           py::arg("point") = py::none(), py::arg("text") = py::none(), py::arg("batch_size") = 8,
           py::arg("prefetch") = 2, py::arg("return_experts") = false, py::arg("progress") = py::none(),
           R"doc(Decoded data of one modality:
  audio=(samples, sample_rate) or a list of them; samples [T] or [channels, T], float32/float64 in [-1, 1] or int16
  image=uint8 RGB [H, W, 3], a list of them, or [B, H, W, 3]
  point=float [N, 3] (xyz) or [N, 6] (xyz rgb), a list of them, or [B, N, 3|6]
  text=str or a list of str)doc")
      .def("__repr__", [](const Model& x) {
        std::string s;
        for (auto& m : x.modalities()) s += (s.empty() ? "" : ", ") + m;
        return "omnibind.Model('" + x.path() + "', " + x.name() + ", dim=" + std::to_string(x.dim()) + ", modalities=[" +
               s + "])";
      });
}

}  // namespace omnibind::python
