// vm_bench: four workloads run by shapex in-process and, when installed, by Lua 5.4 and
// CPython as subprocesses, to compare interpreter speed as ratios measured in the same run.
//
//   vm_bench [--quick] [--reps N] [--json]
//
// Workloads: fib30 (recursive calls), numeric (integer/float loop), strbuild (f-strings into an
// array, joined), wordcount (split a generated text and count words in a hash map).
//
// shapex compiles once and times only the call of the workload function (setup such as building
// the word-count text is not timed). The peers get the same programs in a temp file and time the
// workload themselves (os.clock / time.perf_counter), so interpreter start-up is excluded. All
// three must produce the same checksum; a mismatch is an error (exit 1).
//
// Each workload runs N times (default 5; --quick: 1 rep and smaller sizes); the table shows the
// median and p99 (nearest rank, so the max for N < 100). No CPU pinning is done: run under
// `taskset -c 1` for steadier numbers ("pinned" in the JSON says whether the affinity mask was
// narrowed).
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sched.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "shapex/engine/compiler.h"
#include "shapex/engine/value.h"
#include "shapex/engine/verifier.h"
#include "shapex/engine/vm.h"

namespace {

using shapex::Status;
using shapex::engine::Value;

constexpr const char* kShapeSource = R"(
var text = ""

function fib(n) { if n < 2 { n } else { fib(n - 1) + fib(n - 2) } }
function bench_fib30(n) { fib(n) }

function bench_numeric(n) {
  var s = 0.0
  for i in 0..n { s = s + (i * i % 7) * 0.5 + 0.25 }
  int(s)
}

function bench_strbuild(n) {
  let parts = []
  for i in 0..n { parts.push(f"<{i}:{i % 7}>") }
  parts.join("").len()
}

function setup_wordcount(n) {
  let words = []
  for i in 0..n { words.push(f"w{(i * 7919) % 5003}") }
  text = words.join(" ")
  text.len()
}
function bench_wordcount(n) {
  let counts = {}
  for w in text.split(" ") {
    if counts.has(w) { counts[w] += 1 } else { counts[w] = 1 }
  }
  counts.len() * 1000000 + counts["w42"]
}
)";

constexpr const char* kLuaSource = R"(
local function fib(n) if n < 2 then return n end return fib(n - 1) + fib(n - 2) end
local text = ""
local W = {}
W.fib30 = function(n) return fib(n) end
W.numeric = function(n)
  local s = 0.0
  for i = 0, n - 1 do s = s + (i * i % 7) * 0.5 + 0.25 end
  return math.floor(s)
end
W.strbuild = function(n)
  local parts = {}
  for i = 0, n - 1 do parts[#parts + 1] = "<" .. i .. ":" .. (i % 7) .. ">" end
  return #table.concat(parts)
end
local function setup_wordcount(n)
  local words = {}
  for i = 0, n - 1 do words[#words + 1] = "w" .. ((i * 7919) % 5003) end
  text = table.concat(words, " ")
end
W.wordcount = function(n)
  local counts, distinct = {}, 0
  for w in text:gmatch("%S+") do
    local c = counts[w]
    if c then counts[w] = c + 1 else counts[w] = 1; distinct = distinct + 1 end
  end
  return distinct * 1000000 + counts["w42"]
end
local name, n, reps = arg[1], tonumber(arg[2]), tonumber(arg[3])
if name == "wordcount" then setup_wordcount(n) end
for _ = 1, reps do
  local t0 = os.clock()
  local r = W[name](n)
  local t1 = os.clock()
  print(string.format("RESULT %d", r))
  print(string.format("TIME %.9f", t1 - t0))
end
)";

constexpr const char* kPythonSource = R"(
import sys, time
def fib(n):
    return n if n < 2 else fib(n - 1) + fib(n - 2)
def numeric(n):
    s = 0.0
    for i in range(n):
        s = s + (i * i % 7) * 0.5 + 0.25
    return int(s)
def strbuild(n):
    parts = []
    for i in range(n):
        parts.append(f"<{i}:{i % 7}>")
    return len("".join(parts))
text = ""
def setup_wordcount(n):
    global text
    text = " ".join(f"w{(i * 7919) % 5003}" for i in range(n))
def wordcount(n):
    counts = {}
    for w in text.split(" "):
        if w in counts:
            counts[w] += 1
        else:
            counts[w] = 1
    return len(counts) * 1000000 + counts["w42"]
W = {"fib30": fib, "numeric": numeric, "strbuild": strbuild, "wordcount": wordcount}
name, n, reps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
if name == "wordcount":
    setup_wordcount(n)
for _ in range(reps):
    t0 = time.perf_counter()
    r = W[name](n)
    t1 = time.perf_counter()
    print(f"RESULT {r}")
    print(f"TIME {t1 - t0:.9f}")
)";

