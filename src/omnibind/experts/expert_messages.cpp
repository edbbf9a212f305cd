#include "omnibind/experts/expert_messages.h"

#include <ATen/ATen.h>

namespace omnibind::experts {

std::string shape_of(const at::Tensor& t) {
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

std::string describe_text(const std::string& t) {
  std::string s;
  for (size_t i = 0; i < t.size() && i < 40; ++i) {
    unsigned char ch = static_cast<unsigned char>(t[i]);
    s += (ch >= 0x20 && ch < 0x7f) ? static_cast<char>(ch) : '?';
  }
  return "'" + s + (t.size() > 40 ? "...'" : "'");
}

at::Tensor unit_rows(const at::Tensor& x) { return x / x.norm(2, {-1}, true).clamp_min(1e-12); }

}  // namespace omnibind::experts
