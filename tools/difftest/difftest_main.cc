// shapex_difftest: differential testing of local against remote execution (issue 12, Build 5).
//
//   shapex_difftest [--seed S] [--count N] [--seconds T] [-j J] [--out DIR] [--shapex BIN]
//                   [--runner inprocess|process]
//
// For seeds S, S+1, ... it generates a program (program_generator.h), runs it three ways
// (`shapex run --local`, `shapex run` over the call ring, `shapex run --transport=socket`)
// against one private supervisor, in this process through the CLI's own `run` code (the
// default) or as real `shapex run` processes (`--runner process`; runner.h), and compares stdout, stderr and exit code of the three runs
// byte for byte. Every differing program is written to DIR/diff-<seed>/ with the three outputs;
// a program the compiler rejects is a generator bug, counted and written to
// DIR/compile-error-<seed>/. It stops after N programs or T seconds, whichever comes first
// (the seeds run are always one contiguous range, printed at the end so runs add up across
// sessions), prints a summary, and exits 1 if any program differed or failed to compile, or any
// run timed out or was a usage error.
#include <sys/resource.h>
#include <sys/stat.h>

#include <signal.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "private_supervisor.h"
#include "program_generator.h"
#include "runner.h"

namespace shapex::difftest {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr Mode kModes[] = {Mode::kLocal, Mode::kRing, Mode::kSocket};
constexpr int kCompileErrorExit = 65;
constexpr int kUsageErrorExit = 2;

struct Options {
  uint64_t seed = 1;
  uint64_t count = 100;  // 0: until --seconds
  double seconds = 0;    // 0: no time budget
  int jobs = 2;
  std::string out_dir = "difftest-out";
  std::string shapex = SHAPEX_BIN;
  std::string runner = "inprocess";
  double run_timeout = 30;
  bool verbose = false;
  GeneratorOptions generator;
};

struct Stats {
  uint64_t programs = 0;
  uint64_t differences = 0;
  uint64_t compile_errors = 0;
  uint64_t harness_failures = 0;  // a run could not start, or was a usage error (exit 2)
  uint64_t timeouts = 0;          // a run exceeded --run-timeout: the generator promised an end
  uint64_t errored = 0;  // programs whose local run ended in a runtime error (expected)
  std::map<std::string, std::vector<uint64_t>> causes;  // summary key -> seeds
};

std::string FirstLine(const std::string& s) {
  std::string line = s.substr(0, s.find('\n'));
  return line.size() > 110 ? line.substr(0, 110) + "..." : line;
}

// For the summary only (never for the comparison): digits and hex runs folded, so one cause
// is one line.
std::string Fold(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    if (std::isxdigit(static_cast<unsigned char>(s[i]))) {
      size_t j = i;
      bool digit = false;
      while (j < s.size() && std::isxdigit(static_cast<unsigned char>(s[j]))) {
        digit |= std::isdigit(static_cast<unsigned char>(s[j])) != 0;
        ++j;
      }
      if (digit && (j - i >= 8 || std::all_of(s.begin() + static_cast<long>(i),
                                              s.begin() + static_cast<long>(j),
                                              [](char c) { return std::isdigit(c); }))) {
        out += 'N';
        i = j;
        continue;
      }
      out.append(s, i, j - i);
      i = j;
      continue;
    }
    out += s[i++];
  }
  return out;
}

// Which parts of b differ from a: "stdout", "stderr", "exit".
std::string DifferingParts(const RunOutcome& a, const RunOutcome& b) {
  std::string parts;
  auto add = [&](const char* p) { parts += (parts.empty() ? "" : ",") + std::string(p); };
  if (a.out != b.out) add("stdout");
  if (a.err != b.err) add("stderr");
  if (a.exit_code != b.exit_code || a.timed_out != b.timed_out) add("exit");
  return parts;
}

// The first line where two texts differ, as "-local / +remote".
std::string FirstDifference(const std::string& a, const std::string& b) {
  size_t i = 0;
  while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
  size_t start = a.rfind('\n', i == 0 ? 0 : i - 1);
  start = start == std::string::npos ? 0 : start + 1;
  return FirstLine(a.substr(std::min(start, a.size()))) + " | " +
         FirstLine(b.substr(std::min(start, b.size())));
}

