// vm_bench: the Benchmarks Game classics (issue 14) run as whole processes by shapex, Lua 5.4
// and CPython, plus a typed-array dot product timed in-process against a C loop.
//
//   vm_bench [--quick] [--rounds N] [--json] [--clock cpu|wall] [--only K1,K2]
//            [--programs DIR] [--shapex PATH] [--lua PATH] [--python PATH]
//
// Kernels: nbody, spectral_norm, binary_trees, fannkuch_redux, mandelbrot, k_nucleotide,
// richards, fib, and `startup` (an empty program, outside the geomeans). Each is one program per language in tools/bench/vm/ (KERNEL.shape,
// KERNEL.lua, KERNEL.py: the same algorithm, written to print the same bytes), run as
// `shapex run KERNEL.shape -- N`, `lua5.4 KERNEL.lua N` and `python3 KERNEL.py N`, so start-up,
// compilation and teardown count for every interpreter alike. Every run's stdout must equal
// the first one's for that kernel; a difference or a failing run is an error (exit 1).
//
// Rounds are interleaved: round r runs, for each kernel in turn, shapex, Lua, then CPython.
// Default 5 rounds (--quick: 1 round at small sizes, a smoke test). The table shows per
// kernel the median and p99 (nearest rank, so the max for fewer than 100 rounds) and the
// ratios shapex ÷ peer of the medians, with their geometric means.
//
// --clock cpu (default) measures the child's user + system CPU time (wait4's rusage); --clock
// wall measures spawn-to-exit wall time. On a shared machine wall time also counts the time a
// process waits for the CPU, so CPU time gives steadier ratios; the JSON carries both.
//
// dot: vm/dot.shape fills two Vec<f64> of 10 M elements (--quick: 100 k) once, then every
// round times, in this process, its `dot_loop` (an explicit `for` loop), its `dot_native`
// (`a.dot(b)`) and DotLoopC (vm_bench_dot.cc, -O2) over bit-identical data; the three sums must
// be equal. dot_vs_c is the loop's median over C's.
//
// No CPU pinning is done here: run under `taskset -c 1` ("pinned" in the JSON says whether the
// affinity mask is narrower than the online CPUs). Children inherit the mask.
#include <fcntl.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sched.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "shapex/engine/compiler.h"
#include "shapex/engine/value.h"
#include "shapex/engine/verifier.h"
#include "shapex/engine/vm.h"
#include "tools/bench/vm_bench_dot.h"

extern char** environ;

namespace {

using shapex::Status;
using shapex::engine::Value;
using Json = nlohmann::ordered_json;

struct Kernel {
  const char* name;
  int64_t full_n, quick_n;
  bool in_geomean = true;
};

// Full sizes make Lua 5.4 take at least ~0.5 s of CPU on the project VM.
constexpr Kernel kKernels[] = {
    {"nbody", 300'000, 1'000},      {"spectral_norm", 600, 60},
    {"binary_trees", 14, 6},        {"fannkuch_redux", 10, 7},
    {"mandelbrot", 1'000, 64},      {"k_nucleotide", 300'000, 5'000},
    {"richards", 350'000, 2'000},   {"fib", 36, 20},
    // An empty program: start-up, compile and exit cost alone; shown, not in the geomeans.
    {"startup", 0, 0, false},
};
constexpr int64_t kDotFull = 10'000'000, kDotQuick = 100'000;

enum Lang { kShapex, kLua, kPython, kLangs };
constexpr const char* kLangName[kLangs] = {"shapex", "lua", "cpython"};
constexpr const char* kLangExt[kLangs] = {"shape", "lua", "py"};

struct Stats {
  double median = 0, p99 = 0;
};

Stats Summarize(std::vector<double> v) {
  Stats s;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
  size_t rank = static_cast<size_t>(std::ceil(0.99 * static_cast<double>(n)));
  s.p99 = v[std::max<size_t>(rank, 1) - 1];
  return s;
}

std::optional<std::string> FindOnPath(const std::string& exe) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    std::string candidate = (dir.empty() ? "." : dir) + "/" + exe;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return std::nullopt;
}

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct ProcessRun {
  bool ok = false;  // started and exited with status 0
  double wall = 0, cpu = 0;
  std::string out, error;
};

// Runs argv[0] (a path) with stdin from /dev/null and stdout/stderr into files in `tmp`;
// measures wall time from spawn to reaping and the child's user + system CPU time.
ProcessRun RunProcess(const std::vector<std::string>& argv, const std::filesystem::path& tmp) {
  ProcessRun run;
  std::string out_path = (tmp / "stdout").string(), err_path = (tmp / "stderr").string();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0600);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  auto t0 = std::chrono::steady_clock::now();
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    run.error = fmt::format("cannot start {}: {}", argv[0], std::strerror(rc));
    return run;
  }
  int status = 0;
  struct rusage usage {};
  while (wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  auto t1 = std::chrono::steady_clock::now();
  run.wall = std::chrono::duration<double>(t1 - t0).count();
  auto seconds = [](const timeval& tv) { return tv.tv_sec + tv.tv_usec / 1e6; };
  run.cpu = seconds(usage.ru_utime) + seconds(usage.ru_stime);
  run.out = ReadFile(out_path);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string cmd;
    for (const std::string& a : argv) cmd += (cmd.empty() ? "" : " ") + a;
    run.error = fmt::format("`{}` failed (wait status {}):\n{}", cmd, status,
                            ReadFile(err_path).substr(0, 4000));
    return run;
  }
  run.ok = true;
  return run;
}

