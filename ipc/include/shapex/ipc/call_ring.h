// CallRing: the shared-memory fast path of a connection. One segment, mapped read-write by both
// processes, holds a request ring (client -> server) and a response ring (server -> client).
// Each ring is single-producer/single-consumer and carries variable-size records (normally one
// encoded frame each, see frame.h). Messages that do not fit, descriptors, the handshake and
// Cancel travel over the UnixSocket instead.
//
// Usage:
//   // Client: create, then send ring.ShareFd() over the socket during connect.
//   ASSIGN_OR_RETURN(CallRing ring, CallRing::Create(RingSide::kClient));
//   // Server: attach the received descriptor.
//   ASSIGN_OR_RETURN(CallRing ring, CallRing::Attach(std::move(fd), RingSide::kServer));
//
//   if (!ring.Fits(frame.size())) { /* use the socket */ }
//   RETURN_IF_ERROR(ring.Write(frame, timeout));          // waits only while the ring is full
//   RETURN_IF_ERROR(ring.Read(&record, timeout));         // spins briefly, then sleeps
//   ASSIGN_OR_RETURN(Frame f, DecodeSingleFrame(record)); // decode the private copy
//
// Segment layout (native byte order: both ends run on one machine; all offsets in bytes):
//   0     u32 magic 'SXRG' (0x47525853)   4  u32 version (1)   8  u32 capacity (per ring)
//   16    atomic u32 client CPU hint, 20 atomic u32 server CPU hint (CPU number + 1, 0 = unknown)
//   24    atomic u32 closed flags: bit 0 = the client closed, bit 1 = the server closed
//   64    request ring control block (256 bytes), 320 response ring control block (256 bytes)
//         +0   atomic u64 head   bytes ever published by the producer
//         +64  atomic u64 tail   bytes ever consumed by the consumer
//         +128 atomic u32 consumer futex: 1 = consumer is (about to be) asleep waiting for data
//         +192 atomic u32 producer futex: 1 = producer is (about to be) asleep waiting for room
//   1024  request ring data [capacity]    1024 + capacity  response ring data [capacity]
// head and tail are free-running (they wrap at 2^64); a record starts at (index & (capacity-1)):
//   u32 payload length, payload, zero padding to a multiple of 8. A record may wrap around the
//   end of the data area (it is copied out in two pieces).
//
// Guarantees:
// - Publication uses release stores and acquire loads of head/tail. A waiting side spins for an
//   adaptive window (at most `max_spin`, default 50 µs of pause instructions), then announces
//   itself in the futex word and sleeps on a shared futex; the other side issues FUTEX_WAKE only
//   when it sees that announcement, so a busy connection makes no system calls and an idle one
//   uses no CPU once its spin window has passed. The window adapts: a wait that slept but was
//   answered soon after (within 4x max_spin) restores the full window; a long or timed-out wait
//   halves it, down to max_spin / 16. Each side records the CPU it last waited on; when the peer
//   shares our CPU, spinning would only keep it from running, so we spin with sched_yield().
// - Nothing read from the segment is trusted: the reader copies each record into private memory
//   before returning it, reads head and each length exactly once, and bounds-checks them against
//   its private copy of its own index (head - tail <= capacity, 8-byte alignment, length fits
//   what was published). A violation is a ProtocolError and the ring stays failed: the peer can
//   make this connection fail, never make us crash or touch memory outside the segment. The
//   segment's size is sealed (F_SEAL_SHRINK|GROW|SEAL), so it cannot be truncated under us.
// - Closing: MarkClosed() sets this side's closed bit and wakes the peer. A wait on a ring whose
//   peer closed returns IoError once everything the peer published has been read.
// - Records larger than max_record_size() fail with ResourceExhausted (use the socket path).
// - Not thread-safe: one thread uses a CallRing object at a time. The two processes are the two
//   threads each ring is designed for.
#ifndef SHAPEX_IPC_CALL_RING_H_
#define SHAPEX_IPC_CALL_RING_H_

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/core/scoped_fd.h"
#include "shapex/core/status.h"
#include "shapex/ipc/shared_memory.h"

namespace shapex::ipc {

inline constexpr uint32_t kMinRingCapacity = 64;
inline constexpr uint32_t kMaxRingCapacity = 1u << 30;
inline constexpr uint32_t kDefaultRingCapacity = 256u << 10;  // per direction
// Longer than a futex wake-up across CPUs on the 2-vCPU VM (~20-40 µs): with a window shorter
// than the peer's wake-up latency, a ping-pong settles into both sides sleeping (~48 µs per round
// trip measured with 20 µs, 0.25-0.5 µs with 50 µs; see tools/bench/ipc_bench).
inline constexpr std::chrono::nanoseconds kDefaultRingMaxSpin = std::chrono::microseconds(50);

// Which end of the connection this process is: the client produces requests and consumes
// responses, the server the opposite.
enum class RingSide { kClient, kServer };

struct CallRingOptions {
  // Bytes per ring; a power of two in [kMinRingCapacity, kMaxRingCapacity].
  uint32_t capacity = kDefaultRingCapacity;
  // Upper bound of the adaptive spin window before sleeping on the futex.
  std::chrono::nanoseconds max_spin = kDefaultRingMaxSpin;
  // Starting value of every head and tail (a multiple of 8). Tests use values near 2^64.
  uint64_t initial_index = 0;
};

// Counters for tests and benchmarks (this process's view only).
struct CallRingStats {
  uint64_t waits_satisfied_spinning = 0;  // waits that ended without sleeping
  uint64_t sleeps = 0;                    // FUTEX_WAIT calls
  uint64_t wakes = 0;                     // FUTEX_WAKE calls
  uint64_t yields = 0;                    // sched_yield calls while the peer shared our CPU
};

class CallRing {
 public:
  CallRing() = default;
  // A moved-from ring is empty (its views into the segment are cleared, not copied).
  CallRing(CallRing&& other) noexcept { *this = std::move(other); }
  CallRing& operator=(CallRing&& other) noexcept;

