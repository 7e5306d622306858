// SharedVec<T>: a typed array built directly in shared memory, so a large argument is never
// copied: the caller fills it in place, and the callee maps the same pages (zero-copy path of
// docs/wire-protocol.md, "Sidecars on a connection").
//
//   SegmentPool pool;                                       // optional: reuses segments
//   ASSIGN_OR_RETURN(SharedVec<double> v, SharedVec<double>::Create(n, &pool));
//   for (size_t i = 0; i < n; ++i) v[i] = i * 0.5;          // writes go straight to the segment
//   request.arguments.push_back(v.ToWire());                // a typed array that stays in place
//   RETURN_IF_ERROR(SendMessage(conn, id, std::move(request)));   // passes a read-only fd
//
// Guarantees and rules:
// - The segment is a memfd whose size is sealed and which refuses new writable mappings
//   (F_SEAL_FUTURE_WRITE); peers get a descriptor opened O_RDONLY, so they can never write into
//   it (WritableSegment in shared_memory.h). Only this process's own mapping is writable.
// - The peer sees later writes too (it is the same memory): do not modify a SharedVec while a
//   call that uses it is in flight. Values keep the segment alive (shared ownership) until the
//   last SharedVec and WireValue referring to it is gone; then it returns to its pool.
// - Element types: double, float, int64_t, int32_t, int16_t, int8_t, uint8_t (Vec<f64> ...).
// - SegmentPool is thread-safe; a SharedVec is not (like std::vector).
#ifndef SHAPEX_IPC_SHARED_VEC_H_
#define SHAPEX_IPC_SHARED_VEC_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <type_traits>

#include "shapex/core/result.h"
#include "shapex/engine/value.h"
#include "shapex/ipc/wire_value.h"

namespace shapex::engine {
class Vm;
}  // namespace shapex::engine

namespace shapex::ipc {

struct SegmentPoolOptions {
  // Bytes of idle segments kept for reuse; more are released to the OS.
  size_t max_idle_bytes = size_t{1} << 30;
  // madvise(MADV_HUGEPAGE) on each new segment's mapping. Effective only where the kernel allows
  // transparent huge pages for shared memory (/sys/kernel/mm/transparent_hugepage/shmem_enabled).
  bool huge_pages = false;
};

struct SegmentPoolStats {
  uint64_t created = 0;   // new memfds
  uint64_t reused = 0;    // acquisitions served from the idle list
  uint64_t released = 0;  // idle segments closed (over max_idle_bytes)
  uint64_t idle_bytes = 0;
};

// A writable region of shared memory with a read-only descriptor for peers (see SegmentView).
class SharedRegion;

struct SegmentArenaStats {
  size_t capacity = 0;     // bytes of the segment
  size_t free_bytes = 0;   // as the allocator reports them
  uint64_t allocations = 0;
  uint64_t failed = 0;     // requests that did not fit
};

// One segment shared by many SharedVecs, so a value with many arrays travels as one descriptor
// (each array is an offset and a length in it). The space inside is managed by a
// Boost.Interprocess best-fit allocator (managed_external_buffer over the segment, with
// rbtree_best_fit and its interprocess mutex, so SharedVecs may be created and released from
// several threads). Peers receive the whole segment read-only: they can read every array in
// the arena (and the allocator's bookkeeping), so use one arena per trust domain, e.g. per
// client, never shared between users. Thread-safe.
class SegmentArena {
 public:
  static Result<SegmentArena> Create(size_t capacity);
  SegmentArena(SegmentArena&&) noexcept;
  SegmentArena& operator=(SegmentArena&&) noexcept;
  ~SegmentArena();

  SegmentArenaStats stats() const;

  struct State;  // defined in shared_vec.cc

 private:
  friend class SharedRegion;
  SegmentArena() = default;
  std::shared_ptr<State> state_;
};

// Keeps released segments for reuse, so repeated large calls do not pay for new memory (page
// faults, zeroing) each time. Segments come in power-of-two size classes (>= 64 KiB).
class SegmentPool {
 public:
  explicit SegmentPool(const SegmentPoolOptions& options = {});
  ~SegmentPool();
  SegmentPool(const SegmentPool&) = delete;
  SegmentPool& operator=(const SegmentPool&) = delete;

  SegmentPoolStats stats() const;

  struct State;  // defined in shared_vec.cc

 private:
  friend class SharedRegion;
  std::shared_ptr<State> state_;
};

// Untyped core of SharedVec: `size` writable bytes in a segment (from `pool` if given).
class SharedRegion {
 public:
  static Result<SharedRegion> Create(size_t size, SegmentPool* pool = nullptr);
  // `size` bytes inside `arena` (64-byte aligned). ResourceExhausted when the arena is full.
  static Result<SharedRegion> Create(size_t size, SegmentArena* arena);

