// ipc_bench: round-trip latency of the transports of issue 5, all measured in one run between
// this process and a forked child, so the ratios compare like with like.
//
//   ipc_bench [--quick] [--no-large] [--only shm_fixed] [--shm-reps N] [--shm-idle-ms N]
//             [--iterations N] [--spin-us N] [--json]
//
// Measurements (each: warm-up, then N timed round trips, default 20,000; --quick: 2,000):
//   raw_socket    64 B write/read over a blocking AF_UNIX socketpair (the baseline)
//   shm_spin      two processes spinning on a shared cache line (the floor)
//   framed_echo   our socket path: a Connection with --transport=socket (frames over the
//                 non-blocking socket), 64 B payload echoed by the child
//   ring_echo     our fast path: the same through a Connection's call ring (spin, then futex)
// After ring_echo the child idles inside Connection::Receive; its CPU time over two seconds (its
// process CPU-time clock, nanoseconds, and /proc/PID/stat ticks) shows that an idle connection
// sleeps after its spin window: what remains is one liveness check per second.
// Then large arrays (ipc_bench_large.h): 1 MiB, 64 MiB and 1 GiB through the socket, a sealed
// segment and a SharedVec (zero-copy), beside memcpy. --no-large skips them.
// Then the zero-copy fixed cost alone (issue 14, MeasureShmFixed): --shm-reps N repetitions
// (default 60, --quick 10) of 1 MiB, 64 MiB and 1 GiB interleaved; `shm_fixed_ms` and
// `shm_fixed_p99_ms` in the JSON are its median and p99 per size, `shm_fixed_delta_ms` the
// 1 GiB median minus the 1 MiB one; `shm_fixed_idle_*` the same for calls made after
// --shm-idle-ms of sleep (default 5), when the peer has gone to sleep on the ring's futex.
// --only shm_fixed runs just that part.
//
// The table gives the median and p99 (nearest rank) in microseconds. No CPU pinning is done:
// both processes float over the allowed CPUs unless the whole run is under `taskset`
// ("pinned" in the JSON says whether the affinity mask was narrowed).
#include <fmt/format.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/ipc/call_ring.h"
#include "shapex/ipc/connection.h"
#include "shapex/ipc/frame.h"
#include "shapex/ipc/segment_reserve.h"
#include "shapex/ipc/unix_socket.h"
#include "tools/bench/ipc_bench_large.h"
#include "tools/bench/connection_echo.h"
#include "tools/bench/ipc_bench_util.h"