  // Creates a new segment (size-sealed memfd) with empty rings.
  static Result<CallRing> Create(RingSide side, const CallRingOptions& options = {});

  // Maps a segment received from the peer after checking its seals, header and size.
  static Result<CallRing> Attach(ScopedFd fd, RingSide side,
                                 std::chrono::nanoseconds max_spin = kDefaultRingMaxSpin);

  // Uses `segment` (64-byte aligned, must outlive the ring) as the segment image, validated as
  // in Attach. For tests, fuzzers and in-process use.
  static Result<CallRing> AttachMemory(std::span<uint8_t> segment, RingSide side,
                                       std::chrono::nanoseconds max_spin = kDefaultRingMaxSpin);

  // Bytes a segment with `capacity` bytes per ring occupies.
  static size_t SegmentSize(uint32_t capacity);

  // A new descriptor for the segment to send to the peer. InvalidArgument for AttachMemory rings.
  Result<ScopedFd> ShareFd() const;

  // Producer side (the outgoing ring).
  bool Fits(size_t record_size) const { return record_size <= max_record_size(); }
  size_t max_record_size() const { return capacity_ - 4; }
  // Publishes `record` if there is room now: true if written, false if the ring is full.
  Result<bool> TryWrite(std::span<const uint8_t> record);
  // Publishes `record`, waiting up to `timeout` for room (TimeoutError after that).
  Status Write(std::span<const uint8_t> record, std::chrono::nanoseconds timeout);
  // The same for a record given in two pieces (e.g. a frame header and its payload).
  Result<bool> TryWrite(std::span<const uint8_t> first, std::span<const uint8_t> second);
  Status Write(std::span<const uint8_t> first, std::span<const uint8_t> second,
               std::chrono::nanoseconds timeout);

  // Consumer side (the incoming ring). `*record` is resized to the payload (capacity reused).
  // Copies the next record out: true if one was read, false if the ring is empty.
  Result<bool> TryRead(std::vector<uint8_t>* record);
  // Reads the next record, waiting up to `timeout` (TimeoutError after that).
  Status Read(std::vector<uint8_t>* record, std::chrono::nanoseconds timeout);

  // Tells the peer we will neither read nor write again (wakes it if it sleeps).
  void MarkClosed();
  // True once the peer called MarkClosed() (or someone did on its behalf).
  bool peer_closed() const;

  uint32_t capacity() const { return capacity_; }
  const CallRingStats& stats() const { return stats_; }
  // The current adaptive spin window.
  std::chrono::nanoseconds spin_window() const { return spin_window_; }
  // The sticky error after a ProtocolError, else OK.
  const Status& error() const { return error_; }

 private:
  struct Control;  // one ring's control block, defined in call_ring.cc
  enum class WaitFor { kData, kRoom };

  // Validates the header of the segment at `base` and sets up the ring views.
  Status Bind(uint8_t* base, size_t size, RingSide side, std::chrono::nanoseconds max_spin);
  Status Fail(Status status);
  static Status PeerClosedError();
  // Spins, then sleeps, until `ready()` or the timeout. `ready` returns Result<bool>.
  template <class Ready>
  Status Wait(WaitFor what, Ready ready, std::chrono::nanoseconds timeout);
  // Sets the next spin window from how long a wait that had to sleep took in total.
  void AdaptAfterSleep(std::chrono::nanoseconds waited);
  void WakeIfWaiting(std::atomic<uint32_t>* futex_word);

  ScopedFd fd_;            // empty for AttachMemory rings
  SharedMapping mapping_;  // empty for AttachMemory rings
  uint8_t* base_ = nullptr;
  uint32_t capacity_ = 0;                    // private copy: never re-read from the segment
  std::atomic<uint32_t>* closed_ = nullptr;  // closed flags in the segment header
  uint32_t my_closed_bit_ = 0;
  std::atomic<uint32_t>* my_cpu_ = nullptr;  // CPU hints in the segment header (cpu + 1)
  std::atomic<uint32_t>* peer_cpu_ = nullptr;
  Control* out_ = nullptr;  // ring we produce into
  Control* in_ = nullptr;   // ring we consume from
  uint8_t* out_data_ = nullptr;
  const uint8_t* in_data_ = nullptr;
  uint64_t write_index_ = 0;  // private copy of out_->head
  uint64_t cached_tail_ = 0;  // out_->tail as last read (validated then)
  uint64_t read_index_ = 0;   // private copy of in_->tail
  std::chrono::nanoseconds max_spin_{0};
  std::chrono::nanoseconds spin_window_{0};
  CallRingStats stats_;
  Status error_;
};

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_CALL_RING_H_