// User + system time of this process and its waited-for children.
double CpuSeconds() {
  double total = 0;
  for (int who : {RUSAGE_SELF, RUSAGE_CHILDREN}) {
    struct rusage u {};
    if (getrusage(who, &u) != 0) continue;
    total += static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
             static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
  }
  return total;
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

void SaveRuns(const fs::path& dir, const GeneratedProgram& p, const std::string& file,
              const RunOutcome (&runs)[3], const std::string& summary) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  WriteFile(dir / file, p.source);
  std::string flags;
  for (const auto& f : p.flags) flags += " " + f;
  std::string readme = "seed " + std::to_string(p.seed) + "\n" + summary + "\nreproduce:\n";
  for (Mode m : kModes) {
    const RunOutcome& r = runs[static_cast<int>(m)];
    std::string base = ModeName(m);
    WriteFile(dir / (base + ".out"), r.out);
    WriteFile(dir / (base + ".err"), r.err);
    WriteFile(dir / (base + ".rc"),
              (r.timed_out ? std::string("timeout\n") : std::to_string(r.exit_code) + "\n"));
    readme += std::string("  shapex run ") + file + flags +
              (m == Mode::kLocal ? " --local" : m == Mode::kSocket ? " --transport=socket" : "") +
              "\n";
  }
  WriteFile(dir / "README", readme);
}

class Driver {
 public:
  explicit Driver(const Options& o) : o_(o) {
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(o.run_timeout * 1000));
    if (o.runner == "process") {
      runner_ = std::make_unique<ProcessRunner>(o.shapex, timeout);
    } else {
      runner_ = std::make_unique<InProcessRunner>(o.shapex, timeout);
    }
  }

  int Run();

 private:
  void Worker(int index, const fs::path& dir);
  void Check(uint64_t seed, const fs::path& dir);

  Options o_;
  std::unique_ptr<Runner> runner_;
  std::atomic<uint64_t> next_{0};
  std::atomic<bool> stop_{false};
  Clock::time_point deadline_;
  std::mutex mu_;
  Stats stats_;
};

