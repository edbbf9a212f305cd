// omnibind launch --nproc N [--master-port P] -- <verb> ...: N local ranks of this binary, torchrun-style
// (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT set for each), their stderr
// lines prefixed with "[rank i]". When a rank fails the others are stopped and launch exits with its status.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "omnibind/cli/verb.h"
#include "omnibind/common/error.h"

namespace omnibind::cli {
namespace {

struct LaunchOptions {
  int nproc = 0;
  int master_port = 0;  // 0 = a free port picked here
  std::vector<std::string> command;
};

// Binds 127.0.0.1:port (0 = any free one) and returns the port; -1 with errno when it cannot.
int try_bind(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  int out = -1;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) {
    socklen_t len = sizeof a;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0) out = ntohs(a.sin_port);
  }
  const int saved = errno;
  ::close(fd);
  errno = saved;
  return out;
}

// Copies one rank's stderr to ours line by line with a "[rank i] " prefix; a '\r' (progress redraw)
// drops what came before it on the line, so a progress bar arrives as its last state.
void relay(int fd, int rank, std::mutex& out_mutex) {
  const std::string prefix = "[rank " + std::to_string(rank) + "] ";
  std::string line;
  char buf[4096];
  auto flush = [&] {
    std::lock_guard<std::mutex> lock(out_mutex);
    std::fwrite(prefix.data(), 1, prefix.size(), stderr);
    std::fwrite(line.data(), 1, line.size(), stderr);
    std::fputc('\n', stderr);
    std::fflush(stderr);
    line.clear();
  };
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    for (ssize_t i = 0; i < n; ++i) {
      if (buf[i] == '\n') flush();
      else if (buf[i] == '\r') line.clear();
      else line.push_back(buf[i]);
    }
  }
  if (!line.empty()) flush();
  ::close(fd);
}

int exit_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

int run_launch(const LaunchOptions& o) {
  require(o.nproc >= 1, "--nproc must be at least 1, got " + std::to_string(o.nproc));
  require(!o.command.empty(), "give the verb to run after --, e.g. omnibind launch --nproc 2 -- pairs --pools P --out T");
  require(o.command[0] != "launch", "launch cannot launch itself");
  require(o.master_port >= 0 && o.master_port < 65536, "--master-port must be in 1..65535");
  int port = o.master_port;
  if (port > 0) {
    if (try_bind(port) < 0)
      throw InputError("--master-port " + std::to_string(port) + " is not free (" + std::strerror(errno) + "); pick another");
  } else {
    port = try_bind(0);
    if (port < 0) throw InputError(std::string("no free local port for the rendezvous: ") + std::strerror(errno));
  }
  char self[4096];
  const ssize_t len = ::readlink("/proc/self/exe", self, sizeof self - 1);
  if (len <= 0) throw std::runtime_error("cannot find this executable (/proc/self/exe)");
  self[len] = 0;

  std::vector<pid_t> pids(static_cast<size_t>(o.nproc), -1);
  std::vector<std::thread> relays;
  std::mutex out_mutex;
  std::fflush(stdout);
  std::fflush(stderr);
  for (int r = 0; r < o.nproc; ++r) {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    const pid_t pid = ::fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      ::dup2(fds[1], STDERR_FILENO);
      ::close(fds[0]);
      ::close(fds[1]);
      ::setenv("RANK", std::to_string(r).c_str(), 1);
      ::setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      ::setenv("WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      ::setenv("LOCAL_WORLD_SIZE", std::to_string(o.nproc).c_str(), 1);
      ::setenv("MASTER_ADDR", "127.0.0.1", 1);
      ::setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      std::vector<char*> argv;
      std::string name = "omnibind";
      argv.push_back(name.data());
      std::vector<std::string> args = o.command;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(self, argv.data());
      std::fprintf(stderr, "omnibind launch: cannot start rank %d: %s\n", r, std::strerror(errno));
      ::_exit(127);
    }
    ::close(fds[1]);
    pids[static_cast<size_t>(r)] = pid;
    relays.emplace_back(relay, fds[0], r, std::ref(out_mutex));
  }

  int result = 0, running = o.nproc;
  bool stopping = false;
  auto deadline = std::chrono::steady_clock::time_point::max();
  while (running > 0) {
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, stopping ? WNOHANG : 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pid == 0) {  // stopping: give the others a moment, then SIGKILL
      if (std::chrono::steady_clock::now() > deadline)
        for (pid_t p : pids)
          if (p > 0) ::kill(p, SIGKILL);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    int rank = -1;
    for (size_t i = 0; i < pids.size(); ++i)
      if (pids[i] == pid) { rank = static_cast<int>(i); pids[i] = -1; }
    if (rank < 0) continue;
    --running;
    const int code = exit_status(status);
    if (code != 0 && !stopping) {
      result = code;
      stopping = true;
      deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
      {
        std::lock_guard<std::mutex> lock(out_mutex);
        std::fprintf(stderr, "omnibind launch: rank %d exited with status %d; stopping the other ranks\n", rank, code);
      }
      for (pid_t p : pids)
        if (p > 0) ::kill(p, SIGTERM);
    }
  }
  for (auto& t : relays) t.join();
  return result;
}

VerbRun setup_launch(CLI::App& app) {
  auto o = std::make_shared<LaunchOptions>();
  app.add_option("--nproc,--nproc-per-node", o->nproc, "Number of local ranks to start")->required();
  app.add_option("--master-port", o->master_port, "Rendezvous port on 127.0.0.1 (default: a free one)");
  app.add_option("command", o->command, "The verb and its options, after --")->required();
  return [o] { return run_launch(*o); };
}

}  // namespace

REGISTER_VERB("launch", "Start N local ranks of a distributed verb, torchrun-style (omnibind launch --nproc 2 -- pairs ...)",
              setup_launch);

}  // namespace omnibind::cli
