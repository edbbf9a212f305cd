// The "uni3d" expert: point clouds (PLY, PCD, NPY, safetensors, OBJ/OFF/STL meshes) -> Uni3D
// point-encoder embeddings, unit norm, as OmniBind's experts.Uni3D.emb_points.
//
// preprocess() does all the data-dependent work on the CPU (read, subsample to npoints,
// pc_norm, FPS, kNN, gather) and returns a fixed-shape tensor so clouds of any size batch:
//   [G, K + 1, 6]: row 0 of each group = (centre xyz, 0, 0, 0); rows 1..K = (xyz - centre, rgb).
// encode() runs the network on a stack of those.
#pragma once
#include <ATen/core/Tensor.h>

#include <memory>
#include <string>

#include "omnibind/experts/expert.h"
#include "omnibind/experts/uni3d/uni3d_config.h"
#include "omnibind/media/point_cloud.h"

namespace omnibind::experts::uni3d {

struct Uni3dModel;

// One cloud -> the packed [G, K+1, 6] group tensor described above. Deterministic.
at::Tensor uni3d_point_input(const media::PointCloud& cloud, const Uni3dConfig& config, const std::string& name);

class Uni3dExpert : public Expert {
 public:
  Uni3dExpert(const ExpertOptions& options);
  ~Uni3dExpert() override;
  const std::string& name() const override { return name_; }
  std::vector<Modality> modalities() const override { return {Modality::Point}; }
  int64_t dim() const override;
  at::Tensor preprocess(Modality m, const MediaInput& input) const override;
  at::Tensor encode(Modality m, const at::Tensor& batch) const override;

  const Uni3dConfig& config() const;
  const Uni3dModel& model() const { return *model_; }

 private:
  std::string name_ = "uni3d";
  std::unique_ptr<Uni3dModel> model_;
};

void register_uni3d_expert();

}  // namespace omnibind::experts::uni3d
