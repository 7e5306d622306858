#include "tools/bench/ipc_bench_large.h"

#include <sys/mman.h>
#include <sys/socket.h>

#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

#include "shapex/ipc/connection.h"
#include "shapex/ipc/segment_reserve.h"
#include "shapex/ipc/shared_vec.h"
#include "shapex/ipc/sidecar_transport.h"

namespace ipc_bench {
namespace {

using namespace shapex;
using namespace shapex::ipc;

constexpr size_t kMiB = size_t{1} << 20;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }
double Us(Clock::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

RemoteCallRequest Request(WireValue argument) {
  RemoteCallRequest request;
  request.function_name = "touch";
  request.arguments.push_back(std::move(argument));
  return request;
}

// Child side of the sealed and zero-copy paths: map, read first and last element, answer.
int ServeArrays(UnixSocket socket) {
  ConnectionOptions options;
  auto server = Connection::Accept(std::move(socket), options);
  if (!server.has_value()) return 1;
  SidecarTransportOptions trusting;
  trusting.accept_read_only_segments = true;  // the parent is the more trusted side here
  IncomingFrame in;
  for (;;) {
    if (!server->Receive(&in, std::chrono::seconds(120)).ok()) return 2;
    if (in.type == FrameType::kGoodbye) return 0;
    auto message = DecodeIncoming(&in, trusting);
    if (!message.has_value()) return 3;
    auto* request = std::get_if<RemoteCallRequest>(&*message);
    if (request == nullptr || request->arguments.size() != 1) return 4;
    std::span<const uint8_t> bytes = request->arguments[0].buffer().data();
    double first = 0, last = 0;
    if (bytes.size() >= 8) {
      std::memcpy(&first, bytes.data(), 8);
      std::memcpy(&last, bytes.data() + bytes.size() - 8, 8);
    }
    // Unmap before answering, so each path pays for its own teardown.
    message = WireMessage();
    auto answer = RemoteCallResponse::Success(WireValue::Number(first + last));
    if (!SendMessage(*server, in.call_id, std::move(answer)).ok()) return 5;
  }
}

// A forked child running ServeArrays, and our end of its connection.
struct ArrayServer {
  pid_t child;
  Connection client;
};

ArrayServer StartArrayServer() {
  auto sockets = UnixSocket::Pair();
  DieIf(sockets.error(), "socketpair");
  pid_t child = Spawn([&] {
    sockets->first.Close();
    return ServeArrays(std::move(sockets->second));
  });
  sockets->second.Close();
  auto client = Connection::Connect(std::move(sockets->first), {});
  DieIf(client.error(), "connect");
  return {child, std::move(*client)};
}

// Child side of the socket path: read `size` bytes into a ready buffer, answer one byte.
int ServeSocket(int fd, size_t size) {
  std::vector<uint8_t> buffer(size, 1);  // faulted in before any timing
  uint8_t ack = 1;
  for (;;) {
    uint8_t go;
    if (!ReadFull(fd, &go, 1)) return 0;
    if (!ReadFull(fd, buffer.data(), size)) return 1;
    ack = static_cast<uint8_t>(buffer[0] + buffer[size - 1]);
    if (!WriteFull(fd, &ack, 1)) return 2;
  }
}

Stats Summary(std::vector<double> samples) { return Summarise(std::move(samples)); }

Stats SocketPath(size_t size, int reps, const std::vector<uint8_t>& data) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) Die("socketpair");
  pid_t child = Spawn([&] {
    close(fds[0]);
    return ServeSocket(fds[1], size);
  });
  close(fds[1]);
  std::vector<double> samples;
  for (int r = 0; r < reps + 1; ++r) {
    auto start = Clock::now();
    uint8_t go = 1, ack = 0;
    if (!WriteFull(fds[0], &go, 1) || !WriteFull(fds[0], data.data(), size) ||
        !ReadFull(fds[0], &ack, 1)) {
      Die("socket path failed");
    }
    if (r > 0) samples.push_back(Us(Clock::now() - start));  // the first run warms up
  }
  close(fds[0]);
  Reap(child, "socket path");
  return Summary(samples);
}

struct SegmentPaths {
  Stats sealed, sealed_busy, sealed_fresh, pooled, zero_copy;
  uint64_t spare_hits = 0, spare_misses = 0;
};

