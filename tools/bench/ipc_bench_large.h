// ipc_bench, part 2: large f64 arrays from this process to a child process, several ways.
//   socket     the bytes written through a bare AF_UNIX stream socket into a ready buffer
//   sealed     our copy path for untrusting receivers (results from executors): the array (in
//              ordinary memory) is written into a sealed segment whose descriptor travels in a
//              kMessageWithFds frame. Three variants: `sealed` writes into spare pages from a
//              SegmentReserve (default options) replenished between calls outside the timing,
//              as a sender with idle time does; `sealed_busy` times the Replenish too (a
//              back-to-back sender's cost per call); `sealed_fresh` uses a new memfd per message
//   pooled     our copy path for receivers that accept read-only segments (executors): copied
//              into a reused, already faulted-in segment from a SegmentPool
//   zero_copy  our zero-copy path: the array was built in a SharedVec; only its read-only
//              descriptor travels
//   memcpy     one memcpy of the same size into memory that is already faulted in (the floor of
//              any path that copies)
// Every path is a full round trip: the child has the array mapped (or read), reads its first and
// last element, and answers. Plus segment reuse: filling 64 MiB in a new segment (4 KiB pages),
// in a new segment with MADV_HUGEPAGE, and in a pooled segment that was used before.
// Plus the zero-copy fixed cost alone, sizes interleaved (MeasureShmFixed).
#ifndef SHAPEX_TOOLS_BENCH_IPC_BENCH_LARGE_H_
#define SHAPEX_TOOLS_BENCH_IPC_BENCH_LARGE_H_

#include <cstddef>
#include <string>
#include <vector>

#include "tools/bench/ipc_bench_util.h"

namespace ipc_bench {

struct LargeRow {
  size_t mib = 0;
  int reps = 0;
  uint64_t spare_hits = 0, spare_misses = 0;  // the reserve of the sealed paths
  Stats socket, sealed, sealed_busy, sealed_fresh, pooled, zero_copy, memcpy_floor;  // µs
};

struct LargeResults {
  std::vector<LargeRow> rows;
  double fill_fresh_ms = 0;     // 64 MiB written into a new segment
  double fill_hugepage_ms = 0;  // the same after MADV_HUGEPAGE
  bool hugepages_effective = false;
  std::string shmem_thp_setting;  // /sys/kernel/mm/transparent_hugepage/shmem_enabled
  double fill_pooled_ms = 0;      // 64 MiB written into a reused pooled segment
};

LargeResults MeasureLarge(bool quick);

// The fixed cost of a zero-copy argument (issue 14): a SharedVec's read-only descriptor sent to a
// child that maps it, reads its first and last element, unmaps it and answers. The sizes are
// interleaved within each repetition (the first size rotates from one repetition to the next),
// so a slow phase of the host hits all sizes alike. Each SharedVec is written in full before the
// timing, as a sender that built its array has it. Each size is timed twice per repetition:
//   idle  sent after `idle_gap` of sleep, so the child has gone to sleep on the ring's futex and
//         its CPU may be idle: the path's cost plus waking the peer, as an occasional caller
//         pays it
//   busy  sent right after that answer, while the child still spins on the call ring (its spin
//         window, 50 µs by default): the path's own cost
// The wake-up depends on how long the peer slept, not on the array: the old zero-copy column
// (MeasureLarge) follows copy paths whose clean-up grows with the size, which is why it grew.
inline constexpr std::chrono::milliseconds kShmFixedIdleGap{5};
struct ShmFixedRow {
  size_t mib = 0;
  Stats busy, idle;  // µs
};
struct ShmFixedResults {
  int reps = 0;
  std::chrono::milliseconds idle_gap{0};
  std::vector<ShmFixedRow> rows;  // 1 MiB, 64 MiB, 1 GiB
  double delta_ms = 0;            // busy median, 1 GiB minus 1 MiB (shm_fixed_delta_ms)
  double idle_delta_ms = 0;       // the same for idle
};

ShmFixedResults MeasureShmFixed(int reps, std::chrono::milliseconds idle_gap = kShmFixedIdleGap);

}  // namespace ipc_bench

#endif  // SHAPEX_TOOLS_BENCH_IPC_BENCH_LARGE_H_
