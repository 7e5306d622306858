#include "shapex/ipc/call_ring.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <new>
#include <utility>

#include "shapex/core/errno_status.h"

namespace shapex::ipc {

using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

// Cross-process atomics must be address-free, which the standard promises only for lock-free
// atomics; futex words must be plain 32-bit integers.
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);
static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
static_assert(sizeof(std::atomic<uint64_t>) == sizeof(uint64_t));

struct CallRing::Control {
  alignas(64) std::atomic<uint64_t> head;
  alignas(64) std::atomic<uint64_t> tail;
  alignas(64) std::atomic<uint32_t> consumer_waiting;
  alignas(64) std::atomic<uint32_t> producer_waiting;
};

namespace {

constexpr uint32_t kMagic = 0x47525853;  // "SXRG" in little-endian memory
constexpr uint32_t kVersion = 1;
constexpr size_t kCpuHintOffset = 16;  // u32 per side: client, server
constexpr size_t kClosedOffset = 24;   // u32: bit 0 client closed, bit 1 server closed
constexpr size_t kControlOffset = 64;
constexpr size_t kDataOffset = 1024;
constexpr uint64_t kAlign = 8;
constexpr size_t kLengthSize = sizeof(uint32_t);

struct SegmentHeader {
  uint32_t magic;
  uint32_t version;
  uint32_t capacity;
};

uint64_t RecordSize(uint64_t payload_size) {
  return (kLengthSize + payload_size + kAlign - 1) & ~(kAlign - 1);
}

bool IsValidCapacity(uint64_t capacity) {
  return capacity >= kMinRingCapacity && capacity <= kMaxRingCapacity &&
         (capacity & (capacity - 1)) == 0;
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}

// Shared (not FUTEX_PRIVATE) operations: the word lives in a MAP_SHARED segment and the waker is
// another process.
long FutexWait(std::atomic<uint32_t>* word, uint32_t expected, nanoseconds timeout) {
  timespec ts{static_cast<time_t>(timeout.count() / 1'000'000'000),
              static_cast<long>(timeout.count() % 1'000'000'000)};
  return ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, expected, &ts, nullptr,
                   0);
}

void FutexWake(std::atomic<uint32_t>* word) {
  ::syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, 1, nullptr, nullptr, 0);
}

// Copies `size` bytes starting at ring offset `offset` out of a ring of `capacity` bytes,
// wrapping at the end. The caller guarantees offset < capacity and size <= capacity.
void CopyOut(const uint8_t* ring, uint64_t capacity, uint64_t offset, uint8_t* out, size_t size) {
  if (size == 0) return;  // `out` may be null then
  size_t first = std::min<uint64_t>(size, capacity - offset);
  std::memcpy(out, ring + offset, first);
  std::memcpy(out + first, ring, size - first);
}

void CopyIn(uint8_t* ring, uint64_t capacity, uint64_t offset, const uint8_t* in, size_t size) {
  if (size == 0) return;  // `in` may be null then
  size_t first = std::min<uint64_t>(size, capacity - offset);
  std::memcpy(ring + offset, in, first);
  std::memcpy(ring, in + first, size - first);
}

}  // namespace

CallRing& CallRing::operator=(CallRing&& other) noexcept {
  if (this != &other) {
    fd_ = std::move(other.fd_);
    mapping_ = std::move(other.mapping_);
    base_ = std::exchange(other.base_, nullptr);
    capacity_ = std::exchange(other.capacity_, 0);
    closed_ = std::exchange(other.closed_, nullptr);
    my_closed_bit_ = std::exchange(other.my_closed_bit_, 0);
    my_cpu_ = std::exchange(other.my_cpu_, nullptr);
    peer_cpu_ = std::exchange(other.peer_cpu_, nullptr);
    out_ = std::exchange(other.out_, nullptr);
    in_ = std::exchange(other.in_, nullptr);
    out_data_ = std::exchange(other.out_data_, nullptr);
    in_data_ = std::exchange(other.in_data_, nullptr);
    write_index_ = other.write_index_;
    cached_tail_ = other.cached_tail_;
    read_index_ = other.read_index_;
    max_spin_ = other.max_spin_;
    spin_window_ = other.spin_window_;
    stats_ = other.stats_;
    error_ = std::move(other.error_);
  }
  return *this;
}

size_t CallRing::SegmentSize(uint32_t capacity) { return kDataOffset + 2 * size_t{capacity}; }

Result<CallRing> CallRing::Create(RingSide side, const CallRingOptions& options) {
  if (!IsValidCapacity(options.capacity)) {
    return InvalidArgument(fmt::format("ring capacity {} is not a power of two in [{}, {}]",
                                       options.capacity, kMinRingCapacity, kMaxRingCapacity));
  }
  if (options.initial_index % kAlign != 0) {
    return InvalidArgument("ring initial_index must be a multiple of 8");
  }
  size_t size = SegmentSize(options.capacity);
  CallRing ring;
  ASSIGN_OR_RETURN(ring.fd_, CreateMemfd(size, "shapex-call-ring"));
  // Fix the size before anyone maps it: the peer can then never truncate it under us (SIGBUS).
  if (::fcntl(ring.fd_.get(), F_ADD_SEALS, FixedSizeSeals()) != 0) {
    return ErrnoStatus("fcntl(F_ADD_SEALS) on call ring");
  }
  ASSIGN_OR_RETURN(ring.mapping_,
                   SharedMapping::Map(ring.fd_.get(), size, SharedMapping::Access::kReadWrite));
  uint8_t* base = ring.mapping_.mutable_bytes().data();
  // A fresh memfd reads as zeros; construct the atomics properly anyway.
  for (int r = 0; r < 2; ++r) {
    auto* control = new (base + kControlOffset + r * sizeof(Control)) Control;
    control->head.store(options.initial_index, std::memory_order_relaxed);
    control->tail.store(options.initial_index, std::memory_order_relaxed);
    control->consumer_waiting.store(0, std::memory_order_relaxed);
    control->producer_waiting.store(0, std::memory_order_relaxed);
  }
  SegmentHeader header{kMagic, kVersion, options.capacity};
  std::memcpy(base, &header, sizeof(header));
  std::atomic_thread_fence(std::memory_order_release);
  RETURN_IF_ERROR(ring.Bind(base, size, side, options.max_spin));
  return ring;
}

Result<CallRing> CallRing::Attach(ScopedFd fd, RingSide side, nanoseconds max_spin) {
  ASSIGN_OR_RETURN(size_t size, CheckSegment(fd.get(), FixedSizeSeals()));
  if (size < kDataOffset || size > SegmentSize(kMaxRingCapacity)) {
    return ProtocolError(fmt::format("call ring segment has an impossible size of {}", size));
  }
  CallRing ring;
  ASSIGN_OR_RETURN(ring.mapping_,
                   SharedMapping::Map(fd.get(), size, SharedMapping::Access::kReadWrite));
  ring.fd_ = std::move(fd);
  RETURN_IF_ERROR(ring.Bind(ring.mapping_.mutable_bytes().data(), size, side, max_spin));
  return ring;
}

Result<CallRing> CallRing::AttachMemory(std::span<uint8_t> segment, RingSide side,
                                        nanoseconds max_spin) {
  if (reinterpret_cast<uintptr_t>(segment.data()) % alignof(Control) != 0) {
    return InvalidArgument("call ring memory must be 64-byte aligned");
  }
  CallRing ring;
  RETURN_IF_ERROR(ring.Bind(segment.data(), segment.size(), side, max_spin));
  return ring;
}

Status CallRing::Bind(uint8_t* base, size_t size, RingSide side, nanoseconds max_spin) {
  static_assert(kControlOffset + 2 * sizeof(Control) <= kDataOffset);
  static_assert(sizeof(Control) == 256);
  if (size < kDataOffset) return ProtocolError("call ring segment is smaller than its header");
  SegmentHeader header;
  std::memcpy(&header, base, sizeof(header));  // read once; the peer may change it later
  if (header.magic != kMagic || header.version != kVersion) {
    return ProtocolError(
        fmt::format("call ring header has magic {:#x} version {}, expected "
                    "{:#x} version {}",
                    header.magic, header.version, kMagic, kVersion));
  }
  if (!IsValidCapacity(header.capacity) || SegmentSize(header.capacity) != size) {
    return ProtocolError(fmt::format("call ring capacity {} does not match a {}-byte segment",
                                     header.capacity, size));
  }
  base_ = base;
  capacity_ = header.capacity;
  auto* cpu_hints = reinterpret_cast<std::atomic<uint32_t>*>(base + kCpuHintOffset);
  closed_ = reinterpret_cast<std::atomic<uint32_t>*>(base + kClosedOffset);
  my_closed_bit_ = side == RingSide::kClient ? 1u : 2u;
  my_cpu_ = &cpu_hints[side == RingSide::kClient ? 0 : 1];
  peer_cpu_ = &cpu_hints[side == RingSide::kClient ? 1 : 0];
  auto* request = reinterpret_cast<Control*>(base + kControlOffset);
  auto* response = reinterpret_cast<Control*>(base + kControlOffset + sizeof(Control));
  uint8_t* request_data = base + kDataOffset;
  uint8_t* response_data = base + kDataOffset + capacity_;
  bool client = side == RingSide::kClient;
  out_ = client ? request : response;
  in_ = client ? response : request;
  out_data_ = client ? request_data : response_data;
  in_data_ = client ? response_data : request_data;
  write_index_ = out_->head.load(std::memory_order_acquire);
  read_index_ = in_->tail.load(std::memory_order_acquire);
  // Until the first real read of the tail, assume the ring is full: that forces the read.
  cached_tail_ = write_index_ - capacity_;
  if (write_index_ % kAlign != 0 || read_index_ % kAlign != 0) {
    return ProtocolError("call ring indices are not 8-byte aligned");
  }
  max_spin_ = std::max(max_spin, nanoseconds(0));
  spin_window_ = max_spin_;
  return Status::Ok();
}

Result<ScopedFd> CallRing::ShareFd() const {
  if (!fd_) return InvalidArgument("this call ring has no descriptor");
  ScopedFd copy(::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0));
  if (!copy) return ErrnoStatus("fcntl(F_DUPFD_CLOEXEC)");
  return copy;
}

