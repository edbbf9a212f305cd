// Peak memory, disk reads and throughput of `omnibind embed --model BUNDLE` per modality and
// precision, each run in its own child process (issue 15 item 3). Made for the bundles
// make_random_release writes (real widths, random weights), works on any bundle.
//
//   bench_release_memory --model DIR [--omnibind build/omnibind] [--modalities audio,image,point,text]
//       [--precisions fp32,bf16] [--items N] [--threads N] [--evict] [--max-anon-gb G] [--timeout S]
//       [--inputs-audio FILE,...] (same for image/point/text; text: one caption per comma-item)
//       [--out result.json]     (the JSON goes to stdout; --out also rewrites FILE after every run)
//
// Per run (JSON): exit code, wall seconds, items/s (end to end: bundle load + preprocess + experts +
// heads; the child's own "wrote" line is kept), peak resident memory three ways — ru_maxrss from
// wait4 (exact kernel high-water mark of RSS = anonymous + file-backed pages), and the sampled
// peaks (every 50 ms) of RssAnon (heap/tensors: what the process really holds) and RssFile (mapped
// weight pages: page cache the kernel can drop) — and bytes read: /proc/PID/io read_bytes (bytes
// the child caused to be fetched from storage: page-cache misses, mmap faults included; 0 when the
// files are cached, hence --evict) and rchar (bytes through read()/pread() syscalls, cached or not;
// mmap'ed reads are not counted). --evict drops the bundle's files from the page cache first
// (posix_fadvise DONTNEED; clean pages, no root needed), so read_bytes is what a cold start reads.
// --max-anon-gb kills a run whose RssAnon passes the limit (a shared machine must not swap/OOM):
// the run is reported with "killed_over_anon_gb".
#include <fcntl.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <map>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

#ifndef OMNIBIND_SHARED_DIR
#define OMNIBIND_SHARED_DIR ""
#endif
#ifndef OMNIBIND_BINARY
#define OMNIBIND_BINARY "omnibind"
#endif

namespace {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string x; std::getline(ss, x, sep);)
    if (!x.empty()) out.push_back(x);
  return out;
}

// "Key:   123 kB" fields of /proc/PID/status, or "key: 123" of /proc/PID/io.
long long proc_field(const std::string& path, const std::string& key) {
  std::ifstream f(path);
  for (std::string line; std::getline(f, line);)
    if (line.rfind(key + ":", 0) == 0) return std::atoll(line.c_str() + key.size() + 1);
  return -1;
}

