// control_bench: the supervisor's control plane as users see it (issue 11), in one run.
//
//   control_bench [--quick] [--unloaded R] [--loaded N] [--kills K] [--shapex PATH]
//                 [--example FILE] [--keep] [--json]
//
// It starts its own `shapex serve --socket DIR/run/sock --store DIR/store --pool 2` in the
// foreground (DIR a fresh temporary directory; its log is DIR/serve.log) and measures:
//   unloaded             R (20) fresh `shapex call examples/add.shape add 10 32 --socket S`
//                        processes one after another: fork/exec to exit, stdout must be "42\n"
//   kill_to_replacement  K (5) times: `shapex run` of an endless @remote call, SIGKILL of that
//                        client once `status` shows its executor leased, then the time until
//                        status (polled every 1 ms through shapex::Client) no longer lists that
//                        executor and 2 executors are idle (deadline 5 s, else a failure)
//   loaded               N (100) such calls while HostileLoad (hostile_clients.h: 200 silent,
//                        200 half-Hello, 1,000 unread replies, 300 flooded leases, a 2^20-hash
//                        offer) keeps its connections open; each call has a 5 s hang deadline
//                        (then it is killed and counted as a failure, with 5 s as its time)
// in that order (kills before the hostile load, so their latency is the unloaded one; --loaded 0
// skips the load), and checks that exactly one `shapex serve` process serves the socket before
// and after (and that the socket answers as that process). --quick: R 5, N 20, K 2.
// Prints a table, or with --json one object (times in ms, null without samples):
//   unloaded_median_ms, loaded_median_ms, loaded_p99_ms, loaded_max_ms, loaded_failures,
//   kill_to_replacement_median_ms, kill_to_replacement_max_ms, supervisors_before,
//   supervisors_after, dropped {class: n}, plus unloaded_p99_ms, unloaded_max_ms,
//   unloaded_failures, kill_failures, kill_to_replacement_p99_ms, socket_is_own,
//   connected {class: n}.
// Exit status 1 if a loaded call failed, a killed client's executor was not replaced, or not
// exactly one supervisor owns the socket at the end; 2 for usage or set-up errors.
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "shapex/client/client.h"
#include "tools/bench/child_process.h"
#include "tools/bench/hostile_clients.h"
#include "tools/bench/supervisor_probe.h"

#ifndef SHAPEX_BIN
#define SHAPEX_BIN "shapex"
#endif
#ifndef SHAPEX_SOURCE_DIR
#define SHAPEX_SOURCE_DIR "."
#endif

namespace {

using namespace shapex;
using bench::ChildOutcome;
using bench::ChildProcess;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds kHangDeadline{5000};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "control_bench: %s\n", what.c_str());
  std::exit(2);
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

struct Summary {
  size_t n = 0;
  double median = 0, p99 = 0, max = 0;
};

// Median, nearest-rank p99 and maximum.
Summary Summarise(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  size_t p99 = std::min(n - 1, (n * 99 + 99) / 100 - 1);
  return {n, v[n / 2], v[p99], v.back()};
}

struct Config {
  std::string shapex = SHAPEX_BIN;
  std::string example = SHAPEX_SOURCE_DIR "/examples/add.shape";
  int unloaded = 20, loaded = 100, kills = 5;
  bool json = false, keep = false;
};

class ControlBench {
 public:
  explicit ControlBench(Config config) : config_(std::move(config)) {}

  int Run() {
    char dir_template[] = "/tmp/shapex-control-bench-XXXXXX";
    if (::mkdtemp(dir_template) == nullptr) Die("mkdtemp failed");
    dir_ = dir_template;
    socket_ = dir_ + "/run/sock";
    StartSupervisor();
    supervisors_before_ = bench::FindSupervisors(socket_).size();

    std::vector<double> unloaded = Calls(config_.unloaded, &unloaded_failures_);
    std::vector<double> kills = KillsToReplacement();

    std::vector<double> loaded;
    std::vector<bench::HostileClassStats> hostile;
    if (config_.loaded > 0) {
      bench::HostileLoad load(bench::HostileLoadOptions{.socket_path = socket_});
      load.WaitUntilConnected(milliseconds(10000));  // calls start regardless
      loaded = Calls(config_.loaded, &loaded_failures_);
      load.Stop();
      hostile = load.Stats();
    }
    supervisors_after_ = bench::FindSupervisors(socket_).size();
    socket_is_own_ = SocketIsOwn();

    Report(Summarise(unloaded), Summarise(loaded), Summarise(kills), hostile);
    StopAll();
    bool failed = loaded_failures_ > 0 || kill_failures_ > 0 || supervisors_after_ != 1 ||
                  !socket_is_own_;
    return failed ? 1 : 0;
  }