void CallRing::MarkClosed() {
  if (closed_ == nullptr) return;
  closed_->fetch_or(my_closed_bit_, std::memory_order_seq_cst);
  // Wake the peer wherever it sleeps: waiting for our records or for room we would free.
  WakeIfWaiting(&out_->consumer_waiting);
  WakeIfWaiting(&in_->producer_waiting);
}

bool CallRing::peer_closed() const {
  if (closed_ == nullptr) return false;
  uint32_t peer_bit = my_closed_bit_ == 1u ? 2u : 1u;
  return (closed_->load(std::memory_order_acquire) & peer_bit) != 0;
}

Status CallRing::Fail(Status status) {
  if (error_.ok()) error_ = std::move(status);
  return error_;
}

void CallRing::WakeIfWaiting(std::atomic<uint32_t>* word) {
  // Pairs with the fence in Wait(): either the waiter sees our index update before it sleeps,
  // or we see its announcement here.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  if (word->load(std::memory_order_relaxed) == 0) return;
  if (word->exchange(0, std::memory_order_seq_cst) != 0) {
    FutexWake(word);
    ++stats_.wakes;
  }
}

Result<bool> CallRing::TryWrite(std::span<const uint8_t> record) { return TryWrite(record, {}); }

Result<bool> CallRing::TryWrite(std::span<const uint8_t> first, std::span<const uint8_t> second) {
  size_t record_size = first.size() + second.size();
  if (!error_.ok()) return error_;
  if (base_ == nullptr) return InvalidArgument("call ring is not initialised");
  if (!Fits(record_size)) {
    return ResourceExhausted(fmt::format("record of {} bytes does not fit a {}-byte call ring",
                                         record_size, capacity_));
  }
  uint64_t size = RecordSize(record_size);
  // The consumer's tail is re-read (a cache-line transfer from the peer) only when the copy from
  // the last read does not show enough room.
  if (capacity_ - (write_index_ - cached_tail_) < size) {
    uint64_t tail = out_->tail.load(std::memory_order_acquire);
    if (write_index_ - tail > capacity_) {
      return Fail(ProtocolError(
          fmt::format("call ring tail {} is inconsistent with head {}", tail, write_index_)));
    }
    cached_tail_ = tail;
    if (capacity_ - (write_index_ - tail) < size) return false;
  }
  uint64_t mask = capacity_ - 1;
  uint64_t offset = write_index_ & mask;
  auto length = static_cast<uint32_t>(record_size);
  // offset is 8-aligned and capacity >= 64, so the length never straddles the end.
  std::memcpy(out_data_ + offset, &length, kLengthSize);
  CopyIn(out_data_, capacity_, (offset + kLengthSize) & mask, first.data(), first.size());
  CopyIn(out_data_, capacity_, (offset + kLengthSize + first.size()) & mask, second.data(),
         second.size());
  static constexpr uint8_t kZeros[kAlign] = {};
  size_t padding = size - kLengthSize - record_size;
  CopyIn(out_data_, capacity_, (offset + kLengthSize + record_size) & mask, kZeros, padding);
  write_index_ += size;
  out_->head.store(write_index_, std::memory_order_release);
  WakeIfWaiting(&out_->consumer_waiting);
  return true;
}

