#include "omnibind/evaluation/eval_set.h"

#include <ATen/ATen.h>

#include "omnibind/common/error.h"

namespace omnibind::evaluation {

int64_t ModalityItems::rows() const {
  if (!experts.empty()) return experts.begin()->second.size(0);
  if (label.defined()) return label.size(0);
  if (pair.defined()) return pair.size(0);
  return 0;
}

void EvalSet::validate() const {
  for (auto& [m, items] : modalities) {
    const int64_t n = items.rows();
    require(!items.experts.empty(), "evaluation set: " + m + " has no expert embeddings");
    for (auto& [e, t] : items.experts) {
      require(t.dim() == 2, "evaluation set: " + m + "/" + e + " must be [N, d]");
      require(t.size(0) == n, "evaluation set: " + m + "/" + e + " has " + std::to_string(t.size(0)) + " rows, expected " +
                                  std::to_string(n));
    }
    auto check_ids = [&](const at::Tensor& t, const char* name) {
      if (!t.defined()) return;
      require(t.dim() == 1 && t.size(0) == n, "evaluation set: " + m + "/" + name + " must have " + std::to_string(n) + " entries");
    };
    check_ids(items.label, "label");
    check_ids(items.pair, "pair");
    if (items.label.defined() && num_classes > 0 && items.label.numel() > 0)
      require(items.label.max().item<int64_t>() < num_classes,
              "evaluation set: " + m + "/label holds a class >= the " + std::to_string(num_classes) + " classes");
    if (items.labels.defined())
      require(items.labels.dim() == 2 && items.labels.size(0) == n && items.labels.size(1) == num_classes,
              "evaluation set: " + m + "/labels must be [" + std::to_string(n) + ", " + std::to_string(num_classes) + "]");
  }
  if (prompt_class.defined()) {
    require(prompt_class.dim() == 1, "evaluation set: prompt_class must be a vector");
    for (auto& [e, t] : prompts)
      require(t.dim() == 2 && t.size(0) == prompt_class.size(0),
              "evaluation set: prompts/" + e + " must have one row per prompt (" + std::to_string(prompt_class.size(0)) + ")");
    require(num_classes > 0, "evaluation set: prompts without classes");
  }
}

}  // namespace omnibind::evaluation