struct Workload {
  std::string name;
  int64_t full_n, quick_n;
};

const Workload kWorkloads[] = {
    {"fib30", 30, 20},
    {"numeric", 3'000'000, 100'000},
    {"strbuild", 200'000, 10'000},
    {"wordcount", 500'000, 20'000},
};

struct Stats {
  double median = 0, p99 = 0;
  std::string checksum;
  bool ok = false;
};

Stats Summarize(std::vector<double> times, std::string checksum) {
  Stats s;
  if (times.empty()) return s;
  std::sort(times.begin(), times.end());
  size_t n = times.size();
  s.median = n % 2 ? times[n / 2] : (times[n / 2 - 1] + times[n / 2]) / 2;
  size_t rank = static_cast<size_t>(std::ceil(0.99 * static_cast<double>(n)));
  s.p99 = times[std::max<size_t>(rank, 1) - 1];
  s.checksum = std::move(checksum);
  s.ok = true;
  return s;
}

std::optional<std::string> FindOnPath(const std::string& exe) {
  const char* path = std::getenv("PATH");
  if (path == nullptr) return std::nullopt;
  std::string p = path;
  size_t start = 0;
  while (start <= p.size()) {
    size_t end = p.find(':', start);
    if (end == std::string::npos) end = p.size();
    std::string candidate = p.substr(start, end - start) + "/" + exe;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

// Runs the workload in shapex; the program is compiled once by the caller.
Stats RunShapex(const shapex::engine::Program& program, const Workload& w, int64_t n, int reps,
                std::string* error) {
  shapex::engine::Vm vm(program, shapex::engine::Limits{});
  Value result;
  std::vector<Value> args{Value::Int(n)};
  if (w.name == "wordcount") {
    Status s = vm.CallByName("setup_wordcount", args, &result);
    if (!s.ok()) {
      *error = "shapex setup: " + s.ToString();
      return {};
    }
  }
  std::vector<double> times;
  std::string checksum;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    Status s = vm.CallByName("bench_" + w.name, args, &result);
    auto t1 = std::chrono::steady_clock::now();
    if (!s.ok()) {
      *error = "shapex: " + s.ToString();
      return {};
    }
    times.push_back(std::chrono::duration<double>(t1 - t0).count());
    checksum = shapex::engine::ValueToString(result);
  }
  return Summarize(times, checksum);
}

// Runs the workload in a peer interpreter; the script prints RESULT/TIME lines per rep.
Stats RunPeer(const std::string& interpreter, const std::string& script, const Workload& w,
              int64_t n, int reps, std::string* error) {
  std::string cmd = fmt::format("'{}' '{}' {} {} {} 2>&1", interpreter, script, w.name, n, reps);
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    *error = "cannot start " + interpreter;
    return {};
  }
  std::vector<double> times;
  std::string checksum, output;
  char line[4096];
  while (std::fgets(line, sizeof line, pipe) != nullptr) {
    std::string text = line;
    output += text;
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (text.rfind("RESULT ", 0) == 0) checksum = text.substr(7);
    if (text.rfind("TIME ", 0) == 0) times.push_back(std::strtod(text.c_str() + 5, nullptr));
  }
  int status = pclose(pipe);
  if (status != 0 || static_cast<int>(times.size()) != reps) {
    *error = fmt::format("{} failed (status {}):\n{}", interpreter, status, output);
    return {};
  }
  return Summarize(times, checksum);
}

bool Pinned() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return false;
  long online = sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 && CPU_COUNT(&set) < online;
}

struct Row {
  const Workload* w;
  int64_t n;
  Stats shapex;
  std::optional<Stats> lua, python;
};

std::string Ratio(const Stats& a, const std::optional<Stats>& b) {
  if (!b || b->median <= 0) return "-";
  return fmt::format("{:.2f}", a.median / b->median);
}

std::string Cell(const std::optional<Stats>& s) {
  if (!s) return "-";
  return fmt::format("{:.4f}/{:.4f}", s->median, s->p99);
}

