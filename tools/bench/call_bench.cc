// call_bench: the service's call latency, measured in one run against a bare socket.
//
//   call_bench [--quick] [--iterations N] [--transport ring|socket] [--sandbox full|none]
//              [--shapex PATH] [--json]
//
// It starts its own `shapex serve` (socket and blob store in a temporary directory) and measures:
//   raw_socket     64 B write/read round trip over a blocking AF_UNIX socketpair with a forked
//                  child (the baseline; the same as ipc_bench's)
//   null_call      a warm call of `function nop() { None }` through a lease: client -> jailed
//                  executor (over the lease's call ring) -> back, including request encoding,
//                  blob negotiation bookkeeping (no code is sent), VM set-up and the response
//   pipelined      calls per second with 64 calls in flight on one lease
//   cold_start     executor spawn as the zygote times it (clone3 with new namespaces + every
//                  jail step + "ready"), over the executors spawned during the run, split into
//                  the kernel's part (the clone3 call) and ours (the rest)
//   first_call     lease + handshake + negotiation + first call on a fresh executor (the latency
//                  of one `shapex call` minus process start-up)
//   pmap           `pmap(xs, work)` of 16 CPU-bound @remote calls (~10 ms each) through
//                  RemoteCalls (what `shapex run` uses), spread over 1 and over 2 executors,
//                  against the same 16 calls run in-process one after another (--local)
// With --json it prints one object with at least null_call_vs_raw_rtt and cold_start_ms.
// No CPU pinning is done (the JSON says whether the run was narrowed with taskset).
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "shapex/client/client.h"
#include "shapex/client/remote_calls.h"
#include "shapex/engine/vm.h"
#include "shapex/engine/compiler.h"
#include "shapex/ipc/remote_call.h"
#include "tools/bench/ipc_bench_util.h"

