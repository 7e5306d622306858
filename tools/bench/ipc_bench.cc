// ipc_bench: round-trip latency of the transports of issue 5, all measured in one run between
// this process and a forked child, so the ratios compare like with like.
//
//   ipc_bench [--quick] [--iterations N] [--spin-us N] [--json]
//
// Measurements (each: warm-up, then N timed round trips, default 20,000; --quick: 2,000):
//   raw_socket    64 B write/read over a blocking AF_UNIX socketpair (the baseline)
//   shm_spin      two processes spinning on a shared cache line (the floor)
//   framed_echo   our path: FrameWriter -> UnixSocket (non-blocking + poll) -> FrameReader and
//                 back, 64 B payload
//   ring_echo     our fast path: the same 64 B frame through the CallRing (spin, then futex)
// After ring_echo the child idles inside CallRing::Read; its CPU time over one second (from
// /proc/PID/stat utime+stime) shows that an idle connection sleeps after its spin window.
//
// The table gives the median and p99 (nearest rank) in microseconds. No CPU pinning is done:
// both processes float over the allowed CPUs unless the whole run is under `taskset`
// ("pinned" in the JSON says whether the affinity mask was narrowed). Not yet measured here:
// large arrays through the socket vs sealed segments vs built in a segment (shm_fixed_ms).
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
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/ipc/call_ring.h"
#include "shapex/ipc/frame.h"
#include "shapex/ipc/unix_socket.h"

namespace {

using namespace shapex;
using namespace shapex::ipc;
using Clock = std::chrono::steady_clock;

constexpr size_t kMessageSize = 64;
constexpr uint8_t kEchoType = 1;

struct Stats {
  double median_us = 0;
  double p99_us = 0;
};

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "ipc_bench: %s\n", what.c_str());
  std::exit(1);
}

void DieIf(const Status& status, const char* what) {
  if (!status.ok()) Die(fmt::format("{}: {}", what, status.ToString()));
}

Stats Summarise(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  size_t n = samples.size();
  return {samples[n / 2], samples[std::min(n - 1, (n * 99 + 99) / 100 - 1)]};
}

// Runs `body(i)` for warm-up + iterations round trips, timing each timed one.
Stats Measure(int iterations, const std::function<void(int)>& body) {
  int warmup = std::max(200, iterations / 10);
  for (int i = 0; i < warmup; ++i) body(i);
  std::vector<double> samples(iterations);
  for (int i = 0; i < iterations; ++i) {
    auto start = Clock::now();
    body(warmup + i);
    samples[i] = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
  }
  return Summarise(std::move(samples));
}

// Forks a child running `child_main` (its exit code is its result) and returns its pid.
pid_t Spawn(const std::function<int()>& child_main) {
  pid_t pid = fork();
  if (pid < 0) Die("fork failed");
  if (pid == 0) _exit(child_main());
  return pid;
}

void Reap(pid_t pid, const char* what) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die(fmt::format("{} child failed (status {})", what, status));
  }
}

bool ReadFull(int fd, uint8_t* buf, size_t size) {
  while (size > 0) {
    ssize_t n = read(fd, buf, size);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    buf += n;
    size -= n;
  }
  return true;
}

bool WriteFull(int fd, const uint8_t* buf, size_t size) {
  while (size > 0) {
    ssize_t n = write(fd, buf, size);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    buf += n;
    size -= n;
  }
  return true;
}

Stats RawSocket(int iterations) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) Die("socketpair");
  pid_t child = Spawn([&] {
    close(fds[0]);
    uint8_t buf[kMessageSize];
    while (ReadFull(fds[1], buf, sizeof(buf))) {
      if (!WriteFull(fds[1], buf, sizeof(buf))) return 1;
    }
    return 0;
  });
  close(fds[1]);
  uint8_t buf[kMessageSize] = {1};
  Stats stats = Measure(iterations, [&](int) {
    if (!WriteFull(fds[0], buf, sizeof(buf)) || !ReadFull(fds[0], buf, sizeof(buf))) {
      Die("raw socket echo failed");
    }
  });
  close(fds[0]);
  Reap(child, "raw socket");
  return stats;
}

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

// Receives one frame on `socket` into `reader`, waiting as needed.
Result<Frame> ReceiveFrame(UnixSocket& socket, FrameReader& reader) {
  Frame frame;
  for (;;) {
    ASSIGN_OR_RETURN(ReadProgress progress, reader.Next(&frame));
    if (progress == ReadProgress::kFrame) return frame;
    ASSIGN_OR_RETURN(std::span<uint8_t> window, reader.PrepareWrite(4096));
    ASSIGN_OR_RETURN(IoResult got, socket.RecvMsg(window, nullptr));
    if (got.state == IoResult::State::kPeerClosed) return IoError("peer closed");
    if (got.state == IoResult::State::kWouldBlock) {
      RETURN_IF_ERROR(socket.WaitReadable(-1));
      continue;
    }
    reader.CommitWrite(got.bytes);
  }
}

