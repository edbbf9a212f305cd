#include "omnibind/experts/precomputed/precomputed_expert.h"

#include <ATen/ATen.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <unordered_map>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"

namespace omnibind::experts {

namespace {
namespace fs = std::filesystem;

// Absolute, lexically normal form for matching a path however it was spelled.
std::string canonical_form(const std::string& p) {
  std::error_code ec;
  auto c = fs::weakly_canonical(fs::absolute(p, ec), ec);
  return ec ? p : c.string();
}

class PrecomputedExpert : public Expert {
 public:
  explicit PrecomputedExpert(const ExpertOptions& o) : name_("precomputed"), file_(o.weights) {
    require(!file_.empty(), "precomputed needs a pool file (--weights pool.safetensors)");
    std::error_code ec;
    require(fs::is_regular_file(file_, ec), file_ + ": pool file not found");
    auto st = tensor_io::read_safetensors(file_);
    const auto& names = st.tensors.names();
    if (!o.size.empty()) {
      require(st.tensors.contains(o.size), file_ + ": no tensor '" + o.size + "' in the pool");
      key_ = o.size;
    } else {
      require(names.size() == 1, file_ + ": the pool holds " + std::to_string(names.size()) +
                                     " tensors; pick one with --size KEY");
      key_ = names[0];
    }
    const auto& raw = st.tensors.at(key_);
    require(raw.shape.size() == 2, file_ + ": tensor '" + key_ + "' has shape " + raw.shape_string() + ", expected [N, d]");
    rows_ = tensor_io::to_tensor(raw).to(at::kFloat).contiguous();
    require(at::isFloatingType(tensor_io::to_scalar_type(raw.dtype)), file_ + ": tensor '" + key_ + "' is not float");

    auto it = st.metadata.find("modality");
    require(it != st.metadata.end(), file_ + ": metadata has no 'modality'");
    modality_ = parse_modality(it->second);
    if (auto e = st.metadata.find("expert"); e != st.metadata.end()) source_expert_ = e->second;

    nlohmann::json paths;
    if (auto p = st.metadata.find("paths"); p != st.metadata.end()) {
      paths = nlohmann::json::parse(p->second, nullptr, false);
    } else {
      auto side = (fs::path(file_).parent_path() / "paths.json").string();
      require(fs::is_regular_file(side, ec), file_ + ": metadata has no 'paths' and there is no " + side);
      paths = nlohmann::json::parse(read_file_bytes(side), nullptr, false);
    }
    require(paths.is_array() && static_cast<int64_t>(paths.size()) == rows_.size(0),
            file_ + ": 'paths' must be a JSON list of " + std::to_string(rows_.size(0)) + " strings (one per row)");
    for (size_t i = 0; i < paths.size(); ++i) {
      require(paths[i].is_string(), file_ + ": paths[" + std::to_string(i) + "] is not a string");
      const std::string s = paths[i].get<std::string>();
      exact_.emplace(s, static_cast<int64_t>(i));  // first occurrence wins
      if (modality_ != Modality::Text) canonical_.emplace(canonical_form(s), static_cast<int64_t>(i));
    }
  }

  const std::string& name() const override { return name_; }
  std::string key() const override { return key_; }
  std::vector<Modality> modalities() const override { return {modality_}; }
  int64_t dim() const override { return rows_.size(1); }

  at::Tensor preprocess(Modality m, const MediaInput& in) const override {
    require(m == modality_, file_ + ": the pool holds " + std::string(modality_name(modality_)) + " embeddings, not " +
                                std::string(modality_name(m)));
    const std::string& id = m == Modality::Text && in.path.empty() ? in.text : in.path;
    require(!id.empty(), "precomputed: inputs are looked up by path (or text); raw bytes are not supported");
    auto it = exact_.find(id);
    if (it == exact_.end() && m != Modality::Text) {
      auto c = canonical_.find(canonical_form(id));
      if (c != canonical_.end()) return at::full({1}, c->second, at::kLong);
    }
    require(it != exact_.end(), (m == Modality::Text ? "text '" + id.substr(0, 60) + "'" : id) + ": not in the pool " + file_);
    return at::full({1}, it->second, at::kLong);
  }

  at::Tensor encode(Modality m, const at::Tensor& batch) const override {
    require(m == modality_, file_ + ": the pool holds " + std::string(modality_name(modality_)) + " embeddings, not " +
                                std::string(modality_name(m)));
    require(batch.scalar_type() == at::kLong && batch.numel() == batch.size(0),
            "precomputed: encode expects the [B, 1] row indices from preprocess()");
    auto idx = batch.reshape({-1});
    require(idx.numel() == 0 || (idx.min().item<int64_t>() >= 0 && idx.max().item<int64_t>() < rows_.size(0)),
            "precomputed: row index out of range for " + file_);
    auto r = rows_.index_select(0, idx);
    return r / r.norm(2, {-1}, true).clamp_min(1e-12);
  }

 private:
  std::string name_, file_, key_, source_expert_;
  Modality modality_ = Modality::Image;
  at::Tensor rows_;  // [N, d] float32
  std::unordered_map<std::string, int64_t> exact_, canonical_;
};
}  // namespace

std::unique_ptr<Expert> make_precomputed_expert(const ExpertOptions& options) {
  return std::make_unique<PrecomputedExpert>(options);
}

void register_precomputed_expert() {
  register_expert("precomputed", "Embeddings served from a pool file written by `omnibind embed` (--weights POOL)",
                  make_precomputed_expert);
}

}  // namespace omnibind::experts
