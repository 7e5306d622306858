#include "shapex/ipc/shared_memory.h"

#include <fcntl.h>
#include <fmt/core.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <limits>
#include <string>

#include "shapex/core/errno_status.h"

namespace shapex::ipc {
namespace {

std::string SealNames(int seals) {
  std::string out;
  auto add = [&](int bit, const char* name) {
    if (!(seals & bit)) return;
    if (!out.empty()) out += '|';
    out += name;
  };
  add(F_SEAL_SHRINK, "SHRINK");
  add(F_SEAL_GROW, "GROW");
  add(F_SEAL_WRITE, "WRITE");
  add(F_SEAL_SEAL, "SEAL");
  add(F_SEAL_FUTURE_WRITE, "FUTURE_WRITE");
  return out.empty() ? "none" : out;
}

Status AddSeals(int fd, int seals) {
  if (::fcntl(fd, F_ADD_SEALS, seals) != 0) {
    return ErrnoStatus(fmt::format("fcntl(F_ADD_SEALS, {})", SealNames(seals)));
  }
  return Status::Ok();
}

Status CheckExpectedSize(size_t actual, size_t expected) {
  if (actual != expected) {
    return ProtocolError(
        fmt::format("segment has {} bytes, the message announced {}", actual, expected));
  }
  return Status::Ok();
}

}  // namespace

Result<ScopedFd> CreateMemfd(size_t size, const char* name) {
  if (size > static_cast<size_t>(std::numeric_limits<off_t>::max())) {
    return InvalidArgument(fmt::format("segment size {} is too large", size));
  }
  ScopedFd fd(::memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) return ErrnoStatus("memfd_create", name);
  if (::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) return ErrnoStatus("ftruncate", name);
  return fd;
}

int ImmutableSeals() { return F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL; }
int FixedSizeSeals() { return F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL; }

SharedMapping::SharedMapping(SharedMapping&& other) noexcept
    : data_(other.data_), size_(other.size_), writable_(other.writable_) {
  other.data_ = nullptr;
  other.size_ = 0;
  other.writable_ = false;
}

SharedMapping& SharedMapping::operator=(SharedMapping&& other) noexcept {
  if (this != &other) {
    Reset();
    data_ = other.data_;
    size_ = other.size_;
    writable_ = other.writable_;
    other.data_ = nullptr;
    other.size_ = 0;
    other.writable_ = false;
  }
  return *this;
}

void SharedMapping::Reset() {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
  writable_ = false;
}

Result<SharedMapping> SharedMapping::Map(int fd, size_t size, Access access, bool populate) {
  SharedMapping mapping;
  mapping.writable_ = access == Access::kReadWrite;
  if (size == 0) return mapping;
  int prot = mapping.writable_ ? PROT_READ | PROT_WRITE : PROT_READ;
  void* addr = ::mmap(nullptr, size, prot, MAP_SHARED | (populate ? MAP_POPULATE : 0), fd, 0);
  if (addr == MAP_FAILED) return ErrnoStatus(mapping.writable_ ? "mmap(rw)" : "mmap(ro)");
  mapping.data_ = static_cast<uint8_t*>(addr);
  mapping.size_ = size;
  return mapping;
}

Result<size_t> CheckSegment(int fd, int required_seals) {
  int seals = ::fcntl(fd, F_GET_SEALS);
  if (seals < 0) {
    // EINVAL: the file type does not support sealing (not a memfd/shmem file).
    if (errno == EINVAL) return ProtocolError("segment descriptor is not a sealable memfd");
    return ErrnoStatus("fcntl(F_GET_SEALS)");
  }
  if ((seals & required_seals) != required_seals) {
    return ProtocolError(fmt::format("segment is sealed with {}, expected at least {}",
                                     SealNames(seals), SealNames(required_seals)));
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0) return ErrnoStatus("fstat(segment)");
  if (!S_ISREG(st.st_mode) || st.st_size < 0) {
    return ProtocolError("segment descriptor is not a regular file");
  }
  return static_cast<size_t>(st.st_size);
}

Result<SegmentBuilder> SegmentBuilder::Create(size_t size, const char* name) {
  SegmentBuilder builder;
  ASSIGN_OR_RETURN(builder.fd_, CreateMemfd(size, name));
  builder.size_ = size;
  ASSIGN_OR_RETURN(builder.mapping_,
                   SharedMapping::Map(builder.fd_.get(), size, SharedMapping::Access::kReadWrite));
  return builder;
}

Result<SealedSegment> SegmentBuilder::Seal() && {
  if (!fd_) return InvalidArgument("Seal on an empty SegmentBuilder");
  // F_SEAL_WRITE fails with EBUSY while any writable shared mapping exists, ours included.
  mapping_.Reset();
  RETURN_IF_ERROR(AddSeals(fd_.get(), ImmutableSeals()));
  return SealedSegment(std::move(fd_), size_);
}

Result<SealedSegment> SealedSegment::CreateFrom(std::span<const uint8_t> contents,
                                                const char* name) {
  ASSIGN_OR_RETURN(SegmentBuilder builder, SegmentBuilder::Create(contents.size(), name));
  if (!contents.empty()) std::copy(contents.begin(), contents.end(), builder.bytes().begin());
  return std::move(builder).Seal();
}

Result<SealedSegment> SealedSegment::CreateByWriting(size_t size, std::span<const Piece> pieces,
                                                     const char* name) {
  ASSIGN_OR_RETURN(ScopedFd fd, CreateMemfd(size, name));
  return SealWritten(std::move(fd), size, pieces);
}

Result<SealedSegment> SealedSegment::SealWritten(ScopedFd fd, size_t size,
                                                 std::span<const Piece> pieces) {
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return ErrnoStatus("fstat(memfd)");
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) < size) {
    return InvalidArgument(fmt::format("memfd has {} bytes, {} needed", st.st_size, size));
  }
  RETURN_IF_ERROR(CheckPieces(size, pieces));
  for (const Piece& piece : pieces) {
    const uint8_t* data = piece.bytes.data();
    size_t left = piece.bytes.size();
    off_t offset = static_cast<off_t>(piece.offset);
    while (left > 0) {
      ssize_t n = ::pwrite(fd.get(), data, std::min<size_t>(left, size_t{1} << 30), offset);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus("pwrite(memfd)");
      }
      data += n;
      left -= static_cast<size_t>(n);
      offset += n;
    }
  }
  if (static_cast<uint64_t>(st.st_size) > size &&
      ::ftruncate(fd.get(), static_cast<off_t>(size)) != 0) {
    return ErrnoStatus("ftruncate(memfd)");
  }
  RETURN_IF_ERROR(AddSeals(fd.get(), ImmutableSeals()));
  return SealedSegment(std::move(fd), size);
}

