#include "omnibind/distributed/data_parallel.h"

#include <ATen/ATen.h>
#include <torch/autograd.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/container/sequential.h>

namespace omnibind::distributed {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

DistributedContext& context_of(int64_t handle) { return *reinterpret_cast<DistributedContext*>(handle); }
int64_t handle_of(DistributedContext& dist) { return static_cast<int64_t>(reinterpret_cast<intptr_t>(&dist)); }

struct GatherRows : torch::autograd::Function<GatherRows> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& local, int64_t handle) {
    DistributedContext& dist = context_of(handle);
    std::vector<int64_t> counts;
    at::Tensor all = dist.all_gather_rows(local.contiguous(), "gathering a batch", &counts);
    int64_t begin = 0;
    for (int r = 0; r < dist.rank(); ++r) begin += counts[static_cast<size_t>(r)];
    ctx->saved_data["begin"] = begin;
    ctx->saved_data["rows"] = local.size(0);
    return all;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    const int64_t begin = ctx->saved_data["begin"].toInt(), rows = ctx->saved_data["rows"].toInt();
    return {grads[0].narrow(0, begin, rows), at::Tensor()};
  }
};

struct SyncBatchNorm : torch::autograd::Function<SyncBatchNorm> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, const at::Tensor& weight, const at::Tensor& bias,
                            at::Tensor running_mean, at::Tensor running_var, double momentum, double eps, int64_t handle) {
    DistributedContext& dist = context_of(handle);
    const int64_t C = x.size(1);
    // Global count and mean, then the centred sum of squares (two passes, as one process computes them).
    std::vector<at::Tensor> s{at::cat({x.sum(0, false, at::kDouble), at::full({1}, static_cast<double>(x.size(0)), at::kDouble)})};
    dist.all_reduce_sum(s, "synchronising BatchNorm statistics");
    const double n = s[0][C].item<double>();
    at::Tensor mean = s[0].narrow(0, 0, C) / n;
    at::Tensor centred = x - mean.to(x.scalar_type());
    std::vector<at::Tensor> q{(centred * centred).sum(0, false, at::kDouble)};
    dist.all_reduce_sum(q, "synchronising BatchNorm statistics");
    at::Tensor var = q[0] / n;
    at::Tensor invstd = (var + eps).rsqrt().to(x.scalar_type());
    at::Tensor xhat = centred * invstd;
    if (running_mean.defined()) {
      running_mean.mul_(1 - momentum).add_(mean.to(running_mean.scalar_type()), momentum);
      running_var.mul_(1 - momentum).add_((var * (n / std::max(1.0, n - 1))).to(running_var.scalar_type()), momentum);
    }
    ctx->save_for_backward({xhat, weight, invstd});
    ctx->saved_data["n"] = n;
    ctx->saved_data["dist"] = handle;
    return xhat * weight + bias;
  }
  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const at::Tensor &xhat = saved[0], &weight = saved[1], &invstd = saved[2];
    const double n = ctx->saved_data["n"].toDouble();
    at::Tensor gy = grads[0];
    const int64_t C = xhat.size(1);
    at::Tensor sum_dy = gy.sum(0), sum_dy_xhat = (gy * xhat).sum(0);
    std::vector<at::Tensor> g{at::cat({sum_dy, sum_dy_xhat}).to(at::kDouble)};
    context_of(ctx->saved_data["dist"].toInt()).all_reduce_sum(g, "synchronising BatchNorm gradients");
    at::Tensor mean_dy = (g[0].narrow(0, 0, C) / n).to(gy.scalar_type());
    at::Tensor mean_dy_xhat = (g[0].narrow(0, C, C) / n).to(gy.scalar_type());
    at::Tensor gx = (gy - mean_dy - xhat * mean_dy_xhat) * (weight * invstd);
    // The parameters' gradients stay local: all_reduce_gradients sums them with the others.
    return {gx, sum_dy_xhat, sum_dy, at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor(), at::Tensor()};
  }
};

}  // namespace

at::Tensor local_rows(const DistributedContext& dist, const at::Tensor& batch_rows) {
  if (!dist.distributed()) return batch_rows;
  const Share s = share_of(batch_rows.size(0), dist.rank(), dist.world_size());
  return batch_rows.narrow(0, s.begin, s.size());
}

at::Tensor gather_rows_with_grad(DistributedContext& dist, const at::Tensor& local) {
  if (!dist.distributed()) return local;
  return GatherRows::apply(local, handle_of(dist));
}

at::Tensor forward_sync_batch_norm(torch::nn::SequentialImpl& sequential, const at::Tensor& x, DistributedContext& dist) {
  at::Tensor h = x;
  for (auto& child : sequential) {
    auto* bn = child.ptr()->as<torch::nn::BatchNorm1dImpl>();
    if (!bn || !bn->is_training() || !dist.distributed()) {
      h = child.forward(h);
      continue;
    }
    const auto& opt = bn->options;
    TORCH_CHECK(opt.affine() && opt.momentum().has_value(), "sync BatchNorm needs affine layers with a momentum");
    at::Tensor rm = opt.track_running_stats() ? bn->running_mean : at::Tensor();
    at::Tensor rv = opt.track_running_stats() ? bn->running_var : at::Tensor();
    if (opt.track_running_stats()) bn->num_batches_tracked += 1;
    h = SyncBatchNorm::apply(h, bn->weight, bn->bias, rm, rv, *opt.momentum(), opt.eps(), handle_of(dist));
  }
  return h;
}

void all_reduce_gradients(DistributedContext& dist, const std::vector<at::Tensor>& parameters, int64_t bucket_bytes) {
  if (!dist.distributed()) return;
  std::vector<at::Tensor> grads;
  for (const auto& p : parameters) {
    at::Tensor& g = const_cast<at::Tensor&>(p).mutable_grad();
    if (!g.defined()) g = at::zeros_like(p);
    grads.push_back(g);
  }
  size_t i = 0;
  while (i < grads.size()) {
    size_t j = i;
    int64_t bytes = 0;
    while (j < grads.size() && (j == i || bytes + grads[j].nbytes() <= static_cast<size_t>(bucket_bytes)) &&
           grads[j].scalar_type() == grads[i].scalar_type()) {
      bytes += static_cast<int64_t>(grads[j].nbytes());
      ++j;
    }
    std::vector<at::Tensor> parts;
    for (size_t k = i; k < j; ++k) parts.push_back(grads[k].reshape({-1}));
    std::vector<at::Tensor> flat{at::cat(parts)};
    dist.all_reduce_sum(flat, "all-reducing gradients");
    int64_t offset = 0;
    for (size_t k = i; k < j; ++k) {
      const int64_t n = grads[k].numel();
      grads[k].copy_(flat[0].narrow(0, offset, n).view(grads[k].sizes()));
      offset += n;
    }
    i = j;
  }
}

}  // namespace omnibind::distributed
