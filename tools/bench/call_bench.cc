// call_bench: the service's call latency, measured in one run against a bare socket.
//
//   call_bench [--quick] [--iterations N] [--transport ring|socket] [--sandbox full|none]
//              [--shapex PATH] [--stages-only] [--json]
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
#include "shapex/ipc/sidecar_transport.h"
#include "tools/bench/connection_echo.h"
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

// Where a warm null call's time goes: each stage of the call, run in this process with the
// same code the client and the executor run (the transport itself is the echo above).
struct Breakdown {
  Stats client_encode, decode, lookup, setup, run, encode, release, client_decode;
  double sum_us() const {
    return client_encode.median_us + decode.median_us + lookup.median_us + setup.median_us +
           run.median_us + encode.median_us + release.median_us + client_decode.median_us;
  }
};

Breakdown MeasureBreakdown(const ipc::RemoteCallRequest& full, int iterations) {
  engine::BlobCache cache;
  ipc::LinkCache links;
  engine::Limits limits;
  // First call brings the code; later ones go without it, as on a warm lease.
  (void)ipc::ExecuteRemoteCall(full, limits, &cache, &links);
  links.ReleaseCallMemory();
  ipc::RemoteCallRequest warm =
      ipc::BuildCallRequestNegotiated(full, ipc::OfferedHashes(full));
  std::vector<double> client_encode, decode, lookup, setup, run, encode, release, client_decode;
  auto us = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::micro>(b - a).count();
  };
  int warmup = std::max(200, iterations / 10);
  for (int i = 0; i < warmup + iterations; ++i) {
    ipc::ExecuteTimes times;
    Clock::time_point t0, t1, t2, t3, t4, t5, t6, t7;
    {
      t0 = Clock::now();
      auto out = ipc::PrepareOutgoing(ipc::WireMessage{warm});  // the client's copy + encode
      DieIf(out.error(), "encode the request");
      t1 = Clock::now();
      auto message = ipc::DecodeMessage(out->payload);
      DieIf(message.error(), "decode the request");
      auto& request = std::get<ipc::RemoteCallRequest>(*message);
      t2 = Clock::now();
      ipc::RemoteCallResponse response = ipc::ExecuteRemoteCall(
          request, ipc::EffectiveLimits(request.limits, limits), &cache, &links, &times);
      if (!response.ok()) Die("breakdown call failed: " + response.status().ToString());
      t3 = Clock::now();
      auto encoded = ipc::PrepareOutgoing(ipc::WireMessage{std::move(response)});
      DieIf(encoded.error(), "encode the response");
      t4 = Clock::now();
      auto back = ipc::DecodeMessage(encoded->payload);
      DieIf(back.error(), "decode the response");
      t5 = Clock::now();
    }  // both messages freed
    t6 = Clock::now();
    links.ReleaseCallMemory();
    t7 = Clock::now();
    if (i < warmup) continue;
    client_encode.push_back(us(t0, t1));
    decode.push_back(us(t1, t2));
    lookup.push_back(times.lookup_ns / 1000.0);
    setup.push_back(times.setup_ns / 1000.0);
    run.push_back(us(t2, t3) - (times.lookup_ns + times.setup_ns) / 1000.0);
    encode.push_back(us(t3, t4) + us(t5, t6));  // encoding and freeing the messages
    release.push_back(us(t6, t7));
    client_decode.push_back(us(t4, t5));
  }
  return {Summarise(client_encode), Summarise(decode),  Summarise(lookup),
          Summarise(setup),         Summarise(run),     Summarise(encode),
          Summarise(release),       Summarise(client_decode)};
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 20000;
  bool json = false, quick = false, stages_only = false;
  std::string transport = "ring", sandbox = "full";
  std::string shapex_bin =
      (std::filesystem::read_symlink("/proc/self/exe").parent_path() / ".." / "shapex").string();
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
      iterations = 2000;
    } else if (arg == "--stages-only") {
      stages_only = true;
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
                   "[--sandbox full|none] [--shapex PATH] [--stages-only] [--json]\n");
      return 2;
    }
  }
  if (stages_only) {
    // Only the in-process stages of a warm null call (no supervisor): for profilers.
    auto program = engine::Compile(kProgram, "bench.shape");
    DieIf(program.error(), "compile");
    auto blobs = engine::BuildProgramBlobs(**program);
    DieIf(blobs.error(), "blobs");
    auto nop = ipc::BuildCallRequest(**program, *blobs, "nop", {});
    DieIf(nop.error(), "request");
    Breakdown b = MeasureBreakdown(*nop, iterations);
    fmt::print("client encode {:.3f}  decode {:.3f}  lookup {:.3f}  setup {:.3f}  run {:.3f}  "
               "encode {:.3f}  release {:.3f}  client decode {:.3f}  sum {:.3f} µs (medians)\n",
               b.client_encode.median_us, b.decode.median_us, b.lookup.median_us,
               b.setup.median_us, b.run.median_us, b.encode.median_us, b.release.median_us,
               b.client_decode.median_us, b.sum_us());
    return 0;
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

  // The ring's bare echo in the same run (the floor a call travels on: connection_echo.h).
  Stats ring_echo;
  {
    ConnectionEcho echo(transport == "socket" ? ipc::Transport::kSocket
                                              : ipc::Transport::kCallRing,
                        ipc::kDefaultRingMaxSpin);
    ring_echo = echo.Measure(iterations);
  }
  Breakdown breakdown = MeasureBreakdown(nop, iterations);

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
                   {"ring_echo_us", ring_echo.median_us},
                   {"ring_echo_p99_us", ring_echo.p99_us},
                   {"null_call_vs_ring_echo", null_call.median_us / ring_echo.median_us},
                   {"breakdown_us",
                    {{"client_encode", breakdown.client_encode.median_us},
                     {"executor_decode", breakdown.decode.median_us},
                     {"link_lookup", breakdown.lookup.median_us},
                     {"vm_setup", breakdown.setup.median_us},
                     {"run", breakdown.run.median_us},
                     {"executor_encode", breakdown.encode.median_us},
                     {"release", breakdown.release.median_us},
                     {"client_decode", breakdown.client_decode.median_us},
                     {"sum", breakdown.sum_us()}}},
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
  fmt::print("{:<24} {:>12.2f} {:>12.2f} {:>10.3f}   (null call ÷ echo: {:.2f})\n",
             transport == "socket" ? "bare socket echo" : "bare ring echo", ring_echo.median_us,
             ring_echo.p99_us, ring_echo.median_us / raw.median_us,
             null_call.median_us / ring_echo.median_us);
  fmt::print("{:<24} {:>12.2f} {:>12.2f}\n", "first call (new lease)", first_call.median_us,
             first_call.p99_us);
  fmt::print("\nwarm null call, stage by stage (in this process, same code; median µs / p99 µs):\n");
  auto stage = [](const char* name, const Stats& st) {
    fmt::print("  {:<34} {:>8.3f} {:>8.3f}\n", name, st.median_us, st.p99_us);
  };
  stage("client: copy + encode request", breakdown.client_encode);
  stage("executor: decode request", breakdown.decode);
  stage("executor: link-cache lookup", breakdown.lookup);
  stage("executor: Vm reset + output", breakdown.setup);
  stage("executor: args, call, result", breakdown.run);
  stage("executor: encode response + free", breakdown.encode);
  stage("executor: release call memory", breakdown.release);
  stage("client: decode response", breakdown.client_decode);
  fmt::print("  {:<34} {:>8.3f}   (+ the echo {:.3f} = {:.3f}; measured call {:.3f})\n",
             "sum of stages", breakdown.sum_us(), ring_echo.median_us,
             breakdown.sum_us() + ring_echo.median_us, null_call.median_us);
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