namespace {

using namespace shapex;
using namespace ipc_bench;

constexpr char kProgram[] =
    "function nop() { None }\nfunction add(a, b) { a + b }\n"
    "@remote\nfunction work(n) { var s = 0; for i in 0..n { s = s + i }; s }\n"
    "function batch(xs) { pmap(xs, work) }\n";

// The number after the first `"key": ` in `json` (-1 if absent).
double JsonNumber(const std::string& json, const std::string& key) {
  std::string needle = "\"" + key + "\": ";
  size_t pos = json.find(needle);
  if (pos == std::string::npos) return -1;
  return std::strtod(json.c_str() + pos + needle.size(), nullptr);
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 20000;
  bool json = false, quick = false;
  std::string transport = "ring", sandbox = "full";
  std::string shapex_bin =
      (std::filesystem::read_symlink("/proc/self/exe").parent_path() / ".." / "shapex").string();
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
      iterations = 2000;
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--iterations" && i + 1 < argc) {
      iterations = std::max(10, std::atoi(argv[++i]));
    } else if (arg == "--transport" && i + 1 < argc) {
      transport = argv[++i];
    } else if (arg == "--sandbox" && i + 1 < argc) {
      sandbox = argv[++i];
    } else if (arg == "--shapex" && i + 1 < argc) {
      shapex_bin = argv[++i];
    } else {
      std::fprintf(stderr,
                   "usage: call_bench [--quick] [--iterations N] [--transport ring|socket] "
                   "[--sandbox full|none] [--shapex PATH] [--json]\n");
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  char dir_template[] = "/tmp/shapex-call-bench-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) Die("mkdtemp");
  std::string dir = dir_template;
  std::string socket_path = dir + "/run/sock", store = dir + "/store";

  Stats raw = RawSocketRoundTrip(iterations);

  pid_t server = Spawn([&] {
    execl(shapex_bin.c_str(), shapex_bin.c_str(), "serve", "--socket", socket_path.c_str(),
          "--store", store.c_str(), "--pool", "2", "--sandbox", sandbox.c_str(),
          // pmap_speedup measures one client over both executors (the default share of one
          // client is pool size - 1).
          "--max-leases-per-client", "2", static_cast<char*>(nullptr));
    return 127;
  });
  ClientOptions options;
  options.socket_path = socket_path;
  options.start_supervisor = false;
  options.session.connection.transport =
      transport == "socket" ? ipc::Transport::kSocket : ipc::Transport::kCallRing;
  Result<Client> client = IoError("not started");
  for (int i = 0; i < 500 && !client.has_value(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    client = Client::Connect(options);
  }
  DieIf(client.error(), "connect to shapex serve");

  auto program = engine::Compile(kProgram, "bench.shape");
  DieIf(program.error(), "compile");
  auto blobs = engine::BuildProgramBlobs(**program);
  DieIf(blobs.error(), "blobs");
  auto request = [&](const char* name, std::vector<ipc::WireValue> args) {
    auto r = ipc::BuildCallRequest(**program, *blobs, name, std::move(args));
    DieIf(r.error(), "request");
    return std::move(*r);
  };

  // First calls on fresh executors (each lease gets a new process: leases_per_executor = 1).
  int first_reps = quick ? 10 : 40;
  std::vector<double> first;
  for (int i = 0; i < first_reps; ++i) {
    auto start = Clock::now();
    auto lease = client->LeaseFor(**program, *blobs, "nop");
    DieIf(lease.error(), "lease");
    auto r = client->CallOn(*lease, request("nop", {}));
    DieIf(r.error(), "first call");
    first.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
    lease->session.Close();
  }
  Stats first_call = Summarise(first);

  // Warm null calls on one lease.
  auto lease = client->LeaseFor(**program, *blobs, "nop");
  DieIf(lease.error(), "lease");
  ipc::RemoteCallRequest nop = request("nop", {});  // built once, as a real client would
  Stats null_call = Measure(iterations, [&](int) {
    auto r = lease->session.CallRaw(nop);
    DieIf(r.error(), "null call");
    if (!r->ok()) Die("null call failed: " + r->status().ToString());
  });

  // Pipelined: 64 in flight.
  int total = quick ? 20000 : 200000;
  std::deque<uint64_t> in_flight;
  auto start = Clock::now();
  int started = 0, finished = 0;
  while (finished < total) {
    while (started < total && in_flight.size() < 64) {
      auto id = lease->session.Start(request("add", {ipc::WireValue::Int(started),
                                                     ipc::WireValue::Int(1)}));
      DieIf(id.error(), "start");
      in_flight.push_back(*id);
      ++started;
    }
    auto r = lease->session.Wait(in_flight.front());
    DieIf(r.error(), "wait");
    in_flight.pop_front();
    ++finished;
  }
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  double pipelined_per_s = total / seconds;
  lease->session.Close();

  // pmap: the same batch in-process, then over 1 and 2 executors (median of `reps` runs each).
  int pmap_reps = quick ? 3 : 7;
  const int64_t work_n = 1500000;  // ~12 ms of interpretation per call on this VM
  auto run_batch = [&](RemoteCalls* remote) {
    engine::Vm vm(**program, engine::Limits{});
    if (remote != nullptr) remote->Install(vm);
    std::vector<engine::Value> items(16, engine::Value::Int(work_n));
    engine::Value xs = vm.NewArray(items);
    engine::Value out;
    auto t0 = Clock::now();
    Status s = vm.CallByName("batch", {xs}, &out);
    double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    DieIf(s, "pmap batch");
    return ms;
  };
  auto pool_settled = [&] {
    for (int i = 0; i < 500; ++i) {
      auto st = client->StatusJson();
      if (st.has_value() && JsonNumber(*st, "spawning") == 0 &&
          st->find("\"state\": \"leased\"") == std::string::npos &&
          st->find("\"state\": \"starting\"") == std::string::npos &&
          st->find("\"state\": \"exiting\"") == std::string::npos)
        return;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  };
  std::vector<double> pmap_local, pmap_one, pmap_two;
  for (int r = 0; r < pmap_reps; ++r) {
    pmap_local.push_back(run_batch(nullptr));
    for (size_t parallel : {size_t{1}, size_t{2}}) {
      pool_settled();
      RemoteCallsOptions remote_options;
      remote_options.client = options;
      remote_options.max_parallel = parallel;
      RemoteCalls remote(**program, remote_options);
      double ms = run_batch(&remote);
      if (remote.stats().max_executors != parallel) Die("pmap did not get its executors");
      (parallel == 1 ? pmap_one : pmap_two).push_back(ms);
    }
  }
  auto median = [](std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  double local_ms = median(pmap_local), one_ms = median(pmap_one), two_ms = median(pmap_two);

  auto status = client->StatusJson();
  DieIf(status.error(), "status");
  double cold_ms = JsonNumber(*status, "spawn_median_ms");
  double clone_ms = JsonNumber(*status, "spawn_clone_median_ms");
  double samples = JsonNumber(*status, "spawn_samples");
  (void)client->StopSupervisor();
  int st = 0;
  waitpid(server, &st, 0);
  std::filesystem::remove_all(dir);

  int cpus = AllowedCpus();
  bool pinned = cpus >= 0 && cpus < sysconf(_SC_NPROCESSORS_ONLN);
  double ratio = null_call.median_us / raw.median_us;
  if (json) {
    using Json = nlohmann::ordered_json;
    Json report = {{"iterations", iterations},
                   {"transport", transport},
                   {"sandbox", sandbox},
                   {"cpus", cpus},
                   {"pinned", pinned},
                   {"raw_rtt_us", raw.median_us},
                   {"raw_rtt_p99_us", raw.p99_us},
                   {"null_call_us", null_call.median_us},
                   {"null_call_p99_us", null_call.p99_us},
                   {"null_call_vs_raw_rtt", ratio},
                   {"pipelined_calls_per_s", pipelined_per_s},
                   {"cold_start_ms", cold_ms},
                   {"cold_start_kernel_ms", clone_ms},
                   {"cold_start_ours_ms", cold_ms - clone_ms},
                   {"cold_start_samples", samples},
                   {"first_call_ms", first_call.median_us / 1000},
                   {"first_call_p99_ms", first_call.p99_us / 1000},
                   {"pmap16_local_ms", local_ms},
                   {"pmap16_one_executor_ms", one_ms},
                   {"pmap16_two_executors_ms", two_ms},
                   {"pmap_speedup", one_ms / two_ms}};
    std::puts(report.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
    return 0;
  }
  fmt::print("call_bench: {} calls, transport {}, sandbox {}, {} allowed CPUs ({})\n\n", iterations,
             transport, sandbox, cpus, pinned ? "pinned by taskset" : "not pinned");
  fmt::print("{:<24} {:>12} {:>12} {:>10}\n", "", "median µs", "p99 µs", "÷ raw");
  fmt::print("{:<24} {:>12.2f} {:>12.2f} {:>10.3f}\n", "raw socket round trip", raw.median_us,
             raw.p99_us, 1.0);
  fmt::print("{:<24} {:>12.2f} {:>12.2f} {:>10.3f}\n", "warm null call", null_call.median_us,
             null_call.p99_us, ratio);
  fmt::print("{:<24} {:>12.2f} {:>12.2f}\n", "first call (new lease)", first_call.median_us,
             first_call.p99_us);
  fmt::print("\npipelined (64 in flight): {:.0f} calls/s\n", pipelined_per_s);
  fmt::print("executor cold start: {:.3f} ms median over {:.0f} spawns (kernel clone3 with "
             "namespaces {:.3f} ms, jail steps + ready {:.3f} ms)\n",
             cold_ms, samples, clone_ms, cold_ms - clone_ms);
  fmt::print("pmap of 16 @remote calls, median of {} runs: in-process {:.1f} ms, 1 executor "
             "{:.1f} ms, 2 executors {:.1f} ms (speedup {:.2f}x over 1 executor, {:.2f}x over "
             "in-process)\n",
             pmap_reps, local_ms, one_ms, two_ms, one_ms / two_ms, local_ms / two_ms);
  return 0;
}
