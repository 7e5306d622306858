// Shared helpers of ipc_bench's translation units (timing, child processes, full reads/writes).
#ifndef SHAPEX_TOOLS_BENCH_IPC_BENCH_UTIL_H_
#define SHAPEX_TOOLS_BENCH_IPC_BENCH_UTIL_H_

#include <fmt/format.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "shapex/core/status.h"

namespace ipc_bench {

using shapex::Status;
using Clock = std::chrono::steady_clock;

struct Stats {
  double median_us = 0;
  double p99_us = 0;
};

[[noreturn]] inline void Die(const std::string& what) {
  std::fprintf(stderr, "ipc_bench: %s\n", what.c_str());
  std::exit(1);
}

inline void DieIf(const Status& status, const char* what) {
  if (!status.ok()) Die(fmt::format("{}: {}", what, status.ToString()));
}

inline Stats Summarise(std::vector<double> samples) {
  std::sort(samples.begin(), samples.end());
  size_t n = samples.size();
  return {samples[n / 2], samples[std::min(n - 1, (n * 99 + 99) / 100 - 1)]};
}

// Runs `body(i)` for warm-up + iterations round trips, timing each timed one.
inline Stats Measure(int iterations, const std::function<void(int)>& body) {
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
inline pid_t Spawn(const std::function<int()>& child_main) {
  pid_t pid = fork();
  if (pid < 0) Die("fork failed");
  if (pid == 0) _exit(child_main());
  return pid;
}

inline void Reap(pid_t pid, const char* what) {
  int status = 0;
  if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    Die(fmt::format("{} child failed (status {})", what, status));
  }
}

inline bool ReadFull(int fd, uint8_t* buf, size_t size) {
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

inline bool WriteFull(int fd, const uint8_t* buf, size_t size) {
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

// The baseline of every latency benchmark: a 64-byte write/read round trip over a blocking
// AF_UNIX socketpair with a forked child echoing it.
inline Stats RawSocketRoundTrip(int iterations) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) Die("socketpair");
  pid_t child = Spawn([&] {
    close(fds[0]);
    uint8_t buf[64];
    while (ReadFull(fds[1], buf, sizeof(buf))) {
      if (!WriteFull(fds[1], buf, sizeof(buf))) return 1;
    }
    return 0;
  });
  close(fds[1]);
  uint8_t buf[64] = {1};
  Stats stats = Measure(iterations, [&](int) {
    if (!WriteFull(fds[0], buf, sizeof(buf)) || !ReadFull(fds[0], buf, sizeof(buf))) {
      Die("raw socket echo failed");
    }
  });
  close(fds[0]);
  Reap(child, "raw socket");
  return stats;
}

// CPUs this process may run on (fewer than online CPUs: the run was narrowed with taskset).
inline int AllowedCpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return -1;
  return CPU_COUNT(&set);
}

}  // namespace ipc_bench

#endif  // SHAPEX_TOOLS_BENCH_IPC_BENCH_UTIL_H_
