// Shared-memory segments passed between processes by file descriptor.
//
// Two ways to hand memory to a less trusted process, so that it can never write into ours:
//
// 1. Sealed (immutable) segments. The owner fills a SegmentBuilder, then Seal()s it: the writable
//    mapping is dropped and F_SEAL_SHRINK|F_SEAL_GROW|F_SEAL_WRITE|F_SEAL_SEAL are added, so
//    nobody, the owner included, can change the bytes or the size again.
//      ASSIGN_OR_RETURN(SegmentBuilder builder, SegmentBuilder::Create(size));
//      Fill(builder.bytes());
//      ASSIGN_OR_RETURN(SealedSegment segment, std::move(builder).Seal());
//      ASSIGN_OR_RETURN(ScopedFd fd, segment.ShareFd());       // send over a UnixSocket
//    Receiver:
//      ASSIGN_OR_RETURN(SharedMapping view, MapSealed(std::move(fd), expected_size));
//
// 2. Owner-writable segments (WritableSegment): the size is sealed (SHRINK|GROW|SEAL) and new
//    writable mappings are refused (F_SEAL_FUTURE_WRITE), but the owner's own mapping stays
//    writable. Peers get a descriptor reopened O_RDONLY through /proc/self/fd, so mapping it
//    writable fails; the future-write seal also stops a peer that reopens it read-write.
//    Receiver: MapReadOnly(std::move(fd), expected_size).
//
// Receivers check everything about a descriptor before mapping it: it must be a memfd carrying
// the required seals, and its size must equal what the protocol announced. A size seal is what
// makes a mapping safe: without F_SEAL_SHRINK the sender could truncate the file and our reads
// would fault with SIGBUS. Any violation is a ProtocolError (the peer misbehaved); OS failures
// are IoErrors.
//
// Ownership: every type here is move-only and owns its descriptor and mapping; SharedMapping
// unmaps in its destructor, and a mapping stays valid after the descriptor it came from is
// closed. Thread-safety: none of these objects may be mutated concurrently; the mapped bytes are
// plain memory (readers of a sealed segment need no synchronisation).
#ifndef SHAPEX_IPC_SHARED_MEMORY_H_
#define SHAPEX_IPC_SHARED_MEMORY_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

#include "shapex/core/result.h"
#include "shapex/core/scoped_fd.h"
#include "shapex/core/status.h"

namespace shapex::ipc {

// The four seals that make a segment immutable.
int ImmutableSeals();  // F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL
// The seals that fix a segment's size (enough for safe read-only mapping of a writable segment).
int FixedSizeSeals();  // F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL

// A MAP_SHARED mapping of (part of) a file; unmapped on destruction.
class SharedMapping {
 public:
  enum class Access { kReadOnly, kReadWrite };

  SharedMapping() = default;
  ~SharedMapping() { Reset(); }
  SharedMapping(SharedMapping&& other) noexcept;
  SharedMapping& operator=(SharedMapping&& other) noexcept;
  SharedMapping(const SharedMapping&) = delete;
  SharedMapping& operator=(const SharedMapping&) = delete;

  // Maps `size` bytes of `fd` from offset 0. A size of 0 gives an empty mapping without mmap.
  // `populate` maps every page at once (MAP_POPULATE) instead of on first touch.
  static Result<SharedMapping> Map(int fd, size_t size, Access access, bool populate = false);

  std::span<const uint8_t> bytes() const { return {data_, size_}; }
  // Empty for a read-only mapping.
  std::span<uint8_t> mutable_bytes() {
    return writable_ ? std::span<uint8_t>(data_, size_) : std::span<uint8_t>();
  }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  bool writable() const { return writable_; }

  void Reset();

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  bool writable_ = false;
};

// A new close-on-exec memfd of `size` bytes that accepts seals (MFD_ALLOW_SEALING), not yet
// sealed or mapped. Building block for segment types with their own layout (e.g. CallRing).
Result<ScopedFd> CreateMemfd(size_t size, const char* name = "shapex");

// Checks that `fd` is a sealable memfd carrying every seal in `required_seals` and returns its
// size. ProtocolError otherwise (including for descriptors that are not memfds).
Result<size_t> CheckSegment(int fd, int required_seals);

class SealedSegment;

// A fresh, writable, unsealed memfd segment mapped into this process. Fill bytes(), then Seal().
class SegmentBuilder {
 public:
  SegmentBuilder() = default;
  SegmentBuilder(SegmentBuilder&&) noexcept = default;
  SegmentBuilder& operator=(SegmentBuilder&&) noexcept = default;