// Where two outputs first differ, for the mismatch message.
std::string FirstDifference(const std::string& a, const std::string& b) {
  std::stringstream sa(a), sb(b);
  std::string la, lb;
  for (int line = 1;; ++line) {
    bool ha = static_cast<bool>(std::getline(sa, la)), hb = static_cast<bool>(std::getline(sb, lb));
    if (!ha && !hb) return "outputs differ";
    if (!ha || !hb || la != lb)
      return fmt::format("line {}: '{}' vs '{}'", line, ha ? la : "<end>", hb ? lb : "<end>");
  }
}

struct Options {
  bool quick = false, json = false;
  int rounds = -1;
  std::string clock = "cpu", only, programs = SHAPEX_VM_PROGRAMS, shapex = SHAPEX_BIN, lua,
              python;
};

// In-process dot product: the Shape loop, the Shape native and the C loop, timed per round.
class DotBench {
 public:
  bool Setup(const Options& o, int64_t n, std::string* error) {
    std::string file = (std::filesystem::path(o.programs) / "dot.shape").string();
    auto compiled = shapex::engine::Compile(ReadFile(file), file);
    if (!compiled.has_value()) {
      *error = "dot.shape: " + compiled.error().ToString();
      return false;
    }
    program_ = std::move(*compiled);
    if (Status v = shapex::engine::Verify(*program_); !v.ok()) {
      *error = "dot.shape does not verify: " + v.ToString();
      return false;
    }
    shapex::engine::Limits limits;
    limits.memory = size_t{4} << 30;
    vm_.emplace(*program_, limits);
    Value result;
    if (Status s = vm_->CallByName("setup", {Value::Int(n)}, &result); !s.ok()) {
      *error = "dot.shape setup: " + s.ToString();
      return false;
    }
    a_.resize(static_cast<size_t>(n));
    b_.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) {
      a_[static_cast<size_t>(i)] = static_cast<double>(i % 7) * 0.5;
      b_[static_cast<size_t>(i)] = static_cast<double>(i % 5) * 0.25;
    }
    cpu_clock_ = o.clock == "cpu";
    return true;
  }

  bool Round(std::string* error) {
    double loop = 0, native = 0, c = 0;
    if (!TimeShape("dot_loop", &loop_s_, &loop, error) ||
        !TimeShape("dot_native", &native_s_, &native, error))
      return false;
    double t0 = Now();
    c = bench::DotLoopC(a_.data(), b_.data(), a_.size());
    c_s_.push_back(Now() - t0);
    if (loop != c || native != c) {
      *error = fmt::format("dot: shapex loop {}, shapex native {}, C {}", loop, native, c);
      return false;
    }
    sum_ = c;
    return true;
  }

  std::vector<double> loop_s_, native_s_, c_s_;
  double sum_ = 0;

 private:
  double Now() const {
    if (!cpu_clock_)
      return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
          .count();
    timespec ts{};
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) / 1e9;
  }

  bool TimeShape(const char* fn, std::vector<double>* times, double* sum, std::string* error) {
    Value result;
    double t0 = Now();
    Status s = vm_->CallByName(fn, {}, &result);
    times->push_back(Now() - t0);
    if (!s.ok() || !result.IsNumber()) {
      *error = fmt::format("dot.shape {}: {}", fn, s.ok() ? "not a number" : s.ToString());
      return false;
    }
    *sum = result.AsDouble();
    return true;
  }

  std::unique_ptr<shapex::engine::Program> program_;
  std::optional<shapex::engine::Vm> vm_;
  std::vector<double> a_, b_;
  bool cpu_clock_ = true;
};