SegmentPaths SegmentPathsFor(size_t size, int reps, const std::vector<uint8_t>& data,
                             const SharedVec<double>& shared) {
  ArrayServer server = StartArrayServer();
  pid_t child = server.child;
  Connection* client = &server.client;
  IncomingFrame in;
  // One timed round trip. The message (which owns the source array's bytes once they are
  // extracted) is destroyed after the timing, as the socket path keeps its source buffer:
  // freeing the caller's own array is not part of moving it.
  std::optional<OutgoingMessage> out;
  auto call = [&](WireValue argument, const SidecarTransportOptions& options) {
    auto start = Clock::now();
    auto prepared = PrepareOutgoing(Request(std::move(argument)), options);
    DieIf(prepared.error(), "prepare array");
    out = std::move(*prepared);
    DieIf(SendPrepared(*client, 1, *out), "send array");
    DieIf(client->Receive(&in, std::chrono::seconds(120)), "receive answer");
    DieIf(DecodeIncoming(&in).error(), "decode answer");
    return Clock::now() - start;
  };
  auto f64 = [&] { return WireValue::TypedArray(engine::ElemKind::kF64, data); };
  SegmentPaths paths;
  std::vector<double> sealed, sealed_busy, sealed_fresh, pooled, zero_copy;
  SegmentReserve reserve;  // the defaults an executor uses
  SidecarTransportOptions fresh, with_reserve, with_pool;
  with_reserve.reserve = &reserve;
  SegmentPoolOptions pool_options;
  pool_options.max_idle_bytes = size_t{2} << 30;
  SegmentPool pool(pool_options);
  with_pool.pool = &pool;
  for (int r = 0; r < reps + 1; ++r) {  // the first round warms up
    // The copy paths start from an ordinary array (made outside the timed region).
    auto t = call(f64(), fresh);
    if (r > 0) sealed_fresh.push_back(Us(t));
    out.reset();
    reserve.Replenish();  // idle time between calls
    t = call(f64(), with_reserve);
    if (r > 0) sealed.push_back(Us(t));
    out.reset();
    reserve.Replenish();
    WireValue array = f64();
    t = call(std::move(array), with_reserve);
    auto start = Clock::now();
    reserve.Replenish();  // a back-to-back sender replenishes before its next call
    if (r > 0) sealed_busy.push_back(Us(t + (Clock::now() - start)));
    out.reset();
    t = call(f64(), with_pool);
    if (r > 0) pooled.push_back(Us(t));
    out.reset();
    t = call(shared.ToWire(), fresh);
    if (r > 0) zero_copy.push_back(Us(t));
    out.reset();
  }
  client->Shutdown();
  Reap(child, "segment paths");
  paths.sealed = Summary(sealed);
  paths.sealed_busy = Summary(sealed_busy);
  paths.sealed_fresh = Summary(sealed_fresh);
  paths.spare_hits = reserve.stats().spare_hits;
  paths.spare_misses = reserve.stats().spare_misses;
  paths.pooled = Summary(pooled);
  paths.zero_copy = Summary(zero_copy);
  (void)size;
  return paths;
}

Stats MemcpyFloor(size_t size, int reps, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> target(size, 1);
  std::vector<double> samples;
  for (int r = 0; r < reps + 1; ++r) {
    auto start = Clock::now();
    std::memcpy(target.data(), data.data(), size);
    if (r > 0) samples.push_back(Us(Clock::now() - start));
  }
  if (target[size / 2] != data[size / 2]) Die("memcpy floor");
  return Summary(samples);
}

std::string ShmemThpSetting() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/shmem_enabled");
  std::string line;
  std::getline(in, line);
  return line.empty() ? "unavailable" : line;
}

// Sum of a smaps field (kB) over this process's mappings.
long SmapsKb(const char* field) {
  std::ifstream in("/proc/self/smaps_rollup");
  std::string line;
  long total = 0;
  size_t n = std::strlen(field);
  while (std::getline(in, line)) {
    if (line.compare(0, n, field) == 0) total += std::atol(line.c_str() + n + 1);
  }
  return total;
}

void Fill(const SharedVec<double>& v) {
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>(i);
}

}  // namespace

