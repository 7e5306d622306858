#include "shapex/ipc/shared_vec.h"

#include <fmt/core.h>
#include <sys/mman.h>

#include <boost/interprocess/creation_tags.hpp>
#include <boost/interprocess/managed_external_buffer.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/sync/mutex_family.hpp>

#include <bit>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "shapex/engine/vm.h"
#include "shapex/ipc/shared_memory.h"

namespace shapex::ipc {
namespace {

constexpr size_t kMinSizeClass = size_t{64} << 10;

size_t SizeClass(size_t size) { return std::bit_ceil(std::max(size, kMinSizeClass)); }

}  // namespace

struct SegmentPool::State {
  struct Idle {
    WritableSegment segment;
    ScopedFd read_only_fd;
  };
  explicit State(const SegmentPoolOptions& o) : options(o) {}

  SegmentPoolOptions options;
  mutable std::mutex mu;
  std::multimap<size_t, Idle> idle;  // by size class
  SegmentPoolStats stats;
};

SegmentPool::SegmentPool(const SegmentPoolOptions& options)
    : state_(std::make_shared<State>(options)) {}

SegmentPool::~SegmentPool() = default;

SegmentPoolStats SegmentPool::stats() const {
  std::lock_guard lock(state_->mu);
  return state_->stats;
}

namespace {

// Owns one segment while SharedVecs or WireValues use it; gives it back to the pool after.
struct RegionOwner {
  WritableSegment segment;
  ScopedFd read_only_fd;
  std::shared_ptr<SegmentPool::State> pool;  // null: not pooled
  SegmentView view;