Status SealedSegment::CheckPieces(size_t size, std::span<const Piece> pieces) {
  for (const Piece& piece : pieces) {
    if (piece.offset > size || piece.bytes.size() > size - piece.offset) {
      return InvalidArgument("segment piece lies outside the segment");
    }
  }
  return Status::Ok();
}

void SealedSegment::CopyPieces(std::span<uint8_t> target, std::span<const Piece> pieces) {
  for (const Piece& piece : pieces) {
    if (!piece.bytes.empty()) {
      std::memcpy(target.data() + piece.offset, piece.bytes.data(), piece.bytes.size());
    }
  }
}

Result<ScopedFd> SealedSegment::ShareFd() const {
  ScopedFd copy(::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0));
  if (!copy) return ErrnoStatus("fcntl(F_DUPFD_CLOEXEC)");
  return copy;
}

Result<SharedMapping> SealedSegment::Map() const {
  return SharedMapping::Map(fd_.get(), size_, SharedMapping::Access::kReadOnly);
}

Result<WritableSegment> WritableSegment::Create(size_t size, const char* name) {
  WritableSegment segment;
  ASSIGN_OR_RETURN(segment.fd_, CreateMemfd(size, name));
  segment.size_ = size;
  // Owner read-only mode: reopening through /proc/self/fd for writing is then refused by the
  // permission check (to processes without CAP_DAC_OVERRIDE; F_SEAL_FUTURE_WRITE covers those).
  if (::fchmod(segment.fd_.get(), 0400) != 0) return ErrnoStatus("fchmod(memfd)");
  ASSIGN_OR_RETURN(segment.mapping_,
                   SharedMapping::Map(segment.fd_.get(), size, SharedMapping::Access::kReadWrite));
  // FUTURE_WRITE keeps our existing writable mapping but refuses write() and any new writable
  // mapping, through every descriptor of this file.
  RETURN_IF_ERROR(AddSeals(segment.fd_.get(), FixedSizeSeals() | F_SEAL_FUTURE_WRITE));
  return segment;
}

Result<ScopedFd> WritableSegment::ReadOnlyFd() const {
  if (!fd_) return InvalidArgument("ReadOnlyFd on an empty WritableSegment");
  std::string path = fmt::format("/proc/self/fd/{}", fd_.get());
  ScopedFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return ErrnoStatus("open(O_RDONLY)", path);
  return fd;
}

Result<SharedMapping> MapSealed(ScopedFd fd, size_t expected_size) {
  ASSIGN_OR_RETURN(size_t size, CheckSegment(fd.get(), ImmutableSeals()));
  RETURN_IF_ERROR(CheckExpectedSize(size, expected_size));
  return SharedMapping::Map(fd.get(), size, SharedMapping::Access::kReadOnly);
}

Result<SharedMapping> MapReadOnly(ScopedFd fd, size_t expected_size) {
  int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0) return ErrnoStatus("fcntl(F_GETFL)");
  if ((flags & O_ACCMODE) != O_RDONLY) {
    return ProtocolError("read-only segment arrived on a writable descriptor");
  }
  ASSIGN_OR_RETURN(size_t size, CheckSegment(fd.get(), FixedSizeSeals()));
  RETURN_IF_ERROR(CheckExpectedSize(size, expected_size));
  return SharedMapping::Map(fd.get(), size, SharedMapping::Access::kReadOnly);
}

}  // namespace shapex::ipc