namespace {

using namespace shapex;
using namespace shapex::ipc;
using namespace ipc_bench;

constexpr size_t kMessageSize = 64;

inline void Pause() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

Stats ShmSpin(int iterations) {
  void* page = mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (page == MAP_FAILED) Die("mmap");
  auto* ping = new (page) std::atomic<uint64_t>(0);
  auto* pong = new (static_cast<char*>(page) + 64) std::atomic<uint64_t>(0);
  constexpr uint64_t kStop = ~uint64_t{0};
  pid_t child = Spawn([&] {
    uint64_t seen = 0;
    for (;;) {
      uint64_t v;
      while ((v = ping->load(std::memory_order_acquire)) == seen) Pause();
      if (v == kStop) return 0;
      seen = v;
      pong->store(v, std::memory_order_release);
    }
  });
  Stats stats = Measure(iterations, [&](int i) {
    uint64_t v = static_cast<uint64_t>(i) + 1;
    ping->store(v, std::memory_order_release);
    while (pong->load(std::memory_order_acquire) != v) Pause();
  });
  ping->store(kStop, std::memory_order_release);
  Reap(child, "shm spin");
  munmap(page, 4096);
  return stats;
}

// CPU time `pid` has used so far, in nanoseconds: the scheduler's exact runtime through the
// process's CPU-time clock (/proc/PID/stat counts whole 10 ms ticks, too coarse to show a
// sleeping connection's few microseconds of wake-ups).
double CpuNs(pid_t pid) {
  clockid_t clock;
  if (clock_getcpuclockid(pid, &clock) != 0) Die("clock_getcpuclockid");
  timespec ts{};
  if (clock_gettime(clock, &ts) != 0) Die("clock_gettime(process CPU clock)");
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// utime + stime of `pid` in clock ticks, from /proc/PID/stat (fields 14 and 15).
long CpuTicks(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string line;
  std::getline(in, line);
  size_t close_paren = line.rfind(')');
  if (close_paren == std::string::npos) return -1;
  std::istringstream fields(line.substr(close_paren + 2));
  std::string field;
  long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stol(field);
    if (i == 15) stime = std::stol(field);
  }
  return utime + stime;
}

struct EchoResult {
  Stats echo;
  double idle_cpu_ms_per_s = 0;  // exact (CPU-time clock)
  long idle_stat_ticks = 0;      // /proc/PID/stat utime+stime over the same 2 s
};

// Our product path: a Connection (handshake, then frames through the ring or the socket) with a
// child that echoes every message frame (connection_echo.h).
EchoResult ConnectionEchoRun(int iterations, Transport transport,
                             std::chrono::nanoseconds max_spin) {
  ConnectionEcho echo(transport, max_spin);
  pid_t child = echo.child();
  EchoResult result;
  result.echo = echo.Measure(iterations);
  // Idle: the child now waits in Receive. After its spin window it sleeps on the futex, waking
  // only to check that we are still there: after 1 ms, then at doubling intervals up to the
  // liveness interval (1 s). Measured once those checks have settled.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  double before = CpuNs(child);
  long ticks_before = CpuTicks(child);
  std::this_thread::sleep_for(std::chrono::seconds(2));
  double after = CpuNs(child);
  result.idle_stat_ticks = CpuTicks(child) - ticks_before;
  result.idle_cpu_ms_per_s = (after - before) / 1e6 / 2;
  echo.Stop();
  return result;
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 20000;
  bool json = false;
  bool quick = false;
  bool run_large = true;
  bool only_shm_fixed = false;
  int shm_reps = 60;
  std::chrono::milliseconds shm_idle_gap = kShmFixedIdleGap;
  std::chrono::nanoseconds max_spin = kDefaultRingMaxSpin;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      iterations = 2000;
      quick = true;
      shm_reps = 10;
    } else if (arg == "--no-large") {
      run_large = false;
    } else if (arg == "--only" && i + 1 < argc && std::string(argv[i + 1]) == "shm_fixed") {
      only_shm_fixed = true;
      ++i;
    } else if (arg == "--shm-reps" && i + 1 < argc) {
      shm_reps = std::max(1, std::atoi(argv[++i]));
    } else if (arg == "--shm-idle-ms" && i + 1 < argc) {
      shm_idle_gap = std::chrono::milliseconds(std::max(0, std::atoi(argv[++i])));
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--iterations" && i + 1 < argc) {
      iterations = std::max(10, std::atoi(argv[++i]));
    } else if (arg == "--spin-us" && i + 1 < argc) {
      max_spin = std::chrono::microseconds(std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr,
                   "usage: ipc_bench [--quick] [--no-large] [--only shm_fixed] [--shm-reps N] "
                   "[--shm-idle-ms N] "
                   "[--iterations N] [--spin-us N] [--json]\n");
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  int cpus = AllowedCpus();
  bool pinned = cpus >= 0 && cpus < sysconf(_SC_NPROCESSORS_ONLN);
  using Json = nlohmann::ordered_json;
  auto shm_fixed_json = [](const ShmFixedResults& r, Json* report) {
    Json median = Json::object(), p99 = Json::object();
    Json idle_median = Json::object(), idle_p99 = Json::object();
    for (const ShmFixedRow& row : r.rows) {
      std::string mib = std::to_string(row.mib);
      median[mib] = row.busy.median_us / 1000;
      p99[mib] = row.busy.p99_us / 1000;
      idle_median[mib] = row.idle.median_us / 1000;
      idle_p99[mib] = row.idle.p99_us / 1000;
    }
    (*report)["shm_fixed_reps"] = r.reps;
    (*report)["shm_fixed_ms"] = std::move(median);
    (*report)["shm_fixed_p99_ms"] = std::move(p99);
    (*report)["shm_fixed_delta_ms"] = r.delta_ms;
    (*report)["shm_fixed_idle_gap_ms"] = r.idle_gap.count();
    (*report)["shm_fixed_idle_ms"] = std::move(idle_median);
    (*report)["shm_fixed_idle_p99_ms"] = std::move(idle_p99);
    (*report)["shm_fixed_idle_delta_ms"] = r.idle_delta_ms;
  };
  auto shm_fixed_table = [](const ShmFixedResults& r) {
    fmt::print(
        "\nzero-copy fixed cost (SharedVec descriptor, round trip), {} interleaved "
        "repetitions, median ms (p99)\n",
        r.reps);
    fmt::print("{:>6} {:>20} {:>20}\n", "MiB", "busy peer: median", "idle peer: median");
    for (const ShmFixedRow& row : r.rows) {
      auto cell = [](const Stats& st) {
        return fmt::format("{:.3f} ({:.3f})", st.median_us / 1000, st.p99_us / 1000);
      };
      fmt::print("{:>6} {:>20} {:>20}\n", row.mib, cell(row.busy), cell(row.idle));
    }
    fmt::print(
        "1 GiB - 1 MiB median: busy {:.3f} (shm_fixed_delta_ms), idle {:.3f}; idle: "
        "after {} ms of sleep, the peer waits on the ring's futex\n",
        r.delta_ms, r.idle_delta_ms, r.idle_gap.count());
  };
  if (only_shm_fixed) {
    ShmFixedResults shm_fixed = MeasureShmFixed(shm_reps, shm_idle_gap);
    if (json) {
      Json report = {{"cpus", cpus}, {"pinned", pinned}};
      shm_fixed_json(shm_fixed, &report);
      std::puts(report.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
    } else {
      fmt::print("ipc_bench --only shm_fixed: {} allowed CPUs ({})\n", cpus,
                 pinned ? "pinned by taskset" : "not pinned");
      shm_fixed_table(shm_fixed);
    }
    return 0;
  }

  Stats raw = RawSocketRoundTrip(iterations);
  Stats spin = ShmSpin(iterations);
  EchoResult framed_result = ConnectionEchoRun(iterations, Transport::kSocket, max_spin);
  const Stats& framed = framed_result.echo;
  EchoResult ring = ConnectionEchoRun(iterations, Transport::kCallRing, max_spin);
  LargeResults large;
  ShmFixedResults shm_fixed;
  if (run_large) {
    shm_fixed = MeasureShmFixed(shm_reps, shm_idle_gap);
    large = MeasureLarge(quick);
  }

  double echo_vs_raw = framed.median_us / raw.median_us;
  double ring_vs_raw = ring.echo.median_us / raw.median_us;
  if (json) {
    Json large_rows = Json::array();
    for (const LargeRow& r : large.rows) {
      large_rows.push_back({{"mib", r.mib},
                            {"reps", r.reps},
                            {"socket_ms", r.socket.median_us / 1000},
                            {"socket_p99_ms", r.socket.p99_us / 1000},
                            {"sealed_ms", r.sealed.median_us / 1000},
                            {"sealed_p99_ms", r.sealed.p99_us / 1000},
                            {"sealed_busy_ms", r.sealed_busy.median_us / 1000},
                            {"sealed_fresh_ms", r.sealed_fresh.median_us / 1000},
                            {"spare_hits", r.spare_hits},
                            {"spare_misses", r.spare_misses},
                            {"sealed_vs_socket", r.sealed.median_us / r.socket.median_us},
                            {"pooled_ms", r.pooled.median_us / 1000},
                            {"zero_copy_ms", r.zero_copy.median_us / 1000},
                            {"zero_copy_p99_ms", r.zero_copy.p99_us / 1000},
                            {"memcpy_ms", r.memcpy_floor.median_us / 1000}});
    }
    Json report = {{"iterations", iterations},
                   {"cpus", cpus},
                   {"pinned", pinned},
                   {"raw_rtt_us", raw.median_us},
                   {"raw_rtt_p99_us", raw.p99_us},
                   {"shm_spin_rtt_us", spin.median_us},
                   {"shm_spin_rtt_p99_us", spin.p99_us},
                   {"echo_us", framed.median_us},
                   {"echo_p99_us", framed.p99_us},
                   {"echo_vs_raw_rtt", echo_vs_raw},
                   {"ring_echo_us", ring.echo.median_us},
                   {"ring_echo_p99_us", ring.echo.p99_us},
                   {"ring_vs_raw_rtt", ring_vs_raw},
                   {"ring_idle_cpu_ms_per_s", ring.idle_cpu_ms_per_s},
                   {"ring_idle_stat_ticks", ring.idle_stat_ticks},
                   {"large", std::move(large_rows)},
                   {"fill_64mib_fresh_ms", large.fill_fresh_ms},
                   {"fill_64mib_hugepage_ms", large.fill_hugepage_ms},
                   {"hugepages_effective", large.hugepages_effective},
                   {"fill_64mib_pooled_ms", large.fill_pooled_ms}};
    shm_fixed_json(shm_fixed, &report);
    std::puts(report.dump(-1, ' ', false, Json::error_handler_t::replace).c_str());
    return 0;
  }
  fmt::print("ipc_bench: {} round trips each, {} B messages, {} allowed CPUs ({})\n\n", iterations,
             kMessageSize, cpus, pinned ? "pinned by taskset" : "not pinned");
  fmt::print("{:<14} {:>12} {:>12} {:>10}\n", "transport", "median µs", "p99 µs", "÷ raw");
  auto row = [&](const char* name, const Stats& s) {
    fmt::print("{:<14} {:>12.2f} {:>12.2f} {:>10.3f}\n", name, s.median_us, s.p99_us,
               s.median_us / raw.median_us);
  };
  row("raw_socket", raw);
  row("shm_spin", spin);
  row("framed_echo", framed);
  row("ring_echo", ring.echo);
  fmt::print(
      "\nidle ring connection: {:.3f} ms CPU per second (server waiting in Receive; "
      "/proc/PID/stat: {} ticks in 2 s)\n",
      ring.idle_cpu_ms_per_s, ring.idle_stat_ticks);
  if (!large.rows.empty()) {
    fmt::print("\nlarge f64 arrays to another process, round trip, median ms (p99)\n");
    fmt::print("{:>6} {:>5} {:>18} {:>18} {:>18} {:>18} {:>18} {:>16} {:>9}\n", "MiB", "reps",
               "socket", "sealed (spare)", "sealed busy", "sealed fresh", "pooled copy",
               "zero-copy", "memcpy");
    for (const LargeRow& r : large.rows) {
      auto cell = [](const Stats& st) {
        return fmt::format("{:.3f} ({:.3f})", st.median_us / 1000, st.p99_us / 1000);
      };
      fmt::print("{:>6} {:>5} {:>18} {:>18} {:>18} {:>18} {:>18} {:>16} {:>9.3f}\n", r.mib, r.reps,
                 cell(r.socket), cell(r.sealed), cell(r.sealed_busy), cell(r.sealed_fresh),
                 cell(r.pooled), cell(r.zero_copy), r.memcpy_floor.median_us / 1000);
    }
    fmt::print(
        "sealed (spare): {} of the sealed sends found a spare ready, {} made a new memfd "
        "(spares up to {} MiB by default)\n",
        [&] {
          uint64_t n = 0;
          for (auto& r : large.rows) n += r.spare_hits;
          return n;
        }(),
        [&] {
          uint64_t n = 0;
          for (auto& r : large.rows) n += r.spare_misses;
          return n;
        }(),
        shapex::ipc::SegmentReserveOptions().max_spare_bytes >> 20);
    fmt::print(
        "\nfilling 64 MiB in a segment: new {:.2f} ms, new + MADV_HUGEPAGE {:.2f} ms "
        "(huge pages {}; shmem_enabled: {}), reused from the pool {:.2f} ms\n",
        large.fill_fresh_ms, large.fill_hugepage_ms,
        large.hugepages_effective ? "used" : "not used", large.shmem_thp_setting,
        large.fill_pooled_ms);
    shm_fixed_table(shm_fixed);
  }
  return 0;
}