Result<bool> CallRing::TryRead(std::vector<uint8_t>* record) {
  if (!error_.ok()) return error_;
  if (base_ == nullptr) return InvalidArgument("call ring is not initialised");
  uint64_t head = in_->head.load(std::memory_order_acquire);  // read once
  uint64_t available = head - read_index_;
  if (available == 0) return false;
  if (available > capacity_ || available % kAlign != 0) {
    return Fail(
        ProtocolError(fmt::format("call ring head {} is inconsistent with tail {} (capacity {})",
                                  head, read_index_, capacity_)));
  }
  uint64_t mask = capacity_ - 1;
  uint64_t offset = read_index_ & mask;
  uint32_t length;
  std::memcpy(&length, in_data_ + offset, kLengthSize);  // read once
  uint64_t size = RecordSize(length);
  if (length > max_record_size() || size > available) {
    return Fail(ProtocolError(fmt::format(
        "call ring record of {} bytes exceeds the {} bytes published", length, available)));
  }
  record->resize(length);
  CopyOut(in_data_, capacity_, (offset + kLengthSize) & mask, record->data(), length);
  read_index_ += size;
  in_->tail.store(read_index_, std::memory_order_release);
  WakeIfWaiting(&in_->producer_waiting);
  return true;
}

void CallRing::AdaptAfterSleep(nanoseconds waited) {
  // A peer that answered soon after we gave up is active but slower than our window (typically
  // it was asleep and paid a futex wake-up): spin the full window next time, or a ping-pong
  // settles into both sides sleeping. A long wait means the connection is idle: halve the window
  // (down to 1/16 of the maximum) so idling costs little CPU before sleeping.
  if (waited <= 4 * max_spin_) {
    spin_window_ = max_spin_;
  } else {
    spin_window_ = std::max(max_spin_ / 16, spin_window_ / 2);
  }
}

