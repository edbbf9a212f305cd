// `omnibind index` and `omnibind search` end to end, including crashes (SIGKILL) during adds.
#include <gtest/gtest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <set>

#include <nlohmann/json.hpp>

#include "omnibind/retrieval/vector_index.h"
#include "omnibind/tensor_io/safetensors.h"
#include "testing/test_support.h"

namespace fs = std::filesystem;
using namespace omnibind;
using testkit::run_cli;

namespace {
// Writes {key: [n, dim]} rows around `clusters` centres; returns the rows.
std::vector<float> write_rows(const std::string& path, const std::string& key, int64_t n, int64_t dim, uint32_t seed,
                              const std::map<std::string, std::string>& meta = {}) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  auto rows = std::make_shared<std::vector<float>>(n * dim);
  for (auto& x : *rows) x = g(rng);
  tensor_io::RawTensor t;
  t.dtype = tensor_io::DType::F32;
  t.shape = {n, dim};
  t.data = reinterpret_cast<const std::byte*>(rows->data());
  t.storage_bytes = rows->size() * sizeof(float);
  t.owner = rows;
  tensor_io::write_safetensors(path, {{key, t}}, meta);
  return *rows;
}

int64_t count_of(const std::string& dir) {
  auto r = run_cli({"index", "info", dir, "--json"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return nlohmann::json::parse(r.out)["count"].get<int64_t>();
}

void expect_one_line_error(const testkit::CliResult& r) {
  EXPECT_EQ(r.exit_code, 2) << r.out << r.err;
  EXPECT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << r.err;
}
}  // namespace

TEST(IndexCli, CreateAddInfoSearchRemove) {
  auto tmp = testkit::make_temp_dir("icli");
  const std::string dir = tmp + "/idx";
  ASSERT_EQ(run_cli({"index", "create", dir, "--dim", "16"}).exit_code, 0);
  auto audio = write_rows(tmp + "/a.safetensors", "audio", 20, 16, 1,
                          {{"expert", "TEST"}, {"paths", "[" + [] {
                              std::string s;
                              for (int i = 0; i < 20; ++i) s += (i ? "," : "") + std::string("\"a") + std::to_string(i) + ".wav\"";
                              return s;
                            }() + "]"}});
  write_rows(tmp + "/p.safetensors", "point/UNI3D", 10, 16, 2);
  std::ofstream(tmp + "/labels.json") << nlohmann::json(std::vector<std::string>(20, "dog")).dump();
  std::ofstream(tmp + "/meta.json") << R"({"split": "test"})";
  auto r = run_cli({"index", "add", dir, tmp + "/a.safetensors", "--labels", tmp + "/labels.json", "--metadata", tmp + "/meta.json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(run_cli({"index", "add", dir, tmp + "/p.safetensors"}).exit_code, 0);
  auto info = nlohmann::json::parse(run_cli({"index", "info", dir, "--json"}).out);
  EXPECT_EQ(info["count"], 30);
  EXPECT_EQ(info["per_modality"]["audio"], 20);
  EXPECT_EQ(info["per_modality"]["point"], 10);

  r = run_cli({"search", dir, "--id", "3", "--k", "3", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto first = nlohmann::json::parse(r.out.substr(0, r.out.find('\n')));
  EXPECT_EQ(first["id"], 3);
  EXPECT_EQ(first["source"], "a3.wav");
  EXPECT_EQ(first["labels"][0], "dog");
  EXPECT_EQ(first["metadata"]["split"], "test");
  EXPECT_EQ(first["metadata"]["expert"], "TEST");
  EXPECT_NEAR(first["score"].get<double>(), 1.0, 1e-5);

  // by an embedding file row, filtered to points: every hit is a point
  r = run_cli({"search", dir, "--vector", tmp + "/a.safetensors:3", "--modality", "point", "--json", "-k", "5"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  int lines = 0;
  for (size_t p = 0, q; (q = r.out.find('\n', p)) != std::string::npos; p = q + 1, ++lines)
    EXPECT_EQ(nlohmann::json::parse(r.out.substr(p, q - p))["modality"], "point");
  EXPECT_EQ(lines, 5);
  // composition: id 3 minus itself plus id 25 -> id 25 first
  r = run_cli({"search", dir, "--id", "3", "--add", "id:25", "--sub", "id:3", "--weight", "1,1,1", "--json", "-k", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["id"], 25);
  // metadata filter
  r = run_cli({"search", dir, "--id", "25", "--where", "split=test", "--json", "-k", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["modality"], "audio");

  ASSERT_EQ(run_cli({"index", "remove", dir, "3", "4"}).exit_code, 0);
  EXPECT_EQ(count_of(dir), 28);
  expect_one_line_error(run_cli({"search", dir, "--id", "3"}));  // removed
}

TEST(IndexCli, BadInputOneLineExit2) {
  auto tmp = testkit::make_temp_dir("iclibad");
  const std::string dir = tmp + "/idx";
  expect_one_line_error(run_cli({"index", "create", dir, "--dim", "16", "--type", "IVF9,PQ5"}));
  EXPECT_FALSE(fs::exists(dir + "/catalog.sqlite"));
  ASSERT_EQ(run_cli({"index", "create", dir, "--dim", "16"}).exit_code, 0);
  expect_one_line_error(run_cli({"index", "create", dir, "--dim", "16"}));
  write_rows(tmp + "/wrongdim.safetensors", "audio", 4, 8, 1);
  write_rows(tmp + "/nomod.safetensors", "embeddings", 4, 16, 1);
  write_rows(tmp + "/ok.safetensors", "audio", 4, 16, 1);
  std::ofstream(tmp + "/bad.json") << "[1, 2";
  std::ofstream(tmp + "/short.json") << R"(["a"])";
  expect_one_line_error(run_cli({"index", "add", dir, tmp + "/wrongdim.safetensors"}));
  expect_one_line_error(run_cli({"index", "add", dir, tmp + "/nomod.safetensors"}));
  expect_one_line_error(run_cli({"index", "add", dir, tmp + "/missing.safetensors"}));
  expect_one_line_error(run_cli({"index", "add", dir, tmp + "/ok.safetensors", "--labels", tmp + "/bad.json"}));
  expect_one_line_error(run_cli({"index", "add", dir, tmp + "/ok.safetensors", "--labels", tmp + "/short.json"}));
  expect_one_line_error(run_cli({"index", "add", dir, tmp + "/ok.safetensors", "--modality", "smell"}));
  EXPECT_EQ(count_of(dir), 0);  // nothing half-added
  expect_one_line_error(run_cli({"index", "info", tmp + "/nothing"}));
  expect_one_line_error(run_cli({"search", dir}));
  expect_one_line_error(run_cli({"search", dir, "--text", "a dog"}));  // no model
  expect_one_line_error(run_cli({"search", dir, "--id", "0", "--where", "novalue"}));
  expect_one_line_error(run_cli({"search", dir, "--add", "smell:x"}));
  expect_one_line_error(run_cli({"search", dir, "--id", "0", "--weight", "1,2"}));
  expect_one_line_error(run_cli({"search", dir, "--text", "x", "--model", tmp + "/bundle"}));
  expect_one_line_error(run_cli({"search", dir, "--text", "x", "--expert", "no-such-expert"}));
}

// A crash at the worst moments of an add: after the new FAISS file is written but before the
// catalog commits (-> the old state), and after the commit but before the old file is deleted
// (-> the new state). Either way the index opens, is consistent, and keeps working.
TEST(IndexCli, KilledAddLeavesLastCommittedState) {
  auto tmp = testkit::make_temp_dir("iclikill");
  const std::string dir = tmp + "/idx";
  ASSERT_EQ(run_cli({"index", "create", dir, "--dim", "16", "--type", "HNSW8"}).exit_code, 0);
  auto a = write_rows(tmp + "/a.safetensors", "audio", 50, 16, 1);
  auto b = write_rows(tmp + "/b.safetensors", "image", 30, 16, 2);
  ASSERT_EQ(run_cli({"index", "add", dir, tmp + "/a.safetensors"}).exit_code, 0);

  ::setenv("OMNIBIND_FAILPOINT", "add_before_commit", 1);
  auto r = run_cli({"index", "add", dir, tmp + "/b.safetensors"});
  ::unsetenv("OMNIBIND_FAILPOINT");
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_EQ(count_of(dir), 50);
  ASSERT_EQ(run_cli({"index", "add", dir, tmp + "/b.safetensors"}).exit_code, 0);  // a writer cleans up
  EXPECT_EQ(count_of(dir), 80);

  ::setenv("OMNIBIND_FAILPOINT", "add_after_commit", 1);
  r = run_cli({"index", "add", dir, tmp + "/b.safetensors"});
  ::unsetenv("OMNIBIND_FAILPOINT");
  EXPECT_EQ(r.exit_code, 128 + SIGKILL);
  EXPECT_EQ(count_of(dir), 110);
  auto idx = retrieval::VectorIndex::open(dir, retrieval::VectorIndex::Mode::ReadWrite);
  EXPECT_EQ(idx->size(), 110);
  int faiss_files = 0;
  for (auto& e : fs::directory_iterator(dir)) faiss_files += e.path().extension() == ".faiss";
  EXPECT_EQ(faiss_files, 1);
  // ids are stable: the first add's row 7 is still id 7, the committed second copy of b starts at 80
  EXPECT_EQ(idx->search(a.data() + 7 * 16, 1).at(0).id, 7);
  auto hits = idx->search(b.data(), 2);
  std::set<int64_t> got{hits.at(0).id, hits.at(1).id};
  EXPECT_EQ(got, (std::set<int64_t>{50, 80}));
}

// SIGKILL at random moments while `index add` runs: the index always reopens at a committed state.
TEST(IndexCli, RandomKillsDuringAddsNeverBreakTheIndex) {
  auto tmp = testkit::make_temp_dir("iclirand");
  const std::string dir = tmp + "/idx";
  ASSERT_EQ(run_cli({"index", "create", dir, "--dim", "64"}).exit_code, 0);
  write_rows(tmp + "/big.safetensors", "audio", 4000, 64, 3);
  std::mt19937 rng(7);
  int64_t expected = 0;
  for (int round = 0; round < 6; ++round) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      std::string bin = OMNIBIND_BINARY, f = tmp + "/big.safetensors";
      int devnull = ::open("/dev/null", O_WRONLY);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      ::execl(bin.c_str(), bin.c_str(), "index", "add", dir.c_str(), f.c_str(), (char*)nullptr);
      ::_exit(127);
    }
    ::usleep(std::uniform_int_distribution<int>(20000, 400000)(rng));
    ::kill(pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    const bool finished = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    const int64_t n = count_of(dir);
    EXPECT_TRUE(n == expected || n == expected + 4000) << "round " << round << ": " << n;
    if (finished) EXPECT_EQ(n, expected + 4000);
    expected = n;
    auto idx = retrieval::VectorIndex::open(dir, retrieval::VectorIndex::Mode::ReadWrite);
    EXPECT_EQ(idx->size(), n);
  }
}
