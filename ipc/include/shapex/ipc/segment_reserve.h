// Spare memfd pages for sealed segments, so sending a large copied value does not pay for new
// shared-memory pages while the peer waits.
//
// A sealed segment can never be written again, so every sealed message needs pages nobody has
// used. Getting them costs more than the copy itself (the kernel allocates, zeroes and charges
// every 4 KiB page, then maps it: ~25-40 ms for 64 MiB on a VM without shmem huge pages,
// against ~6 ms to memcpy into pages that are mapped already), and freeing them costs again
// (~8 ms) in whichever process closes the segment last. The reserve moves both out of the call:
//
//   SegmentReserve reserve;
//   ASSIGN_OR_RETURN(ScopedFd fd, reserve.WriteSealed(size, pieces));  // copy into spare pages
//   ... send fd, answer the call ...
//   reserve.Replenish();  // when idle: free what the peer is done with, prepare new spares
//
// A spare is a memfd whose pages are written (zeros, with pwrite) and mapped writable
// (MAP_POPULATE).
// WriteSealed copies the pieces into a ready spare of the right size class, unmaps it (a seal
// against writing needs no writable mapping left), truncates and seals it; without a spare it
// makes a new segment (SealedSegment::CreateByWriting). It keeps a reference to every segment it
// made until the next Replenish, so the pages are freed here, in idle time, rather than by the
// receiver as it drops the value. Replenish prepares one spare for each size written recently,
// within max_spare_bytes. A back-to-back sender gains nothing (Replenish then runs between its
// calls); a sender with idle time between large messages pays only for the copy.
//
// Not thread-safe: one owner (an executor's serve loop, a client session).
#ifndef SHAPEX_IPC_SEGMENT_RESERVE_H_
#define SHAPEX_IPC_SEGMENT_RESERVE_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <span>
#include <vector>

#include "shapex/core/result.h"
#include "shapex/core/scoped_fd.h"
#include "shapex/ipc/shared_memory.h"

namespace shapex::ipc {

struct SegmentReserveOptions {
  // Segments smaller than this are made fresh and never kept (their pages are cheap).
  size_t min_size = size_t{1} << 20;
  // Spare pages kept ready, in total. A size larger than this never gets a spare.
  size_t max_spare_bytes = size_t{256} << 20;
  // How many recently written sizes Replenish keeps a spare for.
  size_t max_sizes = 4;
  // Sent segments kept until Replenish; beyond this the oldest are released at once.
  size_t max_retired_bytes = size_t{1} << 30;
  // Shown as memfd:<name> in /proc/PID/fd and maps.
  const char* name = "shapex-sidecars";
};

struct SegmentReserveStats {
  uint64_t spare_hits = 0;    // WriteSealed found a ready spare
  uint64_t spare_misses = 0;  // ... made a new segment (at least min_size)
  uint64_t spares_made = 0;
  uint64_t spare_failures = 0;  // writing or mapping refused (no memory, limits): no spare
  size_t spare_bytes = 0;       // allocated in spares now
  size_t retired_bytes = 0;     // sent segments still referenced here
};

class SegmentReserve {
 public:
  explicit SegmentReserve(const SegmentReserveOptions& options = {}) : options_(options) {}
  SegmentReserve(const SegmentReserve&) = delete;
  SegmentReserve& operator=(const SegmentReserve&) = delete;

  // A sealed segment of `size` bytes holding the pieces (zeros elsewhere), as a descriptor to
  // send. See SealedSegment::CreateByWriting for the rules on pieces.
  Result<ScopedFd> WriteSealed(size_t size, std::span<const SealedSegment::Piece> pieces);

  // Idle-time work: drops the references to sent segments (freeing their pages if the peer
  // has closed them), then allocates spares for the sizes written recently. Failures to
  // allocate are counted, not returned: the next WriteSealed simply makes a new segment.
  void Replenish();

  const SegmentReserveStats& stats() const { return stats_; }

 private:
  struct Spare {
    ScopedFd fd;
    size_t size = 0;
    SharedMapping mapping;  // writable, every page present
  };
  // A spare's size: the written size rounded up to whole pages, or to 256 KiB from 16 MiB up,
  // so sizes that differ a little share a spare. WriteSealed truncates the rest away, which
  // frees at most 64 pages inside the call.
  static size_t SpareSizeFor(size_t size) {
    size_t granule = size < (size_t{16} << 20) ? size_t{4096} : size_t{256} << 10;
    return (size + granule - 1) / granule * granule;
  }

  void Retire(SealedSegment segment);
  void NoteSize(size_t spare_size);
  Result<Spare> MakeSpare(size_t size) const;

  SegmentReserveOptions options_;
  std::vector<Spare> spares_;
  std::deque<SealedSegment> retired_;
  std::deque<size_t> recent_sizes_;  // spare sizes, most recent last, distinct
  SegmentReserveStats stats_;
};

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_SEGMENT_RESERVE_H_
