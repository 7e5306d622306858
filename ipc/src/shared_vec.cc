#include "shapex/ipc/shared_vec.h"

#include <sys/mman.h>

#include <bit>
#include <map>
#include <mutex>
#include <utility>

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

}  // namespace shapex::ipc
