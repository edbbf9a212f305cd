// Data-parallel training pieces (docs/SCALING.md "Training"): each rank computes a contiguous share of
// every global batch; these make the result the single-process one up to float rounding.
#pragma once
#include <ATen/core/Tensor.h>

#include <cstdint>
#include <vector>

#include "omnibind/distributed/distributed_context.h"

namespace torch::nn {
class SequentialImpl;
}

namespace omnibind::distributed {

// This rank's contiguous share of a global batch's rows (share_of over the batch).
at::Tensor local_rows(const DistributedContext& dist, const at::Tensor& batch_rows);

// Every rank's rows [b_r, ...] concatenated in rank order, differentiable: when every rank computes the
// same loss from the result, the gradient of each rank's own rows is its slice (no communication).
at::Tensor gather_rows_with_grad(DistributedContext& dist, const at::Tensor& local);

// A Sequential's forward on this rank's share where BatchNorm1d layers in training mode use the global
// batch's mean and (biased) variance: all-reduced sums of x and of (x - mean)^2 forward, of dy and
// dy * x_hat backward; running statistics updated with the global count, as one process would.
at::Tensor forward_sync_batch_norm(torch::nn::SequentialImpl& sequential, const at::Tensor& x, DistributedContext& dist);

// Sums every parameter's gradient over the ranks (in place), in flat buckets of at most bucket_bytes.
// Undefined gradients count as zeros.
void all_reduce_gradients(DistributedContext& dist, const std::vector<at::Tensor>& parameters,
                          int64_t bucket_bytes = int64_t{25} << 20);

}  // namespace omnibind::distributed
