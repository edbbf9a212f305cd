// Small pieces every expert's preprocess/encode uses: shapes and texts as they appear in error
// messages, and the final L2 normalisation of embedding rows.
#pragma once
#include <ATen/core/Tensor.h>

#include <string>

namespace omnibind::experts {

// "[2, 3, 224, 224]"
std::string shape_of(const at::Tensor& t);

// The first 40 bytes of a text, quoted, printable ASCII only ('?' for anything else) so the
// message stays one clean line even for invalid UTF-8; "..." marks a cut.
std::string describe_text(const std::string& t);

// Rows divided by their L2 norm (clamped at 1e-12, as F.normalize).
at::Tensor unit_rows(const at::Tensor& x);

}  // namespace omnibind::experts