void Driver::Check(uint64_t seed, const fs::path& dir) {
  GeneratedProgram p = GenerateProgram(seed, o_.generator);
  const std::string file = "p" + std::to_string(seed) + ".shape";
  WriteFile(dir / file, p.source);
  RunOutcome runs[3];
  for (Mode m : kModes) {
    runs[static_cast<int>(m)] = runner_->Run({dir.string(), file, p.source, p.flags, m});
  }
  std::error_code ec;
  fs::remove(dir / file, ec);

  const RunOutcome& local = runs[0];
  std::string line;
  std::lock_guard<std::mutex> lock(mu_);
  ++stats_.programs;
  for (const RunOutcome& r : runs) {
    if (!r.spawn_error.empty()) {
      ++stats_.harness_failures;
      std::printf("seed %llu: HARNESS FAILURE: %s\n", static_cast<unsigned long long>(seed),
                  r.spawn_error.c_str());
      return;
    }
  }
  // Agreeing on a usage error or a timeout proves nothing: both are failures of their own.
  if (local.exit_code == kUsageErrorExit) {
    ++stats_.harness_failures;
    std::printf("seed %llu: USAGE ERROR: %s\n", static_cast<unsigned long long>(seed),
                FirstLine(local.err).c_str());
  }
  for (Mode m : kModes) {
    if (!runs[static_cast<int>(m)].timed_out) continue;
    ++stats_.timeouts;
    SaveRuns(fs::path(o_.out_dir) / ("timeout-" + std::to_string(seed)), p, file, runs,
             std::string("timed out: ") + ModeName(m));
    std::printf("seed %llu: TIMEOUT (%s)\n", static_cast<unsigned long long>(seed), ModeName(m));
  }
  if (local.exit_code == kCompileErrorExit) {
    ++stats_.compile_errors;
    SaveRuns(fs::path(o_.out_dir) / ("compile-error-" + std::to_string(seed)), p, file, runs,
             "generator compile error: " + FirstLine(local.err));
    std::printf("seed %llu: GENERATOR COMPILE ERROR: %s\n", static_cast<unsigned long long>(seed),
                FirstLine(local.err).c_str());
  }
  if (local.exit_code != 0) ++stats_.errored;
  // A run cut off at the run limit has no result to compare (what it printed depends on how
  // far it got): when every mode was cut off, the program is a timeout (counted above), not a
  // difference. One mode cut off and another not is still reported as a difference.
  if (std::all_of(std::begin(runs), std::end(runs), [](const RunOutcome& r) { return r.timed_out; }))
    return;
  const bool same = local.SameAs(runs[1]) && local.SameAs(runs[2]);
  if (same) {
    if (o_.verbose) {
      std::printf("seed %llu: same (exit %d)\n", static_cast<unsigned long long>(seed),
                  local.exit_code);
    }
    return;
  }
  ++stats_.differences;
  std::string summary;
  std::string key;
  for (int i = 1; i < 3; ++i) {
    std::string parts = DifferingParts(local, runs[i]);
    if (parts.empty()) continue;
    const RunOutcome& r = runs[i];
    std::string what;
    if (r.timed_out || local.timed_out) {
      what = std::string("timeout (") + (local.timed_out ? "local" : ModeName(kModes[i])) + ")";
    } else if (local.err != r.err) {
      what = FirstDifference(local.err, r.err);
    } else if (local.out != r.out) {
      what = "stdout: " + FirstDifference(local.out, r.out);
    } else {
      what = "exit " + std::to_string(local.exit_code) + " vs " + std::to_string(r.exit_code);
    }
    summary += std::string(ModeName(kModes[i])) + " [" + parts + "]: " + what + "\n";
    if (key.empty()) key = std::string("[") + parts + "] " + Fold(what);
  }
  if (key.empty()) key = "ring vs socket only";
  stats_.causes[key].push_back(seed);
  SaveRuns(fs::path(o_.out_dir) / ("diff-" + std::to_string(seed)), p, file, runs, summary);
  std::printf("seed %llu: DIFF\n%s", static_cast<unsigned long long>(seed), summary.c_str());
  std::fflush(stdout);
}

void Driver::Worker(int index, const fs::path& dir) {
  (void)index;
  while (!stop_.load()) {
    if (o_.seconds > 0 && Clock::now() >= deadline_) break;
    uint64_t i = next_.fetch_add(1);
    if (o_.count > 0 && i >= o_.count) {
      next_.fetch_sub(1);  // not issued
      break;
    }
    Check(o_.seed + i, dir);
  }
}

