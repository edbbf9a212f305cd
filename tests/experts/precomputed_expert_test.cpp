// The "precomputed" expert: rows served from a pool file by path or text.
#include <gtest/gtest.h>

#include <ATen/ATen.h>

#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/experts/expert.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "testing/test_support.h"

using namespace omnibind;
using namespace omnibind::experts;

namespace {
std::string make_pool(const std::string& dir, const std::string& paths_json, bool with_paths = true) {
  auto rows = at::randn({3, 5});
  rows = rows / rows.norm(2, {-1}, true);
  std::map<std::string, std::string> meta = {{"modality", "image"}, {"expert", "imagebind"}, {"dim", "5"}};
  if (with_paths) meta["paths"] = paths_json;
  tensor_io::write_tensors(dir + "/pool.safetensors", {{"IB", rows}}, meta);
  return dir + "/pool.safetensors";
}
std::unique_ptr<Expert> open_pool(const std::string& path) {
  ExpertOptions o;
  o.weights = path;
  return create_expert("precomputed", o);
}
}  // namespace

TEST(PrecomputedExpert, ServesRowsByPath) {
  auto dir = testkit::make_temp_dir("pool");
  auto pool = make_pool(dir, R"(["a.jpg", "sub/b.jpg", "c.png"])");
  auto e = open_pool(pool);
  EXPECT_EQ(e->name(), "precomputed");
  EXPECT_EQ(e->key(), "IB");
  EXPECT_EQ(e->dim(), 5);
  EXPECT_TRUE(e->covers(Modality::Image));
  auto rows = tensor_io::to_tensor(tensor_io::read_safetensors(pool).tensors.at("IB"));
  auto b = e->preprocess(Modality::Image, MediaInput::from_path("sub/b.jpg"));
  auto a = e->preprocess(Modality::Image, MediaInput::from_path("./a.jpg"));  // same file, other spelling
  auto out = e->encode(Modality::Image, at::stack({b, a}));
  EXPECT_TRUE(at::allclose(out[0], rows[1]));
  EXPECT_TRUE(at::allclose(out[1], rows[0]));
}

TEST(PrecomputedExpert, PathsJsonBesideThePool) {
  auto dir = testkit::make_temp_dir("pool2");
  auto pool = make_pool(dir, "", false);
  EXPECT_THROW(open_pool(pool), InputError);
  write_bytes_atomically(dir + "/paths.json", R"(["x.jpg", "y.jpg", "z.jpg"])");
  auto e = open_pool(pool);
  EXPECT_NO_THROW(e->preprocess(Modality::Image, MediaInput::from_path("z.jpg")));
}

TEST(PrecomputedExpert, UnknownInputsAndBadPoolsAreInputErrors) {
  auto dir = testkit::make_temp_dir("pool3");
  auto pool = make_pool(dir, R"(["a.jpg", "b.jpg", "c.jpg"])");
  auto e = open_pool(pool);
  try {
    e->preprocess(Modality::Image, MediaInput::from_path("nope.jpg"));
    FAIL();
  } catch (const InputError& err) {
    EXPECT_NE(std::string(err.what()).find("nope.jpg"), std::string::npos);
  }
  EXPECT_THROW(e->preprocess(Modality::Audio, MediaInput::from_path("a.jpg")), InputError);
  EXPECT_THROW(open_pool(dir + "/missing.safetensors"), InputError);
  auto bad = make_pool(testkit::make_temp_dir("pool4"), R"(["only-one.jpg"])");  // 3 rows, 1 path
  EXPECT_THROW(open_pool(bad), InputError);
}
