// ModelBundle: load + embed through real (tiny) experts and random official-layout heads, the
// pre-folded layout, manifest validation (one line naming the field/file), atomic write_bundle.
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bundle_testkit.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/common/error.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "testing/test_support.h"

namespace fs = std::filesystem;
using namespace omnibind;
using experts::MediaInput;
using experts::Modality;

namespace {

std::string write_file(const fs::path& p, const std::string& bytes) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << bytes;
  return p.string();
}

std::vector<MediaInput> texts(std::vector<std::string> t) {
  std::vector<MediaInput> v;
  for (auto& s : t) v.push_back(MediaInput::from_text(s));
  return v;
}

// The expected unified embedding, computed by hand: each expert, then OmniBindModel on the heads file.
at::Tensor reference_embed(const fs::path& dir, Modality m, const std::vector<MediaInput>& in) {
  auto config = testkit::tiny_binding();
  auto model = binding::OmniBindModel::load(tensor_io::load_checkpoint((dir / "heads.safetensors").string()), config);
  const std::string mn(experts::modality_name(m));
  std::map<std::string, at::Tensor> x;
  for (auto& n : model.required_inputs(mn)) {
    experts::ExpertOptions o;
    o.weights = (dir / "experts" / (n + ".safetensors")).string();
    auto e = experts::create_expert("test-proj", o);
    std::vector<at::Tensor> items;
    for (auto& i : in) items.push_back(e->preprocess(m, i));
    x[n] = e->encode(m, at::stack(items));
  }
  return model.embed(mn, x);
}

nlohmann::json read_manifest(const fs::path& dir) { return nlohmann::json::parse(read_file_bytes((dir / "bundle.json").string())); }
void write_manifest(const fs::path& dir, const nlohmann::json& j) { write_file(dir / "bundle.json", j.dump(2)); }

// load() must fail with one InputError line containing every `needles`.
void expect_load_error(const fs::path& dir, const std::vector<std::string>& needles) {
  try {
    pipeline::ModelBundle::load(dir);
    FAIL() << "load succeeded, expected an error containing " << needles.at(0);
  } catch (const InputError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    for (auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "'" << n << "' not in: " << msg;
  }
}

}  // namespace

TEST(ModelBundle, EmbedsEveryModalityLikeExpertsThenHeads) {
  fs::path dir = fs::path(testkit::make_temp_dir("bundle")) / "tiny.bundle";
  testkit::write_tiny_bundle(dir);
  auto b = pipeline::ModelBundle::load(dir);
  EXPECT_EQ(b.dim(), 20);
  EXPECT_EQ(b.name(), "omnibind:tiny");
  EXPECT_EQ(b.modalities().size(), 4u);

  auto in = texts({"a dog barking", "rain on a tin roof", "a red sports car"});
  at::Tensor u = b.embed(Modality::Text, in);
  ASSERT_EQ(u.sizes(), (std::vector<int64_t>{3, 20}));
  EXPECT_TRUE(at::allclose(u.norm(2, 1), at::ones({3}), 1e-5, 1e-5));
  EXPECT_LT((u - reference_embed(dir, Modality::Text, in)).abs().max().item<float>(), 1e-6);
  // Different texts give different vectors; a batch row equals the single-item result.
  EXPECT_LT((u[0] * u[1]).sum().item<float>(), 0.9999);
  EXPECT_LT((b.embed(Modality::Text, {in[1]})[0] - u[1]).abs().max().item<float>(), 1e-5);

  fs::path media = fs::path(testkit::make_temp_dir("bundle_media"));
  std::vector<MediaInput> files = {MediaInput::from_path(write_file(media / "a.wav", "RIFF....WAVEfmt some bytes")),
                                   MediaInput::from_bytes("another clip of bytes", "b.wav")};
  for (Modality m : {Modality::Audio, Modality::Image, Modality::Point}) {
    at::Tensor v = b.embed(m, files);
    ASSERT_EQ(v.sizes(), (std::vector<int64_t>{2, 20}));
    EXPECT_LT((v - reference_embed(dir, m, files)).abs().max().item<float>(), 1e-6) << experts::modality_name(m);
  }
  auto x = b.expert_embeddings(Modality::Text, in);
  EXPECT_EQ(x.size(), 4u);  // A, B, P, IB
  EXPECT_EQ(x.at("A").size(1), 24);
  at::Tensor w = b.routing_weights(Modality::Image, files);
  ASSERT_EQ(w.sizes(), (std::vector<int64_t>{2, 2}));  // slots B, IB
  EXPECT_TRUE(at::allclose(w.sum(1), at::ones({2}), 1e-5, 1e-5));
}