LargeResults MeasureLarge(bool quick) {
  LargeResults results;
  struct Size {
    size_t mib;
    int reps;
  };
  std::vector<Size> sizes = quick ? std::vector<Size>{{1, 20}, {64, 3}, {1024, 1}}
                                  : std::vector<Size>{{1, 200}, {64, 20}, {1024, 5}};
  for (const Size& s : sizes) {
    size_t bytes = s.mib * kMiB;
    std::vector<uint8_t> data(bytes);
    for (size_t i = 0; i < bytes; i += 4096) data[i] = static_cast<uint8_t>(i >> 12);
    auto shared = SharedVec<double>::Create(bytes / sizeof(double));
    DieIf(shared.error(), "SharedVec");
    std::memcpy(shared->data(), data.data(), bytes);  // built before the timed region
    LargeRow row;
    row.mib = s.mib;
    row.reps = s.reps;
    row.socket = SocketPath(bytes, s.reps, data);
    SegmentPaths paths = SegmentPathsFor(bytes, s.reps, data, *shared);
    row.sealed = paths.sealed;
    row.sealed_busy = paths.sealed_busy;
    row.sealed_fresh = paths.sealed_fresh;
    row.spare_hits = paths.spare_hits;
    row.spare_misses = paths.spare_misses;
    row.pooled = paths.pooled;
    row.zero_copy = paths.zero_copy;
    row.memcpy_floor = MemcpyFloor(bytes, s.reps, data);
    results.rows.push_back(row);
  }

  // Segment reuse and page size, 64 MiB.
  size_t n = 64 * kMiB / sizeof(double);
  results.shmem_thp_setting = ShmemThpSetting();
  {
    auto v = SharedVec<double>::Create(n);
    DieIf(v.error(), "SharedVec");
    auto start = Clock::now();
    Fill(*v);
    results.fill_fresh_ms = Ms(Clock::now() - start);
  }
  {
    SegmentPoolOptions options;
    options.huge_pages = true;
    SegmentPool pool(options);
    long before = SmapsKb("ShmemPmdMapped:") + SmapsKb("FilePmdMapped:");
    {
      auto v = SharedVec<double>::Create(n, &pool);
      DieIf(v.error(), "SharedVec");
      auto start = Clock::now();
      Fill(*v);
      results.fill_hugepage_ms = Ms(Clock::now() - start);
      long after = SmapsKb("ShmemPmdMapped:") + SmapsKb("FilePmdMapped:");
      results.hugepages_effective = after > before;
    }
    auto v = SharedVec<double>::Create(n, &pool);  // the same segment again
    DieIf(v.error(), "SharedVec");
    auto start = Clock::now();
    Fill(*v);
    results.fill_pooled_ms = Ms(Clock::now() - start);
  }
  return results;
}

ShmFixedResults MeasureShmFixed(int reps, std::chrono::milliseconds idle_gap) {
  const std::vector<size_t> sizes_mib = {1, 64, 1024};
  std::vector<SharedVec<double>> vecs;
  for (size_t mib : sizes_mib) {
    auto v = SharedVec<double>::Create(mib * kMiB / sizeof(double));
    DieIf(v.error(), "SharedVec");
    Fill(*v);  // every page written, before the child exists and before any timing
    vecs.push_back(std::move(*v));
  }
  ArrayServer server = StartArrayServer();
  pid_t child = server.child;
  Connection* client = &server.client;
  IncomingFrame in;
  SidecarTransportOptions options;
  std::optional<OutgoingMessage> out;
  auto call = [&](const SharedVec<double>& v) {
    auto start = Clock::now();
    auto prepared = PrepareOutgoing(Request(v.ToWire()), options);
    DieIf(prepared.error(), "prepare array");
    out = std::move(*prepared);
    DieIf(SendPrepared(*client, 1, *out), "send array");
    DieIf(client->Receive(&in, std::chrono::seconds(120)), "receive answer");
    DieIf(DecodeIncoming(&in).error(), "decode answer");
    auto elapsed = Clock::now() - start;
    out.reset();
    return elapsed;
  };
  std::vector<std::vector<double>> busy(sizes_mib.size()), idle(sizes_mib.size());
  for (int r = 0; r < reps + 1; ++r) {  // the first repetition warms up
    for (size_t k = 0; k < sizes_mib.size(); ++k) {
      size_t i = (k + static_cast<size_t>(r)) % sizes_mib.size();
      std::this_thread::sleep_for(idle_gap);
      auto t = call(vecs[i]);
      if (r > 0) idle[i].push_back(Us(t));
      t = call(vecs[i]);  // at once: the child is still spinning after its answer
      if (r > 0) busy[i].push_back(Us(t));
    }
  }
  client->Shutdown();
  Reap(child, "shm_fixed");
  ShmFixedResults results;
  results.reps = reps;
  results.idle_gap = idle_gap;
  for (size_t i = 0; i < sizes_mib.size(); ++i) {
    results.rows.push_back(
        {sizes_mib[i], Summary(std::move(busy[i])), Summary(std::move(idle[i]))});
  }
  const ShmFixedRow &small = results.rows.front(), &large = results.rows.back();
  results.delta_ms = (large.busy.median_us - small.busy.median_us) / 1000;
  results.idle_delta_ms = (large.idle.median_us - small.idle.median_us) / 1000;
  return results;
}

}  // namespace ipc_bench