 private:
  void StartSupervisor() {
    std::string error;
    if (!serve_.Start({config_.shapex, "serve", "--socket", socket_, "--store", dir_ + "/store",
                       "--pool", "2"},
                      &error, dir_ + "/serve.log")) {
      Die("cannot start shapex serve: " + error);
    }
    for (int i = 0; i < 100; ++i) {
      ChildOutcome status = bench::RunChild({config_.shapex, "status", "--socket", socket_},
                                            kHangDeadline);
      if (status.Succeeded()) return;
      if (bench::ProcessGone(serve_.pid())) break;
      std::this_thread::sleep_for(milliseconds(50));
    }
    Die("shapex serve did not come up (log: " + dir_ + "/serve.log)");
  }

  // `n` fresh `shapex call` processes, one after another; their wall times.
  std::vector<double> Calls(int n, int* failures) {
    std::vector<double> times;
    for (int i = 0; i < n; ++i) {
      ChildOutcome r = bench::RunChild({config_.shapex, "call", config_.example, "add", "10", "32",
                                        "--socket", socket_},
                                       kHangDeadline);
      times.push_back(r.wall_ms);
      if (!r.Succeeded() || r.out != "42\n") {
        ++*failures;
        if (!config_.json || *failures <= 3) {
          std::fprintf(stderr, "control_bench: call %d: %s, stdout '%s', stderr '%s'\n", i,
                       r.Describe().c_str(), r.out.c_str(), r.err.c_str());
        }
      }
    }
    return times;
  }

  Result<Client> StatusClient() {
    ClientOptions options;
    options.socket_path = socket_;
    options.start_supervisor = false;
    return Client::Connect(options);
  }

  // Status JSON once `pred` holds (polled every 1 ms), or "" after `timeout`. Reconnects if the
  // status connection fails.
  template <typename Pred>
  std::string StatusWhen(Result<Client>& client, milliseconds timeout, Pred pred) {
    Clock::time_point end = Clock::now() + timeout;
    while (Clock::now() < end) {
      if (!client.has_value()) client = StatusClient();
      if (client.has_value()) {
        Result<std::string> json = client->StatusJson();
        if (json.has_value() && pred(*json)) return *json;
        if (!json.has_value()) client = StatusClient();
      }
      std::this_thread::sleep_for(milliseconds(1));
    }
    return "";
  }

  std::vector<double> KillsToReplacement() {
    std::string program = dir_ + "/spin.shape";
    std::ofstream(program) << bench::kEndlessRemoteProgram;
    Result<Client> client = StatusClient();
    std::vector<double> times;
    auto settled = [](const std::string& j) { return bench::ReplacedAndIdle(j, -1, 2); };
    for (int k = 0; k < config_.kills; ++k) {
      if (StatusWhen(client, kHangDeadline, settled).empty()) {
        std::fprintf(stderr, "control_bench: the pool did not settle before kill %d\n", k);
        ++kill_failures_;
        break;
      }
      ChildProcess run;
      std::string error;
      if (!run.Start({config_.shapex, "run", program, "--socket", socket_}, &error)) Die(error);
      std::string json = StatusWhen(client, kHangDeadline, [](const std::string& j) {
        return !bench::ExecutorPidsIn(j, "leased").empty();
      });
      if (json.empty()) {
        ChildOutcome end = run.Wait(milliseconds(0));  // kills it if still running
        std::fprintf(stderr, "control_bench: `shapex run` got no executor (%s; stderr '%s')\n",
                     end.Describe().c_str(), end.err.c_str());
        ++kill_failures_;
        continue;
      }
      int64_t executor = bench::ExecutorPidsIn(json, "leased").front();
      Clock::time_point t0 = Clock::now();
      run.Signal(SIGKILL);
      std::string replaced = StatusWhen(client, kHangDeadline, [&](const std::string& j) {
        return bench::ReplacedAndIdle(j, executor, 2);
      });
      double ms = Ms(Clock::now() - t0);
      run.Wait(kHangDeadline);
      if (replaced.empty()) {
        std::fprintf(stderr, "control_bench: executor %lld not replaced 5 s after its client's "
                     "SIGKILL\n", static_cast<long long>(executor));
        ++kill_failures_;
      } else {
        times.push_back(ms);
      }
    }
    return times;
  }

