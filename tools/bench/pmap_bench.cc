// pmap_bench: `pmap` of many small items against Python's multiprocessing, as whole processes.
//
//   pmap_bench [--items N] [--rounds R] [--shapex PATH] [--python PATH] [--json]
//
// It starts its own `shapex serve` (pool 2, one client may lease both; socket and blob store in
// a temporary directory), writes two programs that do the same work,
//
//   pmap.shape   @remote function f(x) { x + 1 }
//                function main(args) { print(pmap(0..int(args[0]), f).len()) }
//   pool.py      def f(x): return x + 1
//                with multiprocessing.Pool(2) as p: print(len(p.map(f, range(n), chunksize=1000)))
//
// and runs them as whole processes (`shapex run --socket S pmap.shape -- N`, `python3 pool.py N`),
// interleaved, for R rounds after one warm-up round of each: every round runs shapex with N
// items, python with N items and shapex with 2N items. It reports the median and p99 wall time
// of each (p99 of R rounds is their maximum for R < 100), their ratio, and items per second once
// started: N / (median time of the 2N run - median time of the N run), which takes away process
// start, compiling, leasing and tearing down (there is no clock native to time inside the
// program). Each output is checked. Without python3 the Python column is skipped, with a note.
// No CPU pinning is done (the JSON says whether the run was narrowed with taskset).
//
// With --json it prints one object: pmap_200k_s, pool_map_200k_s, pmap_vs_pool_map,
// pmap_items_per_s, ... (the key names say 200k whatever N is; "items" gives N).
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "shapex/client/client.h"
#include "tools/bench/child_process.h"

namespace {

using namespace shapex;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "pmap_bench: %s\n", what.c_str());
  std::exit(2);
}

constexpr char kShapeProgram[] =
    "@remote\n"
    "function f(x) { x + 1 }\n"
    "function main(args) { print(pmap(0..int(args[0]), f).len()) }\n";

constexpr char kPythonProgram[] =
    "import multiprocessing\n"
    "import sys\n"
    "\n"
    "def f(x):\n"
    "    return x + 1\n"
    "\n"
    "if __name__ == '__main__':\n"
    "    n = int(sys.argv[1])\n"
    "    with multiprocessing.Pool(2) as p:\n"
    "        print(len(p.map(f, range(n), chunksize=1000)))\n";

struct Summary {
  double median_s = 0;
  double p99_s = 0;
};

Summary Summarise(std::vector<double> s) {
  std::sort(s.begin(), s.end());
  size_t n = s.size();
  return {n % 2 == 1 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2,
          s[std::min(n - 1, (n * 99 + 99) / 100 - 1)]};
}

// An executable named `name` on PATH, or "".
std::string FindOnPath(const std::string& name) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return "";
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + name;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

int AllowedCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
  return CPU_COUNT(&set);
}

// Runs `argv`, checks that it printed `expected`, returns its wall time in seconds.
double Timed(const std::vector<std::string>& argv, const std::string& expected) {
  bench::ChildOutcome r = bench::RunChild(argv, std::chrono::minutes(5));
  if (!r.Succeeded() || r.out != expected) {
    Die(fmt::format("{} ... {}: {} (stdout {:?}, stderr {:?})", argv[0],
                    argv.size() > 1 ? argv[argv.size() - 1] : "", r.Describe(), r.out, r.err));
  }
  return r.wall_ms / 1000;
}

}  // namespace

