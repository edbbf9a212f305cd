// A head trained to .pt/.pth carries its binding config like a safetensors head does (issue 16 item 6):
// `train --out head.pt` then `eval` / `fuse` without --config, same results as the safetensors head;
// a .pt without the config is refused in one line naming --config (exit 2); torch.load still reads
// the file as a plain state dict (checked with the system's python3-torch when installed).
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "omnibind/binding/binding_config.h"
#include "omnibind/binding/omnibind_model.h"
#include "omnibind/common/atomic_file.h"
#include "omnibind/tensor_io/checkpoint.h"
#include "omnibind/tensor_io/checkpoint_writer.h"
#include "omnibind/tensor_io/safetensors.h"
#include "omnibind/tensor_io/torch_bridge.h"
#include "omnibind/tensor_io/torch_writer.h"
#include "omnibind/tensor_io/zip_archive.h"
#include "testing/test_support.h"

namespace omnibind::training {
namespace {
namespace fs = std::filesystem;

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Same names in the same order, same dtypes, shapes and bytes.
void expect_same_tensors(const tensor_io::StateDict& a, const tensor_io::StateDict& b) {
  ASSERT_EQ(a.names(), b.names());
  for (const auto& n : a.names()) {
    at::Tensor x = tensor_io::to_tensor(a.at(n)), y = tensor_io::to_tensor(b.at(n));
    EXPECT_EQ(x.scalar_type(), y.scalar_type()) << n;
    ASSERT_EQ(x.sizes(), y.sizes()) << n;
    EXPECT_TRUE(at::equal(x, y)) << n;
  }
}

// One small world from the family, its pairs, and the same training written once as safetensors and
// once as .pt (same seed, one thread: the same tensors).
struct Trained {
  std::string dir, st, pt;
};
const Trained& trained() {
  static const Trained t = [] {
    Trained r;
    r.dir = testkit::make_temp_dir("pt_heads_config") + "/w";
    r.st = r.dir + "/head.safetensors";
    r.pt = r.dir + "/head.pt";
    auto w = testkit::run_cli({"world", "--split", "tuning", "--index", "2", "--out", r.dir, "--rows-scale", "0.03"});
    EXPECT_EQ(w.exit_code, 0) << w.err;
    auto pairs =
        testkit::run_cli({"pairs", "--pools", r.dir + "/train", "--out", r.dir + "/pairs.safetensors", "--threads", "1", "--quiet"});
    EXPECT_EQ(pairs.exit_code, 0) << pairs.err;
    for (const auto& out : {r.st, r.pt}) {
      auto train = testkit::run_cli({"train", "--pools", r.dir + "/train", "--config", r.dir + "/config.json", "--pairs",
                                     r.dir + "/pairs.safetensors", "--out", out, "--epochs-proj", "1", "--epochs-router", "1",
                                     "--threads", "1", "--seed", "5", "--quiet"});
      EXPECT_EQ(train.exit_code, 0) << train.err;
    }
    return r;
  }();
  return t;
}

TEST(PtHeadsConfig, TrainedPtCarriesTheConfigAndTheSameTensorsAsSafetensors) {
  const auto& t = trained();
  ASSERT_TRUE(fs::exists(t.pt) && fs::exists(t.st));
  EXPECT_EQ(tensor_io::detect_checkpoint_format(t.pt), tensor_io::CheckpointFormat::TorchZip);
  EXPECT_FALSE(fs::exists(t.pt + ".train-state.safetensors"));
  expect_same_tensors(tensor_io::load_checkpoint(t.pt), tensor_io::load_checkpoint(t.st));
  // The same metadata in both formats, and the config is the one trained with.
  const auto pt_meta = tensor_io::load_checkpoint_metadata(t.pt);
  EXPECT_EQ(pt_meta, tensor_io::read_safetensors(t.st).metadata);
  ASSERT_TRUE(pt_meta.count("binding_config"));
  EXPECT_EQ(pt_meta.at("format"), "omnibind-heads");
  const auto config = binding::load_binding_config(t.dir + "/config.json");
  EXPECT_EQ(binding::binding_config_to_json(binding::binding_config_of_checkpoint(t.pt)), binding::binding_config_to_json(config));
  // Where it lives: a record inside the archive folder (torch refuses records outside it).
  const auto zip = tensor_io::ZipArchive::open(t.pt);
  ASSERT_NE(zip.find("archive/extra/binding_config"), nullptr);
  EXPECT_EQ(std::string(zip.read("archive/extra/binding_config", true).view()), pt_meta.at("binding_config"));
  for (const auto& e : zip.entries()) EXPECT_EQ(e.name.rfind("archive/", 0), 0u) << e.name;
}

TEST(PtHeadsConfig, EvalWithoutConfigOnPtEqualsTheSafetensorsPath) {
  const auto& t = trained();
  const std::string eval = t.dir + "/eval";
  auto pt = testkit::run_cli({"eval", "--pools", eval, "--head", t.pt, "--json", t.dir + "/pt.json"});
  auto st = testkit::run_cli({"eval", "--pools", eval, "--head", t.st});
  auto st_config = testkit::run_cli({"eval", "--pools", eval, "--head", t.st, "--config", t.dir + "/config.json"});
  ASSERT_EQ(pt.exit_code, 0) << pt.err;
  ASSERT_EQ(st.exit_code, 0) << st.err;
  ASSERT_EQ(st_config.exit_code, 0) << st_config.err;
  EXPECT_NE(pt.out.find("learned routing"), std::string::npos) << pt.out;
  EXPECT_EQ(pt.out, st.out);
  EXPECT_EQ(pt.out, st_config.out);
  EXPECT_TRUE(fs::exists(t.dir + "/pt.json"));
}

TEST(PtHeadsConfig, FuseWithoutConfigOnPtEqualsTheSafetensorsPath) {
  const auto& t = trained();
  const auto config = binding::load_binding_config(t.dir + "/config.json");
  const auto model = binding::OmniBindModel::load(tensor_io::load_checkpoint(t.st), config);
  // Random expert embeddings of the right widths for every modality the model embeds.
  at::manual_seed(11);
  std::vector<std::pair<std::string, at::Tensor>> inputs;
  for (const auto& m : model.modalities())
    for (const auto& e : model.required_inputs(m)) inputs.emplace_back(m + "/" + e, at::randn({6, model.input_dim(e)}));
  ASSERT_FALSE(inputs.empty());
  tensor_io::write_checkpoint(t.dir + "/in.safetensors", inputs);
  auto pt = testkit::run_cli({"fuse", "--head", t.pt, "--in", t.dir + "/in.safetensors", "--out", t.dir + "/u_pt.safetensors"});
  auto st = testkit::run_cli({"fuse", "--head", t.st, "--config", t.dir + "/config.json", "--in", t.dir + "/in.safetensors",
                              "--out", t.dir + "/u_st.safetensors"});
  ASSERT_EQ(pt.exit_code, 0) << pt.err;
  ASSERT_EQ(st.exit_code, 0) << st.err;
  expect_same_tensors(tensor_io::load_checkpoint(t.dir + "/u_pt.safetensors"), tensor_io::load_checkpoint(t.dir + "/u_st.safetensors"));
  testkit::expect_exit2({"fuse", "--head", t.pt, "--preset", "base", "--config", t.dir + "/config.json", "--in",
                         t.dir + "/in.safetensors", "--out", t.dir + "/u_both.safetensors"},
                        t.dir + "/u_both.safetensors", "at most one of --preset and --config");
}

TEST(PtHeadsConfig, PtWithoutConfigIsOneLineNamingConfigExitTwo) {
  const auto& t = trained();
  // The same tensors written without metadata: what a .pt head from before this change holds.
  const auto sd = tensor_io::load_checkpoint(t.pt);
  std::vector<std::pair<std::string, tensor_io::RawTensor>> raws;
  for (const auto& n : sd.names()) raws.emplace_back(n, sd.at(n));
  const std::string bare = t.dir + "/bare.pt";
  tensor_io::write_checkpoint(bare, raws);
  EXPECT_TRUE(tensor_io::load_checkpoint_metadata(bare).empty());
  const std::string msg = testkit::input_error_of([&] { binding::binding_config_of_checkpoint(bare); });
  EXPECT_NE(msg.find(bare + ": has no extra/binding_config record; pass --preset or --config"), std::string::npos) << msg;
  testkit::expect_exit2({"eval", "--pools", t.dir + "/eval", "--head", bare, "--json", t.dir + "/bare.json"}, t.dir + "/bare.json",
                        "pass --preset or --config");
  testkit::expect_exit2({"fuse", "--head", bare, "--in", t.dir + "/in_missing.safetensors", "--out", t.dir + "/u_bare.safetensors"},
                        t.dir + "/u_bare.safetensors", "pass --preset or --config");
  // With the config given, the bare file evaluates like the one that carries it.
  auto with = testkit::run_cli({"eval", "--pools", t.dir + "/eval", "--head", bare, "--config", t.dir + "/config.json"});
  auto carried = testkit::run_cli({"eval", "--pools", t.dir + "/eval", "--head", t.pt});
  ASSERT_EQ(with.exit_code, 0) << with.err;
  EXPECT_EQ(with.out, carried.out);
}

// The writer and reader below the CLI: any string metadata round-trips through a .pt, keys that
// cannot name a zip record are refused before anything is written, no metadata = the old bytes.
TEST(PtHeadsConfig, TorchMetadataRoundTripsAndBadKeysWriteNothing) {
  const std::string dir = testkit::make_temp_dir("pt_meta");
  std::vector<std::pair<std::string, at::Tensor>> tensors = {{"w", at::arange(6, at::kFloat).reshape({2, 3})}};
  const std::map<std::string, std::string> meta = {{"binding_config", "{\"name\": \"x\"}"}, {"empty", ""}, {"u.t-f_8", "\xc3\xa9\n"}};
  tensor_io::write_checkpoint(dir + "/m.pt", tensors, meta);
  tensor_io::write_checkpoint(dir + "/m.PTH", tensors, meta);
  tensor_io::write_checkpoint(dir + "/m.safetensors", tensors, meta);
  EXPECT_EQ(tensor_io::load_checkpoint_metadata(dir + "/m.pt"), meta);
  EXPECT_EQ(tensor_io::load_checkpoint_metadata(dir + "/m.PTH"), meta);
  EXPECT_EQ(tensor_io::load_checkpoint_metadata(dir + "/m.safetensors"), meta);
  expect_same_tensors(tensor_io::load_checkpoint(dir + "/m.pt"), tensor_io::load_checkpoint(dir + "/m.safetensors"));
  // ZIP64 records do not change what is read back.
  std::vector<std::pair<std::string, tensor_io::RawTensor>> raws = {{"w", tensor_io::from_tensor(tensors[0].second)}};
  tensor_io::TorchWriteOptions o64;
  o64.force_zip64 = true;
  o64.metadata = meta;
  tensor_io::write_torch_checkpoint(dir + "/m64.pt", raws, o64);
  EXPECT_EQ(tensor_io::load_checkpoint_metadata(dir + "/m64.pt"), meta);
  // Without metadata the file is exactly what the plain writer gives (no extra records).
  tensor_io::write_checkpoint(dir + "/plain.pt", tensors);
  tensor_io::write_torch_checkpoint(dir + "/plain2.pt", raws);
  EXPECT_EQ(slurp(dir + "/plain.pt"), slurp(dir + "/plain2.pt"));
  const auto plain = tensor_io::ZipArchive::open(dir + "/plain.pt");
  for (const auto& e : plain.entries()) EXPECT_EQ(e.name.find("/extra/"), std::string::npos) << e.name;
  for (const std::string& bad : std::vector<std::string>{"", "a/b", "..", ".", "sp ace", std::string(129, 'k')}) {
    const std::string msg = testkit::input_error_of([&] { tensor_io::write_checkpoint(dir + "/bad.pt", tensors, {{bad, "v"}}); });
    EXPECT_NE(msg.find("metadata key"), std::string::npos) << "key '" << bad << "': " << msg;
    EXPECT_FALSE(fs::exists(dir + "/bad.pt"));
  }
}

// torch.load (Debian's python3-torch) reads the trained .pt as a plain state dict, extra records and
// all; Python finds the config in the archive; a torch re-save holds the same tensors.
TEST(PtHeadsConfig, LoadsInPyTorch) {
  if (std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "SKIPPED: /usr/bin/python3 cannot import torch (apt-get install python3-torch to run this check)";
  const auto& t = trained();
  const auto sd = tensor_io::load_checkpoint(t.pt);
  std::string names;
  for (const auto& n : sd.names()) names += n + "\n";
  write_bytes_atomically(t.dir + "/names.txt", names);
  const std::string script = t.dir + "/check.py";
  std::ofstream(script) << "import sys, json, zipfile, collections, torch\n"
                           "d = sys.argv[1]\n"
                           "p = d + '/head.pt'\n"
                           "assert zipfile.ZipFile(p).testzip() is None, 'CRC'\n"
                           "for kw in ({}, {'weights_only': True}):\n"
                           "    sd = torch.load(p, map_location='cpu', **kw)\n"
                           "    assert type(sd) is collections.OrderedDict, type(sd)\n"
                           "    assert list(sd) == open(d + '/names.txt').read().split(), list(sd)[:3]\n"
                           "    assert all(torch.is_tensor(v) for v in sd.values())\n"
                           "cfg = json.loads(zipfile.ZipFile(p).read('archive/extra/binding_config'))\n"
                           "assert cfg == json.load(open(d + '/config.json')), cfg\n"
                           "torch.save(sd, d + '/resaved.pt')\n"
                           "print('ok')\n";
  const std::string cmd = "/usr/bin/python3 " + script + " " + t.dir + " > " + t.dir + "/py.log 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << slurp(t.dir + "/py.log");
  expect_same_tensors(tensor_io::load_checkpoint(t.dir + "/resaved.pt"), sd);
}

}  // namespace
}  // namespace omnibind::training