  ~RegionOwner() {
    if (!pool) return;
    std::lock_guard lock(pool->mu);
    size_t size = segment.size();
    if (pool->stats.idle_bytes + size > pool->options.max_idle_bytes) {
      ++pool->stats.released;
      return;  // the segment closes with this object
    }
    pool->stats.idle_bytes += size;
    pool->idle.emplace(size, SegmentPool::State::Idle{std::move(segment), std::move(read_only_fd)});
  }
};

}  // namespace

Result<SharedRegion> SharedRegion::Create(size_t size, SegmentPool* pool) {
  auto owner = std::make_shared<RegionOwner>();
  bool reused = false;
  size_t segment_size = size;
  if (pool != nullptr) {
    owner->pool = pool->state_;
    segment_size = SizeClass(size);
    std::lock_guard lock(pool->state_->mu);
    auto it = pool->state_->idle.find(segment_size);
    if (it != pool->state_->idle.end()) {
      owner->segment = std::move(it->second.segment);
      owner->read_only_fd = std::move(it->second.read_only_fd);
      pool->state_->idle.erase(it);
      pool->state_->stats.idle_bytes -= segment_size;
      ++pool->state_->stats.reused;
      reused = true;
    }
  }
  if (!reused) {
    ASSIGN_OR_RETURN(owner->segment, WritableSegment::Create(segment_size, "shapex-shared-vec"));
    ASSIGN_OR_RETURN(owner->read_only_fd, owner->segment.ReadOnlyFd());
    if (pool != nullptr) {
      if (pool->state_->options.huge_pages && segment_size > 0) {
        // Advisory: ignored where shared memory cannot use huge pages.
        (void)::madvise(owner->segment.bytes().data(), segment_size, MADV_HUGEPAGE);
      }
      std::lock_guard lock(pool->state_->mu);
      ++pool->state_->stats.created;
    }
  }
  std::span<uint8_t> bytes = owner->segment.bytes().first(size);
  owner->view = SegmentView{bytes, owner->read_only_fd.get(), 0};
  SharedRegion region;
  region.bytes_ = bytes;
  // The view shares ownership of the whole RegionOwner (aliasing constructor).
  region.view_ = std::shared_ptr<const SegmentView>(owner, &owner->view);
  return region;
}

// ---- SegmentArena ---------------------------------------------------------------------------

namespace bip = boost::interprocess;
using ArenaBuffer =
    bip::basic_managed_external_buffer<char, bip::rbtree_best_fit<bip::mutex_family>,
                                       bip::iset_index>;

struct SegmentArena::State {
  WritableSegment segment;
  ScopedFd read_only_fd;
  ArenaBuffer buffer;  // lives inside `segment`
  mutable std::mutex mu;
  SegmentArenaStats stats;
};

Result<SegmentArena> SegmentArena::Create(size_t capacity) {
  auto state = std::make_shared<State>();
  ASSIGN_OR_RETURN(state->segment, WritableSegment::Create(capacity, "shapex-arena"));
  ASSIGN_OR_RETURN(state->read_only_fd, state->segment.ReadOnlyFd());
  try {
    state->buffer = ArenaBuffer(bip::create_only, state->segment.bytes().data(), capacity);
  } catch (const std::exception& e) {
    return ResourceExhausted(fmt::format("arena of {} bytes: {}", capacity, e.what()));
  }
  state->stats.capacity = capacity;
  SegmentArena arena;
  arena.state_ = std::move(state);
  return arena;
}

SegmentArena::SegmentArena(SegmentArena&&) noexcept = default;
SegmentArena& SegmentArena::operator=(SegmentArena&&) noexcept = default;
SegmentArena::~SegmentArena() = default;

SegmentArenaStats SegmentArena::stats() const {
  std::lock_guard lock(state_->mu);
  SegmentArenaStats stats = state_->stats;
  stats.free_bytes = state_->buffer.get_free_memory();
  return stats;
}

namespace {

// One allocation in an arena; frees it when the last view goes.
struct ArenaAllocation {
  std::shared_ptr<SegmentArena::State> arena;
  void* pointer = nullptr;
  SegmentView view;
  ~ArenaAllocation() {
    if (pointer != nullptr) arena->buffer.deallocate(pointer);
  }
};

}  // namespace

Result<SharedRegion> SharedRegion::Create(size_t size, SegmentArena* arena) {
  if (arena == nullptr || !arena->state_) return InvalidArgument("no arena");
  auto allocation = std::make_shared<ArenaAllocation>();
  allocation->arena = arena->state_;
  // The allocator's own structures are guarded by its interprocess mutex; stats by ours.
  allocation->pointer =
      arena->state_->buffer.allocate_aligned(std::max<size_t>(size, 1), 64, std::nothrow);
  {
    std::lock_guard lock(arena->state_->mu);
    ++(allocation->pointer != nullptr ? arena->state_->stats.allocations
                                      : arena->state_->stats.failed);
  }
  if (allocation->pointer == nullptr) {
    return ResourceExhausted(fmt::format("arena has no room for {} bytes", size));
  }
  auto* base = arena->state_->segment.bytes().data();
  auto* data = static_cast<uint8_t*>(allocation->pointer);
  allocation->view = SegmentView{std::span<const uint8_t>(data, size),
                                 arena->state_->read_only_fd.get(),
                                 static_cast<uint64_t>(data - base)};
  SharedRegion region;
  region.bytes_ = std::span<uint8_t>(data, size);
  region.view_ = std::shared_ptr<const SegmentView>(allocation, &allocation->view);
  return region;
}

namespace {

// Segments adopted by Vms (AdoptSharedBytes), by the address of their bytes, with how many Vm
// values hold each: a value's release (ExternalBuffer) drops one.
struct Adopted {
  std::shared_ptr<const SegmentView> view;
  size_t holders = 0;
};
std::mutex& AdoptedMutex() {
  static std::mutex mu;
  return mu;
}
std::unordered_map<const void*, Adopted>& AdoptedSegments() {
  static auto* map = new std::unordered_map<const void*, Adopted>();
  return *map;
}

void ReleaseAdopted(void* base, size_t) {
  std::lock_guard lock(AdoptedMutex());
  auto& map = AdoptedSegments();
  auto it = map.find(base);
  if (it != map.end() && --it->second.holders == 0) map.erase(it);
}

}  // namespace

Result<engine::Value> AdoptSharedBytes(engine::Vm& vm, engine::ElemKind kind, size_t n,
                                       std::span<uint8_t> bytes,
                                       std::shared_ptr<const SegmentView> view) {
  if (bytes.size() != n * engine::ElemSize(kind))
    return InvalidArgument("shared bytes do not hold that many elements");
  if (reinterpret_cast<uintptr_t>(bytes.data()) % 64 != 0)
    return InvalidArgument("shared bytes are not 64-byte aligned");
  {
    std::lock_guard lock(AdoptedMutex());
    Adopted& a = AdoptedSegments()[bytes.data()];
    if (a.view == nullptr) a.view = std::move(view);
    ++a.holders;
  }
  engine::Value out;
  engine::ExternalBuffer owner{&ReleaseAdopted, bytes.data(), bytes.size()};
  // On failure the Vm releases the buffer at once (ReleaseAdopted), as AdoptTypedArray says.
  if (!vm.AdoptTypedArray(kind, n, bytes.data(), owner, &out)) return vm.last_error();
  return out;
}

std::shared_ptr<const SegmentView> FindAdoptedSegment(const void* data, size_t size) {
  std::lock_guard lock(AdoptedMutex());
  auto& map = AdoptedSegments();
  auto it = map.find(data);
  if (it == map.end()) return nullptr;
  const SegmentView& v = *it->second.view;
  if (v.bytes.data() != data || v.bytes.size() != size) return nullptr;
  return it->second.view;
}

}  // namespace shapex::ipc
