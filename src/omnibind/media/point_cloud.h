// Point clouds as Uni3D consumes them: xyz plus per-point colour in [0,1].
// Readers for PLY, PCD, NPY, safetensors ({xyz, rgb}) and meshes (OBJ, OFF, STL sampled to a
// fixed number of surface points). No libtorch here: plain float arrays.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace omnibind::media {

// Colour the reference uses when a cloud has none (Uni3D data/datasets.py: ones_like(xyz) * 0.4).
inline constexpr float kDefaultPointColour = 0.4f;

struct PointCloud {
  std::vector<float> xyz;  // [N][3]
  std::vector<float> rgb;  // [N][3] in [0,1]; filled with kDefaultPointColour when the file has none
  bool had_colour = false; // whether the file carried colour
  int64_t size() const { return static_cast<int64_t>(xyz.size() / 3); }
};

struct PointCloudReadOptions {
  int64_t mesh_points = 10000;  // points sampled on a mesh surface (OBJ/OFF/STL)
  uint64_t mesh_seed = 0;       // seed of the (deterministic) surface sampler
};

// Format from the file's magic bytes, falling back to the extension (.ply .pcd .npy .safetensors
// .obj .off .stl). Every defect is an InputError naming `name`. Non-finite coordinates are an error.
PointCloud read_point_cloud_bytes(std::string_view bytes, const std::string& name,
                                  const PointCloudReadOptions& options = {});
PointCloud read_point_cloud_file(const std::string& path, const PointCloudReadOptions& options = {});

// Individual formats (bytes = whole file). Used by read_point_cloud_*, exposed for tests.
PointCloud read_ply(std::string_view bytes, const std::string& name);
PointCloud read_pcd(std::string_view bytes, const std::string& name);
PointCloud read_npy_cloud(std::string_view bytes, const std::string& name);
// The payload of a '|O' .npy (np.save of a dict, as OpenShape/OmniBind assets): {'xyz', 'rgb'}.
PointCloud read_pickled_npy_cloud(std::string_view payload, const std::string& name);
PointCloud read_safetensors_cloud(const std::string& path);

// Triangle meshes (polygons are fan-triangulated).
struct TriangleMesh {
  std::vector<float> vertices;   // [V][3]
  std::vector<float> colours;    // [V][3] in [0,1], or empty
  std::vector<uint32_t> triangles;  // [T][3] vertex indices
};
TriangleMesh read_obj(std::string_view bytes, const std::string& name);
TriangleMesh read_off(std::string_view bytes, const std::string& name);
TriangleMesh read_stl(std::string_view bytes, const std::string& name);

// Area-weighted uniform sampling of n points on the surface; same seed -> same points on every
// machine (own integer RNG, no std distributions). Interpolates vertex colours when present.
// InputError when the mesh has no triangles or zero total area.
PointCloud sample_mesh_surface(const TriangleMesh& mesh, int64_t n, uint64_t seed, const std::string& name);

// Fails with InputError naming `name` when the cloud is empty or any coordinate is NaN/Inf.
void validate_point_cloud(const PointCloud& cloud, const std::string& name);

}  // namespace omnibind::media