Stats FramedEcho(int iterations) {
  auto pair = UnixSocket::Pair();
  DieIf(pair.error(), "socketpair");
  pid_t child = Spawn([&] {
    pair->first.Close();
    UnixSocket& socket = pair->second;
    FrameReader reader;
    FrameWriter writer;
    for (;;) {
      auto frame = ReceiveFrame(socket, reader);
      if (!frame.has_value()) return 0;  // parent closed
      auto out = writer.Encode(frame->type, frame->call_id, frame->payload);
      if (!out.has_value() || !socket.SendAll(*out).ok()) return 1;
    }
  });
  pair->second.Close();
  UnixSocket& socket = pair->first;
  FrameReader reader;
  FrameWriter writer;
  std::vector<uint8_t> payload(kMessageSize, 7);
  Stats stats = Measure(iterations, [&](int i) {
    auto out = writer.Encode(kEchoType, static_cast<uint64_t>(i), payload);
    DieIf(out.error(), "encode");
    DieIf(socket.SendAll(*out), "send");
    auto frame = ReceiveFrame(socket, reader);
    DieIf(frame.error(), "receive");
    if (frame->call_id != static_cast<uint64_t>(i) || frame->payload.size() != kMessageSize) {
      Die("framed echo returned the wrong frame");
    }
  });
  socket.Close();
  Reap(child, "framed echo");
  return stats;
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

struct RingResult {
  Stats echo;
  double idle_cpu_ms_per_s = 0;
};

RingResult RingEcho(int iterations, std::chrono::nanoseconds max_spin) {
  auto ring = CallRing::Create(RingSide::kClient, {.max_spin = max_spin});
  DieIf(ring.error(), "create ring");
  auto fd = ring->ShareFd();
  DieIf(fd.error(), "share ring");
  pid_t child = Spawn([&] {
    auto server = CallRing::Attach(std::move(*fd), RingSide::kServer, max_spin);
    if (!server.has_value()) return 1;
    std::vector<uint8_t> record;
    FrameWriter writer;
    for (;;) {
      if (!server->Read(&record, std::chrono::seconds(30)).ok()) return 2;
      if (record.empty()) return 0;  // stop
      auto frame = DecodeSingleFrame(record);
      if (!frame.has_value()) return 3;
      auto out = writer.Encode(frame->type, frame->call_id, frame->payload);
      if (!out.has_value() || !server->Write(*out, std::chrono::seconds(30)).ok()) return 4;
    }
  });
  fd->reset();
  FrameWriter writer;
  std::vector<uint8_t> payload(kMessageSize, 7);
  std::vector<uint8_t> record;
  RingResult result;
  result.echo = Measure(iterations, [&](int i) {
    auto out = writer.Encode(kEchoType, static_cast<uint64_t>(i), payload);
    DieIf(out.error(), "encode");
    DieIf(ring->Write(*out, std::chrono::seconds(10)), "ring write");
    DieIf(ring->Read(&record, std::chrono::seconds(10)), "ring read");
    auto frame = DecodeSingleFrame(record);
    DieIf(frame.error(), "decode");
    if (frame->call_id != static_cast<uint64_t>(i)) Die("ring echo returned the wrong frame");
  });
  // Idle: the child is now waiting in Read. After its spin window it must sleep.
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  long before = CpuTicks(child);
  std::this_thread::sleep_for(std::chrono::seconds(1));
  long after = CpuTicks(child);
  result.idle_cpu_ms_per_s = (after - before) * 1000.0 / sysconf(_SC_CLK_TCK);
  DieIf(ring->Write({}, std::chrono::seconds(10)), "ring stop");
  Reap(child, "ring echo");
  return result;
}

int AllowedCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
  return CPU_COUNT(&set);
}

}  // namespace

int main(int argc, char** argv) {
  int iterations = 20000;
  bool json = false;
  std::chrono::nanoseconds max_spin = kDefaultRingMaxSpin;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--quick") {
      iterations = 2000;
    } else if (arg == "--json") {
      json = true;
    } else if (arg == "--iterations" && i + 1 < argc) {
      iterations = std::max(10, std::atoi(argv[++i]));
    } else if (arg == "--spin-us" && i + 1 < argc) {
      max_spin = std::chrono::microseconds(std::atoi(argv[++i]));
    } else {
      std::fprintf(stderr, "usage: ipc_bench [--quick] [--iterations N] [--spin-us N] [--json]\n");
      return 2;
    }
  }
  signal(SIGPIPE, SIG_IGN);
  int cpus = AllowedCpus();
  bool pinned = cpus >= 0 && cpus < sysconf(_SC_NPROCESSORS_ONLN);

  Stats raw = RawSocket(iterations);
  Stats spin = ShmSpin(iterations);
  Stats framed = FramedEcho(iterations);
  RingResult ring = RingEcho(iterations, max_spin);

  double echo_vs_raw = framed.median_us / raw.median_us;
  double ring_vs_raw = ring.echo.median_us / raw.median_us;
  if (json) {
    fmt::print(
        "{{\"iterations\": {}, \"cpus\": {}, \"pinned\": {}, "
        "\"raw_rtt_us\": {:.3f}, \"raw_rtt_p99_us\": {:.3f}, "
        "\"shm_spin_rtt_us\": {:.3f}, \"shm_spin_rtt_p99_us\": {:.3f}, "
        "\"echo_us\": {:.3f}, \"echo_p99_us\": {:.3f}, \"echo_vs_raw_rtt\": {:.3f}, "
        "\"ring_echo_us\": {:.3f}, \"ring_echo_p99_us\": {:.3f}, \"ring_vs_raw_rtt\": {:.4f}, "
        "\"ring_idle_cpu_ms_per_s\": {:.1f}}}\n",
        iterations, cpus, pinned ? "true" : "false", raw.median_us, raw.p99_us, spin.median_us,
        spin.p99_us, framed.median_us, framed.p99_us, echo_vs_raw, ring.echo.median_us,
        ring.echo.p99_us, ring_vs_raw, ring.idle_cpu_ms_per_s);
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
  fmt::print("\nidle ring connection: {:.1f} ms CPU per second (server waiting in Read)\n",
             ring.idle_cpu_ms_per_s);
  return 0;
}