// Records the peer published before closing are still delivered: this is checked only when the
// ring has nothing for us.
Status CallRing::PeerClosedError() { return IoError("call ring closed by peer"); }

template <class Ready>
Status CallRing::Wait(WaitFor what, Ready ready, nanoseconds timeout) {
  {
    // Fast path: no clock, no CPU lookup when the record or the room is already there.
    ASSIGN_OR_RETURN(bool done, ready());
    if (done) return Status::Ok();
  }
  Clock::time_point start = Clock::now();
  Clock::time_point deadline = start + std::max(timeout, nanoseconds(0));
  Clock::time_point spin_end = start + std::min(spin_window_, std::max(timeout, nanoseconds(0)));
  // If the peer last ran on our CPU, busy-waiting would only keep it from running: yield the CPU
  // instead of pausing. The hint is advisory (the peer may lie); it only changes how we spin.
  int cpu = sched_getcpu();
  if (cpu >= 0 && my_cpu_->load(std::memory_order_relaxed) != static_cast<uint32_t>(cpu) + 1) {
    my_cpu_->store(static_cast<uint32_t>(cpu) + 1, std::memory_order_relaxed);
  }
  bool yield =
      cpu >= 0 && peer_cpu_->load(std::memory_order_relaxed) == static_cast<uint32_t>(cpu) + 1;
  for (uint32_t i = 0;; ++i) {
    ASSIGN_OR_RETURN(bool done, ready());
    if (done) {
      ++stats_.waits_satisfied_spinning;
      // The peer answers within the window: let the window grow back towards its maximum.
      if (i > 0) spin_window_ = std::min(max_spin_, std::max(spin_window_ * 2, max_spin_ / 16));
      return Status::Ok();
    }
    if (yield) {
      ++stats_.yields;
      sched_yield();
      if (Clock::now() >= spin_end) break;
    } else {
      // Check the clock every few dozen pauses only.
      if ((i & 31) == 31 && Clock::now() >= spin_end) break;
      CpuRelax();
    }
  }
  // The peer sets its closed bit after its last publication: once we see the bit, one more
  // ready() check sees every record it sent.
  auto drained_after_close = [&]() -> Result<bool> {
    if (!peer_closed()) return false;
    ASSIGN_OR_RETURN(bool done, ready());
    if (done) return true;
    return PeerClosedError();
  };
  {
    ASSIGN_OR_RETURN(bool done, drained_after_close());
    if (done) return Status::Ok();
  }
  std::atomic<uint32_t>* word =
      what == WaitFor::kData ? &in_->consumer_waiting : &out_->producer_waiting;
  for (;;) {
    word->store(1, std::memory_order_seq_cst);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    Result<bool> done = ready();
    if (!done.has_value() || *done) {
      word->store(0, std::memory_order_relaxed);
      if (done.has_value()) AdaptAfterSleep(Clock::now() - start);
      return done.error();
    }
    if (peer_closed()) {
      word->store(0, std::memory_order_relaxed);
      return drained_after_close().error();
    }
    nanoseconds left = deadline - Clock::now();
    if (left <= nanoseconds(0)) {
      word->store(0, std::memory_order_relaxed);
      AdaptAfterSleep(nanoseconds::max());  // idle: the timeout passed with nothing to do
      return TimeoutError(what == WaitFor::kData ? "timed out waiting for a call ring record"
                                                 : "timed out waiting for room in the call ring");
    }
    ++stats_.sleeps;
    // EAGAIN (word already reset by the peer), EINTR, ETIMEDOUT and wakeups all loop back to
    // re-check; the deadline bounds the loop.
    if (FutexWait(word, 1, left) != 0 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT) {
      word->store(0, std::memory_order_relaxed);
      return ErrnoStatus("futex(FUTEX_WAIT)");
    }
  }
}

Status CallRing::Write(std::span<const uint8_t> record, nanoseconds timeout) {
  return Write(record, {}, timeout);
}

Status CallRing::Write(std::span<const uint8_t> first, std::span<const uint8_t> second,
                       nanoseconds timeout) {
  return Wait(
      WaitFor::kRoom, [&]() { return TryWrite(first, second); }, timeout);
}

Status CallRing::Read(std::vector<uint8_t>* record, nanoseconds timeout) {
  return Wait(
      WaitFor::kData, [&]() { return TryRead(record); }, timeout);
}

}  // namespace shapex::ipc
