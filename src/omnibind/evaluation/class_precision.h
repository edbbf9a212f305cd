// Class-level precision@1 of cross-modal retrieval (issue 16's world-family metric): the share of queries
// whose top-1 item of the other modality has the query's class (any item of the class counts, not only
// its true pair), averaged over both directions. Scores are inner products of unit rows; computed in
// query blocks. Rows with label < 0 are left out as queries and never count as a hit.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>

namespace omnibind::evaluation {

// a [Na, D] + a_label int64 [Na], b [Nb, D] + b_label int64 [Nb] -> fraction in [0, 1].
double class_precision_at_1(const at::Tensor& a, const at::Tensor& a_label, const at::Tensor& b, const at::Tensor& b_label,
                            int64_t block = 4096);

}  // namespace omnibind::evaluation