std::string read_text(const std::string& path) {
  std::ifstream f(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string cpu_model() {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("model name", 0) == 0) return line.substr(line.find(':') + 2);
  return "";
}

bool cpu_flag(const std::string& flag) {
  std::ifstream f("/proc/cpuinfo");
  for (std::string line; std::getline(f, line);)
    if (line.rfind("flags", 0) == 0) return (" " + line + " ").find(" " + flag + " ") != std::string::npos;
  return false;
}

void evict(const fs::path& dir, const json& manifest) {
  std::vector<fs::path> files;
  for (auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(e.path());
  if (manifest.contains("heads")) files.push_back(manifest["heads"].get<std::string>());
  for (auto& e : manifest.value("experts", json::array()))
    if (e.contains("weights")) files.push_back(e["weights"].get<std::string>());
  for (auto& p : files) {
    const fs::path full = p.is_absolute() ? p : dir / p;
    int fd = ::open(full.c_str(), O_RDONLY);
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

json run_child(const std::vector<std::string>& argv, double max_anon_gb, double timeout_s, const std::string& log_path) {
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  const auto t0 = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid == 0) {
    int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
      ::close(fd);
    }
    ::execv(cargv[0], cargv.data());
    std::perror("execv");
    ::_exit(127);
  }
  const std::string proc = "/proc/" + std::to_string(pid);
  long long max_anon = 0, max_file = 0, hwm = 0, read_bytes = 0, rchar = 0;
  std::string killed;
  for (;;) {
    siginfo_t info{};
    info.si_pid = 0;
    // Exited? (WNOWAIT: keep the zombie so its /proc/PID/io can still be read.)
    if (::waitid(P_PID, pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid) break;
    const long long anon = proc_field(proc + "/status", "RssAnon"), file = proc_field(proc + "/status", "RssFile");
    max_anon = std::max(max_anon, anon);
    max_file = std::max(max_file, file);
    hwm = std::max(hwm, proc_field(proc + "/status", "VmHWM"));
    const long long rb = proc_field(proc + "/io", "read_bytes"), rc = proc_field(proc + "/io", "rchar");
    if (rb >= 0) read_bytes = rb;
    if (rc >= 0) rchar = rc;
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (killed.empty() && max_anon_gb > 0 && anon > max_anon_gb * 1024 * 1024) {
      killed = "killed_over_anon_gb";
      ::kill(pid, SIGKILL);
    } else if (killed.empty() && timeout_s > 0 && el > timeout_s) {
      killed = "killed_timeout";
      ::kill(pid, SIGKILL);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  {
    const long long rb = proc_field(proc + "/io", "read_bytes"), rc = proc_field(proc + "/io", "rchar");
    if (rb >= 0) read_bytes = rb;
    if (rc >= 0) rchar = rc;
  }
  int status = 0;
  struct rusage ru {};
  ::wait4(pid, &status, 0, &ru);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  json r;
  r["exit_code"] = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (!killed.empty()) r["killed"] = killed;
  r["wall_s"] = std::round(wall * 100) / 100;
  r["peak_rss_mb"] = ru.ru_maxrss / 1024;  // wait4: kernel high-water mark (anon + file)
  r["peak_anon_mb_sampled"] = max_anon / 1024;
  r["peak_file_mb_sampled"] = max_file / 1024;
  r["read_bytes_mb"] = std::round(read_bytes / 1e6 * 10) / 10;
  r["rchar_mb"] = std::round(rchar / 1e6 * 10) / 10;
  r["user_s"] = ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6;
  r["sys_s"] = ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
  r["major_faults"] = ru.ru_majflt;
  std::string log = read_text(log_path);
  if (log.size() > 600) log = "..." + log.substr(log.size() - 600);
  r["output_tail"] = log;
  return r;
}

std::vector<std::string> default_inputs(const std::string& m, const std::string& shared, int n) {
  std::vector<std::string> all;
  const std::string d = shared + "/data/demo/";
  if (m == "audio") all = {d + "dog_audio.wav", d + "bird_audio.wav", d + "car_audio.wav", d + "BBQ.wav", d + "train.wav", d + "toilet.wav"};
  if (m == "image") all = {d + "dog_image.jpg", d + "bird_image.jpg", d + "car_image.jpg", d + "BBQ.jpeg", d + "train.jpeg", d + "toilet.jpeg"};
  if (m == "point") all = {d + "BBQ.npy", d + "toilet.npy", d + "train.npy", shared + "/fixtures/uni3d_mini/inputs/chair_0890.pcd",
                           shared + "/fixtures/uni3d_mini/inputs/monitor_0466.pcd"};
  if (m == "text") all = {"a dog barking", "a bird singing in the trees", "a car passing by on a wet road", "people at a barbecue",
                          "a train arriving at the station", "a toilet flushing"};
  if (n > 0 && static_cast<size_t>(n) < all.size()) all.resize(static_cast<size_t>(n));
  return all;
}

}  // namespace

int main(int argc, char** argv) {
  std::string model, omnibind = OMNIBIND_BINARY, shared = OMNIBIND_SHARED_DIR;
  std::vector<std::string> modalities = {"audio", "image", "point", "text"}, precisions = {"fp32", "bf16"};
  std::map<std::string, std::vector<std::string>> inputs;
  int items = 2, threads = 0, batch = 0;
  bool do_evict = false;
  std::string json_out;
  double max_anon_gb = 0, timeout_s = 0;
  std::string work = fs::temp_directory_path() / ("bench_release_memory." + std::to_string(::getpid()));
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", s.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (s == "--model") model = next();
    else if (s == "--omnibind") omnibind = next();
    else if (s == "--shared") shared = next();
    else if (s == "--modalities") modalities = split(next(), ',');
    else if (s == "--precisions") precisions = split(next(), ',');
    else if (s == "--items") items = std::stoi(next());
    else if (s == "--threads") threads = std::stoi(next());
    else if (s == "--batch") batch = std::stoi(next());
    else if (s == "--evict") do_evict = true;
    else if (s == "--out") json_out = next();
    else if (s == "--max-anon-gb") max_anon_gb = std::stod(next());
    else if (s == "--timeout") timeout_s = std::stod(next());
    else if (s.rfind("--inputs-", 0) == 0) inputs[s.substr(9)] = split(next(), ',');
    else {
      std::fprintf(stderr,
                   "usage: bench_release_memory --model DIR [--omnibind BIN] [--modalities audio,image,point,text]\n"
                   "  [--precisions fp32,bf16] [--items N] [--threads N] [--batch N] [--evict] [--max-anon-gb G]\n"
                   "  [--timeout S] [--inputs-MODALITY a,b,...] [--shared DIR] [--out FILE]   (JSON on stdout and in FILE)\n");
      return s == "--help" || s == "-h" ? 0 : 2;
    }
  }
  if (model.empty()) {
    std::fprintf(stderr, "--model DIR is required\n");
    return 2;
  }
  omnibind = fs::absolute(omnibind).string();
  fs::create_directories(work);
  json manifest = json::parse(read_text((fs::path(model) / "bundle.json").string()), nullptr, false);

  json out;
  out["bench"] = "bench_release_memory";
  out["model"] = fs::absolute(model).string();
  out["machine"] = {{"cpu", cpu_model()},
                    {"cores", std::thread::hardware_concurrency()},
                    {"mem_total_mb", proc_field("/proc/meminfo", "MemTotal") / 1024},
                    {"mem_available_mb_at_start", proc_field("/proc/meminfo", "MemAvailable") / 1024},
                    {"avx512_bf16", cpu_flag("avx512_bf16")},
                    {"amx_bf16", cpu_flag("amx_bf16")}};
  if (manifest.is_object()) out["bundle_preset"] = manifest.value("binding", json::object()).value("preset", "");
  out["read_bytes_meaning"] =
      "read_bytes: bytes fetched from storage by the child (page-cache misses incl. mmap faults; needs --evict for a cold "
      "start); rchar: bytes through read syscalls (cached or not, mmap not counted)";
  out["runs"] = json::array();
  for (const auto& m : modalities) {
    std::vector<std::string> in = inputs.count(m) ? inputs[m] : default_inputs(m, shared, items);
    for (const auto& p : precisions) {
      std::vector<std::string> cmd = {omnibind, "embed", "--model", model, "--modality", m, "--precision", p,
                                      "--out", work + "/" + m + "_" + p + ".safetensors"};
      if (threads > 0) cmd.insert(cmd.end(), {"--threads", std::to_string(threads)});
      if (batch > 0) cmd.insert(cmd.end(), {"--batch", std::to_string(batch)});
      for (const auto& x : in) {
        if (m == "text") cmd.insert(cmd.end(), {"--text", x});
        else cmd.push_back(x);
      }
      if (do_evict) evict(model, manifest);
      std::fprintf(stderr, "bench_release_memory: %s %s (%zu items)...\n", m.c_str(), p.c_str(), in.size());
      json r = run_child(cmd, max_anon_gb, timeout_s, work + "/log.txt");
      json row;
      row["modality"] = m;
      row["precision"] = p;
      row["items"] = in.size();
      row["evicted_first"] = do_evict;
      for (auto& [k, v] : r.items()) row[k] = v;
      if (r["exit_code"] == 0) row["items_per_s"] = std::round(in.size() / r["wall_s"].get<double>() * 1000) / 1000;
      std::string line;
      for (auto& c : cmd) line += (line.empty() ? "" : " ") + c;
      row["command"] = line;
      std::fprintf(stderr, "  -> exit %d, %.1f s, peak RSS %lld MB (anon %lld, file %lld), read %.0f MB\n",
                   row["exit_code"].get<int>(), row["wall_s"].get<double>(), row["peak_rss_mb"].get<long long>(),
                   row["peak_anon_mb_sampled"].get<long long>(), row["peak_file_mb_sampled"].get<long long>(),
                   row["read_bytes_mb"].get<double>());
      out["runs"].push_back(row);
      if (!json_out.empty()) std::ofstream(json_out) << out.dump(1) << "\n";  // partial results survive a kill
    }
  }
  std::printf("%s\n", out.dump(1).c_str());
  std::error_code ec;
  fs::remove_all(work, ec);
  return 0;
}
