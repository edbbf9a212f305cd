#include "testing/test_support.h"

#include "omnibind/common/error.h"

#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace omnibind::testkit {

std::string shared_dir() {
  const char* env = std::getenv("OMNIBIND_SHARED_DIR");
  std::string dir = env && *env ? env : OMNIBIND_SHARED_DIR;
  std::error_code ec;
  if (!fs::is_directory(fs::path(dir) / "fixtures", ec)) return "";
  return fs::weakly_canonical(dir).string();
}

std::string shared_path(const std::string& relative) { return shared_dir() + "/" + relative; }

namespace {
struct TempDirs {
  std::vector<std::string> dirs;
  ~TempDirs() {
    std::error_code ec;
    for (auto& d : dirs) fs::remove_all(d, ec);
  }
};
TempDirs& temp_dirs() {
  static TempDirs t;
  return t;
}
std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

std::string make_temp_dir(const std::string& tag) {
  std::string templ = (fs::temp_directory_path() / ("omnibind_" + tag + "_XXXXXX")).string();
  char* made = ::mkdtemp(templ.data());
  if (!made) throw std::runtime_error("mkdtemp failed");
  temp_dirs().dirs.push_back(made);
  return made;
}

CliResult run_cli(const std::vector<std::string>& args) {
  std::string dir = make_temp_dir("cli");
  std::string out_path = dir + "/out", err_path = dir + "/err";
  pid_t pid = ::fork();
  if (pid == 0) {
    int fo = ::open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(fo, 1);
    ::dup2(fe, 2);
    int fi = ::open("/dev/null", O_RDONLY);
    ::dup2(fi, 0);
    std::vector<char*> argv;
    std::string bin = OMNIBIND_BINARY;
    argv.push_back(bin.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out_path);
  r.err = slurp(err_path);
  return r;
}

std::string input_error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

ServeChild::ServeChild(std::vector<std::string> args) {
  args.insert(args.begin(), "serve");
  args.insert(args.end(), {"--port", "0"});
  int fds[2];
  if (::pipe(fds) != 0) return;
  pid = ::fork();
  if (pid == 0) {
    ::dup2(fds[1], 1);
    ::close(fds[0]);
    std::string bin = OMNIBIND_BINARY;
    std::vector<char*> argv = {bin.data()};
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(bin.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  std::string line;
  char ch;
  while (::read(fds[0], &ch, 1) == 1 && ch != '\n') line += ch;
  ::close(fds[0]);
  auto p = line.find("127.0.0.1:");
  if (p != std::string::npos) port = std::atoi(line.c_str() + p + 10);
}

bool ServeChild::stop(int signal) {
  if (pid <= 0) return false;
  ::kill(pid, signal);
  int status = 0;
  ::waitpid(pid, &status, 0);
  pid = -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

ServeChild::~ServeChild() { stop(); }

void expect_exit2(const std::vector<std::string>& args, const std::string& out, const std::string& needle) {
  auto r = run_cli(args);
  EXPECT_EQ(r.exit_code, 2) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(out)) << "partial output left behind";
}

std::pair<std::vector<int64_t>, std::vector<float>> read_f32(const std::string& path, const std::string& key) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  const std::string b = ss.str();
  if (b.size() < 8) return {};
  uint64_t n;
  std::memcpy(&n, b.data(), 8);
  auto h = nlohmann::json::parse(b.substr(8, n));
  if (!h.contains(key) || h[key]["dtype"] != "F32") return {};
  auto off = h[key]["data_offsets"];
  const size_t begin = off[0].get<size_t>(), end = off[1].get<size_t>();
  std::vector<float> v((end - begin) / 4);
  std::memcpy(v.data(), b.data() + 8 + n + begin, end - begin);
  return {h[key]["shape"].get<std::vector<int64_t>>(), v};
}

}  // namespace omnibind::testkit