TEST(ModelBundle, ModalitiesAreThoseWithEveryExpert) {
  fs::path dir = fs::path(testkit::make_temp_dir("bundle")) / "partial.bundle";
  testkit::write_tiny_bundle(dir);
  auto j = read_manifest(dir);
  nlohmann::json kept = nlohmann::json::array();
  for (auto& e : j["experts"])
    if (e["name"] != "B" && e["name"] != "P") kept.push_back(e);
  j["experts"] = kept;  // A and IB: only audio is complete
  write_manifest(dir, j);
  auto b = pipeline::ModelBundle::load(dir);
  ASSERT_EQ(b.modalities(), std::vector<Modality>{Modality::Audio});
  try {
    b.embed(Modality::Text, texts({"x"}));
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("does not embed text (it embeds audio)"), std::string::npos) << e.what();
  }
  // Restricting an entry to some modalities, and splitting a name over two entries.
  j = read_manifest(dir);
  j["experts"][0]["modalities"] = {"audio"};  // A for audio only
  j["experts"].push_back({{"name", "A"}, {"family", "test-proj"}, {"weights", "experts/A.safetensors"}, {"modalities", {"text"}}});
  write_manifest(dir, j);
  EXPECT_EQ(pipeline::ModelBundle::load(dir).modalities(), std::vector<Modality>{Modality::Audio});
  j["experts"].push_back({{"name", "A"}, {"family", "test-proj"}, {"weights", "experts/A.safetensors"}, {"modalities", {"audio"}}});
  write_manifest(dir, j);
  expect_load_error(dir, {"experts[3].name", "'A' is fed by two entries"});
}

TEST(ModelBundle, FoldedHeadsGiveTheSameEmbeddings) {
  fs::path tmp = testkit::make_temp_dir("bundle");
  fs::path dir = tmp / "official.bundle", folded = tmp / "folded.bundle";
  auto m = testkit::write_tiny_bundle(dir);
  auto official = pipeline::ModelBundle::load(dir);
  m.heads_layout = "folded";
  std::vector<pipeline::BundleFile> files = {
      {"heads.safetensors", "", [&](const std::string& p) { tensor_io::write_tensors(p, official.model().folded_tensors()); }}};
  for (auto& e : m.experts) files.push_back({e.weights, (dir / e.weights).string(), nullptr});
  pipeline::write_bundle(folded, m, files);
  auto f = pipeline::ModelBundle::load(folded);
  auto in = texts({"thunder", "a cat purring", "an engine"});
  EXPECT_LT((f.embed(Modality::Text, in) - official.embed(Modality::Text, in)).abs().max().item<float>(), 1e-6);
  EXPECT_LT((f.routing_weights(Modality::Text, in) - official.routing_weights(Modality::Text, in)).abs().max().item<float>(), 1e-6);
  // An official-layout file declared as folded is refused, naming the tensor it lacks.
  auto j = read_manifest(folded);
  fs::copy_file(dir / "heads.safetensors", folded / "official.safetensors");
  j["heads"] = "official.safetensors";
  write_manifest(folded, j);
  expect_load_error(folded, {"official.safetensors", "space.A.w2"});
}

TEST(ModelBundle, BindingComesFromHeadsMetadataAndPrecisionBf16IsClose) {
  fs::path dir = fs::path(testkit::make_temp_dir("bundle")) / "meta.bundle";
  testkit::write_tiny_bundle(dir, 3, /*binding_in_heads=*/true);
  EXPECT_FALSE(read_manifest(dir).contains("binding"));
  auto b = pipeline::ModelBundle::load(dir);
  auto in = texts({"birds singing at dawn", "a violin"});
  at::Tensor u = b.embed(Modality::Text, in);
  EXPECT_LT((u - reference_embed(dir, Modality::Text, in)).abs().max().item<float>(), 1e-6);
  auto bf = pipeline::ModelBundle::load(dir, {.precision = "bf16"});
  EXPECT_GT((bf.embed(Modality::Text, in) * u).sum(1).min().item<float>(), 0.999);
}