int main(int argc, char** argv) {
  long items = 200000;
  int rounds = 7;
  bool json = false;
  std::string shapex_bin =
      (std::filesystem::read_symlink("/proc/self/exe").parent_path() / ".." / "shapex").string();
  std::string python = FindOnPath("python3");
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--json") {
      json = true;
    } else if (arg == "--items" && i + 1 < argc) {
      items = std::max(1000L, std::atol(argv[++i]));
    } else if (arg == "--rounds" && i + 1 < argc) {
      rounds = std::max(5, std::atoi(argv[++i]));
    } else if (arg == "--shapex" && i + 1 < argc) {
      shapex_bin = argv[++i];
    } else if (arg == "--python" && i + 1 < argc) {
      python = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: pmap_bench [--items N] [--rounds R (>= 5)] [--shapex PATH] "
                   "[--python PATH] [--json]\n");
      return 2;
    }
  }
  shapex_bin = std::filesystem::weakly_canonical(shapex_bin).string();
  signal(SIGPIPE, SIG_IGN);
  char dir_template[] = "/tmp/shapex-pmap-bench-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) Die("mkdtemp");
  std::string dir = dir_template;
  std::string run_dir = dir + "/run";
  if (::mkdir(run_dir.c_str(), 0700) != 0) Die("mkdir " + run_dir);
  std::string socket_path = run_dir + "/sock", store = dir + "/store";
  std::string shape_file = dir + "/pmap.shape", python_file = dir + "/pool.py";
  std::ofstream(shape_file) << kShapeProgram;
  std::ofstream(python_file) << kPythonProgram;

  bench::ChildProcess server;
  {
    std::string error;
    if (!server.Start({shapex_bin, "serve", "--socket", socket_path, "--store", store, "--pool",
                       "2", "--max-leases-per-client", "2"},
                      &error, dir + "/serve.log"))
      Die("shapex serve: " + error);
  }
  ClientOptions options;
  options.socket_path = socket_path;
  options.start_supervisor = false;
  Result<Client> client = IoError("not started");
  for (int i = 0; i < 500 && !client.has_value(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    client = Client::Connect(options);
  }
  if (!client.has_value()) Die("connect to shapex serve: " + client.error().ToString());

  bool have_python = !python.empty() && ::access(python.c_str(), X_OK) == 0;
  auto shapex_run = [&](long n) {
    return Timed({shapex_bin, "run", "--socket", socket_path, shape_file, "--",
                  std::to_string(n)},
                 std::to_string(n) + "\n");
  };
  auto python_run = [&](long n) {
    return Timed({python, python_file, std::to_string(n)}, std::to_string(n) + "\n");
  };
  // Warm-up: the executors, the blob store, the page cache, Python's imports.
  shapex_run(items);
  if (have_python) python_run(items);
  std::vector<double> shapex_n, shapex_2n, python_n;
  for (int r = 0; r < rounds; ++r) {
    shapex_n.push_back(shapex_run(items));
    if (have_python) python_n.push_back(python_run(items));
    shapex_2n.push_back(shapex_run(2 * items));
  }
  (void)client->StopSupervisor();
  (void)server.Wait(std::chrono::seconds(10));
  std::filesystem::remove_all(dir);

  Summary pmap = Summarise(shapex_n), pmap2 = Summarise(shapex_2n);
  std::optional<Summary> pool;
  if (have_python) pool = Summarise(python_n);
  double started = pmap2.median_s - pmap.median_s;
  double items_per_s = started > 0 ? static_cast<double>(items) / started : 0;
  int cpus = AllowedCpus();
  bool pinned = cpus >= 0 && cpus < sysconf(_SC_NPROCESSORS_ONLN);
  if (json) {
    using Json = nlohmann::ordered_json;
    Json report = {{"items", items},
                   {"rounds", rounds},
                   {"cpus", cpus},
                   {"pinned", pinned},
                   {"pmap_200k_s", pmap.median_s},
                   {"pmap_200k_p99_s", pmap.p99_s},
                   {"pmap_400k_s", pmap2.median_s},
                   {"pmap_400k_p99_s", pmap2.p99_s},
                   {"pmap_items_per_s", items_per_s}};
    if (pool) {
      report["pool_map_200k_s"] = pool->median_s;
      report["pool_map_200k_p99_s"] = pool->p99_s;
      report["pmap_vs_pool_map"] = pmap.median_s / pool->median_s;
    } else {
      report["pool_map_200k_s"] = nullptr;
      report["pmap_vs_pool_map"] = nullptr;
      report["note"] = "python3 not found: no multiprocessing.Pool column";
    }
    std::puts(report.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
    return 0;
  }
  fmt::print("pmap_bench: {} items, {} rounds (interleaved, after one warm-up), {} allowed CPUs "
             "({})\n\n",
             items, rounds, cpus, pinned ? "pinned by taskset" : "not pinned");
  fmt::print("{:<48} {:>10} {:>10}\n", "whole process", "median s", "p99 s");
  fmt::print("{:<48} {:>10.3f} {:>10.3f}\n", fmt::format("shapex run: pmap of {} items", items),
             pmap.median_s, pmap.p99_s);
  fmt::print("{:<48} {:>10.3f} {:>10.3f}\n",
             fmt::format("shapex run: pmap of {} items", 2 * items), pmap2.median_s, pmap2.p99_s);
  if (pool) {
    fmt::print("{:<48} {:>10.3f} {:>10.3f}\n",
               fmt::format("python3: Pool(2).map, {} items, chunksize 1000", items),
               pool->median_s, pool->p99_s);
    fmt::print("\npmap / Pool.map (medians): {:.2f}\n", pmap.median_s / pool->median_s);
  } else {
    fmt::print("\n(python3 not found: no multiprocessing.Pool column)\n");
  }
  fmt::print("pmap once started: {:.0f} items/s ({} items / (median {}-item run - median "
             "{}-item run))\n",
             items_per_s, items, 2 * items, items);
  return 0;
}