struct KernelResult {
  const Kernel* kernel = nullptr;
  int64_t n = 0;
  bool failed = false;
  std::string reference;  // the first run's stdout
  std::vector<double> cpu[kLangs], wall[kLangs];
  bool has[kLangs] = {};
};

int CpusAllowed() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
  return CPU_COUNT(&set);
}

Json Host() {
  char name[256] = {};
  gethostname(name, sizeof name - 1);
  utsname u{};
  uname(&u);
  std::string cpu_model;
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0) {
      cpu_model = line.substr(line.find(':') + 2);
      break;
    }
  }
  return {{"hostname", name},
          {"kernel", fmt::format("{} {} {}", u.sysname, u.release, u.machine)},
          {"cpu", cpu_model},
          {"cpus_online", sysconf(_SC_NPROCESSORS_ONLN)},
          {"cpus_allowed", CpusAllowed()}};
}

double Geomean(const std::vector<double>& v) {
  if (v.empty()) return 0;
  double log_sum = 0;
  for (double x : v) log_sum += std::log(x);
  return std::exp(log_sum / static_cast<double>(v.size()));
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"shapex vs Lua 5.4 vs CPython on the Benchmarks Game classics (issue 14)"};
  app.add_flag("--quick", o.quick, "small sizes, 1 round (a smoke test)");
  app.add_flag("--json", o.json, "print one JSON object instead of the table");
  app.add_option("--rounds,--reps", o.rounds, "interleaved rounds (default 5; --quick: 1)");
  app.add_option("--clock", o.clock, "cpu (child user+system CPU time) or wall")
      ->check(CLI::IsMember({"cpu", "wall"}));
  app.add_option("--only", o.only, "comma-separated kernels to run (dot included as `dot`)");
  app.add_option("--programs", o.programs, "directory with KERNEL.shape/.lua/.py");
  app.add_option("--shapex", o.shapex, "the shapex binary");
  app.add_option("--lua", o.lua, "the Lua 5.4 interpreter (default: lua5.4 on PATH)");
  app.add_option("--python", o.python, "the CPython interpreter (default: python3 on PATH)");
  CLI11_PARSE(app, argc, argv);
  if (o.rounds < 0) o.rounds = o.quick ? 1 : 5;
  if (o.rounds < 1) {
    std::fputs("--rounds must be at least 1\n", stderr);
    return 2;
  }
  auto selected = [&](const std::string& name) {
    return o.only.empty() || ("," + o.only + ",").find("," + name + ",") != std::string::npos;
  };
  std::stringstream only(o.only);
  for (std::string name; std::getline(only, name, ',');) {
    bool known = name == "dot";
    for (const Kernel& k : kKernels) known = known || name == k.name;
    if (!known) {
      std::fprintf(stderr, "--only: unknown kernel '%s'\n", name.c_str());
      return 2;
    }
  }

  std::optional<std::string> exe[kLangs] = {o.shapex, std::nullopt, std::nullopt};
  exe[kLua] = o.lua.empty() ? FindOnPath("lua5.4") : std::optional<std::string>(o.lua);
  exe[kPython] = o.python.empty() ? FindOnPath("python3") : std::optional<std::string>(o.python);
  if (access(o.shapex.c_str(), X_OK) != 0) {
    std::fprintf(stderr, "shapex binary not found at %s (build the `shapex` target)\n",
                 o.shapex.c_str());
    return 1;
  }

  char dir_template[] = "/tmp/shapex-vm-bench-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  std::filesystem::path tmp = dir_template;
  bool failed = false;

  std::vector<KernelResult> results;
  for (const Kernel& k : kKernels)
    if (selected(k.name)) {
      KernelResult r;
      r.kernel = &k;
      r.n = o.quick ? k.quick_n : k.full_n;
      results.push_back(std::move(r));
    }
  int64_t dot_n = o.quick ? kDotQuick : kDotFull;
  DotBench dot;
  bool run_dot = selected("dot");
  std::string error;
  if (run_dot && !dot.Setup(o, dot_n, &error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    failed = true;
    run_dot = false;
  }

  for (int round = 0; round < o.rounds; ++round) {
    for (KernelResult& r : results) {
      for (int lang = 0; lang < kLangs && !r.failed; ++lang) {
        if (!exe[lang]) continue;
        std::filesystem::path program =
            std::filesystem::path(o.programs) / fmt::format("{}.{}", r.kernel->name, kLangExt[lang]);
        std::vector<std::string> cmd = {*exe[lang]};
        if (lang == kShapex) cmd.push_back("run");
        cmd.push_back(program.string());
        if (lang == kShapex) cmd.push_back("--");
        cmd.push_back(std::to_string(r.n));
        ProcessRun run = RunProcess(cmd, tmp);
        if (!run.ok) {
          std::fprintf(stderr, "%s (%s): %s\n", r.kernel->name, kLangName[lang], run.error.c_str());
          r.failed = failed = true;
          break;
        }
        if (r.reference.empty()) r.reference = run.out;
        if (run.out != r.reference) {
          std::fprintf(stderr, "%s: %s prints something else than the first run: %s\n",
                       r.kernel->name, kLangName[lang],
                       FirstDifference(r.reference, run.out).c_str());
          r.failed = failed = true;
          break;
        }
        r.cpu[lang].push_back(run.cpu);
        r.wall[lang].push_back(run.wall);
        r.has[lang] = true;
      }
    }
    if (run_dot && !dot.Round(&error)) {
      std::fprintf(stderr, "%s\n", error.c_str());
      failed = true;
      run_dot = false;
    }
  }
  std::filesystem::remove_all(tmp);

  bool use_cpu = o.clock == "cpu";
  auto stats = [&](const KernelResult& r, int lang) {
    return Summarize(use_cpu ? r.cpu[lang] : r.wall[lang]);
  };
  Json median = Json::object(), p99 = Json::object(), wall_median = Json::object(),
       cpu_median = Json::object(), vs_lua = Json::object(), vs_cpython = Json::object(),
       sizes = Json::object();
  std::vector<double> lua_ratios, python_ratios;
  for (const KernelResult& r : results) {
    sizes[r.kernel->name] = r.n;
    if (r.failed) continue;
    for (int lang = 0; lang < kLangs; ++lang) {
      if (!r.has[lang]) continue;
      median[kLangName[lang]][r.kernel->name] = stats(r, lang).median;
      p99[kLangName[lang]][r.kernel->name] = stats(r, lang).p99;
      wall_median[kLangName[lang]][r.kernel->name] = Summarize(r.wall[lang]).median;
      cpu_median[kLangName[lang]][r.kernel->name] = Summarize(r.cpu[lang]).median;
    }
    double shape = stats(r, kShapex).median;
    if (r.has[kLua] && stats(r, kLua).median > 0) {
      vs_lua[r.kernel->name] = shape / stats(r, kLua).median;
      if (r.kernel->in_geomean) lua_ratios.push_back(shape / stats(r, kLua).median);
    }
    if (r.has[kPython] && stats(r, kPython).median > 0) {
      vs_cpython[r.kernel->name] = shape / stats(r, kPython).median;
      if (r.kernel->in_geomean) python_ratios.push_back(shape / stats(r, kPython).median);
    }
  }
  Stats dot_loop = Summarize(dot.loop_s_), dot_native = Summarize(dot.native_s_),
        dot_c = Summarize(dot.c_s_);
  bool have_dot = !dot.c_s_.empty() && dot_c.median > 0;
  bool pinned = CpusAllowed() > 0 && CpusAllowed() < sysconf(_SC_NPROCESSORS_ONLN);

  if (o.json) {
    Json report = {{"host", Host()},
                   {"pinned", pinned},
                   {"rounds", o.rounds},
                   {"quick", o.quick},
                   {"clock", o.clock},
                   {"sizes", sizes},
                   {"medians", median},
                   {"p99", p99},
                   {"cpu_medians", cpu_median},
                   {"wall_medians", wall_median},
                   {"ratio_vs_lua", vs_lua},
                   {"ratio_vs_cpython", vs_cpython},
                   {"geomean_vs_lua", Geomean(lua_ratios)},
                   {"geomean_vs_cpython", Geomean(python_ratios)}};
    if (have_dot) {
      report["dot_n"] = dot_n;
      report["dot_shapex_loop_s"] = dot_loop.median;
      report["dot_shapex_native_s"] = dot_native.median;
      report["dot_c_s"] = dot_c.median;
      report["dot_vs_c"] = dot_loop.median / dot_c.median;
      report["dot_native_vs_c"] = dot_native.median / dot_c.median;
    }
    std::puts(report.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
    return failed ? 1 : 0;
  }

  fmt::print("shapex VM benchmark: {} round{}, {} sizes, {} time in seconds (median / p99), "
             "whole processes\n",
             o.rounds, o.rounds == 1 ? "" : "s", o.quick ? "quick" : "full",
             use_cpu ? "CPU (user+sys)" : "wall");
  fmt::print("{:<15} {:>8}  {:>15}  {:>15}  {:>15}  {:>6}  {:>8}\n", "kernel", "n", "shapex",
             "lua5.4", "cpython", "÷ lua", "÷ cpython");
  auto cell = [&](const KernelResult& r, int lang) {
    if (!r.has[lang]) return std::string("-");
    Stats s = stats(r, lang);
    return fmt::format("{:.3f} / {:.3f}", s.median, s.p99);
  };
  auto ratio = [&](const KernelResult& r, int lang) {
    if (!r.has[lang] || !r.has[kShapex] || stats(r, lang).median <= 0) return std::string("-");
    return fmt::format("{:.2f}", stats(r, kShapex).median / stats(r, lang).median);
  };
  for (const KernelResult& r : results) {
    if (r.failed) {
      fmt::print("{:<15} {:>8}  FAILED\n", r.kernel->name, r.n);
      continue;
    }
    fmt::print("{:<15} {:>8}  {:>15}  {:>15}  {:>15}  {:>6}  {:>8}\n", r.kernel->name, r.n,
               cell(r, kShapex), cell(r, kLua), cell(r, kPython), ratio(r, kLua),
               ratio(r, kPython));
  }
  if (!lua_ratios.empty() || !python_ratios.empty()) {
    fmt::print("{:<15} {:>8}  {:>15}  {:>15}  {:>15}  {:>6.2f}  {:>8.2f}\n",
               "geomean", "", "", "", "", Geomean(lua_ratios),
               Geomean(python_ratios));
    fmt::print("(geomean over the kernels, startup excluded; ratios are shapex ÷ peer)\n");
  }
  if (have_dot)
    fmt::print("\ndot of two Vec<f64>, n = {} (in-process): shapex for-loop {:.4f} / {:.4f}, "
               "shapex .dot() {:.4f}, C -O2 loop {:.4f}: loop ÷ C = {:.1f}, .dot() ÷ C = {:.2f}\n",
               dot_n, dot_loop.median, dot_loop.p99, dot_native.median, dot_c.median,
               dot_loop.median / dot_c.median, dot_native.median / dot_c.median);
  if (!exe[kLua]) fmt::print("lua5.4 not found: Lua columns omitted\n");
  if (!exe[kPython]) fmt::print("python3 not found: CPython columns omitted\n");
  fmt::print("{}\n", pinned ? "CPU affinity is narrowed (pinned)"
                            : "not pinned: run under `taskset -c 1` for steadier numbers");
  return failed ? 1 : 0;
}