TEST(ModelBundle, BadManifestsAreOneLineNamingTheField) {
  fs::path dir = fs::path(testkit::make_temp_dir("bundle")) / "bad.bundle";
  testkit::write_tiny_bundle(dir);
  const auto good = read_manifest(dir);
  auto with = [&](auto edit) {
    auto j = good;
    edit(j);
    write_manifest(dir, j);
  };
  expect_load_error(dir / "nope", {"not a model bundle"});
  write_file(dir / "bundle.json", "{\"format\": \"omnibind-bundle\", ");
  expect_load_error(dir, {"bundle.json", "not valid JSON"});
  with([](auto& j) { j["format"] = "something"; });
  expect_load_error(dir, {"field 'format'"});
  with([](auto& j) { j["version"] = 2; });
  expect_load_error(dir, {"field 'version'"});
  with([](auto& j) { j["heads"] = "missing.safetensors"; });
  expect_load_error(dir, {"heads 'missing.safetensors' not found"});
  with([](auto& j) { j["heads_layout"] = "weird"; });
  expect_load_error(dir, {"field 'heads_layout'"});
  with([](auto& j) { j["precision"] = "int4"; });
  expect_load_error(dir, {"field 'precision'"});
  with([](auto& j) { j["binding"] = {{"preset", "huge"}}; });
  expect_load_error(dir, {"field 'binding.preset'"});
  with([](auto& j) { j["binding"] = {{"preset", "large"}}; });  // heads of another binding
  expect_load_error(dir, {"heads.safetensors", "projector heads"});
  with([](auto& j) { j.erase("binding"); });
  expect_load_error(dir, {"field 'binding' is missing", "binding_config"});
  with([](auto& j) { j["experts"] = nlohmann::json::array(); });
  expect_load_error(dir, {"field 'experts'"});
  with([](auto& j) { j["experts"][1]["family"] = "no-such-family"; });
  expect_load_error(dir, {"experts[1]", "no-such-family"});
  with([](auto& j) { j["experts"][0].erase("family"); });
  expect_load_error(dir, {"experts[0].family"});
  with([](auto& j) { j["experts"][2]["name"] = "CLAP"; });
  expect_load_error(dir, {"experts[2].name", "'CLAP'", "(it binds A, B, BB, IB, P)"});
  with([](auto& j) { j["experts"][0]["weights"] = "experts/none.safetensors"; });
  expect_load_error(dir, {"experts[0].weights 'experts/none.safetensors' not found"});
  with([](auto& j) { j["experts"][0]["weights"] = "experts/B.safetensors"; });  // 16-d expert feeding 24-d A
  expect_load_error(dir, {"experts[0] ('A', family test-proj) gives 16-d embeddings but the heads take 24"});
  with([](auto& j) { j["experts"][0]["modalities"] = {"smell"}; });
  expect_load_error(dir, {"experts[0].modalities"});
  with([&](auto& j) {
    nlohmann::json only = nlohmann::json::array();
    only.push_back(good["experts"][3]);  // IB alone serves nothing
    j["experts"] = only;
  });
  expect_load_error(dir, {"no modality has an expert for every space", "audio lacks A"});
}

TEST(ModelBundle, WriteBundleIsAtomic) {
  fs::path tmp = testkit::make_temp_dir("bundle");
  fs::path dir = tmp / "x.bundle";
  testkit::write_tiny_bundle(dir, 1);
  const std::string before = read_file_bytes((dir / "heads.safetensors").string());
  // Existing directory: refused without overwrite, untouched.
  EXPECT_THROW(testkit::write_tiny_bundle(dir, 2), InputError);
  EXPECT_EQ(read_file_bytes((dir / "heads.safetensors").string()), before);
  // A writer failing half-way leaves the old bundle and no staging directory.
  pipeline::BundleManifest m = pipeline::parse_bundle_manifest(read_file_bytes((dir / "bundle.json").string()), "x");
  std::vector<pipeline::BundleFile> failing = {
      {"heads.safetensors", "", [](const std::string& p) { write_file(p, "partial"); throw std::runtime_error("disk full"); }}};
  EXPECT_THROW(pipeline::write_bundle(dir, m, failing, /*overwrite=*/true), std::runtime_error);
  EXPECT_EQ(read_file_bytes((dir / "heads.safetensors").string()), before);
  EXPECT_THROW(pipeline::write_bundle(tmp / "y.bundle", m, {{"../escape", "", [](const std::string&) {}}}), InputError);
  EXPECT_FALSE(fs::exists(tmp / "y.bundle"));
  // Overwrite replaces it whole.
  std::vector<pipeline::BundleFile> files = {{"heads.safetensors", (dir / "heads.safetensors").string(), nullptr}};
  for (auto& e : m.experts) files.push_back({e.weights, (dir / e.weights).string(), nullptr});
  pipeline::write_bundle(tmp / "copy.bundle", m, files);
  EXPECT_NO_THROW(pipeline::ModelBundle::load(tmp / "copy.bundle"));
  int entries = 0;
  for (auto& e : fs::directory_iterator(tmp)) entries += e.path().filename().string().find(".tmp-") == std::string::npos ? 1 : 100;
  EXPECT_EQ(entries, 2);  // x.bundle, copy.bundle; no staging leftovers
}