int Driver::Run() {
  std::error_code ec;
  fs::create_directories(o_.out_dir, ec);
  if (ec) {
    std::fprintf(stderr, "cannot create %s: %s\n", o_.out_dir.c_str(), ec.message().c_str());
    return 2;
  }
  // A pool larger than the number of workers: each `shapex run` may hold pool - 1 executors.
  PrivateSupervisor supervisor(o_.shapex, std::max(2, o_.jobs + 1));
  std::string error;
  if (!supervisor.Start(&error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    return 2;
  }
  std::vector<fs::path> dirs;
  for (int i = 0; i < o_.jobs; ++i) {
    dirs.push_back(fs::path(supervisor.dir()) / ("w" + std::to_string(i)));
    fs::create_directories(dirs.back(), ec);
  }
  const auto start = Clock::now();
  deadline_ = start + std::chrono::milliseconds(static_cast<int64_t>(o_.seconds * 1000));
  std::printf("shapex_difftest: seeds from %llu, %s, %d workers, %s runner, shapex %s\n",
              static_cast<unsigned long long>(o_.seed),
              o_.count > 0 ? (std::to_string(o_.count) + " programs").c_str() : "no count",
              o_.jobs, o_.runner.c_str(), o_.shapex.c_str());
  std::fflush(stdout);
  std::vector<std::thread> workers;
  for (int i = 0; i < o_.jobs; ++i) workers.emplace_back([this, i, &dirs] { Worker(i, dirs[static_cast<size_t>(i)]); });
  for (auto& t : workers) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  supervisor.Stop();

  const uint64_t issued = next_.load();
  std::printf("\n== summary ==\n");
  std::printf("seeds run:                 [%llu, %llu) of generator v%d%s\n",
              static_cast<unsigned long long>(o_.seed),
              static_cast<unsigned long long>(o_.seed + issued), kGeneratorVersion,
              o_.generator.mutation ? "" : " --no-mutation");
  std::printf("programs run:              %llu (each three ways)\n",
              static_cast<unsigned long long>(stats_.programs));
  std::printf("ended in a runtime error:  %llu (locally; part of the test)\n",
              static_cast<unsigned long long>(stats_.errored));
  std::printf("differences:               %llu\n", static_cast<unsigned long long>(stats_.differences));
  std::printf("generator compile errors:  %llu\n", static_cast<unsigned long long>(stats_.compile_errors));
  std::printf("harness failures:          %llu\n", static_cast<unsigned long long>(stats_.harness_failures));
  std::printf("runs timed out:            %llu\n", static_cast<unsigned long long>(stats_.timeouts));
  std::printf("elapsed:                   %.1f s, %.2f programs/s\n", elapsed,
              elapsed > 0 ? static_cast<double>(stats_.programs) / elapsed : 0.0);
  // Worker-seconds are what "CPU-hours" of a run means here; the CPU this process and its
  // children used is printed beside it (the supervisor and its executors are not children).
  std::printf("worker time:               %.0f s (%d workers); driver CPU %.0f s\n",
              elapsed * o_.jobs, o_.jobs, CpuSeconds());
  if (!stats_.causes.empty()) {
    std::printf("differences by first differing line (folded; programs in %s/diff-SEED/):\n",
                o_.out_dir.c_str());
    std::vector<std::pair<std::string, std::vector<uint64_t>>> causes(stats_.causes.begin(),
                                                                     stats_.causes.end());
    std::sort(causes.begin(), causes.end(),
              [](const auto& a, const auto& b) { return a.second.size() > b.second.size(); });
    for (const auto& [key, seeds] : causes) {
      std::string list;
      for (size_t i = 0; i < seeds.size() && i < 8; ++i) list += " " + std::to_string(seeds[i]);
      std::printf("  %4zu  %s\n        seeds:%s%s\n", seeds.size(), key.c_str(), list.c_str(),
                  seeds.size() > 8 ? " ..." : "");
    }
  }
  const bool ok = stats_.differences == 0 && stats_.compile_errors == 0 &&
                  stats_.harness_failures == 0 && stats_.timeouts == 0 && stats_.programs > 0;
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace shapex::difftest

int main(int argc, char** argv) {
  shapex::difftest::Options o;
  CLI::App app{"shapex_difftest: run random programs locally and remotely (ring, socket), compare"};
  app.add_option("--seed", o.seed, "First seed (default 1)");
  app.add_option("--count", o.count, "Programs to run (default 100; 0 = until --seconds)");
  app.add_option("--seconds", o.seconds, "Time budget in seconds (default none)");
  app.add_option("-j,--jobs", o.jobs, "Parallel workers (default 2)")->check(CLI::Range(1, 64));
  app.add_option("--out", o.out_dir, "Where differing programs are written (default difftest-out)");
  app.add_option("--shapex", o.shapex, "The shapex binary (default: the one built with this)");
  app.add_option("--runner", o.runner,
                 "inprocess (default: the CLI's run code in this process) or process "
                 "(a `shapex run` process per run)")
      ->check(CLI::IsMember({"inprocess", "process"}));
  app.add_option("--run-timeout", o.run_timeout, "Seconds one run may take (default 30)");
  bool no_mutation = false;
  app.add_flag("--no-mutation", no_mutation,
               "Diagnostic: generate no changes a caller can see (hides send-copy differences)");
  app.add_flag("-v,--verbose", o.verbose, "Print every seed, not only differing ones");
  CLI11_PARSE(app, argc, argv);
  if (o.count == 0 && o.seconds <= 0) {
    std::fprintf(stderr, "--count 0 needs --seconds\n");
    return 2;
  }
  o.generator.mutation = !no_mutation;
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  // A supervisor or executor that goes away mid-write is an error of that run, not our death.
  ::signal(SIGPIPE, SIG_IGN);
  shapex::difftest::Driver driver(o);
  return driver.Run();
}