  // `name` shows up in /proc/PID/fd (as memfd:<name>) and in /proc/PID/maps.
  static Result<SegmentBuilder> Create(size_t size, const char* name = "shapex");

  std::span<uint8_t> bytes() { return mapping_.mutable_bytes(); }
  size_t size() const { return size_; }

  // Unmaps the writable view, then seals the segment against every change.
  Result<SealedSegment> Seal() &&;

 private:
  ScopedFd fd_;
  size_t size_ = 0;
  SharedMapping mapping_;
};

// An immutable memfd segment. Safe to hand to any process.
class SealedSegment {
 public:
  SealedSegment() = default;
  SealedSegment(SealedSegment&&) noexcept = default;
  SealedSegment& operator=(SealedSegment&&) noexcept = default;

  // Convenience: a sealed copy of `contents`.
  static Result<SealedSegment> CreateFrom(std::span<const uint8_t> contents,
                                          const char* name = "shapex");

  // A sealed segment of `size` bytes holding each piece's bytes at its offset (zeros elsewhere).
  // Written with pwrite, never mapped: the kernel copies straight into the segment's pages, so
  // there are no page faults and no writable mapping to tear down before sealing (several times
  // faster than mmap + memcpy for large segments). Pieces must lie within `size`.
  struct Piece {
    uint64_t offset = 0;
    std::span<const uint8_t> bytes;
  };
  static Result<SealedSegment> CreateByWriting(size_t size, std::span<const Piece> pieces,
                                               const char* name = "shapex");
  // The same into an existing, unsealed memfd whose first `size` bytes are zero (e.g. a spare
  // with pages already allocated, see SegmentReserve): writes the pieces, truncates the file to
  // `size` if it is longer, then seals it.
  static Result<SealedSegment> SealWritten(ScopedFd memfd, size_t size,
                                           std::span<const Piece> pieces);
  // InvalidArgument unless every piece lies within `size` bytes.
  static Status CheckPieces(size_t size, std::span<const Piece> pieces);
  // Copies each piece to its offset in `target` (mapped memory; CheckPieces first).
  static void CopyPieces(std::span<uint8_t> target, std::span<const Piece> pieces);

  // A new close-on-exec descriptor for the same segment, to send to a peer.
  Result<ScopedFd> ShareFd() const;
  // A read-only view for the owner.
  Result<SharedMapping> Map() const;

  int fd() const { return fd_.get(); }
  size_t size() const { return size_; }

 private:
  friend class SegmentBuilder;
  SealedSegment(ScopedFd fd, size_t size) : fd_(std::move(fd)), size_(size) {}

  ScopedFd fd_;
  size_t size_ = 0;
};

// A fixed-size segment the owner keeps writing to, shared read-only.
class WritableSegment {
 public:
  WritableSegment() = default;
  WritableSegment(WritableSegment&&) noexcept = default;
  WritableSegment& operator=(WritableSegment&&) noexcept = default;

  static Result<WritableSegment> Create(size_t size, const char* name = "shapex");

  std::span<uint8_t> bytes() { return mapping_.mutable_bytes(); }
  size_t size() const { return size_; }

  // A descriptor opened O_RDONLY on the same memory (via /proc/self/fd), to send to a peer.
  Result<ScopedFd> ReadOnlyFd() const;

 private:
  ScopedFd fd_;
  size_t size_ = 0;
  SharedMapping mapping_;
};

// Receiver side of SealedSegment: checks all four immutability seals and size == expected_size,
// then maps read-only. The descriptor is closed before returning (the mapping outlives it).
Result<SharedMapping> MapSealed(ScopedFd fd, size_t expected_size);

// Receiver side of WritableSegment: checks the descriptor is read-only, the size is sealed and
// equals expected_size, then maps read-only. The contents may change under the reader: copy
// before validating.
Result<SharedMapping> MapReadOnly(ScopedFd fd, size_t expected_size);

}  // namespace shapex::ipc

#endif  // SHAPEX_IPC_SHARED_MEMORY_H_