  // The socket path exists and answers as the supervisor we started.
  bool SocketIsOwn() {
    struct stat st {};
    if (::stat(socket_.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) return false;
    Result<Client> client = StatusClient();
    if (!client.has_value()) return false;
    Result<std::string> json = client->StatusJson();
    return json.has_value() && bench::JsonInteger(*json, "supervisor_pid") == serve_.pid();
  }

  void Report(const Summary& unloaded, const Summary& loaded, const Summary& kills,
              const std::vector<bench::HostileClassStats>& hostile) {
    if (config_.json) {
      using Json = nlohmann::ordered_json;
      Json dropped = Json::object(), connected = Json::object();
      for (const bench::HostileClassStats& c : hostile) {
        dropped[c.name] = c.dropped;
        connected[c.name] = c.connected;
      }
      // Times in ms; null when there were no samples.
      auto ms = [](const Summary& s, double value) { return s.n == 0 ? Json() : Json(value); };
      Json report = {{"unloaded_median_ms", ms(unloaded, unloaded.median)},
                     {"unloaded_p99_ms", ms(unloaded, unloaded.p99)},
                     {"unloaded_max_ms", ms(unloaded, unloaded.max)},
                     {"unloaded_failures", unloaded_failures_},
                     {"loaded_median_ms", ms(loaded, loaded.median)},
                     {"loaded_p99_ms", ms(loaded, loaded.p99)},
                     {"loaded_max_ms", ms(loaded, loaded.max)},
                     {"loaded_failures", loaded_failures_},
                     {"kill_to_replacement_median_ms", ms(kills, kills.median)},
                     {"kill_to_replacement_p99_ms", ms(kills, kills.p99)},
                     {"kill_to_replacement_max_ms", ms(kills, kills.max)},
                     {"kill_failures", kill_failures_},
                     {"supervisors_before", supervisors_before_},
                     {"supervisors_after", supervisors_after_},
                     {"socket_is_own", socket_is_own_},
                     {"dropped", std::move(dropped)},
                     {"connected", std::move(connected)}};
      std::puts(report.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
      return;
    }
    fmt::print("{:<22} {:>5} {:>10} {:>10} {:>10} {:>9}\n", "measurement", "n", "median ms",
               "p99 ms", "max ms", "failures");
    auto row = [](const char* name, int n, const Summary& s, int failures) {
      fmt::print("{:<22} {:>5} {:>10.3f} {:>10.3f} {:>10.3f} {:>9}\n", name, n, s.median, s.p99,
                 s.max, failures);
    };  // n: runs asked for; the times are those of the runs that gave one
    row("unloaded call", config_.unloaded, unloaded, unloaded_failures_);
    row("loaded call", config_.loaded, loaded, loaded_failures_);
    row("kill to replacement", config_.kills, kills, kill_failures_);
    fmt::print("supervisors serving the socket: {} before, {} after; socket answers as ours: {}\n",
               supervisors_before_, supervisors_after_, socket_is_own_ ? "yes" : "no");
    fmt::print("hostile connections (connected/opened, dropped by the supervisor):\n");
    for (const bench::HostileClassStats& c : hostile) {
      fmt::print("  {:<15} {:>4}/{:<4} dropped {:>4}\n", c.name, c.connected, c.connections,
                 c.dropped);
    }
  }

  // SIGTERM to our supervisor (SIGKILL after 10 s), then to any other process still serving the
  // socket (a second supervisor some client started); the directory goes unless --keep.
  void StopAll() {
    serve_.Signal(SIGTERM);
    ChildOutcome end = serve_.Wait(milliseconds(10000));
    if (end.timed_out) std::fprintf(stderr, "control_bench: shapex serve ignored SIGTERM\n");
    for (pid_t pid : bench::FindSupervisors(socket_)) {
      bench::TerminateProcess(pid, milliseconds(5000));
    }
    if (config_.keep) {
      std::fprintf(stderr, "control_bench: kept %s\n", dir_.c_str());
    } else {
      std::error_code ec;
      std::filesystem::remove_all(dir_, ec);
    }
  }

  Config config_;
  std::string dir_, socket_;
  ChildProcess serve_;
  int unloaded_failures_ = 0, loaded_failures_ = 0, kill_failures_ = 0;
  size_t supervisors_before_ = 0, supervisors_after_ = 0;
  bool socket_is_own_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  Config config;
  auto count = [&](int* i) {
    if (*i + 1 >= argc) Die("missing value");
    return std::max(0, std::atoi(argv[++*i]));
  };
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      config.unloaded = 5;
      config.loaded = 20;
      config.kills = 2;
    } else if (arg == "--unloaded") {
      config.unloaded = count(&i);
    } else if (arg == "--loaded") {
      config.loaded = count(&i);
    } else if (arg == "--kills") {
      config.kills = count(&i);
    } else if (arg == "--shapex" && i + 1 < argc) {
      config.shapex = argv[++i];
    } else if (arg == "--example" && i + 1 < argc) {
      config.example = argv[++i];
    } else if (arg == "--keep") {
      config.keep = true;
    } else if (arg == "--json") {
      config.json = true;
    } else {
      std::fprintf(stderr,
                   "usage: control_bench [--quick] [--unloaded R] [--loaded N] [--kills K] "
                   "[--shapex PATH] [--example FILE] [--keep] [--json]\n");
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  return ControlBench(std::move(config)).Run();
}
