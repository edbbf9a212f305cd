// 2-D maps of embeddings for the report: projection onto the two leading principal components,
// signs fixed (each component's largest-magnitude coefficient positive) so a seed gives one picture.
#pragma once
#include <ATen/core/Tensor.h>

#include <vector>

#include "omnibind/apps/report/svg_charts.h"

namespace omnibind::apps {

// embeddings: float [N, D] (N >= 1, D >= 1, finite); labels: N class indices (-1 = none).
// InputError on a wrong shape, non-finite values or a label count that differs from N.
// With D == 1 (or rank 1) the second coordinate is 0.
std::vector<ScatterPoint> pca_map(const at::Tensor& embeddings, const std::vector<int>& labels);

}  // namespace omnibind::apps