  std::span<uint8_t> bytes() const { return bytes_; }
  // A view sharing ownership of the segment, for WireBuffer::segment.
  std::shared_ptr<const SegmentView> view() const { return view_; }

 private:
  std::shared_ptr<const SegmentView> view_;
  std::span<uint8_t> bytes_;
};

// The bytes of a region as a typed array of `vm`, with no copy: the Vm's array and the region
// are the same memory (writes through either are seen by both). While the Vm value lives the
// segment does too. Sending the value to an executor (ToWire with a borrow threshold, e.g.
// RemoteCalls or shapex::Module) passes the segment's read-only descriptor instead of copying
// it, as SharedVec::ToWire does. `bytes` must be 64-byte aligned and hold `n` elements.
Result<engine::Value> AdoptSharedBytes(engine::Vm& vm, engine::ElemKind kind, size_t n,
                                       std::span<uint8_t> bytes,
                                       std::shared_ptr<const SegmentView> view);
// The segment view whose bytes are exactly [data, data + size) and which AdoptSharedBytes gave
// to a Vm that still holds it; nullptr otherwise.
std::shared_ptr<const SegmentView> FindAdoptedSegment(const void* data, size_t size);

template <class T>
struct SharedElem;
template <> struct SharedElem<double> { static constexpr auto kKind = engine::ElemKind::kF64; };
template <> struct SharedElem<float> { static constexpr auto kKind = engine::ElemKind::kF32; };
template <> struct SharedElem<int64_t> { static constexpr auto kKind = engine::ElemKind::kI64; };
template <> struct SharedElem<int32_t> { static constexpr auto kKind = engine::ElemKind::kI32; };
template <> struct SharedElem<int16_t> { static constexpr auto kKind = engine::ElemKind::kI16; };
template <> struct SharedElem<int8_t> { static constexpr auto kKind = engine::ElemKind::kI8; };
template <> struct SharedElem<uint8_t> { static constexpr auto kKind = engine::ElemKind::kU8; };

template <class T>
class SharedVec {
 public:
  static constexpr engine::ElemKind kKind = SharedElem<T>::kKind;

  // `n` zero-initialised elements (a fresh segment) or unspecified ones (a reused segment).
  static Result<SharedVec> Create(size_t n, SegmentPool* pool = nullptr) {
    if (n > (size_t{1} << 40) / sizeof(T)) return InvalidArgument("SharedVec is too large");
    ASSIGN_OR_RETURN(SharedRegion region, SharedRegion::Create(n * sizeof(T), pool));
    return SharedVec(std::move(region), n);
  }
  // `n` elements (unspecified values) inside `arena`.
  static Result<SharedVec> Create(size_t n, SegmentArena* arena) {
    if (n > (size_t{1} << 40) / sizeof(T)) return InvalidArgument("SharedVec is too large");
    ASSIGN_OR_RETURN(SharedRegion region, SharedRegion::Create(n * sizeof(T), arena));
    return SharedVec(std::move(region), n);
  }

  T* data() const { return reinterpret_cast<T*>(region_.bytes().data()); }
  size_t size() const { return size_; }
  std::span<T> span() const { return {data(), size_}; }
  T& operator[](size_t i) const { return data()[i]; }

  // A typed array whose bytes stay in the segment.
  WireValue ToWire() const { return WireValue::SharedTypedArray(kKind, region_.view()); }
  // The same memory as a typed array of `vm` (AdoptSharedBytes): no copy here, and none when
  // the value is sent on.
  Result<engine::Value> ToValue(engine::Vm& vm) const {
    return AdoptSharedBytes(vm, kKind, size_, region_.bytes(), region_.view());
  }
  // A rows x cols matrix over the same bytes (double only; rows * cols must equal size()).
  Result<WireValue> ToWireMatrix(uint64_t rows, uint64_t cols) const {
    static_assert(std::is_same_v<T, double>, "matrices hold f64");
    if (cols != 0 && rows != size_ / cols) return InvalidArgument("matrix shape != size");
    if (rows * cols != size_) return InvalidArgument("matrix shape != size");
    return WireValue::SharedMatrix(rows, cols, region_.view());
  }

 private:
  SharedVec(SharedRegion region, size_t n) : region_(std::move(region)), size_(n) {}
  SharedRegion region_;
  size_t size_ = 0;
};

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_SHARED_VEC_H_