int Usage() {
  std::fputs("usage: vm_bench [--quick] [--reps N] [--json]\n", stderr);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  bool quick = false, json = false;
  int reps = -1;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--quick")
      quick = true;
    else if (a == "--json")
      json = true;
    else if (a == "--reps" && i + 1 < argc)
      reps = std::atoi(argv[++i]);
    else
      return Usage();
  }
  if (reps < 0) reps = quick ? 1 : 5;
  if (reps < 1) return Usage();

  auto compiled = shapex::engine::Compile(kShapeSource, "vm_bench.shape");
  if (!compiled.has_value()) {
    std::fprintf(stderr, "bench program does not compile: %s\n",
                 compiled.error().ToString().c_str());
    return 1;
  }
  if (Status v = shapex::engine::Verify(**compiled); !v.ok()) {
    std::fprintf(stderr, "bench program does not verify: %s\n", v.ToString().c_str());
    return 1;
  }

  std::optional<std::string> lua = FindOnPath("lua5.4"), python = FindOnPath("python3");
  char dir_template[] = "/tmp/shapex-bench-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) {
    std::perror("mkdtemp");
    return 1;
  }
  std::filesystem::path dir = dir_template;
  std::string lua_script = (dir / "bench.lua").string(), py_script = (dir / "bench.py").string();
  std::ofstream(lua_script) << kLuaSource;
  std::ofstream(py_script) << kPythonSource;

  std::vector<Row> rows;
  bool failed = false;
  for (const Workload& w : kWorkloads) {
    Row row{&w, quick ? w.quick_n : w.full_n, {}, std::nullopt, std::nullopt};
    std::string error;
    row.shapex = RunShapex(**compiled, w, row.n, reps, &error);
    if (!row.shapex.ok) {
      std::fprintf(stderr, "%s: %s\n", w.name.c_str(), error.c_str());
      failed = true;
      continue;
    }
    auto peer = [&](const std::optional<std::string>& exe, const std::string& script,
                    std::optional<Stats>* out) {
      if (!exe) return;
      Stats s = RunPeer(*exe, script, w, row.n, reps, &error);
      if (!s.ok) {
        std::fprintf(stderr, "%s: %s\n", w.name.c_str(), error.c_str());
        failed = true;
        return;
      }
      if (s.checksum != row.shapex.checksum) {
        std::fprintf(stderr, "%s: checksum mismatch: shapex %s, %s %s\n", w.name.c_str(),
                     row.shapex.checksum.c_str(), exe->c_str(), s.checksum.c_str());
        failed = true;
      }
      *out = s;
    };
    peer(lua, lua_script, &row.lua);
    peer(python, py_script, &row.python);
    rows.push_back(std::move(row));
  }
  std::filesystem::remove_all(dir);

  bool pinned = Pinned();
  if (json) {
    using Json = nlohmann::ordered_json;
    Json report = Json::object();
    for (const Row& r : rows) {
      report[r.w->name + std::string("_shapex_s")] = r.shapex.median;
      if (r.lua) report[r.w->name + std::string("_vs_lua")] = r.shapex.median / r.lua->median;
      if (r.python)
        report[r.w->name + std::string("_vs_cpython")] = r.shapex.median / r.python->median;
    }
    report["reps"] = reps;
    report["quick"] = quick;
    report["pinned"] = pinned;
    std::puts(report.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
  } else {
    fmt::print("shapex VM benchmark ({} rep{}, {} sizes); times in seconds, median/p99\n", reps,
               reps == 1 ? "" : "s", quick ? "quick" : "full");
    fmt::print("{:<10} {:>9}  {:>15}  {:>15}  {:>15}  {:>10}  {:>14}  {}\n", "workload", "n",
               "shapex", "lua5.4", "cpython", "shapex/lua", "shapex/cpython", "checksum");
    for (const Row& r : rows)
      fmt::print("{:<10} {:>9}  {:>15}  {:>15}  {:>15}  {:>10}  {:>14}  {}\n", r.w->name, r.n,
                 Cell(r.shapex), Cell(r.lua), Cell(r.python), Ratio(r.shapex, r.lua),
                 Ratio(r.shapex, r.python), r.shapex.checksum);
    if (!lua) fmt::print("lua5.4 not found: Lua columns omitted\n");
    if (!python) fmt::print("python3 not found: CPython columns omitted\n");
    fmt::print("{}\n", pinned ? "CPU affinity is narrowed (pinned)"
                              : "not pinned: no CPU pinning is done unless run under taskset");
  }
  return failed ? 1 : 0;
}
