#include "omnibind/experts/uni3d/uni3d_expert.h"

#include <ATen/ATen.h>

#include <filesystem>

#include "omnibind/common/error.h"
#include "omnibind/experts/uni3d/uni3d_model.h"
#include "omnibind/preprocess/point_grouping.h"
#include "omnibind/tensor_io/safetensors.h"
#if __has_include("omnibind/tensor_io/checkpoint.h")
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/compute_threads.h"
#define OMNIBIND_UNI3D_HAVE_CHECKPOINT 1
#endif

namespace omnibind::experts::uni3d {
namespace {

// Seed of the deterministic subsampling of clouds larger than npoints.
constexpr uint64_t kSubsampleSeed = 0;

tensor_io::StateDict open_uni3d_weights(const std::string& path) {
  std::error_code ec;
  require(!path.empty(), "uni3d: --weights is required (Uni3D model.pt or a .safetensors copy)");
  require(std::filesystem::is_regular_file(path, ec), path + ": weights file not found");
  tensor_io::StateDict sd;
#ifdef OMNIBIND_UNI3D_HAVE_CHECKPOINT
  tensor_io::CheckpointOptions opts;  // auto: a released model.pt holds the state dict under 'module'
  sd = tensor_io::load_checkpoint(path, opts);
#else
  require(tensor_io::looks_like_safetensors(path), path + ": not a safetensors file (.pt loading is not built in)");
  sd = tensor_io::read_safetensors(path).tensors;
#endif
  // DDP checkpoints may carry "module." on every key.
  if (!sd.contains("point_encoder.cls_token") && sd.contains("module.point_encoder.cls_token")) return sd.with_prefix("module.");
  return sd;
}

}  // namespace

at::Tensor uni3d_point_input(const media::PointCloud& cloud, const Uni3dConfig& c, const std::string& name) {
  media::validate_point_cloud(cloud, name);
  // Subsample (seeded, file order kept) when the cloud has more than the model's point count.
  std::vector<int64_t> keep = preprocess::subsample_indices(cloud.size(), c.npoints, kSubsampleSeed);
  const int64_t n = static_cast<int64_t>(keep.size());
  std::vector<float> xyz(n * 3), rgb(n * 3);
  for (int64_t i = 0; i < n; ++i)
    for (int k = 0; k < 3; ++k) {
      xyz[i * 3 + k] = cloud.xyz[keep[i] * 3 + k];
      rgb[i * 3 + k] = cloud.rgb[keep[i] * 3 + k];
    }
  // Fewer points than groups: FPS repeats indices, as the reference does (docs/reference/uni3d.md).
  if (n < c.group_size)
    throw InputError(name + ": point cloud has " + std::to_string(n) + " points, fewer than the model's group size " +
                     std::to_string(c.group_size) + " (each group takes the " + std::to_string(c.group_size) +
                     " nearest points; the reference fails here too)");
  try {
    preprocess::pc_norm(xyz.data(), n, xyz.data());
  } catch (const InputError& e) {
    throw InputError(name + ": " + e.what());
  }
  auto pg = preprocess::group_points(xyz.data(), rgb.data(), n, c.num_group, c.group_size);
  const int64_t G = c.num_group, K = c.group_size;
  at::Tensor out = at::zeros({G, K + 1, 6}, at::kFloat);
  float* o = out.data_ptr<float>();
  for (int64_t g = 0; g < G; ++g) {
    float* row = o + g * (K + 1) * 6;
    for (int k = 0; k < 3; ++k) row[k] = pg.centers[g * 3 + k];
    std::copy(pg.features.begin() + g * K * 6, pg.features.begin() + (g + 1) * K * 6, row + 6);
  }
  return out;
}

Uni3dExpert::Uni3dExpert(const ExpertOptions& options) {
  Uni3dConfig config = options.config.empty() ? uni3d_preset(options.size) : uni3d_config_from_json_file(options.config);
  at::ScalarType dtype;
  if (options.precision == "fp32" || options.precision.empty()) dtype = at::kFloat;
  else if (options.precision == "bf16") dtype = at::kBFloat16;
  else throw InputError("uni3d: unknown precision '" + options.precision + "' (expected fp32 or bf16)");
  if (options.threads > 0) tensor_io::set_compute_threads(options.threads);
  tensor_io::StateDict sd = open_uni3d_weights(options.weights);
  model_ = std::make_unique<Uni3dModel>(Uni3dModel::load(sd, config, dtype));
}

Uni3dExpert::~Uni3dExpert() = default;

int64_t Uni3dExpert::dim() const { return model_->config.embed_dim; }
const Uni3dConfig& Uni3dExpert::config() const { return model_->config; }

at::Tensor Uni3dExpert::preprocess(Modality m, const MediaInput& input) const {
  require(m == Modality::Point, "uni3d embeds point clouds only (--modality point), not " + std::string(modality_name(m)));
  media::PointCloudReadOptions ro;
  ro.mesh_points = model_->config.npoints;
  media::PointCloud pc;
  if (!input.path.empty()) pc = media::read_point_cloud_file(input.path, ro);
  else if (!input.bytes.empty()) pc = media::read_point_cloud_bytes(input.bytes, input.describe(), ro);
  else throw InputError(input.describe() + ": no point-cloud data given");
  return uni3d_point_input(pc, model_->config, input.describe());
}

at::Tensor Uni3dExpert::encode(Modality m, const at::Tensor& batch) const {
  require(m == Modality::Point, "uni3d embeds point clouds only (--modality point)");
  const auto& c = model_->config;
  require(batch.dim() == 4 && batch.size(1) == c.num_group && batch.size(2) == c.group_size + 1 && batch.size(3) == 6,
          "uni3d: encode expects [B, " + std::to_string(c.num_group) + ", " + std::to_string(c.group_size + 1) +
              ", 6] (the output of preprocess)");
  at::Tensor centers = batch.select(2, 0).narrow(2, 0, 3);  // [B, G, 3]
  at::Tensor features = batch.narrow(2, 1, c.group_size);  // [B, G, K, 6]
  at::Tensor emb = model_->forward(features.contiguous(), centers.contiguous());
  return emb / emb.norm(2, -1, true);
}

void register_uni3d_expert() {
  register_expert("uni3d", "Uni3D point-cloud encoder (EVA giant/large/base/small/tiny), point modality",
                  [](const ExpertOptions& o) { return std::make_unique<Uni3dExpert>(o); });
}

}  // namespace omnibind::experts::uni3d
