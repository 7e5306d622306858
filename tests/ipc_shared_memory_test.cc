#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "shapex/ipc/shared_memory.h"
#include "shapex/ipc/unix_socket.h"
#include "testing/open_fds.h"
#include "testing/status_matchers.h"

namespace shapex::ipc {
namespace {

using ::shapex_testing::CountOpenFds;
using ::shapex_testing::IsError;

constexpr size_t kSize = 3 * 4096 + 100;  // not page-aligned on purpose

class SharedMemoryTest : public ::testing::Test {
 protected:
  void SetUp() override { fds_before_ = CountOpenFds(); }
  void TearDown() override { EXPECT_EQ(CountOpenFds(), fds_before_) << "descriptor leak"; }

  // A raw memfd of `size` bytes filled with `fill`, carrying `seals` (0 = none).
  static ScopedFd RawMemfd(size_t size, int seals, uint8_t fill = 0x5A) {
    ScopedFd fd(memfd_create("test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    EXPECT_TRUE(fd.valid());
    EXPECT_EQ(ftruncate(fd.get(), static_cast<off_t>(size)), 0);
    std::vector<uint8_t> bytes(size, fill);
    EXPECT_EQ(pwrite(fd.get(), bytes.data(), size, 0), static_cast<ssize_t>(size));
    if (seals != 0) {
      EXPECT_EQ(fcntl(fd.get(), F_ADD_SEALS, seals), 0);
    }
    return fd;
  }

  static SealedSegment MakeSealed(size_t size, uint8_t seed) {
    auto builder = SegmentBuilder::Create(size);
    EXPECT_OK(builder);
    for (size_t i = 0; i < size; ++i) builder->bytes()[i] = static_cast<uint8_t>(seed + i);
    auto sealed = std::move(*builder).Seal();
    EXPECT_OK(sealed);
    return std::move(*sealed);
  }

  size_t fds_before_ = 0;
};

TEST_F(SharedMemoryTest, BuildSealShareAndMap) {
  SealedSegment segment = MakeSealed(kSize, 3);
  EXPECT_EQ(fcntl(segment.fd(), F_GET_SEALS), ImmutableSeals());
  EXPECT_TRUE(fcntl(segment.fd(), F_GETFD) & FD_CLOEXEC);
  auto fd = segment.ShareFd();
  ASSERT_OK(fd);
  EXPECT_TRUE(fcntl(fd->get(), F_GETFD) & FD_CLOEXEC);
  auto view = MapSealed(std::move(*fd), kSize);
  ASSERT_OK(view);
  ASSERT_EQ(view->size(), kSize);
  EXPECT_FALSE(view->writable());
  EXPECT_TRUE(view->mutable_bytes().empty());
  for (size_t i = 0; i < kSize; ++i) ASSERT_EQ(view->bytes()[i], static_cast<uint8_t>(3 + i));
  auto own = segment.Map();
  ASSERT_OK(own);
  EXPECT_EQ(std::memcmp(own->data(), view->data(), kSize), 0);
}

TEST_F(SharedMemoryTest, CreateFromCopiesAndSeals) {
  std::vector<uint8_t> contents = {1, 2, 3, 4, 5};
  auto segment = SealedSegment::CreateFrom(contents);
  ASSERT_OK(segment);
  auto fd = segment->ShareFd();
  ASSERT_OK(fd);
  auto view = MapSealed(std::move(*fd), contents.size());
  ASSERT_OK(view);
  EXPECT_TRUE(std::equal(contents.begin(), contents.end(), view->bytes().begin()));
}

TEST_F(SharedMemoryTest, EmptySegmentMapsToEmptyView) {
  auto segment = SealedSegment::CreateFrom({});
  ASSERT_OK(segment);
  auto fd = segment->ShareFd();
  ASSERT_OK(fd);
  auto view = MapSealed(std::move(*fd), 0);
  ASSERT_OK(view);
  EXPECT_EQ(view->size(), 0u);
}

TEST_F(SharedMemoryTest, ReceivedSealedSegmentCannotBeMappedWritable) {
  SealedSegment segment = MakeSealed(kSize, 1);
  auto fd = segment.ShareFd();
  ASSERT_OK(fd);
  // What a hostile receiver would try: every route to changing the bytes or the size fails.
  errno = 0;
  void* addr = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd->get(), 0);
  EXPECT_EQ(addr, MAP_FAILED);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(pwrite(fd->get(), "x", 1, 0), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(ftruncate(fd->get(), 10), -1);
  EXPECT_EQ(errno, EPERM);
  EXPECT_EQ(fcntl(fd->get(), F_ADD_SEALS, 0), -1);  // F_SEAL_SEAL: seals cannot change
  // A private writable mapping only copies: the shared bytes stay as they were.
  void* priv = mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd->get(), 0);
  ASSERT_NE(priv, MAP_FAILED);
  static_cast<uint8_t*>(priv)[0] = 0xEE;
  munmap(priv, kSize);
  auto view = MapSealed(std::move(*fd), kSize);
  ASSERT_OK(view);
  EXPECT_EQ(view->bytes()[0], 1);
}

TEST_F(SharedMemoryTest, UnsealedMemfdIsRejected) {
  EXPECT_THAT(MapSealed(RawMemfd(kSize, 0), kSize), IsError(ErrorKind::kProtocolError));
}

TEST_F(SharedMemoryTest, WritableMemfdIsRejected) {
  // Size sealed, but the sender can still write: not immutable.
  ScopedFd fd = RawMemfd(kSize, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  auto result = MapSealed(std::move(fd), kSize);
  EXPECT_THAT(result, IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(result.error().message(), ::testing::HasSubstr("WRITE"));
}

TEST_F(SharedMemoryTest, SealsThatCanStillChangeAreRejected) {
  // Everything but F_SEAL_SEAL: the protocol demands the full, final set of seals.
  ScopedFd fd = RawMemfd(kSize, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE);
  EXPECT_THAT(MapSealed(std::move(fd), kSize), IsError(ErrorKind::kProtocolError));
}

TEST_F(SharedMemoryTest, ShrunkMemfdIsRejected) {
  // The sender announced kSize but truncated the file before sealing it.
  ScopedFd fd = RawMemfd(kSize, 0);
  ASSERT_EQ(ftruncate(fd.get(), 4096), 0);
  ASSERT_EQ(fcntl(fd.get(), F_ADD_SEALS, ImmutableSeals()), 0);
  auto result = MapSealed(std::move(fd), kSize);
  EXPECT_THAT(result, IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(result.error().message(), ::testing::HasSubstr("4096"));
}

TEST_F(SharedMemoryTest, WrongSizeIsRejected) {
  SealedSegment segment = MakeSealed(kSize, 0);
  for (size_t expected : {size_t{0}, kSize - 1, kSize + 1, size_t{1} << 40}) {
    auto fd = segment.ShareFd();
    ASSERT_OK(fd);
    EXPECT_THAT(MapSealed(std::move(*fd), expected), IsError(ErrorKind::kProtocolError));
  }
}

TEST_F(SharedMemoryTest, NonMemfdDescriptorsAreRejected) {
  int pipe_fds[2];
  ASSERT_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
  ScopedFd write_end(pipe_fds[1]);
  EXPECT_THAT(MapSealed(ScopedFd(pipe_fds[0]), 0), IsError(ErrorKind::kProtocolError));
  EXPECT_THAT(MapSealed(ScopedFd(open("/dev/null", O_RDONLY | O_CLOEXEC)), 0),
              IsError(ErrorKind::kProtocolError));
  char path[] = "/tmp/shapex_shm_XXXXXX";
  ScopedFd file(mkostemp(path, O_CLOEXEC));
  ASSERT_TRUE(file.valid());
  unlink(path);
  EXPECT_THAT(MapSealed(std::move(file), 0), IsError(ErrorKind::kProtocolError));
}

TEST_F(SharedMemoryTest, SegmentTravelsToAnotherProcessOverASocket) {
  SealedSegment segment = MakeSealed(kSize, 9);
  auto pair = UnixSocket::Pair();
  ASSERT_OK(pair);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    pair->first.Close();
    std::vector<ScopedFd> fds;
    uint8_t byte;
    if (!pair->second.WaitReadable(5000).has_value()) _exit(1);
    auto got = pair->second.RecvMsg(std::span(&byte, 1), &fds);
    if (!got.has_value() || fds.size() != 1) _exit(2);
    auto view = MapSealed(std::move(fds[0]), kSize);
    if (!view.has_value()) _exit(3);
    for (size_t i = 0; i < kSize; ++i) {
      if (view->bytes()[i] != static_cast<uint8_t>(9 + i)) _exit(4);
    }
    // The child cannot write it either.
    _exit(mmap(nullptr, kSize, PROT_WRITE, MAP_SHARED, segment.fd(), 0) == MAP_FAILED ? 0 : 5);
  }
  auto fd = segment.ShareFd();
  ASSERT_OK(fd);
  int raw = fd->get();
  uint8_t byte = 1;
  ASSERT_OK(pair->first.SendAll(std::span(&byte, 1), std::span(&raw, 1)));
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(SharedMemoryTest, WritableSegmentIsSharedReadOnly) {
  auto segment = WritableSegment::Create(kSize);
  ASSERT_OK(segment);
  std::memset(segment->bytes().data(), 0x11, kSize);
  auto ro = segment->ReadOnlyFd();
  ASSERT_OK(ro);
  EXPECT_EQ(fcntl(ro->get(), F_GETFL) & O_ACCMODE, O_RDONLY);
  EXPECT_TRUE(fcntl(ro->get(), F_GETFD) & FD_CLOEXEC);
  // The receiver cannot map it writable...
  errno = 0;
  EXPECT_EQ(mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, ro->get(), 0), MAP_FAILED);
  EXPECT_EQ(errno, EACCES);
  // ...nor regain write access by reopening it through /proc: without CAP_DAC_OVERRIDE the mode
  // (0400) refuses the open; with it (root) F_SEAL_FUTURE_WRITE refuses writes and mappings.
  std::string proc = "/proc/self/fd/" + std::to_string(ro->get());
  ScopedFd reopened(open(proc.c_str(), O_RDWR | O_CLOEXEC));
  if (reopened) {
    errno = 0;
    EXPECT_EQ(mmap(nullptr, kSize, PROT_READ | PROT_WRITE, MAP_SHARED, reopened.get(), 0),
              MAP_FAILED);
    EXPECT_EQ(errno, EPERM);
    EXPECT_EQ(pwrite(reopened.get(), "x", 1, 0), -1);
    EXPECT_EQ(errno, EPERM);
    EXPECT_EQ(ftruncate(reopened.get(), 1), -1);
  } else {
    EXPECT_EQ(errno, EACCES);
  }
  auto view = MapReadOnly(std::move(*ro), kSize);
  ASSERT_OK(view);
  EXPECT_EQ(view->bytes()[kSize - 1], 0x11);
  // The owner keeps writing; the reader sees it.
  segment->bytes()[kSize - 1] = 0x22;
  EXPECT_EQ(view->bytes()[kSize - 1], 0x22);
}

TEST_F(SharedMemoryTest, MapReadOnlyRejectsWritableUnsealedAndWrongSize) {
  ScopedFd sealed_size = RawMemfd(kSize, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  // Writable descriptor (O_RDWR from memfd_create).
  EXPECT_THAT(MapReadOnly(std::move(sealed_size), kSize), IsError(ErrorKind::kProtocolError));

  ScopedFd unsealed = RawMemfd(kSize, 0);
  std::string proc = "/proc/self/fd/" + std::to_string(unsealed.get());
  EXPECT_THAT(MapReadOnly(ScopedFd(open(proc.c_str(), O_RDONLY | O_CLOEXEC)), kSize),
              IsError(ErrorKind::kProtocolError));

  auto segment = WritableSegment::Create(kSize);
  ASSERT_OK(segment);
  auto ro = segment->ReadOnlyFd();
  ASSERT_OK(ro);
  EXPECT_THAT(MapReadOnly(std::move(*ro), kSize + 1), IsError(ErrorKind::kProtocolError));
}

TEST_F(SharedMemoryTest, MappingOutlivesItsDescriptorAndUnmapsOnDestruction) {
  SealedSegment segment = MakeSealed(8192, 4);
  auto fd = segment.ShareFd();
  ASSERT_OK(fd);
  const uint8_t* data = nullptr;
  {
    auto view = MapSealed(std::move(*fd), 8192);  // the descriptor is closed inside
    ASSERT_OK(view);
    data = view->data();
    SharedMapping moved = std::move(*view);
    EXPECT_EQ(view->data(), nullptr);
    EXPECT_EQ(moved.data(), data);
    EXPECT_EQ(moved.bytes()[100], static_cast<uint8_t>(104));
  }
  // The range is gone: msync on an unmapped range fails with ENOMEM.
  EXPECT_EQ(msync(const_cast<uint8_t*>(data), 8192, MS_ASYNC), -1);
  EXPECT_EQ(errno, ENOMEM);
}

}  // namespace
}  // namespace shapex::ipc
